"""Celery tasks: one per (summary, metric family), taking ids, safe to run twice.

Scores are written in one transaction at the end of a task, so a worker killed mid-task leaves
nothing half-written; with acks_late the broker then hands the task to another worker, and
`resume_stalled_jobs` re-sends what a broker without acknowledgements lost.
"""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from . import services

# Only errors that a retry can fix: the database or the network hiccuped.
TRANSIENT = (OperationalError, InterfaceError, ConnectionError, TimeoutError)


def _give_up(task, exc, task_id, args, kwargs, einfo) -> None:
    summary_id = args[0] if args else kwargs.get("summary_id")
    job_id = args[1] if len(args) > 1 else kwargs.get("job_id")
    if job_id is not None:
        services.record_failure(job_id, summary_id, f"{type(exc).__name__}: {exc}")


TASK_OPTIONS = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": TRANSIENT,
    "retry_backoff": True,
    "retry_backoff_max": 300,
    "max_retries": 5,
    "on_failure": _give_up,
}


# One task per metric family (its name and queue are in metrics.py; QUALS goes to the "quals"
# queue, so GPU workers can take only those).
@shared_task(soft_time_limit=60, time_limit=90, **TASK_OPTIONS)
def score_rouge(summary_id: int, job_id: int | None = None) -> None:
    services.score_summary("rouge", summary_id, job_id)


@shared_task(soft_time_limit=600, time_limit=660, **TASK_OPTIONS)
def score_quals(summary_id: int, job_id: int | None = None) -> None:
    services.score_summary("quals", summary_id, job_id)


@shared_task(soft_time_limit=60, time_limit=90, **TASK_OPTIONS)
def score_fragments(summary_id: int, job_id: int | None = None) -> None:
    services.score_summary("fragments", summary_id, job_id)


@shared_task(acks_late=True, soft_time_limit=120, time_limit=180)
def resume_stalled_jobs() -> int:
    return services.resume_stalled_jobs()
