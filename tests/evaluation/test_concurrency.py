"""Many annotators at once: nothing over-assigned, nothing lost, nobody sees a comparison twice.

Runs on the configured database: PostgreSQL in CI (row locks with SKIP LOCKED), SQLite by default
(writers serialised by BEGIN IMMEDIATE).
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection

from evaluation import assignments as engine
from evaluation.models import Assignment, Batch, Comparison, Judgment
from evaluation.services import import_batch
from tests.conftest import doc_row, jsonl, make_user, settings_for

ANSWERS = {"factual": "left", "informative": "equal", "grammatical": "right"}
ANNOTATORS = 20
COMPARISONS = 30
K = 3


def work(user, batch, barrier, acknowledged, errors):
    try:
        barrier.wait()
        while (item := engine.lease_next(user, batch)) is not None:
            engine.submit_judgments(user, item.pk, ANSWERS)
            acknowledged.append((user.pk, item.comparison_id))
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
            threading.Thread(target=work, args=(u, batch, barrier, acknowledged, errors))
            for u in users
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
