"""The study's data model.

Invariants live in the database as constraints, not only in code: one judgment per criterion per
assignment, one assignment per annotator per comparison, never more submitted assignments on a
comparison than it needs, verdicts stored in system terms next to what was on screen.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser, Group
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.lookups import GreaterThanOrEqual, LessThanOrEqual

from .criteria import CRITERIA, VERDICT_CODES

# FACTUAL = "factual", ... : the choices of the criteria registry.
Criterion = models.TextChoices("Criterion", [(c.key.upper(), (c.key, c.label)) for c in CRITERIA])


class Verdict(models.TextChoices):
    """A verdict in system terms, independent of where each summary was shown."""

    A = "A", "A better"
    B = "B", "B better"
    EQUAL = "equal", "Equal"


class Shown(models.TextChoices):
    """A verdict as the annotator saw it on screen."""

    LEFT = "left", "Left better"
    RIGHT = "right", "Right better"
    EQUAL = "equal", "Equal"


class Role(models.TextChoices):
    ANNOTATOR = "annotator", "Annotator"
    RESEARCHER = "researcher", "Researcher"
    ADMIN = "admin", "Admin"


def user_role(user: AbstractBaseUser | AnonymousUser) -> str | None:
    """The user's strongest role: superusers and the admin group are admins."""
    if not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return Role.ADMIN
    names = set(user.groups.values_list("name", flat=True))  # names only: no model objects
    for role in (Role.ADMIN, Role.RESEARCHER, Role.ANNOTATOR):
        if role.value in names:
            return role
    return None


MAX_LEASE_MINUTES = 24 * 60
MAX_ITEMS_PER_ANNOTATOR = 100_000
MAX_UNDO_MINUTES = 60
MAX_BREAK_REMINDER_MINUTES = 8 * 60


def _words(text: str) -> list[str]:
    return re.findall(r"[^\W_]+", text.lower())


def names_system(text: str, system: str) -> bool:
    """Whether `text` names `system`, whatever its case, spacing or punctuation.

    The rule: the system's letters and digits, lowercased, equal a run of consecutive whole
    words of the text. "con-seq study" names "ConSeq" and "Q.U.A.L.S" names "QUALS"; a name
    inside a longer word does not count, so "Bartholomew" does not name "BART", nor "equals"
    "QUALS", nor "A study" "MLE".
    """
    target, words = "".join(_words(system)), _words(text)
    for start in range(len(words)):
        run = ""
        for word in words[start:]:
            run += word
            if run == target:
                return True
            if not target.startswith(run):
                break
    return False


def system_named(text: str, systems: tuple[str, ...]) -> str | None:
    """The first of `systems` that `text` names (see names_system), else None."""
    return next((s for s in systems if s and names_system(text, s)), None)


def new_batch_secret() -> str:
    return secrets.token_hex(32)


PLANNED_SUM_TOLERANCE = 1e-6


