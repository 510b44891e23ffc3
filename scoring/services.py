"""Scoring workflows: start a batch's scoring jobs, score one summary, record progress.

torch and transformers are imported lazily: the web process never needs them, and a worker
loads the QUALS model once, on its first QUALS task.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from evaluation.models import Document, Summary

from .models import Metric, MetricScore, ScoringJob
from .rouge import ROUGE_TYPES, rouge_f, rouge_version

if TYPE_CHECKING:
    from .quals import EncodedSource, QAGen, QualsConfig

log = logging.getLogger(__name__)
KIND_METRICS = {ScoringJob.Kind.ROUGE: list(ROUGE_TYPES), ScoringJob.Kind.QUALS: [Metric.QUALS]}
NOT_CONFIGURED = "QUALS is not configured: set QUALS_MODEL to a local checkpoint directory"
STALLED_AFTER = timedelta(minutes=10)


class ScoringNotConfigured(Exception):
    pass


def quals_configured() -> bool:
    return bool(settings.QUALS_MODEL)


def start_batch_scoring(
    batch_id: int, kinds: list[str] | None = None, *, force: bool = False, requested_by=None
) -> list[ScoringJob]:
    """Create one scoring job per metric family and enqueue one task per summary.

    Without `force`, summaries already scored by that family are left alone. QUALS is skipped,
    never faked, when no model is configured; asking for it explicitly then raises.
    """
    explicit = kinds is not None
    kinds = kinds or [ScoringJob.Kind.ROUGE, ScoringJob.Kind.QUALS]
    if explicit and ScoringJob.Kind.QUALS in kinds and not quals_configured():
        raise ScoringNotConfigured(NOT_CONFIGURED)
    jobs = []
    for kind in kinds:
        if kind == ScoringJob.Kind.QUALS and not quals_configured():
            continue
        summaries = Summary.objects.filter(document__batch_id=batch_id)
        if not force:
            summaries = summaries.exclude(scores__metric=KIND_METRICS[kind][0])
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
    from kombu.exceptions import OperationalError as BrokerUnavailable

    from .tasks import TASKS

    if not summary_ids:
        finish_if_complete(job.pk)
    sent = 0
    try:
        for summary_id in summary_ids:
            TASKS[job.kind].delay(summary_id, job.pk)
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


def resume_stalled_jobs(now=None) -> int:
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
    metric = KIND_METRICS[job.kind][0]
    scored = set(
        MetricScore.objects.filter(job=job, metric=metric).values_list("summary_id", flat=True)
    )
    failed = {f["summary_id"] for f in job.failures}
    return [s for s in job.summary_ids if s not in scored and s not in failed]


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
            rows[metric] = no_score("the document has no reference summary")
    duration = time.perf_counter() - started
    store_scores(summary_id, rows, rouge_version(), duration, job_id)


def no_score(reason: str) -> dict:
    return {"status": MetricScore.Status.NO_SCORE, "value": None, "reason": reason, "details": {}}


def quals_config() -> QualsConfig:
    from .quals import QualsConfig

    if not quals_configured():
        raise ScoringNotConfigured(NOT_CONFIGURED)
    return QualsConfig(
        model_dir=settings.QUALS_MODEL,
        separator=settings.QUALS_SEPARATOR,
        input_prefix=settings.QUALS_INPUT_PREFIX,
        max_source_tokens=settings.QUALS_MAX_SOURCE_TOKENS,
        device=settings.QUALS_DEVICE,
        dtype=settings.QUALS_DTYPE,
    )


@lru_cache(maxsize=1)
def _loaded(config: QualsConfig) -> QAGen:
    from .quals import load_qagen

    return load_qagen(config)


def worker_qagen() -> QAGen:
    """The QUALS model, loaded once per worker process (and again only if settings change)."""
    return _loaded(quals_config())


def quals_version(config: QualsConfig) -> str:
    return (
        f"QUALS {Path(config.model_dir).name} (sep {config.separator!r}, "
        f"{config.num_beams} beams, {config.dtype})"
    )


# The two summaries of a comparison share a document: keep its encoding (encoder output and
# cross-attention keys/values) for the next task, which is usually the other summary.
_ENCODED: OrderedDict[tuple, EncodedSource] = OrderedDict()
_ENCODED_MAX = 4


def encoded_document(qagen: QAGen, document: Document) -> EncodedSource:
    from .quals import encode_source

    key = (document.pk, hash(document.source), qagen.config)
    if key in _ENCODED:
        _ENCODED.move_to_end(key)
        return _ENCODED[key]
    encoded = encode_source(qagen, document.source)
    _ENCODED[key] = encoded
    while len(_ENCODED) > _ENCODED_MAX:
        _ENCODED.popitem(last=False)
    return encoded


def score_summary_quals(summary_id: int, job_id: int | None = None) -> None:
    """Compute and store QUALS of one summary, with its explanation; safe to run twice."""
    from .quals import quals_score

    summary = Summary.objects.select_related("document").filter(pk=summary_id).first()
    if summary is None:
        return
    qagen = worker_qagen()
    started = time.perf_counter()
    encoded = encoded_document(qagen, summary.document)
    result = quals_score(qagen, summary.document.source, summary.text, encoded)
    details = result.to_dict()
    del details["value"], details["reason"]
    if result.value is None:
        row = {**no_score(result.reason), "details": details}
    else:
        row = {"status": MetricScore.Status.OK, "value": result.value, "reason": ""}
        row["details"] = details
    duration = time.perf_counter() - started
    store_scores(summary_id, {Metric.QUALS: row}, quals_version(qagen.config), duration, job_id)


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


def batch_scoring_status(batch_id: int) -> dict:
    """The latest job of each metric family, for the batch page and the admin."""
    latest = {}
    for job in ScoringJob.objects.filter(batch_id=batch_id).order_by("-created_at"):
        latest.setdefault(job.kind, job)
    return {
        "rouge": latest.get(ScoringJob.Kind.ROUGE),
        "quals": latest.get(ScoringJob.Kind.QUALS),
        "quals_configured": quals_configured(),
    }
