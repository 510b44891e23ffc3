"""Login, logout and the home page that sends each role to its work."""

from __future__ import annotations

import pytest
from django.urls import reverse

from evaluation.models import Batch
from tests.conftest import make_user


@pytest.mark.django_db
class TestLogin:
    def test_it_logs_in_and_out(self, client, annotator):
        response = client.post(reverse("login"), {"username": "alice", "password": "pw-alice"})
        assert response.status_code == 302
        assert response.url == reverse("home")
        assert client.get(reverse("home")).status_code == 200
        assert client.post(reverse("logout")).status_code == 302
        assert client.get(reverse("home")).status_code == 302

    def test_it_refuses_a_wrong_password(self, client, annotator):
        response = client.post(reverse("login"), {"username": "alice", "password": "wrong"})
        assert response.status_code == 200
        assert b"didn't match" in response.content


@pytest.mark.django_db
class TestHome:
    def test_it_sends_anonymous_users_to_login(self, client):
        response = client.get(reverse("home"))
        assert response.status_code == 302
        assert response.url.startswith(reverse("login"))

    def test_it_refuses_post(self, client, annotator):
        client.force_login(annotator)
        assert client.post(reverse("home")).status_code == 405

    def test_it_sends_admins_to_the_batch_dashboard(self, client, admin_user):
        client.force_login(admin_user)
        assert client.get(reverse("home")).url == reverse("dashboard")

    def test_it_shows_researchers_every_batch_with_progress(self, client, researcher, batch):
        client.force_login(researcher)
        response = client.get(reverse("home"))
        assert response.status_code == 200
        assert b"MLE vs QUALS" in response.content
        assert b"0 / 12" in response.content

    def test_it_shows_annotators_only_their_open_batches(self, client, annotator, batch):
        other = Batch.objects.create(name="other", dataset="X", system_a="A", system_b="B")
        other.annotators.add(annotator)
        batch.annotators.add(annotator)
        client.force_login(annotator)
        assert b"<td>Batch" not in client.get(reverse("home")).content  # still a draft
        batch.status = Batch.Status.OPEN
        batch.save()
        content = client.get(reverse("home")).content
        assert f"<td>Batch {batch.pk}</td>".encode() in content
        assert f"<td>Batch {other.pk}</td>".encode() not in content
        assert b"MLE" not in content  # system names never reach annotators

    def test_it_tells_a_user_without_role(self, client, db):
        client.force_login(make_user("nobody", None))
        response = client.get(reverse("home"))
        assert response.status_code == 403
        assert b"No role yet" in response.content
