"""Every URL for every role, anonymous included: page, 403, or a redirect to login.

The table must name every URL of the site: a new view without a row here fails the test.
"""

from __future__ import annotations

import pytest
from django.urls import URLPattern, get_resolver, reverse

from evaluation import assignments as engine
from scoring.tasks import score_rouge
from tests.conftest import make_user

LOGIN = "login"
# name: (method, args key, data, {role: expected status})
ACCESS = {
    "home": ("get", None, {}, {"annotator": 200, "researcher": 200, "admin": 302}),
    "annotate": ("get", "batch", {}, {"annotator": 302, "researcher": 403, "admin": 403}),
    "guidelines": ("get", "batch", {}, {"annotator": 200, "researcher": 403, "admin": 403}),
    "assignment": ("get", "assignment", {}, {"annotator": 200, "researcher": 403, "admin": 403}),
    "submit": ("post", "assignment", {}, {"annotator": 422, "researcher": 403, "admin": 403}),
    "skip": ("post", "assignment", {}, {"annotator": 422, "researcher": 403, "admin": 403}),
    "batch_detail": ("get", "batch", {}, {"annotator": 403, "researcher": 200, "admin": 200}),
    "batch_scoring": ("get", "batch", {}, {"annotator": 403, "researcher": 286, "admin": 286}),
    "summary_quals": ("get", "summary", {}, {"annotator": 403, "researcher": 200, "admin": 200}),
    "results_overview": ("get", None, {}, {"annotator": 403, "researcher": 200, "admin": 200}),
    "batch_results": ("get", "batch", {}, {"annotator": 403, "researcher": 200, "admin": 200}),
    "batch_chart": ("get", "batch", {}, {"annotator": 403, "researcher": 200, "admin": 200}),
    "batch_export": (
        "get", "export", {}, {"annotator": 403, "researcher": 200, "admin": 200}
    ),
    "dashboard": ("get", None, {}, {"annotator": 403, "researcher": 403, "admin": 200}),
    "batch_new": ("get", None, {}, {"annotator": 403, "researcher": 403, "admin": 200}),
    "batch_manage": ("get", "batch", {}, {"annotator": 403, "researcher": 403, "admin": 200}),
    "batch_progress": ("get", "batch", {}, {"annotator": 403, "researcher": 403, "admin": 200}),
    "batch_status": (
        "post", "batch", {"action": "pause"}, {"annotator": 403, "researcher": 403, "admin": 302}
    ),
    "batch_rescore": (
        "post", "batch", {"metric": "rouge"}, {"annotator": 403, "researcher": 403, "admin": 302}
    ),
    "batch_checks": (
        "post", "batch", {"action": "create", "count": "0"},
        {"annotator": 403, "researcher": 403, "admin": 302},
    ),
    "accounts": ("get", None, {}, {"annotator": 403, "researcher": 403, "admin": 200}),
    "accounts_csv": ("get", None, {}, {"annotator": 403, "researcher": 403, "admin": 410}),
    "account_active": (
        "post", "annotator", {"active": "1"}, {"annotator": 403, "researcher": 403, "admin": 302}
    ),
}  # fmt: skip
UNCHECKED = {"login", "logout"}  # public by design
FORMS = {"batch_new", "batch_manage", "accounts"}  # GET shows the form, POST submits it


def args_for(key: str | None, objects: dict) -> list:
    if key is None:
        return []
    if key == "export":
        return [objects["batch"], "judgments", "csv"]
    return [objects[key]]


def site_url_names() -> set[str]:
    return {
        p.name
        for p in get_resolver().url_patterns
        if isinstance(p, URLPattern) and p.name and p.name not in UNCHECKED
    }


def test_the_table_covers_every_url():
    assert site_url_names() == set(ACCESS)


@pytest.fixture
def world(db, batch, monkeypatch):
    monkeypatch.setattr(score_rouge, "delay", lambda *a: None)
    users = {
        "annotator": make_user("ann", "annotator"),
        "researcher": make_user("res", "researcher"),
        "admin": make_user("adm", "admin"),
    }
    batch.status = "open"
    batch.save()
    batch.annotators.add(users["annotator"])
    assignment = engine.lease_next(users["annotator"], batch)
    objects = {
        "batch": batch.pk,
        "assignment": assignment.pk,
        "summary": assignment.comparison.summary_a_id,
        "annotator": users["annotator"].pk,
    }
    return users, objects


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(ACCESS))
@pytest.mark.parametrize("role", ["anonymous", "annotator", "researcher", "admin"])
def test_each_role_gets_what_it_should(client, world, name, role):
    users, objects = world
    method, key, data, expected = ACCESS[name]
    url = reverse(name, args=args_for(key, objects))
    if role != "anonymous":
        client.force_login(users[role])
    response = getattr(client, method)(url, data)
    if role == "anonymous":
        assert response.status_code == 302
        assert response.url.startswith(reverse(LOGIN))
    else:
        assert response.status_code == expected[role], f"{role} on {name}"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name", sorted(n for n, row in ACCESS.items() if row[0] == "get" and n not in FORMS)
)
def test_get_only_views_refuse_post(client, world, name):
    users, objects = world
    _, key, _, expected = ACCESS[name]
    role = next(r for r, code in expected.items() if code != 403)
    client.force_login(users[role])
    url = reverse(name, args=args_for(key, objects))
    assert client.post(url).status_code == 405


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(n for n, row in ACCESS.items() if row[0] == "post"))
def test_post_only_views_refuse_get(client, world, name):
    users, objects = world
    _, key, _, expected = ACCESS[name]
    role = next(r for r, code in expected.items() if code != 403)
    client.force_login(users[role])
    url = reverse(name, args=args_for(key, objects))
    assert client.get(url).status_code == 405
