"""The assignment engine: who judges what next, and storing what they said.

Capacity lives on the comparison row (`annotations_done` + `annotations_in_progress` <=
`annotations_needed`, a database constraint). Leasing locks the chosen comparison row
(`SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL, so concurrent annotators take different rows
without waiting; SQLite serialises writers with BEGIN IMMEDIATE instead), and every counter change
is a conditional UPDATE whose row count is checked, as in healthchecks' sendalerts.

The judging page stores a judgment set and leases the next comparison in one transaction
(`submit_and_lease_next`): one commit a judgment set, and an error rolls back both.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F, Value
from django.utils import timezone

from .criteria import BY_KEY, VERDICT_CODES
from .models import (
    HAS_ROOM,
    TAKEN,
    Assignment,
    AuditEvent,
    Batch,
    Comparison,
    Criterion,
    Judgment,
    Shown,
    audit,
    audits_together,
)


class BatchNotOpen(Exception):
    pass


class SubmissionRefused(Exception):
    """The submission cannot be stored; nothing was changed. `message` is for the annotator."""


@dataclass
class IncompleteSubmission(Exception):
    missing: list[str]

    def __str__(self) -> str:
        labels = [Criterion(c).label.lower() for c in self.missing]
        return "Please answer every criterion before submitting: " + ", ".join(labels) + "."


def left_system_for(batch_id: int, comparison_id: int, annotator_id: int) -> str:
    """Which system goes on the left: random-looking, but reproducible from the ids."""
    digest = hashlib.sha256(f"{batch_id}:{comparison_id}:{annotator_id}".encode()).digest()
    return "A" if digest[0] % 2 == 0 else "B"


def check_open(batch: Batch) -> None:
    if batch.status == Batch.Status.PAUSED:
        raise BatchNotOpen("This batch is paused: no new comparisons are handed out for now.")
    if batch.status != Batch.Status.OPEN:
        raise BatchNotOpen("This batch is closed: it takes no more judgments.")


def release_expired(batch: Batch, now: datetime | None = None) -> int:
    """Give expired leases back to the pool; each one exactly once, whoever else tries too."""
    now = now or timezone.now()
    stale = Assignment.objects.filter(
        comparison__batch=batch, status=Assignment.Status.LEASED, lease_expires_at__lt=now
    ).order_by("id")
    released = 0
    for pk, comparison_id in stale.values_list("id", "comparison_id")[:500]:
        with transaction.atomic():
            claimed = Assignment.objects.filter(
                pk=pk, status=Assignment.Status.LEASED, lease_expires_at__lt=now
            ).update(status=Assignment.Status.EXPIRED)
            if claimed:
                Comparison.objects.filter(pk=comparison_id).update(
                    annotations_in_progress=F("annotations_in_progress") - 1
                )
                released += 1
    return released


def current_assignment(user: User, batch: Batch) -> Assignment | None:
    return (
        Assignment.objects.filter(
            annotator=user, comparison__batch=batch, status=Assignment.Status.LEASED
        )
        .order_by("id")
        .first()
    )


def lease_next(user: User, batch: Batch, now: datetime | None = None) -> Assignment | None:
    """The annotator's own unfinished comparison, else the least-judged one they have not seen.

    None when nothing is left for them. Raises BatchNotOpen for a paused or closed batch.
    """
    check_open(batch)
    now = now or timezone.now()
    with transaction.atomic():
        leased = _lease(user, batch, now)
    # Expired leases hold their slot until someone finds nothing free: releasing them on
    # every request would cost a query per request for a rare event.
    if leased is None and release_expired(batch, now):
        return lease_next(user, batch, now)
    return leased


def _lease(user, batch: Batch, now: datetime) -> Assignment | None:
    """lease_next's work, inside the caller's transaction."""
    expires = now + timedelta(minutes=batch.lease_minutes)
    own = _own_unfinished(user, batch)
    if own and own[0].status == Assignment.Status.LEASED:
        Assignment.objects.filter(pk=own[0].pk).update(lease_expires_at=expires)
        own[0].lease_expires_at = expires
        return own[0]
    return _lease_own_expired(own, expires) or _lease_new(user, batch, now, expires)


def _take_slot(comparison_id: int) -> bool:
    return bool(
        Comparison.objects.filter(HAS_ROOM, pk=comparison_id).update(
            annotations_in_progress=F("annotations_in_progress") + 1
        )
    )


def _own_unfinished(user, batch: Batch) -> list[Assignment]:
    """In one query: the annotator's live lease if any, else their five latest expired ones."""
    return list(
        Assignment.objects.filter(
            annotator=user,
            comparison__batch=batch,
            status__in=[Assignment.Status.LEASED, Assignment.Status.EXPIRED],
        ).order_by("-status", "-lease_expires_at", "id")[:5]  # "leased" sorts after "expired"
    )


