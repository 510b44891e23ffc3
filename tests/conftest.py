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


def check_row(i: int) -> dict:
    """A document for the check pool, with facts of several types to swap."""
    year = 2000 + i
    return {
        "id": f"check-{i}",
        "source": (
            f"Leeds City Council said on Monday that it spent £{240 + i},000 on the bridge in "
            f"{year}. Councillor Ruth Okonkwo said 310 jobs depended on it. Mr Tomasz Wren, "
            "who opposed it, said Bristol had built one for less."
        ),
        "reference": f"Leeds spent £{240 + i},000 on a bridge in {year}, a councillor said.",
        "summaries": {
            "MLE": f"Leeds City Council spent £{240 + i},000 on a bridge in {year}.",
            "QUALS": "Councillor Ruth Okonkwo said 310 jobs depended on the bridge in Leeds.",
        },
    }


def approved_pool_checks(batch, n: int) -> list:
    """`n` approved checks made from a check pool of `n` documents."""
    from evaluation import checks

    checks.add_check_pool(batch, jsonl([check_row(i) for i in range(1, n + 1)]), "pool.jsonl")
    made = checks.create_attention_checks(batch, n)
    assert len(made) == n
    for check in made:
        checks.approve_check(check)
    return made


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
