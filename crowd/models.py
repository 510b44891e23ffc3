"""Crowd studies: a batch opened to paid participants who arrive through platform links.

A participant is a Django user with no usable password, bound to one platform id. They go
through the study's phases in order; the judging phase is the core's own judging flow, which
serves them as any annotator of the batch (they are added to its annotators when they reach it).
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from evaluation.models import Batch


def new_token() -> str:
    return secrets.token_urlsafe(24)


def new_code() -> str:
    # Unambiguous capitals and digits, as participants type or paste them into the platform.
    return "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(8))


class Platform(models.TextChoices):
    PROLIFIC = "prolific", "Prolific"
    MTURK = "mturk", "Mechanical Turk"
    GENERIC = "generic", "Generic link"


# Where each platform's link carries the participant's ids: (platform id, study/HIT id,
# session/assignment id). The generic link has only the participant.
LINK_PARAMETERS = {
    Platform.PROLIFIC: ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID"),
    Platform.MTURK: ("workerId", "hitId", "assignmentId"),
    Platform.GENERIC: ("participant", None, None),
}


class CrowdStudy(models.Model):
    batch = models.OneToOneField(Batch, on_delete=models.CASCADE, related_name="crowd_study")
    enabled = models.BooleanField(default=False, help_text="Links admit new participants.")
    token = models.CharField(max_length=64, default=new_token, editable=False)
    consent_text = models.TextField(
        blank=True, help_text="Shown first, to accept or decline; empty: no consent phase."
    )
    show_guidelines = models.BooleanField(
        default=True, help_text="Show the batch's guidelines before training."
    )
    training_pass_mark = models.FloatField(
        default=0.8,
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="Share of training answers that must match (0 to 1).",
    )
    survey_questions = models.TextField(
        blank=True, help_text="One question a line, asked after judging; empty: no survey."
    )
    completion_code = models.CharField(max_length=20, default=new_code)
    screenout_code = models.CharField(max_length=20, default=new_code)
    prolific_return_url = models.CharField(
        max_length=500,
        blank=True,
        default="https://app.prolific.com/submissions/complete?cc={code}",
        help_text="{code} is replaced by the completion or screen-out code.",
    )
    mturk_return_url = models.CharField(
        max_length=500, blank=True, help_text="Usually empty: workers paste the code in the HIT."
    )
    generic_return_url = models.CharField(max_length=500, blank=True)
    time_limit_minutes = models.PositiveIntegerField(
        default=90,
        validators=[MinValueValidator(1), MaxValueValidator(24 * 60)],
        help_text="A participant idle this long, unfinished, times out when a place is needed.",
    )
    reward = models.DecimalField(
        max_digits=8, decimal_places=2, default=0, help_text="Paid per participant."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "crowd studies"
        constraints = [
            models.CheckConstraint(
                condition=Q(training_pass_mark__gte=0, training_pass_mark__lte=1),
                name="crowd_study_pass_mark_range",
            ),
            models.CheckConstraint(condition=Q(reward__gte=0), name="crowd_study_reward_positive"),
            models.CheckConstraint(
                condition=Q(time_limit_minutes__gte=1, time_limit_minutes__lte=24 * 60),
                name="crowd_study_time_limit_range",
            ),
            models.CheckConstraint(
                condition=~Q(completion_code="") & ~Q(completion_code=F("screenout_code")),
                name="crowd_study_two_codes",
            ),
        ]

    def __str__(self) -> str:
        return f"crowd study of {self.batch}"

    @property
    def questions(self) -> list[str]:
        return [q.strip() for q in self.survey_questions.splitlines() if q.strip()]

    def return_url(self, platform: str, code: str) -> str:
        template = {
            Platform.PROLIFIC: self.prolific_return_url,
            Platform.MTURK: self.mturk_return_url,
            Platform.GENERIC: self.generic_return_url,
        }[platform]
        return template.replace("{code}", code) if template else ""


class TrainingItem(models.Model):
    """A practice comparison with its expected answers (criterion -> left / right / equal) and
    the explanation shown after it. Training answers are never judgments."""

    study = models.ForeignKey(CrowdStudy, on_delete=models.CASCADE, related_name="training")
    position = models.PositiveIntegerField(default=0)
    source = models.TextField()
    left = models.TextField()
    right = models.TextField()
    expected = models.JSONField(default=dict)
    explanation = models.TextField(blank=True)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.CheckConstraint(condition=~Q(source=""), name="training_source_not_empty"),
        ]

    def __str__(self) -> str:
        return f"training {self.position} of {self.study}"


class Phase(models.TextChoices):
    CONSENT = "consent", "Consent"
    GUIDELINES = "guidelines", "Guidelines"
    TRAINING = "training", "Training"
    JUDGING = "judging", "Judging"
    SURVEY = "survey", "Survey"
    COMPLETE = "complete", "Complete"
    SCREENED_OUT = "screened_out", "Screened out"
    RETURNED = "returned", "Returned"


# The phases in order; a study skips those it does not need (see services.phases_of).
PHASE_ORDER = [
    Phase.CONSENT,
    Phase.GUIDELINES,
    Phase.TRAINING,
    Phase.JUDGING,
    Phase.SURVEY,
    Phase.COMPLETE,
]
# Phases after which a participant holds no place in the study.
ENDED = (Phase.COMPLETE, Phase.SCREENED_OUT, Phase.RETURNED)
TRAINING_ATTEMPTS = 2


class Participant(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="participant"
    )
    study = models.ForeignKey(CrowdStudy, on_delete=models.PROTECT, related_name="participants")
    platform = models.CharField(max_length=10, choices=Platform)
    platform_id = models.CharField(max_length=200)
    platform_study_id = models.CharField(max_length=200, blank=True)  # STUDY_ID / hitId
    platform_session_id = models.CharField(max_length=200, blank=True)  # SESSION_ID / assignmentId
    phase = models.CharField(max_length=15, choices=Phase, default=Phase.CONSENT)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    consented_at = models.DateTimeField(null=True, blank=True)
    training_attempts = models.PositiveSmallIntegerField(default=0)
    training_score = models.FloatField(null=True, blank=True)
    training_answers = models.JSONField(default=list, blank=True)
    survey_answers = models.JSONField(default=dict, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    screened_out_reason = models.CharField(max_length=100, blank=True)
    flagged = models.BooleanField(default=False)
    flag_note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["study", "platform", "platform_id"], name="participant_once_per_platform_id"
            ),
            models.CheckConstraint(
                condition=Q(phase__in=Phase.values), name="participant_phase_valid"
            ),
            models.CheckConstraint(
                condition=Q(platform__in=Platform.values), name="participant_platform_valid"
            ),
            models.CheckConstraint(
                condition=~Q(platform_id=""), name="participant_platform_id_not_empty"
            ),
            models.CheckConstraint(
                condition=Q(training_attempts__lte=TRAINING_ATTEMPTS),
                name="participant_training_attempts_range",
            ),
        ]

    def __str__(self) -> str:
        return f"participant {self.pk}"
