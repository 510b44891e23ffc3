"""Fifty participants arriving through links at the same moment, on PostgreSQL: no duplicate
accounts, nobody admitted past the batch's places, no over-filled comparison, one lease each."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client

from crowd.models import Participant
from evaluation.models import Assignment, Comparison
from tests.crowd.conftest import crowd_batch, link, make_study

ARRIVALS = 50


def arrive(study, pid: str, barrier, results: list, errors: list) -> None:
    try:
        client = Client()
        barrier.wait()
        response = client.get(link(study, pid=pid))
        if response.status_code != 302:
            results.append((pid, "refused", response.content))
            return
        judging = client.get(response.url)
        results.append((pid, "admitted", judging.status_code))
    except Exception as e:  # reported by the test, not swallowed
        errors.append(repr(e))
    finally:
        connection.close()


def crowd_at_once(study, pids: list[str]) -> tuple[list, list]:
    barrier = threading.Barrier(len(pids))
    results, errors = [], []
    threads = [
        threading.Thread(target=arrive, args=(study, pid, barrier, results, errors)) for pid in pids
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return results, errors


@pytest.fixture
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises all writers by design (BEGIN IMMEDIATE); run on PostgreSQL")


@pytest.mark.django_db(transaction=True)
class TestArrivalsAtOnce:
    def test_fifty_arrivals_fill_the_places_and_no_more(self, postgres_only):
        # 10 comparisons x K=3 / quota 2: 15 places for 50 arrivals.
        study = make_study(
            crowd_batch(n_docs=10, k=3, quota=2),
            consent_text="", survey_questions="", show_guidelines=False,
        )  # fmt: skip
        study.training.all().delete()
        results, errors = crowd_at_once(study, [f"P{i}" for i in range(ARRIVALS)])
        assert errors == []
        admitted = [r for r in results if r[1] == "admitted"]
        refused = [r for r in results if r[1] == "refused"]
        assert len(admitted) == 15 and len(refused) == 35
        assert all(b"study is full" in r[2] for r in refused)
        assert Participant.objects.count() == 15
        assert User.objects.filter(username__startswith="p-").count() == 15
        leases = Counter(
            Assignment.objects.filter(status="leased").values_list("annotator_id", flat=True)
        )
        assert len(leases) == 15 and set(leases.values()) == {1}
        for c in Comparison.objects.filter(batch=study.batch):
            assert c.annotations_in_progress + c.annotations_done <= c.annotations_needed

    def test_one_id_arriving_fifty_times_gets_one_account(self, postgres_only):
        study = make_study(crowd_batch(), consent_text="", survey_questions="")
        study.training.all().delete()
        results, errors = crowd_at_once(study, ["SAME"] * ARRIVALS)
        assert errors == []
        assert {r[1] for r in results} == {"admitted"}
        assert Participant.objects.count() == 1
        assert User.objects.filter(username__startswith="p-").count() == 1
