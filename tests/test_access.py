"""Every URL for every role, anonymous included: page, 403, or a redirect to login.

The table must name every URL of the site: a new view without a row here fails the test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from crowd.models import CrowdStudy, Participant
from evaluation import assignments as engine
from evaluation.checks import CHECK_CAPACITY, CHECK_SYSTEM
from evaluation.models import Comparison, Summary
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
    "revise": ("get", "assignment", {}, {"annotator": 422, "researcher": 403, "admin": 403}),
    "batch_detail": ("get", "batch", {}, {"annotator": 403, "researcher": 200, "admin": 200}),
    "batch_scoring": ("get", "batch", {}, {"annotator": 403, "researcher": 286, "admin": 286}),
    "summary_quals": ("get", "summary", {}, {"annotator": 403, "researcher": 200, "admin": 200}),
    "results_overview": ("get", None, {}, {"annotator": 403, "researcher": 200, "admin": 200}),
    "batch_results": ("get", "batch", {}, {"annotator": 403, "researcher": 200, "admin": 200}),
    "batch_chart": ("get", "chart", {}, {"annotator": 403, "researcher": 200, "admin": 200}),
    "results_chart": (
        "get", "pooled_chart", {}, {"annotator": 403, "researcher": 200, "admin": 200}
    ),
    "results_export": (
        "get", "pooled_export", {}, {"annotator": 403, "researcher": 200, "admin": 200}
    ),
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
    "batch_check_review": (
        "get", "batch", {}, {"annotator": 403, "researcher": 403, "admin": 200}
    ),
    "batch_check_decide": (
        "post", "check", {"action": "approve"},
        {"annotator": 403, "researcher": 403, "admin": 302},
    ),
    "batch_check_pool": (
        "post", "batch", {}, {"annotator": 403, "researcher": 403, "admin": 422}
    ),
    "accounts": ("get", None, {}, {"annotator": 403, "researcher": 403, "admin": 200}),
    "accounts_csv": ("get", None, {}, {"annotator": 403, "researcher": 403, "admin": 410}),
    "account_active": (
        "post", "annotator", {"active": "1"}, {"annotator": 403, "researcher": 403, "admin": 302}
    ),
    # The platform link is public: without the study's key it is not found, for anybody.
    "crowd_join": (
        "get", "join", {"PROLIFIC_PID": "x"},
        {"anonymous": 404, "annotator": 404, "researcher": 404, "admin": 404},
    ),
    # A participant's phase pages: only the study's participants, each sent to their current
    # phase (consent here); 403 for other users.
    "crowd_consent": (
        "get", "study", {},
        {"annotator": 403, "researcher": 403, "admin": 403, "participant": 200},
    ),
    "crowd_guidelines": (
        "get", "study", {},
        {"annotator": 403, "researcher": 403, "admin": 403, "participant": 302},
    ),
    "crowd_training": (
        "get", "study", {},
        {"annotator": 403, "researcher": 403, "admin": 403, "participant": 302},
    ),
    "crowd_survey": (
        "get", "study", {},
        {"annotator": 403, "researcher": 403, "admin": 403, "participant": 302},
    ),
    "crowd_complete": (
        "get", "study", {},
        {"annotator": 403, "researcher": 403, "admin": 403, "participant": 302},
    ),
    "crowd_ended": (
        "get", "study", {},
        {"annotator": 403, "researcher": 403, "admin": 403, "participant": 302},
    ),
    "crowd_withdraw": (
        "get", "study", {},
        {"annotator": 403, "researcher": 403, "admin": 403, "participant": 200},
    ),
    "crowd_study": ("get", "batch", {}, {"annotator": 403, "researcher": 403, "admin": 200}),
    "crowd_training_upload": (
        "post", "batch", {}, {"annotator": 403, "researcher": 403, "admin": 422}
    ),
    "crowd_participants": ("get", "batch", {}, {"annotator": 403, "researcher": 403, "admin": 200}),
    "crowd_flag": (
        "post", "flag", {"flagged": "1"}, {"annotator": 403, "researcher": 403, "admin": 302}
    ),
    "crowd_export": (
        "get", "crowd_export", {}, {"annotator": 403, "researcher": 200, "admin": 200}
    ),
}  # fmt: skip
UNCHECKED = {"login", "logout"}  # public by design
FORMS = {
    "batch_new", "batch_manage", "accounts", "crowd_consent", "crowd_guidelines",
    "crowd_training", "crowd_survey", "crowd_study", "crowd_withdraw", "revise",
}  # fmt: skip  # GET shows the form, POST submits it


def args_for(key: str | None, objects: dict) -> list:
    if key is None:
        return []
    if key == "export":
        return [objects["batch"], "judgments", "csv"]
    if key == "chart":
        return [objects["batch"], "png"]
    if key == "pooled_chart":
        return ["svg"]
    if key == "pooled_export":
        return ["table", "csv"]
    if key == "crowd_export":
        return [objects["batch"], "csv"]
    if key == "join":
        return [objects["study"], "prolific"]
    if key == "flag":
        return [objects["batch"], objects["participant"]]
    if key == "check":
        return [objects["batch"], objects["check"]]
    return [objects[key]]


def _names(patterns) -> Iterator[str]:
    """Every named URL, through include()s; not the Django admin's (its own namespace)."""
    for p in patterns:
        if isinstance(p, URLPattern) and p.name:
            yield p.name
        elif isinstance(p, URLResolver) and p.namespace is None:
            yield from _names(p.url_patterns)