def _lease_own_expired(own: list[Assignment], expires: datetime) -> Assignment | None:
    """An annotator who comes back after their lease ran out gets it back if nobody filled it."""
    for assignment in own:
        locked = (
            Comparison.objects.select_for_update(skip_locked=True)
            .filter(pk=assignment.comparison_id)
            .first()
        )
        if locked is None or not _take_slot(locked.pk):
            continue
        Assignment.objects.filter(pk=assignment.pk).update(
            status=Assignment.Status.LEASED, lease_expires_at=expires
        )
        assignment.status, assignment.lease_expires_at = Assignment.Status.LEASED, expires
        return assignment
    return None


def _check_due(user, batch: Batch) -> bool:
    """Every `check_every`-th comparison an annotator is served is an attention check."""
    if not batch.check_every:
        return False
    served = Assignment.objects.filter(annotator=user, comparison__batch=batch).count()
    return (served + 1) % batch.check_every == 0


def _lease_new(user, batch: Batch, now: datetime, expires: datetime) -> Assignment | None:
    if _check_due(user, batch):
        check = _lease_from(user, batch, now, expires, is_check=True)
        if check is not None:
            return check
    return _lease_from(user, batch, now, expires, is_check=False)


def _lease_from(user, batch: Batch, now: datetime, expires: datetime, *, is_check: bool):
    candidate = (
        # `is_check = <value>`, not Django's `NOT is_check`: SQLite only reads the lease index
        # for an equality on its column.
        Comparison.objects.filter(HAS_ROOM, batch=batch, is_check=Value(is_check))
        .exclude(assignments__annotator=user)
        .order_by(TAKEN, "id")
        .select_for_update(skip_locked=True)
        .first()
    )
    if candidate is None or not _take_slot(candidate.pk):
        return None
    assignment = Assignment.objects.create(
        comparison=candidate,
        annotator=user,
        left_system=left_system_for(batch.pk, candidate.pk, user.pk),
        served_at=now,
        lease_expires_at=expires,
    )
    audit(user, AuditEvent.Action.ASSIGN, batch, f"assignment {assignment.pk}")
    return assignment


def to_system_terms(shown: str, left_system: str) -> str:
    if shown == Shown.EQUAL:
        return "equal"
    right_system = "B" if left_system == "A" else "A"
    return left_system if shown == Shown.LEFT else right_system


def clean_answers(answers: dict[str, str]) -> dict[str, str]:
    missing = [c for c in Criterion.values if answers.get(c) not in Shown.values]
    if missing:
        raise IncompleteSubmission(missing)
    return {c: answers[c] for c in Criterion.values}


def _lock_own(user, assignment_id: int) -> Assignment:
    # Only the assignment's row: locking the joined batch row too would make every submission
    # in the batch wait for the one before it to commit.
    assignment = (
        Assignment.objects.select_for_update(of=("self",))
        .select_related("comparison__batch")
        .filter(pk=assignment_id)
        .first()
    )
    if assignment is None or assignment.annotator_id != user.pk:
        raise SubmissionRefused("This comparison is not assigned to you.")
    return assignment


def submit_judgments(
    user: User,
    assignment_id: int,
    answers: dict[str, str],
    active_seconds: float | None = None,
    now: datetime | None = None,
) -> Assignment:
    """Store one set of judgments, exactly once.

    A repeat of the same submission (double click, network retry) returns the stored assignment
    and changes nothing; any other submission on a finished, expired or foreign assignment raises
    SubmissionRefused, and a partial one IncompleteSubmission, both before anything is written.
    """
    now = now or timezone.now()
    with transaction.atomic():
        return _store_judgments(user, assignment_id, answers, active_seconds, now)


def submit_and_lease_next(
    user: User,
    assignment_id: int,
    answers: dict[str, str],
    active_seconds: float | None = None,
    now: datetime | None = None,
) -> tuple[Assignment, Assignment | None, str | None]:
    """submit_judgments, then lease_next in the same transaction: (stored, next, why none).

    `why none` is the reason when the batch hands out nothing more (paused or closed); `next`
    is None with no reason when nothing is left for this annotator.
    """
    now = now or timezone.now()
    with transaction.atomic(), audits_together():
        stored = _store_judgments(user, assignment_id, answers, active_seconds, now)
        batch = stored.comparison.batch
        try:
            check_open(batch)
        except BatchNotOpen as e:
            return stored, None, str(e)
        leased = _lease(user, batch, now)
    if leased is None and release_expired(batch, now):
        return stored, lease_next(user, batch, now), None
    return stored, leased, None


