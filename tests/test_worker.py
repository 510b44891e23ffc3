"""A real Celery worker process on the configured broker (filesystem; Redis in CI), not eager."""

from __future__ import annotations

import signal
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from annotation_site.celery import app
from evaluation.services import import_batch
from scoring import services
from scoring.models import MetricScore, ScoringJob
from tests.conftest import doc_row, jsonl, settings_for
from tests.worker import start_worker, stop_worker, wait_for


@pytest.fixture
def worker(tmp_path):
    app.control.purge()  # messages of an earlier run point at rows that no longer exist
    process = start_worker(log=tmp_path / "worker.log")
    yield process
    stop_worker(process)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
class TestRealWorker:
    def test_it_scores_an_imported_batch_after_commit(self, worker, tmp_path):
        batch = import_batch(jsonl([doc_row(i) for i in range(3)]), "f.jsonl", settings_for())
        job = ScoringJob.objects.get(batch=batch, kind="rouge")
        assert job.total == 6
        finished = wait_for(lambda: ScoringJob.objects.get(pk=job.pk).status != "running")
        log = (tmp_path / "worker.log").read_text(errors="replace")
        assert finished, f"scoring did not finish; worker log:\n{log[-3000:]}"
        job.refresh_from_db()
        assert (job.status, job.done, job.failed) == ("done", 6, 0)
        # every family that can run here: ROUGE (3 metrics) and fragments (2), no QUALS model
        jobs = ScoringJob.objects.filter(batch=batch)
        assert sorted(jobs.values_list("kind", flat=True)) == ["fragments", "rouge"]
        everything = wait_for(lambda: not jobs.filter(status="running").exists())
        assert everything, f"scoring did not finish; worker log:\n{log[-3000:]}"
        assert MetricScore.objects.filter(summary__document__batch=batch).count() == 6 * (3 + 2)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
class TestKilledWorker:
    def test_it_leaves_no_partial_score_and_a_retry_completes_the_job(self, tmp_path):
        app.control.purge()
        slow_log = tmp_path / "slow.log"
        slow = start_worker(
            log=slow_log, app="tests.celery_test_app", env={"FACTPAIR_TEST_STORE_DELAY": "60"}
        )
        try:
            batch = import_batch(jsonl([doc_row(1)]), "f.jsonl", settings_for())
            job = ScoringJob.objects.get(batch=batch, kind="rouge")  # the first task sent
            started = wait_for(lambda: "received" in slow_log.read_text(errors="replace"), 60)
            assert started, slow_log.read_text(errors="replace")[-3000:]
            time.sleep(1)  # inside the task now: computed, not yet written
        finally:
            stop_worker(slow, signal.SIGKILL)
        assert not MetricScore.objects.filter(summary__document__batch=batch).exists()
        job.refresh_from_db()
        assert (job.done, job.status) == (0, "running")

        log = tmp_path / "recovery.log"
        recovery = start_worker(log=log, app="tests.celery_test_app")
        try:
            if settings.CELERY_BROKER_URL.startswith("filesystem"):
                # This transport deletes a message when it is read: there is nothing to
                # redeliver, so the periodic sweeper re-sends what the stalled job misses.
                later = timezone.now() + timedelta(minutes=11)
                assert services.resume_stalled_jobs(now=later) >= 1
            jobs = ScoringJob.objects.filter(batch=batch)
            done = wait_for(lambda: not jobs.exclude(status="done").exists(), 90)
            assert done, log.read_text(errors="replace")[-3000:]
        finally:
            stop_worker(recovery)
        job.refresh_from_db()
        assert (job.done, job.failed) == (2, 0)
        # 2 summaries x (3 ROUGE metrics + 2 fragment metrics), each written once
        assert MetricScore.objects.filter(summary__document__batch=batch).count() == 2 * (3 + 2)