def site_url_names() -> set[str]:
    return set(_names(get_resolver().url_patterns)) - UNCHECKED


def test_the_table_covers_every_url():
    assert site_url_names() == set(ACCESS)


def pending_check(batch) -> Comparison:
    """A generated check waiting for approval, on the batch's last document."""
    comparison = batch.comparisons.order_by("id").last()
    changed = Summary.objects.create(
        document=comparison.document, system=CHECK_SYSTEM, text="A changed summary."
    )
    return Comparison.objects.create(
        batch=batch,
        document=comparison.document,
        summary_a=comparison.summary_a,
        summary_b=changed,
        annotations_needed=CHECK_CAPACITY,
        is_check=True,
        check_state="pending",
        expected={"factual": "A"},
    )


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
    study = CrowdStudy.objects.create(batch=batch, enabled=True)
    users["participant"] = make_user("p-someone", "annotator")
    participant = Participant.objects.create(
        user=users["participant"], study=study, platform="prolific", platform_id="X"
    )
    check = pending_check(batch)
    objects = {
        "check": check.pk,
        "study": study.pk,
        "participant": participant.pk,
        "batch": batch.pk,
        "assignment": assignment.pk,
        "summary": assignment.comparison.summary_a_id,
        "annotator": users["annotator"].pk,
    }
    return users, objects


ROLES = ["anonymous", "annotator", "researcher", "admin"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name, role",
    [(n, r) for n in sorted(ACCESS) for r in ROLES + sorted(set(ACCESS[n][3]) - set(ROLES))],
)
def test_each_role_gets_what_it_should(client, world, name, role):
    users, objects = world
    method, key, data, expected = ACCESS[name]
    url = reverse(name, args=args_for(key, objects))
    if role != "anonymous":
        client.force_login(users[role])
    response = getattr(client, method)(url, data)
    if role in expected:
        assert response.status_code == expected[role], f"{role} on {name}"
    elif role == "anonymous":
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
    role = next(r for r, code in expected.items() if code != 403 and r in users)
    client.force_login(users[role])
    url = reverse(name, args=args_for(key, objects))
    assert client.post(url).status_code == 405


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(n for n, row in ACCESS.items() if row[0] == "post"))
def test_post_only_views_refuse_get(client, world, name):
    users, objects = world
    _, key, _, expected = ACCESS[name]
    role = next(r for r, code in expected.items() if code != 403 and r in users)
    client.force_login(users[role])
    url = reverse(name, args=args_for(key, objects))
    assert client.get(url).status_code == 405
