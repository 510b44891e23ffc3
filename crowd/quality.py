"""The admins' participants page: quality per participant (what the dashboard computes for
annotators, by participant) and the pay calculator's figures."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count, Q

from evaluation import checks
from evaluation.models import Assignment

from .models import CrowdStudy, Participant, Phase
from .pay import PayCheck, check_pay, median


@dataclass
class ParticipantRow:
    participant: Participant
    submitted: int
    skipped: int
    checks_answered: int
    check_accuracy: float | None
    check_flagged: bool
    median_active_seconds: float | None
    minutes: float | None  # from arrival to completion, for the completed

    @property
    def completion(self) -> str:
        p = self.participant
        if p.phase == Phase.COMPLETE:
            return "completed: approve"
        if p.phase == Phase.SCREENED_OUT:
            return f"screened out ({p.screened_out_reason})"
        if p.phase == Phase.RETURNED:
            return "returned"
        return "in progress"


def participant_rows(study: CrowdStudy) -> list[ParticipantRow]:
    batch = study.batch
    people = list(study.participants.select_related("user"))
    counts = {
        row["annotator_id"]: row
        for row in Assignment.objects.filter(batch=batch)
        .values("annotator_id")
        .annotate(
            submitted=Count("id", filter=Q(status=Assignment.Status.SUBMITTED)),
            skipped=Count("id", filter=Q(status=Assignment.Status.SKIPPED)),
        )
    }
    seconds: dict[int, list[float]] = {}
    for user_id, value in Assignment.objects.filter(
        batch=batch, status=Assignment.Status.SUBMITTED, active_seconds__isnull=False
    ).values_list("annotator_id", "active_seconds"):
        seconds.setdefault(user_id, []).append(value)
    accuracy = {e.annotator_id: e for e in checks.check_accuracy(batch)}
    rows = []
    for p in people:
        c = counts.get(p.user_id, {})
        check = accuracy.get(p.user_id)
        minutes = None
        if p.phase == Phase.COMPLETE and p.finished_at:
            minutes = (p.finished_at - p.created_at).total_seconds() / 60
        rows.append(
            ParticipantRow(
                participant=p,
                submitted=c.get("submitted", 0),
                skipped=c.get("skipped", 0),
                checks_answered=check.checks if check else 0,
                check_accuracy=check.accuracy if check else None,
                check_flagged=bool(check and check.flagged),
                median_active_seconds=median(seconds.get(p.user_id, [])),
                minutes=minutes,
            )
        )
    return rows


def pay_context(study: CrowdStudy, rows: list[ParticipantRow], form) -> dict:
    """The calculator: the form's reward and minutes, else the study's reward and the observed
    median time of those who completed."""
    observed = median([r.minutes for r in rows if r.minutes is not None])
    reward, minutes = float(study.reward), observed
    if form.is_bound and form.is_valid():
        if form.cleaned_data["reward"] is not None:
            reward = float(form.cleaned_data["reward"])
        if form.cleaned_data["minutes"] is not None:
            minutes = form.cleaned_data["minutes"]
    pay: PayCheck | None = None
    if minutes:
        pay = check_pay(
            reward,
            minutes,
            settings.CROWD_PAY_FLOOR_PER_HOUR,
            settings.CROWD_PAY_RECOMMENDED_PER_HOUR,
        )
    return {"pay": pay, "observed_minutes": observed}
