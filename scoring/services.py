"""Scoring workflows: start a batch's scoring jobs, score one summary, record progress.

The families, their scorers and their tasks come from the registry (`metrics.py`); tasks are
sent by name through the Celery app, so this module never imports `tasks.py` (which imports it).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery import current_app
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnavailable

from evaluation.models import Summary

from .metrics import FAMILIES, MetricFamily, family
from .models import MetricScore, ScoringJob
from .scorers import MetricUnavailable, Score

log = logging.getLogger(__name__)
STALLED_AFTER = timedelta(minutes=10)


def start_batch_scoring(
    batch_id: int,
    kinds: list[str] | None = None,
    *,
    force: bool = False,
    requested_by: User | None = None,
) -> list[ScoringJob]:
    """Create one scoring job per metric family and enqueue one task per summary.

    Without `force`, summaries already scored by that family are left alone. A family that
    cannot score here (QUALS without a model) is skipped, never faked; asking for it explicitly
    raises MetricUnavailable with the reason.
    """
    explicit = kinds is not None
    families = [family(k) for k in kinds] if explicit else list(FAMILIES)
    for f in families:
        if explicit and f.unavailable():
            raise MetricUnavailable(f.unavailable())
    jobs = []
    for f in families:
        if f.unavailable():
            continue
        kind = f.key
        summaries = Summary.objects.filter(document__batch_id=batch_id)
        if not force:
            summaries = summaries.exclude(scores__metric=f.headline)
        ids = list(summaries.order_by("document_id", "id").values_list("id", flat=True))
        job = ScoringJob.objects.create(
            batch_id=batch_id, kind=kind, total=len(ids), summary_ids=ids, requested_by=requested_by
        )
        enqueue(job, ids)
        jobs.append(job)
    return jobs


def enqueue(job: ScoringJob, summary_ids: list[int]) -> int:
    """Send one task per summary; returns how many were sent.

    A broker that is down must not fail the import that called us (the batch is committed):
    the job stays running, and resume_stalled_jobs re-sends what it misses later.
    """
    if not summary_ids:
        finish_if_complete(job.pk)
    task = current_app.tasks[family(job.kind).task]
    sent = 0
    try:
        for summary_id in summary_ids:
            task.delay(summary_id, job.pk)
            sent += 1
    except BrokerUnavailable as e:
        log.warning(
            "broker unavailable (%s): %d of %d tasks of scoring job %d not sent yet; "
            "resume_stalled_jobs will send them",
            e,
            len(summary_ids) - sent,
            len(summary_ids),
            job.pk,
        )
    return sent


def resume_stalled_jobs(now: datetime | None = None) -> int:
    """Re-enqueue what running jobs still miss once they stopped moving.

    A message can be lost (a broker without acknowledgements, a broker that was down at
    import time); tasks are idempotent, so sending one twice costs only time.
    """
    now = now or timezone.now()
    resent = 0
    for job in ScoringJob.objects.filter(
        status=ScoringJob.Status.RUNNING, updated_at__lt=now - STALLED_AFTER
    ):
        missing = pending_summaries(job)
        ScoringJob.objects.filter(pk=job.pk).update(updated_at=now)
        resent += enqueue(job, missing)
    return resent


def pending_summaries(job: ScoringJob) -> list[int]:
    metric = family(job.kind).headline
    scored = set(
        MetricScore.objects.filter(job=job, metric=metric).values_list("summary_id", flat=True)
    )
    failed = {f["summary_id"] for f in job.failures}
    return [s for s in job.summary_ids if s not in scored and s not in failed]


def score_summary(family_key: str, summary_id: int, job_id: int | None = None) -> None:
    """Compute and store one family's scores of one summary; safe to run twice."""
    summary = Summary.objects.select_related("document").filter(pk=summary_id).first()
    if summary is None:
        return
    started = time.perf_counter()
    scored = family(family_key).score(summary)
    duration = time.perf_counter() - started
    rows = {metric: score_row(score) for metric, score in scored.scores.items()}
    store_scores(summary_id, rows, scored.version, duration, job_id)


def score_row(score: Score) -> dict:
    """A scorer's Score as MetricScore fields: a value, or "no score" with the reason."""
    if score.value is None:
        status, reason = MetricScore.Status.NO_SCORE, score.reason
    else:
        status, reason = MetricScore.Status.OK, ""
    return {"status": status, "value": score.value, "reason": reason, "details": score.details}


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
                defaults={
                    "details": {},
                    **fields,
                    "version": version,
                    "duration_seconds": duration,
                    "job": job,
                },
            )
        if first_time:
            job.done += 1
            job.save(update_fields=["done", "updated_at"])
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
        job.save(update_fields=["failures", "failed", "updated_at"])
    finish_if_complete(job_id)


def finish_if_complete(job_id: int) -> None:
    now = timezone.now()
    complete = ScoringJob.objects.filter(
        pk=job_id, status=ScoringJob.Status.RUNNING, total=F("done") + F("failed")
    )
    complete.filter(failed=0).update(status=ScoringJob.Status.DONE, finished_at=now)
    complete.filter(failed__gt=0).update(status=ScoringJob.Status.FAILED, finished_at=now)


@dataclass(frozen=True)
class FamilyStatus:
    """One family on a batch's pages: its latest job, or why it cannot run here."""

    family: MetricFamily
    job: ScoringJob | None
    unavailable: str

    @property
    def running(self) -> bool:
        return self.job is not None and not self.job.finished


def batch_scoring_status(batch_id: int) -> list[FamilyStatus]:
    """Every family with its latest job on the batch, in registry order."""
    latest: dict[str, ScoringJob] = {}
    for job in ScoringJob.objects.filter(batch_id=batch_id).order_by("-created_at"):
        latest.setdefault(job.kind, job)
    return [FamilyStatus(f, latest.get(f.key), f.unavailable()) for f in FAMILIES]


def score_imported_batch(
    sender: type, batch_id: int, requested_by: User | None = None, **kwargs
) -> None:
    """Receiver of `evaluation.signals.batch_imported`: score every family that can run here."""
    start_batch_scoring(batch_id, requested_by=requested_by)
