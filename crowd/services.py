"""Crowd workflows: joining through a link, moving through the phases, screening out."""

from __future__ import annotations

import hmac
import math
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import Group, User
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, Sum
from django.urls import reverse
from django.utils import timezone

from evaluation.models import TAKEN, Assignment, Batch, Comparison, Role
from evaluation.services import release_leases

from .models import (
    ENDED,
    LINK_PARAMETERS,
    PHASE_ORDER,
    TRAINING_ATTEMPTS,
    CrowdStudy,
    Participant,
    Phase,
    Platform,
)

MAX_ID_LENGTH = 200
# The assignmentId Mechanical Turk passes while a worker previews a HIT they have not accepted.
MTURK_PREVIEW = "ASSIGNMENT_ID_NOT_AVAILABLE"
MAX_ANSWER_LENGTH = 2000


class BadLink(Exception):
    """The link lacks what it must carry; the message is for the participant."""


class Preview(Exception):
    """Mechanical Turk's preview of a HIT, before the worker accepts it: nobody to admit yet."""


class StudyClosed(Exception):
    """No new participants now (disabled, paused, closed or full); the message says which."""


# The phases of someone still in the study, who may leave it.
TAKING_PART = (Phase.CONSENT, Phase.GUIDELINES, Phase.TRAINING, Phase.JUDGING, Phase.SURVEY)


def key_matches(study: CrowdStudy, key: str) -> bool:
    return hmac.compare_digest(key.encode(), study.token.encode())


def phases_of(study: CrowdStudy) -> list[str]:
    """The study's phases in order, without those it does not need."""
    skip = set()
    if not study.consent_text.strip():
        skip.add(Phase.CONSENT)
    if not (study.show_guidelines and study.batch.guidelines.strip()):
        skip.add(Phase.GUIDELINES)
    if not study.training.exists():
        skip.add(Phase.TRAINING)
    if not study.questions:
        skip.add(Phase.SURVEY)
    return [p for p in PHASE_ORDER if p not in skip]


def next_phase(study: CrowdStudy, phase: str) -> str:
    phases = phases_of(study)
    later = [p for p in PHASE_ORDER[PHASE_ORDER.index(phase) + 1 :] if p in phases]
    return later[0]


@dataclass(frozen=True)
class Capacity:
    judgments_needed: int  # places on the batch's real comparisons (K each), taken or not
    judgments_open: int  # of which neither judged nor leased yet
    quota: int
    places: int | None  # participants needed: judgments / quota, None without a quota
    participants: int  # admitted and not screened out or returned

    @property
    def full(self) -> bool:
        return self.judgments_open == 0 or (
            self.places is not None and self.participants >= self.places
        )


def capacity(study: CrowdStudy) -> Capacity:
    batch = study.batch
    real = Comparison.objects.filter(batch=batch, is_check=False)
    needed = real.aggregate(n=Sum("annotations_needed"))["n"] or 0
    taken = real.aggregate(n=Sum(TAKEN))["n"] or 0
    quota = batch.items_per_annotator
    active = study.participants.exclude(phase__in=[Phase.SCREENED_OUT, Phase.RETURNED]).count()
    places = math.ceil(needed / quota) if quota else None
    return Capacity(needed, max(needed - taken, 0), quota, places, active)


def read_link(platform: str, params) -> tuple[str, str, str]:
    """(platform id, platform study id, platform session id) from the link's query string."""
    if platform not in Platform.values:
        raise BadLink("This link is not for a platform this study knows.")
    names = LINK_PARAMETERS[platform]
    values = [(params.get(n) or "").strip() if n else "" for n in names]
    if platform == Platform.MTURK and values[2] == MTURK_PREVIEW:
        raise Preview()
    if not values[0]:
        raise BadLink("This link lacks your participant id: please open it from the platform.")
    if any(len(v) > MAX_ID_LENGTH for v in values):
        raise BadLink("This link's ids are too long.")
    return values[0], values[1], values[2]