class Batch(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        OPEN = "open", "Open"
        PAUSED = "paused", "Paused"
        CLOSED = "closed", "Closed"

    name = models.CharField(max_length=200, unique=True)
    public_title = models.CharField(
        max_length=200,
        blank=True,
        help_text="What annotators see instead of the name; never name a system here.",
    )
    dataset = models.CharField(max_length=50, help_text="Dataset label, e.g. XSUM or CNNDM.")
    system_a = models.CharField(max_length=100, help_text="The baseline, e.g. MLE.")
    system_b = models.CharField(max_length=100, help_text="The system under test, e.g. QUALS.")
    annotators_per_item = models.PositiveSmallIntegerField(default=3)
    lease_minutes = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(1), MaxValueValidator(MAX_LEASE_MINUTES)]
    )
    status = models.CharField(max_length=10, choices=Status, default=Status.DRAFT)
    guidelines = models.TextField(blank=True)
    check_every = models.PositiveSmallIntegerField(
        default=0,
        help_text="Serve about one attention check in N comparisons, at random places (0: never).",
    )
    check_min_gap = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="At least this many comparisons between two attention checks.",
    )
    check_threshold = models.FloatField(
        default=0.7, help_text="Annotators whose check accuracy is below this are flagged."
    )
    # A quota: no annotator is served more than this many comparisons (checks, skips and
    # given-back leases included: what they were served), e.g. 20 per crowd participant.
    items_per_annotator = models.PositiveIntegerField(
        default=0,
        validators=[MinValueValidator(0), MaxValueValidator(MAX_ITEMS_PER_ANNOTATOR)],
        help_text="Comparisons served to each annotator at most (0: no limit).",
    )
    checks_before_flag = models.PositiveSmallIntegerField(
        default=5,
        validators=[MinValueValidator(1)],
        help_text="Nobody is flagged before answering this many attention checks.",
    )
    # How long an annotator may reopen and change their last submission; after it, submitted
    # is final.
    undo_minutes = models.PositiveSmallIntegerField(
        default=2,
        validators=[MinValueValidator(0), MaxValueValidator(MAX_UNDO_MINUTES)],
        help_text="Minutes during which an annotator may reopen their last submission (0: never).",
    )
    # Reading aids: each can change what annotators notice, so each is stored with the batch
    # and named in the methods paragraph.
    aid_paragraph_numbers = models.BooleanField(
        default=True, help_text="Number the paragraphs of the source document."
    )
    aid_highlights = models.BooleanField(
        default=True,
        help_text="Highlight the numbers and names of each summary in the summaries and the "
        "source, with keys to jump between their occurrences.",
    )
    aid_word_diff = models.BooleanField(
        default=False, help_text="Offer a word-level difference view of the two summaries."
    )
    break_reminder_minutes = models.PositiveSmallIntegerField(
        default=0,
        validators=[MinValueValidator(0), MaxValueValidator(MAX_BREAK_REMINDER_MINUTES)],
        help_text="Suggest a break after this many minutes of continuous judging (0: never).",
    )
    annotators = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="annotation_batches"
    )
    annotator_groups = models.ManyToManyField(Group, blank=True, related_name="annotation_batches")
    source_filename = models.CharField(max_length=255, blank=True)
    # The effect the batch is meant to detect (judgment shares; all three or none) and the
    # expected within-comparison correlation: the batch page warns when the batch, at its K
    # and number of comparisons, has under 80% simulated power to detect it.
    planned_b_better = models.FloatField(
        null=True, blank=True, help_text="Expected share of judgments with B better (0-1)."
    )
    planned_equal = models.FloatField(
        null=True, blank=True, help_text="Expected share of judgments with equal (0-1)."
    )
    planned_a_better = models.FloatField(
        null=True, blank=True, help_text="Expected share of judgments with A better (0-1)."
    )
    planned_rho = models.FloatField(
        null=True,
        blank=True,
        help_text="Expected correlation of verdicts within a comparison (0-1; empty: 0.5).",
    )
    # Seeds the batch's random draws (screen sides, the order of comparisons): they are
    # stored as drawn, and cannot be recomputed from ids without this secret.
    secret = models.CharField(max_length=64, default=new_batch_secret, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "batches"
        constraints = [
            models.CheckConstraint(condition=~Q(name=""), name="batch_name_not_empty"),
            models.CheckConstraint(condition=~Q(dataset=""), name="batch_dataset_not_empty"),
            models.CheckConstraint(
                condition=~Q(system_a="") & ~Q(system_b="") & ~Q(system_a=F("system_b")),
                name="batch_two_distinct_systems",
            ),
            models.CheckConstraint(
                condition=Q(annotators_per_item__gte=1, annotators_per_item__lte=50),
                name="batch_annotators_per_item_range",
            ),
            models.CheckConstraint(
                condition=Q(lease_minutes__gte=1, lease_minutes__lte=MAX_LEASE_MINUTES),
                name="batch_lease_minutes_range",
            ),
            models.CheckConstraint(
                condition=Q(
                    items_per_annotator__gte=0, items_per_annotator__lte=MAX_ITEMS_PER_ANNOTATOR
                ),
                name="batch_items_per_annotator_range",
            ),
            models.CheckConstraint(
                condition=Q(check_threshold__gte=0, check_threshold__lte=1),
                name="batch_check_threshold_range",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["draft", "open", "paused", "closed"]),
                name="batch_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(
                    planned_b_better__isnull=True,
                    planned_equal__isnull=True,
                    planned_a_better__isnull=True,
                )
                | (
                    # NULL passes a CHECK: the three must be present, not only in range.
                    Q(
                        planned_b_better__isnull=False,
                        planned_equal__isnull=False,
                        planned_a_better__isnull=False,
                    )
                    & Q(planned_b_better__range=(0, 1))
                    & Q(planned_equal__range=(0, 1))
                    & Q(planned_a_better__range=(0, 1))
                    & Q(
                        GreaterThanOrEqual(
                            F("planned_b_better") + F("planned_equal") + F("planned_a_better"),
                            1 - PLANNED_SUM_TOLERANCE,
                        )
                    )
                    & Q(
                        LessThanOrEqual(
                            F("planned_b_better") + F("planned_equal") + F("planned_a_better"),
                            1 + PLANNED_SUM_TOLERANCE,
                        )
                    )
                ),
                name="batch_planned_shares_sum_to_one",
            ),
            models.CheckConstraint(
                condition=Q(planned_rho__isnull=True) | Q(planned_rho__range=(0, 1)),
                name="batch_planned_rho_range",
            ),
            models.CheckConstraint(
                condition=Q(check_min_gap__gte=1, check_min_gap__lte=100),
                name="batch_check_min_gap_range",
            ),
            models.CheckConstraint(
                condition=Q(checks_before_flag__gte=1), name="batch_checks_before_flag_positive"
            ),
            models.CheckConstraint(
                condition=Q(undo_minutes__gte=0, undo_minutes__lte=MAX_UNDO_MINUTES),
                name="batch_undo_minutes_range",
            ),
            models.CheckConstraint(
                condition=Q(
                    break_reminder_minutes__gte=0,
                    break_reminder_minutes__lte=MAX_BREAK_REMINDER_MINUTES,
                ),
                name="batch_break_reminder_minutes_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """Annotators see the public title and the guidelines: neither may name a system."""
        errors = {}
        for field in ("public_title", "guidelines"):
            system = system_named(getattr(self, field), (self.system_a, self.system_b))
            if system:
                errors[field] = f"Annotators see this: it must not name a system ({system})."
        if errors:
            raise ValidationError(errors)

    @property
    def title_for_annotators(self) -> str:
        return self.public_title or f"Batch {self.pk}"

    def allows(self, user_id: int) -> bool:
        """Whether this user may judge the batch: one of its annotators or in one of its groups."""
        return (
            Batch.objects.filter(pk=self.pk)
            .filter(Q(annotators=user_id) | Q(annotator_groups__user=user_id))
            .exists()
        )

    def draw(self, *parts: object) -> int:
        """A 64-bit number drawn from the batch's secret for these parts: the same parts give
        the same number, and nobody without the secret can predict it."""
        message = ":".join(str(p) for p in parts).encode()
        digest = hmac.new(self.secret.encode(), message, hashlib.sha256).digest()
        return int.from_bytes(digest[:8], "big")


class BatchNotFound(Exception):
    pass


def find_batch(name_or_id: str) -> Batch:
    """A batch by its exact name, or by its id when no batch has that name (for commands)."""
    batch = Batch.objects.filter(name=name_or_id).first()
    if batch is None and name_or_id.isdigit():
        batch = Batch.objects.filter(pk=int(name_or_id)).first()
    if batch is None:
        raise BatchNotFound(f"no batch named or numbered {name_or_id!r}")
    return batch


class Document(models.Model):
    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="documents")
    external_id = models.CharField(max_length=200)
    source = models.TextField()
    reference = models.TextField(blank=True)
    meta = models.JSONField(default=dict, blank=True)
    # Uploaded only to make attention checks from: never a real comparison.
    check_pool = models.BooleanField(default=False)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "external_id"], name="document_unique_id"),
            models.CheckConstraint(condition=~Q(external_id=""), name="document_id_not_empty"),
            models.CheckConstraint(condition=~Q(source=""), name="document_source_not_empty"),
        ]

    def __str__(self) -> str:
        return self.external_id


class Summary(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="summaries")
    system = models.CharField(max_length=100)
    text = models.TextField()

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "summaries"
        constraints = [
            models.UniqueConstraint(fields=["document", "system"], name="summary_unique_system"),
            models.CheckConstraint(condition=~Q(text=""), name="summary_text_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.document.external_id} / {self.system}"


class CheckState(models.TextChoices):
    NONE = "", "Not a check"
    PENDING = "pending", "Waiting for approval"
    APPROVED = "approved", "Approved"


# A comparison's places taken: submitted judgments and live leases. Least taken is leased first.
TAKEN = F("annotations_done") + F("annotations_in_progress")
# A comparison still has room for another annotator. Written exactly so wherever it filters
# (the partial index below only serves queries whose condition reads the same).
HAS_ROOM = Q(annotations_needed__gt=TAKEN)


class Comparison(models.Model):
    """One document with its two summaries inside a batch.

    `annotations_done` counts submitted assignments and `annotations_in_progress` live leases;
    the check constraint that their sum never exceeds `annotations_needed` is what makes
    over-assigning impossible, whatever the code does.
    """

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="comparisons")
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="comparisons")
    summary_a = models.ForeignKey(Summary, on_delete=models.CASCADE, related_name="+")
    summary_b = models.ForeignKey(Summary, on_delete=models.CASCADE, related_name="+")
    annotations_needed = models.PositiveSmallIntegerField()
    annotations_done = models.PositiveSmallIntegerField(default=0)
    annotations_in_progress = models.PositiveSmallIntegerField(default=0)
    # Of the places taken (submitted or leased), how many show system A on the left: the
    # sides of a comparison's annotators are balanced as K allows.
    taken_a_left = models.PositiveSmallIntegerField(default=0)
    # A random key drawn from the batch's secret: among equally-needed comparisons, the lease
    # order, so that it follows neither the import order nor the ids.
    position = models.BigIntegerField(default=0)
    # Attention checks look like any other comparison to annotators, carry the expected
    # verdicts (criterion -> "A" / "B" / "equal"), and never count in the results.
    is_check = models.BooleanField(default=False)
    expected = models.JSONField(default=dict, blank=True)
    # A generated check is served only once an admin approved it (see evaluation.checks).
    check_state = models.CharField(max_length=10, choices=CheckState, blank=True, default="")

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["batch", "summary_a", "summary_b"], name="comparison_unique_pair"
            ),
            models.CheckConstraint(
                condition=~Q(summary_a=F("summary_b")), name="comparison_two_summaries"
            ),
            models.CheckConstraint(
                condition=Q(annotations_needed__gte=1), name="comparison_needs_annotations"
            ),
            models.CheckConstraint(
                condition=Q(annotations_done__gte=0)
                & Q(annotations_in_progress__gte=0)
                & Q(annotations_needed__gte=TAKEN),
                name="comparison_never_overfilled",
            ),
            models.CheckConstraint(
                condition=Q(taken_a_left__gte=0) & Q(taken_a_left__lte=TAKEN),
                name="comparison_sides_within_taken",
            ),
            # A check waits for approval or is approved; a real comparison has no check state.
            models.CheckConstraint(
                condition=(Q(is_check=True) & Q(check_state__in=["pending", "approved"]))
                | (Q(is_check=False) & Q(check_state="")),
                name="comparison_check_state_valid",
            ),
        ]
        indexes = [
            # The lease order (least judged first) over comparisons with room left, so that
            # leasing reads the index from its start instead of sorting the whole batch.
            models.Index(
                "batch",
                "is_check",
                TAKEN,
                "position",
                "id",
                condition=HAS_ROOM,
                name="comparison_lease_order",
            )
        ]

    def __str__(self) -> str:
        return f"{self.batch.name}: {self.document.external_id}"


def _verdicts_iff_submitted() -> Q:
    """A submitted assignment has a verdict code for every criterion, any other none.

    "Not null" is spelled out: a CHECK whose condition is NULL passes, so `IN` alone would let
    a submitted assignment without a code through.
    """
    codes = sorted(VERDICT_CODES.values())
    submitted, other = Q(status="submitted"), ~Q(status="submitted")
    for criterion in CRITERIA:
        column = criterion.verdict_column
        submitted &= Q(**{f"{column}__isnull": False, f"{column}__in": codes})
        other &= Q(**{f"{column}__isnull": True})
    return submitted | other


class Assignment(models.Model):
    """One annotator on one comparison, with the randomised screen order it was shown in."""

    class Status(models.TextChoices):
        LEASED = "leased", "Leased"
        SUBMITTED = "submitted", "Submitted"
        SKIPPED = "skipped", "Skipped"
        EXPIRED = "expired", "Expired"

    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="assignments")
    # The comparison's batch again, so that the database can hold an annotator to one live
    # lease per batch (a partial unique constraint cannot reach through the comparison).
    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="+")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="assignments"
    )
    left_system = models.CharField(
        max_length=1, choices=[("A", "A"), ("B", "B")], help_text="Which system was on the left."
    )
    status = models.CharField(max_length=10, choices=Status, default=Status.LEASED)
    served_at = models.DateTimeField()
    lease_expires_at = models.DateTimeField()
    submitted_at = models.DateTimeField(null=True, blank=True)
    active_seconds = models.FloatField(null=True, blank=True)
    # Submitted after the lease ran out, while the place was still free.
    late = models.BooleanField(default=False)
    skip_reason = models.TextField(blank=True)
    problem_report = models.TextField(blank=True)
    # Changed by its annotator after submitting, within the batch's undo window: how often,
    # and when last. The audit log keeps each change's old and new verdicts.
    revisions = models.PositiveSmallIntegerField(default=0)
    revised_at = models.DateTimeField(null=True, blank=True)
    # One verdict-code column per criterion (`verdict_factual`, ...), added below from the
    # registry.

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["comparison", "annotator"], name="assignment_once_per_annotator"
            ),
            # One person cannot hold a batch's capacity with many leases at once.
            models.UniqueConstraint(
                fields=["annotator", "batch"],
                condition=Q(status="leased"),
                name="assignment_one_live_lease",
            ),
            models.CheckConstraint(
                condition=Q(left_system__in=["A", "B"]), name="assignment_left_system_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["leased", "submitted", "skipped", "expired"]),
                name="assignment_status_valid",
            ),
            models.CheckConstraint(
                condition=~Q(status="submitted") | Q(submitted_at__isnull=False),
                name="assignment_submitted_has_time",
            ),
            models.CheckConstraint(
                condition=Q(active_seconds__isnull=True) | Q(active_seconds__gte=0),
                name="assignment_active_seconds_positive",
            ),
            models.CheckConstraint(
                condition=_verdicts_iff_submitted(), name="assignment_verdicts_iff_submitted"
            ),
            models.CheckConstraint(
                condition=Q(revisions=0, revised_at__isnull=True)
                | Q(revisions__gt=0, revised_at__isnull=False, status="submitted"),
                name="assignment_revised_consistent",
            ),
        ]
        indexes = [
            # An annotator's assignments in a batch: their lease, progress and check schedule.
            models.Index(fields=["annotator", "batch", "status"]),
            models.Index(fields=["status", "lease_expires_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.annotator} on {self.comparison_id}"

    def save(self, *args, **kwargs) -> None:
        if self.batch_id is None and self.comparison_id is not None:
            self.batch_id = Comparison.objects.values_list("batch_id", flat=True).get(
                pk=self.comparison_id
            )
        super().save(*args, **kwargs)


# The verdicts again, in system terms as codes, written in the same transaction as the
# judgments: the analysis reads one row per assignment, with no join.
for _criterion in CRITERIA:
    Assignment.add_to_class(
        _criterion.verdict_column, models.SmallIntegerField(null=True, blank=True)
    )


class Judgment(models.Model):
    """One answer to one criterion: in system terms (`verdict`) and as seen (`shown`)."""

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="judgments")
    criterion = models.CharField(max_length=20, choices=Criterion)
    verdict = models.CharField(max_length=5, choices=Verdict)
    shown = models.CharField(max_length=5, choices=Shown)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["assignment", "criterion"], name="judgment_once_per_criterion"
            ),
            models.CheckConstraint(
                condition=Q(criterion__in=Criterion.values), name="judgment_criterion_valid"
            ),
            models.CheckConstraint(
                condition=Q(verdict__in=Verdict.values), name="judgment_verdict_valid"
            ),
            # "equal" on screen is "equal" in system terms, and only then.
            models.CheckConstraint(
                condition=(Q(shown="equal") & Q(verdict="equal"))
                | (Q(shown__in=["left", "right"]) & Q(verdict__in=["A", "B"])),
                name="judgment_equal_consistent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.criterion}: {self.verdict}"


class AuditEvent(models.Model):
    """Who did what, when: imports, batch changes, assignments, submissions, exports, accounts."""

    class Action(models.TextChoices):
        IMPORT = "import", "Import"
        BATCH_CHANGE = "batch_change", "Batch change"
        ASSIGN = "assign", "Assignment"
        SUBMIT = "submit", "Submission"
        REVISE = "revise", "Revision of a submission"
        SKIP = "skip", "Skip or problem report"
        EXPORT = "export", "Export"
        ACCOUNT = "account", "Account change"
        SCORING = "scoring", "Scoring run"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=20, choices=Action)
    batch = models.ForeignKey(
        Batch, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    target = models.CharField(max_length=200, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["action", "at"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.target}"


_audit_buffer: ContextVar[list[AuditEvent] | None] = ContextVar("audit_buffer", default=None)


def audit(
    actor: AbstractBaseUser | AnonymousUser | None,
    action: str,
    batch: Batch | None = None,
    target: str = "",
    **details,
) -> None:
    event = AuditEvent(
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        action=action,
        batch=batch,
        target=target[:200],
        details=details,
    )
    buffer = _audit_buffer.get()
    if buffer is None:
        event.save()
    else:
        buffer.append(event)


@contextmanager
def audits_together() -> Iterator[None]:
    """The audit events of the block, written in one INSERT when it ends without an error.

    Use it inside the block's transaction, so that the events commit with what they record.
    """
    events: list[AuditEvent] = []
    token = _audit_buffer.set(events)
    try:
        yield
    finally:
        _audit_buffer.reset(token)
    AuditEvent.objects.bulk_create(events)
