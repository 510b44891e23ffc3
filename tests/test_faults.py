"""Faults: the broker is down while a batch is imported.

The import must commit and answer normally (scoring is enqueued after commit, and a failed
enqueue must neither raise to the caller nor roll anything back); once the broker is back, the
periodic sweeper `resume_stalled_jobs` re-sends every summary that was never scored.

The web side of faults (PostgreSQL restarted under annotators) is a script, not a test:
`bench/faults_postgres_restart.py`.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from datetime import timedelta

import pytest
from amqp.exceptions import ChannelError
from django.utils import timezone

from annotation_site.celery import app
from evaluation.models import Batch, Comparison, Document, Summary
from evaluation.services import import_batch
from scoring import services
from scoring.metrics import FAMILIES
from scoring.models import ScoringJob
from tests.conftest import doc_row, jsonl, settings_for

CLOSED_PORT = "redis://127.0.0.1:1/0"  # nothing listens on port 1: connection refused at once
DOCUMENTS = 5


def use_broker(url: str | None) -> None:
    """Point the running app's producers at another broker (None: the configured one).

    `broker_url` cannot be overridden in-process when CELERY_BROKER_URL is set (Celery reads the
    environment variable first), but the write URL is only taken from the environment when
    CELERY_BROKER_WRITE_URL is set; the connection pools are cached, so they are dropped too.
    """
    app.conf.broker_write_url = url
    app._pool = None  # not closed: kombu keeps pools by URL and would hand the closed one back
    app.amqp._producer_pool = None


@contextmanager
def broker_at(url: str):
    use_broker(url)
    try:
        yield
    finally:
        use_broker(None)


def queued_messages(queue: str = "default") -> int:
    with app.connection_for_write() as conn:
        try:
            return conn.default_channel.queue_declare(queue, passive=True).message_count
        except ChannelError:  # Redis: nothing was ever sent to it
            return 0


@pytest.fixture
def empty_queue():
    app.control.purge()  # messages of earlier runs point at rows that no longer exist
    yield
    app.control.purge()


@pytest.mark.django_db(transaction=True)
class TestBrokerDownDuringImport:
    def test_it_commits_the_batch_and_answers_without_waiting_long(self):
        started = time.monotonic()
        with broker_at(CLOSED_PORT):
            batch = import_batch(
                jsonl([doc_row(i) for i in range(DOCUMENTS)]), "f.jsonl", settings_for()
            )
        assert time.monotonic() - started < 30, "the import waited on the broker too long"
        assert Batch.objects.filter(pk=batch.pk).exists()
        assert Document.objects.filter(batch=batch).count() == DOCUMENTS
        assert Summary.objects.filter(document__batch=batch).count() == 2 * DOCUMENTS
        assert Comparison.objects.filter(batch=batch).count() == DOCUMENTS
        job = ScoringJob.objects.get(batch=batch, kind="rouge")
        assert (job.status, job.total, job.done) == ("running", 2 * DOCUMENTS, 0)

    def test_it_resends_every_summary_once_the_broker_is_back(self, empty_queue):
        with broker_at(CLOSED_PORT):
            try:
                batch = import_batch(
                    jsonl([doc_row(i) for i in range(DOCUMENTS)]), "f.jsonl", settings_for()
                )
            except Exception:  # the first test says whether this may raise; here: what follows
                batch = Batch.objects.get(name="study")
        assert queued_messages() == 0
        later = timezone.now() + services.STALLED_AFTER + timedelta(minutes=1)
        resent = services.resume_stalled_jobs(now=later)
        # every summary once for each family that can run (ROUGE and fragments: no QUALS model)
        runnable = [f for f in FAMILIES if not f.unavailable()]
        assert {f.key for f in runnable} == {"rouge", "fragments"}
        assert resent == 2 * DOCUMENTS * len(runnable)
        assert queued_messages() == 2 * DOCUMENTS * len(runnable)
        job = ScoringJob.objects.get(batch=batch, kind="rouge")
        assert sorted(services.pending_summaries(job)) == sorted(
            Summary.objects.filter(document__batch=batch).values_list("pk", flat=True)
        )
