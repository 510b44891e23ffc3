"""The local folders the development defaults write to, made by the processes that use them.

Settings only name these paths; importing them creates nothing. `manage.py`, the WSGI and ASGI
applications, a starting Celery worker and the test suite call `prepare_local_dirs` before they
need them.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings


def local_dirs() -> list[Path]:
    """The SQLite databases' folders (the test database's too), STATIC_ROOT and the filesystem
    broker's folders, as set."""
    dirs = [Path(settings.STATIC_ROOT)]
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        for name in (database["NAME"], database.get("TEST", {}).get("NAME")):
            if name and str(name) != ":memory:":
                dirs.append(Path(name).parent)
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
            dirs.append(Path(options[key]))
    return dirs


def prepare_local_dirs() -> None:
    for path in local_dirs():
        path.mkdir(parents=True, exist_ok=True)
