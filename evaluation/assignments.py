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

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from . import checks
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
    """The submission cannot be stored; nothing was changed. `message` is for the annotator;
    `move_on` says the comparison is gone for them: the page offers their next one instead."""

    def __init__(self, message: str, *, move_on: bool = False) -> None:
        super().__init__(message)
        self.move_on = move_on


@dataclass
class IncompleteSubmission(Exception):
    missing: list[str]

    def __str__(self) -> str:
        labels = [Criterion(c).label.lower() for c in self.missing]
        return "Please answer every criterion before submitting: " + ", ".join(labels) + "."


def choose_left(
    comparison_a_left: int,
    comparison_taken: int,
    needed: int,
    annotator_a_left: int,
    annotator_served: int,
    coin: int,
) -> str | None:
    """Which system goes on the left, balanced two ways, or None when both cannot hold here:

    - per comparison, of its K annotators at most ceil(K/2) see either system on the left (as
      close to half as K allows);
    - per annotator, the running count of A on the left stays within one item of half
      (|2 a - n| <= 2 over the n items served to them);
    - where both allow either side, the side the comparison has shown less, and on a tie (its
      first annotator, or an even split) `coin`, a draw from the batch's secret. Evening out
      each comparison as it fills keeps both balances reachable to the end of the batch.
    """
    half = (needed + 1) // 2
    a_shown, b_shown = comparison_a_left, comparison_taken - comparison_a_left
    allowed = {"A", "B"}
    if a_shown >= half:
        allowed.discard("A")
    if b_shown >= half:
        allowed.discard("B")
    lead = 2 * annotator_a_left - annotator_served
    if lead + 1 > 2:
        allowed.discard("A")
    if lead - 1 < -2:
        allowed.discard("B")
    if len(allowed) < 2:
        return allowed.pop() if allowed else None
    if a_shown != b_shown:
        return "A" if a_shown < b_shown else "B"
    return "A" if coin % 2 == 0 else "B"


def check_open(batch: Batch) -> None:
    if batch.status == Batch.Status.PAUSED:
        raise BatchNotOpen("This batch is paused: no new comparisons are handed out for now.")
    if batch.status != Batch.Status.OPEN:
        raise BatchNotOpen("This batch is closed: it takes no more judgments.")


def release_expired(batch: Batch, now: datetime | None = None) -> int:
    """Give expired leases back to the pool; each one exactly once, whoever else tries too."""
    now = now or timezone.now()
    stale = Assignment.objects.filter(
        batch=batch, status=Assignment.Status.LEASED, lease_expires_at__lt=now
    ).order_by("id")
    released = 0
    for pk, comparison_id, left in stale.values_list("id", "comparison_id", "left_system")[:500]:
        with transaction.atomic():
            claimed = Assignment.objects.filter(
                pk=pk, status=Assignment.Status.LEASED, lease_expires_at__lt=now
            ).update(status=Assignment.Status.EXPIRED)
            if claimed:
                _give_slot_back(comparison_id, left)
                released += 1
    return released


def _give_slot_back(comparison_id: int, left_system: str) -> None:
    """A leased place is free again (expired or skipped): one place fewer taken."""
    Comparison.objects.filter(pk=comparison_id, annotations_in_progress__gt=0).update(
        annotations_in_progress=F("annotations_in_progress") - 1,
        taken_a_left=F("taken_a_left") - (1 if left_system == "A" else 0),
    )


def current_assignment(user: User, batch: Batch) -> Assignment | None:
    return (
        Assignment.objects.filter(annotator=user, batch=batch, status=Assignment.Status.LEASED)
        .order_by("id")
        .first()
    )


def lease_next(user: User, batch: Batch, now: datetime | None = None) -> Assignment | None:
    """The annotator's own unfinished comparison, else the least-judged one they have not seen.

    None when nothing is left for them. Raises BatchNotOpen for a paused or closed batch.
    """
    check_open(batch)
    now = now or timezone.now()
    try:
        with transaction.atomic():
            leased = _lease(user, batch, now)
    except IntegrityError:
        # Another request of the same annotator (a second tab, a double click) leased first;
        # the database's one-live-lease constraint refused this one. Theirs is the lease.
        return current_assignment(user, batch)
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
    # No savepoint here (two more queries a submission): in submit_and_lease_next the
    # annotator's lease being submitted is locked, so a concurrent request of theirs extends
    # that one instead of leasing anew, and lease_next catches the constraint's refusal.
    return _lease_own_expired(own, expires) or _lease_new(user, batch, now, expires)