def _store_judgments(user, assignment_id, answers, active_seconds, now) -> Assignment:
    """submit_judgments' work, inside the caller's transaction."""
    assignment = _lock_own(user, assignment_id)
    if assignment.status == Assignment.Status.SUBMITTED:
        if _stored_answers(assignment) == answers:
            return assignment
        raise SubmissionRefused(
            "You already submitted this comparison; its answers cannot be changed."
        )
    _check_live(assignment, now)
    answers = clean_answers(answers)
    Judgment.objects.bulk_create(
        Judgment(
            assignment=assignment,
            criterion=criterion,
            shown=shown,
            verdict=to_system_terms(shown, assignment.left_system),
        )
        for criterion, shown in answers.items()
    )
    codes = {
        BY_KEY[c].verdict_column: VERDICT_CODES[to_system_terms(shown, assignment.left_system)]
        for c, shown in answers.items()
    }
    for field, code in codes.items():
        setattr(assignment, field, code)
    assignment.status = Assignment.Status.SUBMITTED
    assignment.submitted_at = now
    assignment.active_seconds = capped_active_seconds(active_seconds, assignment.served_at, now)
    assignment.save(update_fields=["status", "submitted_at", "active_seconds", *codes])
    filled = Comparison.objects.filter(
        pk=assignment.comparison_id, annotations_in_progress__gt=0
    ).update(
        annotations_done=F("annotations_done") + 1,
        annotations_in_progress=F("annotations_in_progress") - 1,
    )
    if filled != 1:
        raise SubmissionRefused("This comparison has all the judgments it needs.")
    audit(
        user,
        AuditEvent.Action.SUBMIT,
        assignment.comparison.batch,
        f"assignment {assignment.pk}",
    )
    return assignment


def capped_active_seconds(
    active_seconds: float | None, served_at: datetime, now: datetime
) -> float | None:
    """The page's own count of active time, never more than the wall time since serving: the
    client's figure is not trusted beyond what the server saw."""
    if active_seconds is None:
        return None
    wall = max((now - served_at).total_seconds(), 0.0)
    return min(max(active_seconds, 0.0), wall)


def _check_live(assignment: Assignment, now: datetime) -> None:
    if assignment.comparison.batch.status == Batch.Status.CLOSED:
        raise SubmissionRefused("This batch is closed: it takes no more judgments.")
    if assignment.status == Assignment.Status.SKIPPED:
        raise SubmissionRefused("You skipped this comparison.")
    if assignment.status == Assignment.Status.EXPIRED or assignment.lease_expires_at < now:
        raise SubmissionRefused(
            "Your time on this comparison ran out and it was offered to others; "
            "your answers were not stored. Continue to get your next comparison."
        )


def _stored_answers(assignment: Assignment) -> dict[str, str]:
    return dict(assignment.judgments.values_list("criterion", "shown"))


def skip_assignment(
    user: User,
    assignment_id: int,
    reason: str,
    *,
    problem: bool = False,
    now: datetime | None = None,
) -> Assignment:
    """Skip a comparison with a reason (or report a problem with it); it goes to others."""
    reason = reason.strip()
    if not reason:
        raise SubmissionRefused(
            "Please describe the problem." if problem else "Please give a reason for skipping."
        )
    now = now or timezone.now()
    with transaction.atomic():
        assignment = _lock_own(user, assignment_id)
        if assignment.status in (Assignment.Status.SUBMITTED, Assignment.Status.SKIPPED):
            raise SubmissionRefused("This comparison is already finished.")
        if assignment.status == Assignment.Status.LEASED:
            Comparison.objects.filter(
                pk=assignment.comparison_id, annotations_in_progress__gt=0
            ).update(annotations_in_progress=F("annotations_in_progress") - 1)
        assignment.status = Assignment.Status.SKIPPED
        if problem:
            assignment.problem_report = reason[:5000]
        else:
            assignment.skip_reason = reason[:5000]
        assignment.save(update_fields=["status", "problem_report", "skip_reason"])
        audit(
            user,
            AuditEvent.Action.SKIP,
            assignment.comparison.batch,
            f"assignment {assignment.pk}",
            problem=problem,
        )
    return assignment


def progress_for(user: User, batch: Batch) -> tuple[int, int]:
    """(submitted by this annotator, comparisons still open to them)."""
    done = Assignment.objects.filter(
        annotator=user, comparison__batch=batch, status=Assignment.Status.SUBMITTED
    ).count()
    available = (
        Comparison.objects.filter(HAS_ROOM, batch=batch, is_check=False)
        .exclude(assignments__annotator=user)
        .count()
    ) + (1 if current_assignment(user, batch) else 0)
    return done, available
