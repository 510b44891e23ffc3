"""The real Celery app, tuned for fault tests: `celery -A tests.celery_test_app worker`.

- FACTPAIR_TEST_STORE_DELAY=N: a task sleeps N seconds after computing, before writing its
  scores, so that a test can kill the worker in the middle of a task.
- On Redis, an unacknowledged task of a dead worker comes back after 3 s instead of an hour.
"""

from __future__ import annotations

import os
import time

import django

from annotation_site.celery import app

django.setup()

from scoring import services  # noqa: E402 - needs the app registry

if app.conf.broker_url.startswith("redis"):
    app.conf.broker_transport_options = {
        "visibility_timeout": 3,
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    }

_delay = float(os.environ.get("FACTPAIR_TEST_STORE_DELAY", "0"))
if _delay:
    _store = services.store_scores

    def slow_store(*args, **kwargs):
        time.sleep(_delay)
        return _store(*args, **kwargs)

    services.store_scores = slow_store

__all__ = ["app"]
