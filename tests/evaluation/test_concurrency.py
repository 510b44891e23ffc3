"""Many annotators at once: nothing over-assigned, nothing lost, nobody sees a comparison twice.

Runs on the configured database: PostgreSQL in CI (row locks with SKIP LOCKED), SQLite by default
(writers serialised by BEGIN IMMEDIATE).
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection, transaction
from django.utils import timezone

from evaluation import assignments as engine
from evaluation.criteria import CRITERIA
from evaluation.models import Assignment, Batch, Comparison, Judgment
from evaluation.services import import_batch
from tests.conftest import doc_row, jsonl, make_user, settings_for

ANSWERS = {"factual": "left", "informative": "equal", "grammatical": "right"}
ANNOTATORS = 20
COMPARISONS = 30
K = 3


def work(user, batch, barrier, acknowledged, errors, htmx: bool):
    """Judge until nothing is left: the plain-form flow (lease, then submit) or the htmx one
    (each submission leases the next comparison in the same transaction)."""
    try:
        barrier.wait()
        item = engine.lease_next(user, batch)
        while item is not None:
            if htmx:
                _, following, _ = engine.submit_and_lease_next(user, item.pk, ANSWERS)
            else:
                engine.submit_judgments(user, item.pk, ANSWERS)
                following = engine.lease_next(user, batch)
            acknowledged.append((user.pk, item.comparison_id))
            item = following
    except Exception as e:  # reported by the test, not swallowed
        errors.append(repr(e))
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
class TestConcurrentAnnotators:
    def test_it_fills_every_comparison_exactly_k_times(self):
        rows = [doc_row(i) for i in range(COMPARISONS)]
        batch = import_batch(jsonl(rows), "f.jsonl", settings_for(k=K))
        Batch.objects.filter(pk=batch.pk).update(status=Batch.Status.OPEN)
        batch.refresh_from_db()
        users = [make_user(f"crowd{i}", "annotator") for i in range(ANNOTATORS)]
        barrier = threading.Barrier(ANNOTATORS)
        acknowledged, errors = [], []
        threads = [
            threading.Thread(
                target=work, args=(u, batch, barrier, acknowledged, errors, i % 2 == 0)
            )
            for i, u in enumerate(users)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert errors == []
        assert len(acknowledged) == COMPARISONS * K
        assert len(set(acknowledged)) == len(acknowledged), "someone judged a comparison twice"
        stored = set(
            Assignment.objects.filter(status="submitted").values_list(
                "annotator_id", "comparison_id"
            )
        )
        assert stored == set(acknowledged), "an acknowledged submission is missing"
        assert Judgment.objects.count() == COMPARISONS * K * 3
        per_comparison = Counter(c for _, c in acknowledged)
        assert set(per_comparison.values()) == {K}
        for c in Comparison.objects.filter(batch=batch):
            assert (c.annotations_done, c.annotations_in_progress) == (K, 0)


@pytest.mark.django_db(transaction=True)
class TestRowLocks:
    def test_a_submission_does_not_wait_for_another_annotators_open_one(self):
        """Only the assignment's row is locked: no batch-wide queue of submissions."""
        if connection.vendor != "postgresql":
            pytest.skip("SQLite serialises all writers by design (BEGIN IMMEDIATE)")
        batch = import_batch(jsonl([doc_row(i) for i in range(4)]), "f.jsonl", settings_for(k=3))
        Batch.objects.filter(pk=batch.pk).update(status=Batch.Status.OPEN)
        batch.refresh_from_db()
        first, second = make_user("first", "annotator"), make_user("second", "annotator")
        items = {u: engine.lease_next(u, batch) for u in (first, second)}
        holding, release, outcome = threading.Event(), threading.Event(), []

        def slow_submitter():
            try:
                with transaction.atomic():  # submits, leases, and keeps its locks a while
                    engine.submit_and_lease_next(first, items[first].pk, ANSWERS)
                    holding.set()
                    release.wait(10)
            except Exception as e:
                outcome.append(repr(e))
            finally:
                connection.close()

        thread = threading.Thread(target=slow_submitter)
        thread.start()
        try:
            assert holding.wait(10)
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL lock_timeout = '2s'")
                engine.submit_and_lease_next(second, items[second].pk, ANSWERS)
        finally:
            release.set()
            thread.join(20)
        assert outcome == []
        assert Assignment.objects.filter(status="submitted").count() == 2


@pytest.mark.django_db(transaction=True)
class TestOneLiveLease:
    def test_concurrent_next_requests_of_one_annotator_give_one_lease(self):
        from django.test import Client
        from django.urls import reverse

        batch = import_batch(jsonl([doc_row(i) for i in range(12)]), "f.jsonl", settings_for(k=3))
        Batch.objects.filter(pk=batch.pk).update(status=Batch.Status.OPEN)
        user = make_user("eager", "annotator")
        batch.annotators.add(user)
        Assignment.objects.create(  # not a first visit: no guidelines page in between
            comparison=batch.comparisons.last(), annotator=user, left_system="A",
            status="skipped", served_at=timezone.now(), lease_expires_at=timezone.now(),
        )  # fmt: skip
        requests = 8
        barrier, landed, errors = threading.Barrier(requests), [], []

        def next_comparison():
            try:
                client = Client()
                client.force_login(user)
                barrier.wait()
                response = client.get(reverse("annotate", args=[batch.pk]))
                landed.append(response.status_code == 302 and response.url)
            except Exception as e:  # reported by the test, not swallowed
                errors.append(repr(e))
            finally:
                connection.close()

        threads = [threading.Thread(target=next_comparison) for _ in range(requests)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert errors == []
        leases = Assignment.objects.filter(annotator=user, status="leased")
        assert leases.count() == 1
        # every request was sent to that one comparison
        assert set(landed) == {reverse("assignment", args=[leases.get().pk])}
        in_progress = Comparison.objects.filter(batch=batch).values_list(
            "annotations_in_progress", flat=True
        )
        assert sum(in_progress) == 1

    def test_the_database_refuses_a_second_live_lease(self, batch):
        from django.db import IntegrityError

        user = make_user("hoarder", "annotator")
        first, second = batch.comparisons.all()[:2]
        now = timezone.now()
        values = {"annotator": user, "left_system": "A", "served_at": now, "lease_expires_at": now}
        Assignment.objects.create(comparison=first, **values)
        with pytest.raises(IntegrityError), transaction.atomic():
            Assignment.objects.create(comparison=second, **values)
        # a finished one beside the live lease is fine
        codes = {c.verdict_column: 0 for c in CRITERIA}
        done = {**values, "status": "submitted", "submitted_at": now, **codes}
        Assignment.objects.create(comparison=second, **done)