def join(study: CrowdStudy, platform: str, params) -> Participant:
    """The participant of this platform id, created on their first visit.

    A returning id gets its own participant back, whatever the device. New participants are
    admitted one at a time (the study row is locked), so that concurrent arrivals neither make
    two accounts for one id nor admit more people than the batch has places for.
    """
    platform_id, study_id, session_id = read_link(platform, params)
    lookup = {"study": study, "platform": platform, "platform_id": platform_id}
    existing = Participant.objects.filter(**lookup).select_related("user").first()
    if existing is not None:
        return existing
    with transaction.atomic():
        study = CrowdStudy.objects.select_for_update().select_related("batch").get(pk=study.pk)
        existing = Participant.objects.filter(**lookup).select_related("user").first()
        if existing is not None:
            return existing
        _check_admitting(study)
        user = _new_participant_user()
        try:
            with transaction.atomic():
                participant = Participant.objects.create(
                    user=user,
                    platform_study_id=study_id,
                    platform_session_id=session_id,
                    phase=phases_of(study)[0],
                    **lookup,
                )
        except IntegrityError:  # the lock makes this unreachable; the constraint still holds
            user.delete()
            return Participant.objects.select_related("user").get(**lookup)
        if participant.phase == Phase.JUDGING:
            study.batch.annotators.add(user)
    return participant


def _check_admitting(study: CrowdStudy) -> None:
    if not study.enabled:
        raise StudyClosed("This study is not taking participants.")
    if study.batch.status == Batch.Status.PAUSED:
        raise StudyClosed("This study is paused: please try again later.")
    if study.batch.status == Batch.Status.DRAFT:
        raise StudyClosed("This study has not started yet.")
    if study.batch.status != Batch.Status.OPEN:
        raise StudyClosed("This study has closed.")
    room = capacity(study)
    if not room.full:
        return
    if room.judgments_open and time_out_idle(study):
        room = capacity(study)
    if room.full:
        raise StudyClosed("This study is full: thank you for your interest.")


def time_out_idle(study: CrowdStudy, now=None) -> int:
    """Unfinished participants idle for the study's time limit give their place back (phase
    "returned", reason "timed out"), as the platform times them out: their places were all that
    kept newcomers away. Idle: no phase change and nothing served or submitted since."""
    now = now or timezone.now()
    cutoff = now - timedelta(minutes=study.time_limit_minutes)
    recent = Assignment.objects.filter(batch=study.batch, annotator=OuterRef("user_id")).filter(
        Q(served_at__gte=cutoff) | Q(submitted_at__gte=cutoff) | Q(lease_expires_at__gte=now)
    )
    idle = (
        study.participants.exclude(phase__in=ENDED)
        .filter(updated_at__lt=cutoff)
        .exclude(Exists(recent))
        .select_related("study__batch", "user")
    )
    timed_out = 0
    for participant in idle:
        participant.phase = Phase.RETURNED
        participant.screened_out_reason = "timed out"
        participant.finished_at = now
        participant.save()
        _leave_batch(participant)
        timed_out += 1
    return timed_out


def _new_participant_user() -> User:
    # A random name: the header of every page shows it, and it must not be the platform id.
    user = User.objects.create_user(username="p-" + secrets.token_hex(8), password=None)
    group, _ = Group.objects.get_or_create(name=Role.ANNOTATOR)
    user.groups.add(group)
    return user


def _lock(participant: Participant) -> Participant:
    return (
        Participant.objects.select_for_update()
        .select_related("study__batch", "user")
        .get(pk=participant.pk)
    )


def advance(participant: Participant) -> Participant:
    """On to the study's next phase (inside the caller's transaction).

    Participants are on the batch's annotators only while judging: before, the judging pages
    are closed to them, and after, nothing more is leased to them even when places free up.
    """
    leaving = participant.phase
    participant.phase = next_phase(participant.study, participant.phase)
    if leaving == Phase.JUDGING:
        _leave_batch(participant)
    if participant.phase == Phase.JUDGING:
        participant.study.batch.annotators.add(participant.user)
    if participant.phase == Phase.COMPLETE:
        participant.finished_at = timezone.now()
    participant.save()
    return participant


def screen_out(participant: Participant, reason: str) -> Participant:
    participant.phase = Phase.SCREENED_OUT
    participant.screened_out_reason = reason
    participant.finished_at = timezone.now()
    participant.save()
    _leave_batch(participant)
    return participant


def withdraw(participant: Participant) -> Participant:
    """The participant gives up (returns the study on the platform): their leases go back."""
    with transaction.atomic():
        participant = _lock(participant)
        if participant.phase not in TAKING_PART:
            return participant
        participant.phase = Phase.RETURNED
        participant.finished_at = timezone.now()
        participant.save()
        _leave_batch(participant)
    return participant


