"""Shared users and data: one fixture module, named users per role."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User

from annotation_site.localdirs import prepare_local_dirs
from evaluation.models import Role
from evaluation.roles import ensure_role_groups
from evaluation.services import BatchSettings, import_batch

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
prepare_local_dirs()  # the SQLite test database and the filesystem broker live under var/


def make_user(username: str, role: str | None) -> User:
    user = User.objects.create_user(username=username, password="pw-" + username)
    if role:
        ensure_role_groups()
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def annotator(db) -> User:
    return make_user("alice", Role.ANNOTATOR)


@pytest.fixture
def researcher(db) -> User:
    return make_user("rosa", Role.RESEARCHER)


@pytest.fixture
def admin_user(db) -> User:
    user = make_user("ada", Role.ADMIN)
    user.is_staff = True
    user.save()
    return user


def jsonl(rows: list[dict]) -> bytes:
    return "\n".join(json.dumps(r) for r in rows).encode("utf-8")


def doc_row(i: int, **overrides) -> dict:
    row = {
        "id": f"doc-{i}",
        "source": f"Source text number {i}. The mayor of Town{i} opened a bridge on Monday.",
        "reference": f"Town{i}'s mayor opened a bridge.",
        "summaries": {
            "MLE": f"The mayor of Town{i} closed a bridge.",
            "QUALS": f"The mayor of Town{i} opened a bridge.",
            "OTHER": "An unused third system.",
        },
    }
    row.update(overrides)
    return row


def settings_for(name: str = "study", k: int = 3) -> BatchSettings:
    return BatchSettings(
        name=name, dataset="XSUM", system_a="MLE", system_b="QUALS", annotators_per_item=k
    )


@pytest.fixture
def batch(db):
    return import_batch(jsonl([doc_row(i) for i in range(1, 5)]), "b.jsonl", settings_for())


@pytest.fixture
def sent_tasks(monkeypatch) -> list[tuple]:
    """Scoring tasks as they are sent, (family key, summary id, job id), instead of a broker."""
    from celery import current_app

    from scoring.metrics import FAMILIES

    sent: list[tuple] = []
    for family in FAMILIES:
        task = current_app.tasks[family.task]
        monkeypatch.setattr(task, "delay", lambda *args, key=family.key: sent.append((key, *args)))
    return sent


@pytest.fixture
def frank_file() -> Path:
    path = SHARED_DATA / "frank" / "frank_seed_articles.jsonl"
    if not path.exists():
        pytest.skip(f"real FRANK data not available at {path} (../shared is absent)")
    return path


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # The default hasher takes ~0.3 s a password by design; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True, scope="session")
def close_connections_after_each_request():
    # Live-server and worker threads open their own connections; persistent ones would outlive
    # the tests and keep PostgreSQL from dropping the test database.
    from django.db import connections

    connections.settings["default"]["CONN_MAX_AGE"] = 0
