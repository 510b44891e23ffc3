"""Scoring workflows: start a batch's scoring jobs, score one summary, record progress."""

from __future__ import annotations

import time

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from evaluation.models import Summary

from .models import Metric, MetricScore, ScoringJob
from .rouge import ROUGE_TYPES, rouge_f, rouge_version

KIND_METRICS = {ScoringJob.Kind.ROUGE: list(ROUGE_TYPES), ScoringJob.Kind.QUALS: [Metric.QUALS]}


def quals_configured() -> bool:
    return bool(settings.QUALS_MODEL)


def start_batch_scoring(
    batch_id: int, kinds: list[str] | None = None, *, force: bool = False, requested_by=None
) -> list[ScoringJob]:
    """Create one scoring job per metric family and enqueue one task per summary.

    Without `force`, summaries already scored by that family are left alone. QUALS is skipped,
    not faked, when no model is configured.
    """
    from .tasks import TASKS

    kinds = kinds or [ScoringJob.Kind.ROUGE, ScoringJob.Kind.QUALS]
    jobs = []
    for kind in kinds:
        if kind == ScoringJob.Kind.QUALS and not quals_configured():
            continue
        summaries = Summary.objects.filter(document__batch_id=batch_id)
        if not force:
            summaries = summaries.exclude(scores__metric=KIND_METRICS[kind][0])
        ids = list(summaries.order_by("document_id", "id").values_list("id", flat=True))
        job = ScoringJob.objects.create(
            batch_id=batch_id, kind=kind, total=len(ids), requested_by=requested_by
        )
        if not ids:
            finish_if_complete(job.pk)
        for summary_id in ids:
            TASKS[kind].delay(summary_id, job.pk)
        jobs.append(job)
    return jobs


def score_summary_rouge(summary_id: int, job_id: int | None = None) -> None:
    """Compute and store ROUGE-1/2/L of one summary; safe to run twice."""
    summary = Summary.objects.select_related("document").filter(pk=summary_id).first()
    if summary is None:
        return
    started = time.perf_counter()
    reference = summary.document.reference
    rows = {}
    if reference.strip():
        for metric, value in rouge_f(summary.text, reference).items():
            rows[metric] = {"status": MetricScore.Status.OK, "value": value, "reason": ""}
    else:
        for metric in ROUGE_TYPES:
            rows[metric] = {
                "status": MetricScore.Status.NO_SCORE,
                "value": None,
                "reason": "the document has no reference summary",
            }
    duration = time.perf_counter() - started
    store_scores(summary_id, rows, rouge_version(), duration, job_id)


def store_scores(
    summary_id: int, rows: dict[str, dict], version: str, duration: float, job_id: int | None
) -> None:
    """Write all metrics of one task in one transaction and count the summary done once."""
    with transaction.atomic():
        job = None
        if job_id is not None:
            job = ScoringJob.objects.select_for_update().filter(pk=job_id).first()
        first_time = (
            job is not None
            and not MetricScore.objects.filter(
                summary_id=summary_id, metric__in=rows, job=job
            ).exists()
        )
        for metric, fields in rows.items():
            MetricScore.objects.update_or_create(
                summary_id=summary_id,
                metric=metric,
                defaults={**fields, "version": version, "duration_seconds": duration, "job": job},
            )
        if first_time:
            job.done += 1
            job.save(update_fields=["done"])
    if job_id is not None:
        finish_if_complete(job_id)


def record_failure(job_id: int, summary_id: int, reason: str) -> None:
    """A task gave up on a summary: count it failed once, with the reason."""
    with transaction.atomic():
        job = ScoringJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or any(f["summary_id"] == summary_id for f in job.failures):
            return
        job.failures.append({"summary_id": summary_id, "reason": reason[:1000]})
        job.failed += 1
        job.save(update_fields=["failures", "failed"])
    finish_if_complete(job_id)


def finish_if_complete(job_id: int) -> None:
    now = timezone.now()
    complete = ScoringJob.objects.filter(
        pk=job_id, status=ScoringJob.Status.RUNNING, total=F("done") + F("failed")
    )
    complete.filter(failed=0).update(status=ScoringJob.Status.DONE, finished_at=now)
    complete.filter(failed__gt=0).update(status=ScoringJob.Status.FAILED, finished_at=now)
