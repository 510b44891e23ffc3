"""A real Celery worker process on the configured broker (filesystem; Redis in CI), not eager."""

from __future__ import annotations

import pytest

from annotation_site.celery import app
from evaluation.services import import_batch
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
        assert MetricScore.objects.filter(summary__document__batch=batch).count() == 18
