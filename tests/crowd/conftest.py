"""A crowd study on an open batch: consent, guidelines, two training items, a survey."""

from __future__ import annotations

import pytest
from django.urls import reverse

from crowd.models import CrowdStudy, TrainingItem
from evaluation.models import Batch
from evaluation.services import import_batch
from tests.conftest import doc_row, jsonl, settings_for

RIGHT = {"factual": "right", "informative": "equal", "grammatical": "equal"}
WRONG = {"factual": "left", "informative": "left", "grammatical": "left"}
ALL_LEFT = {"factual": "left", "informative": "left", "grammatical": "left"}


def crowd_batch(n_docs: int = 6, k: int = 2, quota: int = 3, name: str = "crowd") -> Batch:
    batch = import_batch(
        jsonl([doc_row(i) for i in range(n_docs)]), "c.jsonl", settings_for(name, k)
    )
    Batch.objects.filter(pk=batch.pk).update(
        status=Batch.Status.OPEN, items_per_annotator=quota, guidelines="Read both summaries."
    )
    batch.refresh_from_db()
    return batch


def make_study(batch: Batch, **fields) -> CrowdStudy:
    defaults = {
        "enabled": True,
        "consent_text": "You agree to take part.",
        "survey_questions": "Your first language?\nHow often do you read the news?",
        "training_pass_mark": 1.0,
        "reward": "2.00",
    }
    study = CrowdStudy.objects.create(batch=batch, **(defaults | fields))
    for i in range(2):
        TrainingItem.objects.create(
            study=study,
            position=i,
            source=f"Practice source {i}: the council met on Tuesday.",
            left=f"The council met on Monday {i}.",
            right=f"The council met on Tuesday {i}.",
            expected={"factual": "right"},
            explanation=f"Explanation {i}: the source says Tuesday.",
        )
    return study


def link(study: CrowdStudy, platform: str = "prolific", pid: str = "PID1", **extra) -> str:
    params = {
        "prolific": {"PROLIFIC_PID": pid, "STUDY_ID": "S1", "SESSION_ID": "SE1"},
        "mturk": {"workerId": pid, "hitId": "H1", "assignmentId": "A1"},
        "generic": {"participant": pid},
    }[platform]
    query = "&".join(f"{k}={v}" for k, v in ({"key": study.token} | params | extra).items())
    return reverse("crowd_join", args=[study.pk, platform]) + "?" + query


def training_post(study: CrowdStudy, answers: dict[str, str]) -> dict:
    return {
        f"t{item.pk}-{criterion}": value
        for item in study.training.all()
        for criterion, value in answers.items()
    }


@pytest.fixture
def study(db) -> CrowdStudy:
    return make_study(crowd_batch())
