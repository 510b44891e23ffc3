"""The per-annotator quota (items_per_annotator) and the work-done seam for upper apps."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from evaluation import assignments as engine
from evaluation.models import Assignment, Batch
from evaluation.services import import_batch
from evaluation.signals import work_done
from tests.conftest import doc_row, jsonl, make_user, settings_for

ALL_LEFT = {"factual": "left", "informative": "left", "grammatical": "left"}


@pytest.fixture
def open_batch(db):
    batch = import_batch(jsonl([doc_row(i) for i in range(6)]), "q.jsonl", settings_for(k=2))
    Batch.objects.filter(pk=batch.pk).update(status=Batch.Status.OPEN)
    batch.refresh_from_db()
    return batch


def judge_all(user, batch) -> int:
    count = 0
    while (item := engine.lease_next(user, batch)) is not None:
        engine.submit_judgments(user, item.pk, ALL_LEFT)
        count += 1
    return count


@pytest.mark.django_db
class TestQuota:
    def test_it_stops_an_annotator_at_the_quota(self, open_batch):
        open_batch.items_per_annotator = 4
        open_batch.save()
        user = make_user("q1", "annotator")
        assert judge_all(user, open_batch) == 4
        assert engine.lease_next(user, open_batch) is None

    def test_it_counts_skips_as_served(self, open_batch):
        open_batch.items_per_annotator = 2
        open_batch.save()
        user = make_user("q1", "annotator")
        first = engine.lease_next(user, open_batch)
        engine.skip_assignment(user, first.pk, "cannot read it")
        second = engine.lease_next(user, open_batch)
        engine.submit_judgments(user, second.pk, ALL_LEFT)
        assert engine.lease_next(user, open_batch) is None
        assert Assignment.objects.filter(annotator=user).count() == 2

    def test_zero_means_no_limit(self, open_batch):
        user = make_user("q1", "annotator")
        assert judge_all(user, open_batch) == 6

    def test_it_leaves_the_rest_to_others(self, open_batch):
        open_batch.items_per_annotator = 3
        open_batch.save()
        a, b = make_user("q1", "annotator"), make_user("q2", "annotator")
        assert judge_all(a, open_batch) == 3
        assert judge_all(b, open_batch) == 3
        assert judge_all(make_user("q3", "annotator"), open_batch) == 3

    def test_it_costs_no_query_more(self, open_batch):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        def queries_for_first_lease(name: str) -> int:
            user = make_user(name, "annotator")
            with CaptureQueriesContext(connection) as ctx:
                engine.lease_next(user, open_batch)
            return len(ctx.captured_queries)

        without = queries_for_first_lease("q1")
        open_batch.items_per_annotator = 5
        open_batch.save()
        assert queries_for_first_lease("q2") == without

    def test_the_model_refuses_a_negative_or_huge_quota(self, open_batch):
        open_batch.items_per_annotator = 10**6
        with pytest.raises(ValidationError):
            open_batch.full_clean()
        with pytest.raises(IntegrityError), transaction.atomic():
            Batch.objects.filter(pk=open_batch.pk).update(items_per_annotator=10**6)


@pytest.fixture
def onward_receiver():
    calls = []

    def receiver(sender, user, batch, **kwargs):
        calls.append((user.username, batch.pk))
        return "/somewhere-else/" if user.username.startswith("crowd") else None

    work_done.connect(receiver)
    yield calls
    work_done.disconnect(receiver)


@pytest.mark.django_db
class TestWorkDoneSeam:
    def test_it_sends_a_finished_annotator_where_a_receiver_says(
        self, client, open_batch, onward_receiver
    ):
        open_batch.items_per_annotator = 1
        open_batch.save()
        user = make_user("crowd1", "annotator")
        open_batch.annotators.add(user)
        client.force_login(user)
        first = client.get(reverse("annotate", args=[open_batch.pk]) + "?start")
        item = Assignment.objects.get(annotator=user)
        assert first.url == reverse("assignment", args=[item.pk])
        response = client.post(reverse("submit", args=[item.pk]), ALL_LEFT, HTTP_HX_REQUEST="true")
        assert response.status_code == 204
        assert response["HX-Redirect"] == "/somewhere-else/"
        response = client.get(reverse("annotate", args=[open_batch.pk]) + "?start")
        assert response.status_code == 302 and response.url == "/somewhere-else/"
        assert onward_receiver == [("crowd1", open_batch.pk)] * 2

    def test_without_a_url_the_usual_finished_page_shows(self, client, open_batch, onward_receiver):
        open_batch.items_per_annotator = 1
        open_batch.save()
        user = make_user("plain", "annotator")
        open_batch.annotators.add(user)
        client.force_login(user)
        judge_all(user, open_batch)
        response = client.get(reverse("annotate", args=[open_batch.pk]) + "?start")
        assert response.status_code == 200
        assert b"All done" in response.content

    def test_a_paused_batch_sends_nobody_on(self, client, open_batch, onward_receiver):
        user = make_user("crowd1", "annotator")
        open_batch.annotators.add(user)
        Batch.objects.filter(pk=open_batch.pk).update(status=Batch.Status.PAUSED)
        client.force_login(user)
        response = client.get(reverse("annotate", args=[open_batch.pk]) + "?start")
        assert response.status_code == 200
        assert onward_receiver == []