def _take_slot(comparison_id: int, left_system: str) -> bool:
    return bool(
        Comparison.objects.filter(HAS_ROOM, pk=comparison_id).update(
            annotations_in_progress=F("annotations_in_progress") + 1,
            taken_a_left=F("taken_a_left") + (1 if left_system == "A" else 0),
        )
    )


def _own_unfinished(user, batch: Batch) -> list[Assignment]:
    """In one query: the annotator's live lease if any, else their five latest expired ones."""
    return list(
        Assignment.objects.filter(
            annotator=user,
            batch=batch,
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
        if locked is None or not _take_slot(locked.pk, assignment.left_system):
            continue
        Assignment.objects.filter(pk=assignment.pk).update(
            status=Assignment.Status.LEASED, lease_expires_at=expires
        )
        assignment.status, assignment.lease_expires_at = Assignment.Status.LEASED, expires
        return assignment
    return None


@dataclass(frozen=True)
class Served:
    """What an annotator was served in a batch so far: the check slots and side balance."""

    items: int
    a_left: int


def _served(user, batch: Batch) -> Served:
    counts = Assignment.objects.filter(annotator=user, batch=batch).aggregate(
        items=Count("id"), a_left=Count("id", filter=Q(left_system="A"))
    )
    return Served(**counts)


def at_quota(batch: Batch, served: Served) -> bool:
    """Whether the annotator was served the batch's quota (items_per_annotator; 0 is none)."""
    return bool(batch.items_per_annotator) and served.items >= batch.items_per_annotator


def _lease_new(user, batch: Batch, now: datetime, expires: datetime) -> Assignment | None:
    served = _served(user, batch)
    if at_quota(batch, served):  # the count is already in hand: no query more
        return None
    # The slot is decided from the count above, without a query; only a slot costs the
    # check's own queries (see evaluation.checks).
    if checks.check_due(batch, user.pk, served.items):
        check = _lease_check(user, batch, now, expires, served)
        if check is not None:
            return check
    return _lease_from(user, batch, now, expires, served, is_check=False)


def _lease_check(
    user, batch: Batch, now: datetime, expires: datetime, served: Served
) -> Assignment | None:
    """An attention check, leased exactly as a real comparison is (same audit, same sides)."""
    candidate = checks.next_check(batch, user)
    if candidate is None:
        return None
    left = _left_for(batch, candidate, user, served, strict=False)
    return _assign(user, batch, candidate, left, now, expires)


# A comparison whose sides cannot balance for this annotator (it needs the side they have seen
# too often) is passed over for the next one, up to this many; past them, or when only such
# comparisons are left (the end of a batch), the comparison's balance is kept and the
# annotator's may run to 1.5 items from half.
SIDE_TRIES = 20


def start_position(batch: Batch, user_id: int, served_items: int) -> int:
    """Where on the circle of positions the annotator's `served_items`-th lease starts looking:
    a fresh draw for every item, so that each annotator meets equally-needed comparisons in an
    order of their own."""
    return batch.draw("start", user_id, served_items) >> 1


def _lease_candidates(user, batch: Batch, is_check: bool, passed: list[int]):
    """The comparisons this annotator may be leased now, before any order."""
    return (
        # `is_check = <value>`, not Django's `NOT is_check`: SQLite only reads the lease
        # index for an equality on its column.
        Comparison.objects.filter(HAS_ROOM, batch=batch, is_check=Value(is_check))
        .exclude(assignments__annotator=user)
        .exclude(pk__in=passed)
    )


def _next_candidate(
    user, batch: Batch, is_check: bool, passed: list[int], start: int
) -> Comparison | None:
    """The least-taken comparison open to the annotator, the first at or after `start` among
    those at that level (wrapping round), its row locked; one query.

    Three scalar subqueries, each read from the lease index (batch, is_check, taken, position,
    id): the least taken level among the candidates (the index's first entry), and the first
    candidate at that level at or after `start`, else the first at that level. A row another
    annotator holds locked, or filled since, is passed for the next one in the index's order
    (a second query, only under contention or once nothing is left)."""
    candidates = _lease_candidates(user, batch, is_check, passed)
    level = candidates.order_by(TAKEN, "position", "id").values(taken=TAKEN)[:1]
    at_level = (
        candidates.alias(taken=TAKEN).filter(taken=Subquery(level)).order_by("position", "id")
    )
    chosen = Coalesce(
        Subquery(at_level.filter(position__gte=start).values("pk")[:1]),
        Subquery(at_level.values("pk")[:1]),
    )
    locked = (
        Comparison.objects.filter(HAS_ROOM, pk=chosen).select_for_update(skip_locked=True).first()
    )
    if locked is not None:
        return locked
    return candidates.order_by(TAKEN, "position", "id").select_for_update(skip_locked=True).first()


def _lease_from(
    user, batch: Batch, now: datetime, expires: datetime, served: Served, *, is_check: bool
) -> Assignment | None:
    passed: list[Comparison] = []
    start = start_position(batch, user.pk, served.items)
    while True:
        candidate = _next_candidate(user, batch, is_check, [c.pk for c in passed], start)
        if candidate is None and not passed:
            return None
        if candidate is None:  # only comparisons whose balance is against this annotator
            candidate = passed[0]
            left = _left_for(batch, candidate, user, served, strict=False)
            break
        left = _left_for(batch, candidate, user, served, strict=len(passed) < SIDE_TRIES)
        if left is not None:
            break
        passed.append(candidate)
    return _assign(user, batch, candidate, left, now, expires)


def _assign(
    user, batch: Batch, candidate: Comparison, left: str, now: datetime, expires: datetime
) -> Assignment | None:
    """Take a place on the locked comparison and lease it, audited; None when it is full."""
    if not _take_slot(candidate.pk, left):
        return None
    assignment = Assignment.objects.create(
        comparison=candidate,
        batch=batch,
        annotator=user,
        left_system=left,
        served_at=now,
        lease_expires_at=expires,
    )
    audit(user, AuditEvent.Action.ASSIGN, batch, f"assignment {assignment.pk}")
    return assignment


def _left_for(
    batch: Batch, comparison: Comparison, user, served: Served, *, strict: bool
) -> str | None:
    taken = comparison.annotations_done + comparison.annotations_in_progress
    coin = batch.draw("side", comparison.pk, user.pk)
    left = choose_left(
        comparison.taken_a_left, taken, comparison.annotations_needed, served.a_left,
        served.items, coin,
    )  # fmt: skip
    if left is None and not strict:
        # the comparison's balance wins: it is what the study's per-item counts rest on
        half = (comparison.annotations_needed + 1) // 2
        left = "B" if comparison.taken_a_left >= half else "A"
    return left


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
        if stored_answers(assignment) == answers:
            return assignment
        raise SubmissionRefused(
            "You already submitted this comparison; its answers cannot be changed here.",
            move_on=True,
        )
    late = _check_live(assignment, now)
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
    assignment.late = late
    assignment.save(update_fields=["status", "submitted_at", "active_seconds", "late", *codes])
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


def _check_live(assignment: Assignment, now: datetime) -> bool:
    """May this assignment be submitted now? True when it is late (its lease ran out) but its
    place is still free, taken again atomically; SubmissionRefused when it may not."""
    if assignment.comparison.batch.status == Batch.Status.CLOSED:
        raise SubmissionRefused("This batch is closed: it takes no more judgments.", move_on=True)
    if assignment.status == Assignment.Status.SKIPPED:
        raise SubmissionRefused("You skipped this comparison.", move_on=True)
    if assignment.status == Assignment.Status.LEASED:
        # Ran out but not given back yet: the place is still this assignment's.
        return assignment.lease_expires_at < now
    # Given back: not to someone removed from the batch since, and only if nobody else filled
    # the place meanwhile.
    if not assignment.comparison.batch.allows(assignment.annotator_id):
        raise SubmissionRefused("You are no longer on this batch.", move_on=True)
    if _take_slot(assignment.comparison_id, assignment.left_system):
        return True
    raise SubmissionRefused(
        "Your time on this comparison ran out and another annotator took its place, so these "
        "answers could not be stored.",
        move_on=True,
    )


def stored_answers(assignment: Assignment) -> dict[str, str]:
    """criterion -> the shown answer (left / equal / right) stored for this assignment."""
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
            _give_slot_back(assignment.comparison_id, assignment.left_system)
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


# ---------------------------------------------------------------------------------------------
# Undo: the annotator's last submission, changed within the batch's undo window


def undo_deadline(assignment: Assignment, batch: Batch) -> datetime | None:
    """Until when this submitted assignment may be changed; None when the batch has no undo."""
    if not batch.undo_minutes or assignment.submitted_at is None:
        return None
    return assignment.submitted_at + timedelta(minutes=batch.undo_minutes)


def latest_submitted(user: User, batch: Batch) -> Assignment | None:
    """The annotator's most recent submission in the batch (the only one undo may reopen)."""
    return (
        Assignment.objects.filter(annotator=user, batch=batch, status=Assignment.Status.SUBMITTED)
        .order_by("-submitted_at", "-id")
        .first()
    )


def undoable(user: User, batch: Batch, now: datetime | None = None) -> Assignment | None:
    """The submission the annotator may still change now, if any (one query)."""
    if not batch.undo_minutes:
        return None
    latest = latest_submitted(user, batch)
    deadline = latest and undo_deadline(latest, batch)
    return latest if deadline and (now or timezone.now()) <= deadline else None


def check_revisable(user: User, assignment: Assignment, now: datetime) -> None:
    """SubmissionRefused unless this is the annotator's latest submission, in its window."""
    batch = assignment.comparison.batch
    if assignment.status != Assignment.Status.SUBMITTED:
        raise SubmissionRefused("This comparison is not submitted yet: there is nothing to undo.")
    if batch.status == Batch.Status.CLOSED:
        raise SubmissionRefused("This batch is closed: its answers are final.")
    deadline = undo_deadline(assignment, batch)
    if deadline is None:
        raise SubmissionRefused("Submitted answers cannot be changed in this batch.")
    latest = latest_submitted(user, batch)
    if latest is None or latest.pk != assignment.pk:
        raise SubmissionRefused("Only your most recent submission can be changed.")
    if now > deadline:
        raise SubmissionRefused("The time to change this answer has run out: it is final now.")


def revise_judgments(
    user: User, assignment_id: int, answers: dict[str, str], now: datetime | None = None
) -> Assignment:
    """Change the answers of the annotator's last submission, within the undo window.

    One transaction: the Judgment rows, the verdict columns, the revision count and time, and
    an audit event with the old and new verdicts. Counts on the comparison do not change, and
    the annotator's live lease is left as it is. SubmissionRefused (or IncompleteSubmission)
    before anything is written when the change is not allowed.
    """
    now = now or timezone.now()
    with transaction.atomic():
        assignment = _lock_own(user, assignment_id)
        # Lock the annotator's live lease too: a submission of it (which would make this one
        # no longer the latest) waits until this change commits, and the check below holds.
        list(
            Assignment.objects.select_for_update(of=("self",))
            .filter(annotator=user, batch_id=assignment.batch_id, status=Assignment.Status.LEASED)
            .values_list("pk")
        )
        check_revisable(user, assignment, now)
        answers = clean_answers(answers)
        old = dict(assignment.judgments.values_list("criterion", "verdict"))
        new = {c: to_system_terms(shown, assignment.left_system) for c, shown in answers.items()}
        for criterion, shown in answers.items():
            assignment.judgments.filter(criterion=criterion).update(
                shown=shown, verdict=new[criterion]
            )
        codes = {BY_KEY[c].verdict_column: VERDICT_CODES[v] for c, v in new.items()}
        for field, code in codes.items():
            setattr(assignment, field, code)
        assignment.revisions += 1
        assignment.revised_at = now
        assignment.save(update_fields=["revisions", "revised_at", *codes])
        audit(
            user,
            AuditEvent.Action.REVISE,
            assignment.comparison.batch,
            f"assignment {assignment.pk}",
            old=old,
            new=new,
        )
    return assignment
