"""Stored automatic scores and the jobs that compute them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from .metrics import FAMILIES

# QUALS = "quals", ROUGEL = "rougeL", ...: every metric of the registry's families.
Metric = models.TextChoices(
    "Metric", [(name.upper(), (name, label)) for f in FAMILIES for name, label in f.metrics]
)


class MetricScore(models.Model):
    """One metric of one summary: a value, or "no score" with the reason.

    A missing value is never stored as a number: consumers must handle `no_score` explicitly.
    """

    class Status(models.TextChoices):
        OK = "ok", "Scored"
        NO_SCORE = "no_score", "No score"

    summary = models.ForeignKey(
        "evaluation.Summary", on_delete=models.CASCADE, related_name="scores"
    )
    metric = models.CharField(max_length=10, choices=Metric)
    version = models.CharField(max_length=200, help_text="Package or model version that scored.")
    status = models.CharField(max_length=10, choices=Status)
    value = models.FloatField(null=True, blank=True)
    reason = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    duration_seconds = models.FloatField(default=0)
    job = models.ForeignKey(
        "ScoringJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="scores"
    )
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["summary_id", "metric"]
        constraints = [
            models.UniqueConstraint(fields=["summary", "metric"], name="score_once_per_metric"),
            models.CheckConstraint(
                condition=(Q(status="ok") & Q(value__isnull=False))
                | (Q(status="no_score") & Q(value__isnull=True) & ~Q(reason="")),
                name="score_value_or_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.metric} of summary {self.summary_id}"


class ScoringJob(models.Model):
    """One request to score a batch with one metric family, with its progress."""

    Kind = models.TextChoices("Kind", [(f.key.upper(), (f.key, f.label)) for f in FAMILIES])

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Done with failures"
        NOT_CONFIGURED = "not_configured", "Not configured"

    batch = models.ForeignKey(
        "evaluation.Batch", on_delete=models.CASCADE, related_name="scoring_jobs"
    )
    kind = models.CharField(max_length=10, choices=Kind)
    status = models.CharField(max_length=20, choices=Status, default=Status.RUNNING)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    failures = models.JSONField(default=list, blank=True)
    # The summaries this job covers, so that a stalled job can be resumed exactly.
    summary_ids = models.JSONField(default=list, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(done__gte=0) & Q(failed__gte=0) & Q(total__gte=F("done") + F("failed")),
                name="job_progress_within_total",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.batch}"

    @property
    def finished(self) -> bool:
        return self.status != self.Status.RUNNING

    @property
    def percent(self) -> int:
        return round(100 * (self.done + self.failed) / self.total) if self.total else 100