def _leave_batch(participant: Participant) -> None:
    batch = participant.study.batch
    if batch.annotators.filter(pk=participant.user_id).exists():
        batch.annotators.remove(participant.user)
        release_leases(batch, {participant.user_id}, participant.user)


def record_consent(participant: Participant, accepted: bool) -> Participant:
    with transaction.atomic():
        participant = _lock(participant)
        if participant.phase != Phase.CONSENT:
            return participant
        if not accepted:
            return screen_out(participant, "declined consent")
        participant.consented_at = timezone.now()
        return advance(participant)


def finish_guidelines(participant: Participant) -> Participant:
    with transaction.atomic():
        participant = _lock(participant)
        if participant.phase == Phase.GUIDELINES:
            advance(participant)
        return participant


@dataclass(frozen=True)
class TrainingResult:
    score: float
    passed: bool
    attempt: int
    correct: dict[int, dict[str, bool]]  # item id -> criterion -> answered as expected


def score_training(items, answers: dict[int, dict[str, str]]) -> tuple[float, dict]:
    """The share of expected answers given, over every item's expected criteria."""
    correct: dict[int, dict[str, bool]] = {}
    total = right = 0
    for item in items:
        given = answers.get(item.pk, {})
        correct[item.pk] = {}
        for criterion, want in item.expected.items():
            ok = given.get(criterion) == want
            correct[item.pk][criterion] = ok
            total += 1
            right += ok
    return (right / total if total else 1.0), correct


def grade_training(participant: Participant, answers: dict[int, dict[str, str]]) -> TrainingResult:
    """Score one training attempt; pass and go on, try again once, or be screened out.

    The answers are kept on the participant only: training is never stored as judgments.
    """
    with transaction.atomic():
        participant = _lock(participant)
        if participant.phase != Phase.TRAINING:
            raise BadLink("Your training round is over.")
        study = participant.study
        score, correct = score_training(list(study.training.all()), answers)
        participant.training_attempts += 1
        participant.training_score = score
        participant.training_answers = [
            *participant.training_answers,
            {
                "attempt": participant.training_attempts,
                "score": score,
                "answers": {str(k): v for k, v in answers.items()},
            },
        ]
        passed = score >= study.training_pass_mark
        if passed:
            advance(participant)
        elif participant.training_attempts >= TRAINING_ATTEMPTS:
            screen_out(participant, "failed training")
        else:
            participant.save()
    return TrainingResult(score, passed, participant.training_attempts, correct)


def submit_survey(participant: Participant, answers: dict[str, str]) -> Participant:
    questions = participant.study.questions
    clean = {q: (answers.get(q) or "").strip()[:MAX_ANSWER_LENGTH] for q in questions}
    missing = [q for q, a in clean.items() if not a]
    if missing:
        raise BadLink("Please answer every question.")
    with transaction.atomic():
        participant = _lock(participant)
        if participant.phase != Phase.SURVEY:
            return participant
        participant.survey_answers = clean
        return advance(participant)


PHASE_URLS = {
    Phase.CONSENT: "crowd_consent",
    Phase.GUIDELINES: "crowd_guidelines",
    Phase.TRAINING: "crowd_training",
    Phase.SURVEY: "crowd_survey",
    Phase.COMPLETE: "crowd_complete",
    Phase.SCREENED_OUT: "crowd_ended",
    Phase.RETURNED: "crowd_ended",
}


def phase_url(participant: Participant) -> str:
    """Where the participant's current phase is: the only page of the study they may see."""
    if participant.phase == Phase.JUDGING:
        return reverse("annotate", args=[participant.study.batch_id]) + "?start"
    return reverse(PHASE_URLS[participant.phase], args=[participant.study_id])


def after_judging(sender, user, batch, **kwargs) -> str | None:
    """The core's work_done receiver: a participant done judging goes on to the next phase."""
    participant = (
        Participant.objects.filter(user=user, study__batch=batch).select_related("study").first()
    )
    if participant is None:
        return None
    if participant.phase == Phase.JUDGING:
        with transaction.atomic():
            participant = _lock(participant)
            if participant.phase == Phase.JUDGING:
                advance(participant)
    return phase_url(participant)
