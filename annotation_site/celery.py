from __future__ import annotations

import os

from celery import Celery
from celery.signals import celeryd_init

from .localdirs import prepare_local_dirs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotation_site.settings")

app = Celery("annotation_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@celeryd_init.connect
def _prepare_local_dirs(**kwargs) -> None:
    """A starting worker makes the filesystem broker's folders (settings only name them)."""
    prepare_local_dirs()
