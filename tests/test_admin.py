"""The Django admin shows study data and never changes it: no add, no change, no delete."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.forms.models import model_to_dict
from django.urls import reverse

from evaluation import assignments as engine
from evaluation.models import AuditEvent, Batch, Comparison
from scoring.models import MetricScore, ScoringJob

READ_ONLY = [
    "evaluation.Batch",
    "evaluation.Document",
    "evaluation.Summary",
    "evaluation.Comparison",
    "evaluation.Assignment",
    "evaluation.Judgment",
    "evaluation.AuditEvent",
    "scoring.MetricScore",
    "scoring.ScoringJob",
]


@pytest.fixture
def superuser_client(client, db):
    client.force_login(User.objects.create_superuser("root", "root@example.org", "pw-root"))
    return client


@pytest.fixture
def study(batch, annotator):
    """One row of every read-only model."""
    Batch.objects.filter(pk=batch.pk).update(status=Batch.Status.OPEN)
    batch.refresh_from_db()
    item = engine.lease_next(annotator, batch)
    answers = {"factual": "left", "informative": "left", "grammatical": "equal"}
    engine.submit_judgments(annotator, item.pk, answers)
    summary = batch.documents.first().summaries.first()
    ScoringJob.objects.create(batch=batch, kind="rouge", total=1)
    MetricScore.objects.create(summary=summary, metric="rouge1", version="t", status="ok", value=1)
    return batch


def snapshot(model) -> list[dict]:
    return [model_to_dict(row) for row in model.objects.order_by("pk")]


@pytest.mark.django_db
@pytest.mark.parametrize("label", READ_ONLY)
class TestReadOnlyAdmin:
    def url(self, label: str, view: str, *args) -> str:
        app, model = label.lower().split(".")
        return reverse(f"admin:{app}_{model}_{view}", args=args)

    def test_it_shows_the_rows(self, superuser_client, study, label):
        model = apps.get_model(label)
        pk = model.objects.first().pk
        assert superuser_client.get(self.url(label, "changelist")).status_code == 200
        assert superuser_client.get(self.url(label, "change", pk)).status_code == 200

    def test_it_refuses_add_change_and_delete(self, superuser_client, study, label):
        model = apps.get_model(label)
        before, count = snapshot(model), model.objects.count()
        pk = model.objects.first().pk
        assert superuser_client.post(self.url(label, "add"), {}).status_code == 403
        assert superuser_client.post(self.url(label, "change", pk), {}).status_code == 403
        delete = superuser_client.post(self.url(label, "delete", pk), {"post": "yes"})
        assert delete.status_code == 403
        bulk = superuser_client.post(
            self.url(label, "changelist"), {"action": "delete_selected", "_selected_action": [pk]}
        )
        assert bulk.status_code in (200, 302)  # no such action: nothing happens
        assert model.objects.count() == count and snapshot(model) == before


def test_the_study_fixture_covers_every_model(study):
    assert Comparison.objects.exists() and AuditEvent.objects.exists()
