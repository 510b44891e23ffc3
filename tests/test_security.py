"""Security behaviour a study relies on: CSP, CSRF, login rate limiting, a clear 503."""

from __future__ import annotations

import pytest
from django.db import OperationalError
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.urls import reverse

from annotation_site.middleware import DatabaseUnavailableMiddleware
from evaluation import assignments as engine
from tests.test_settings import PRODUCTION, manage


@pytest.mark.django_db
class TestHeaders:
    def test_every_page_sends_a_content_security_policy(self, client):
        response = client.get(reverse("login"))
        csp = response["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-eval" not in csp
        assert response["X-Frame-Options"] == "DENY"

    def test_production_cookies_are_secure(self):
        code = (
            "from django.conf import settings as s; "
            "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT)"
        )
        result = manage("shell", "--no-imports", "-c", code, **PRODUCTION)
        assert result.stdout.split() == ["True", "True", "True"]


@pytest.mark.django_db
class TestCsrf:
    def test_a_submission_without_the_token_is_refused(self, annotator, batch):
        batch.status = "open"
        batch.save()
        item = engine.lease_next(annotator, batch)
        client = Client(enforce_csrf_checks=True)
        client.force_login(annotator)
        answers = {"factual": "left", "informative": "left", "grammatical": "left"}
        assert client.post(reverse("submit", args=[item.pk]), answers).status_code == 403
        assert not item.judgments.exists()


@pytest.mark.django_db
class TestLoginRateLimit:
    def test_it_locks_a_username_after_five_failures(self, client, annotator):
        for _ in range(5):
            client.post(reverse("login"), {"username": "alice", "password": "wrong"})
        locked = client.post(reverse("login"), {"username": "alice", "password": "pw-alice"})
        assert locked.status_code == 429
        assert b"Too many failed logins" in locked.content
        assert "_auth_user_id" not in client.session

    def test_other_users_can_still_log_in(self, client, annotator, researcher):
        for _ in range(5):
            client.post(reverse("login"), {"username": "alice", "password": "wrong"})
        ok = client.post(reverse("login"), {"username": "rosa", "password": "pw-rosa"})
        assert ok.status_code == 302


@pytest.mark.django_db
class TestLoginBehindProxies:
    def fail_five_times(self, client, forwarded: str) -> None:
        for _ in range(5):
            client.post(
                reverse("login"),
                {"username": "alice", "password": "wrong"},
                HTTP_X_FORWARDED_FOR=forwarded,
            )

    def log_in(self, client, forwarded: str) -> int:
        form = {"username": "alice", "password": "pw-alice"}
        return client.post(reverse("login"), form, HTTP_X_FORWARDED_FOR=forwarded).status_code

    def test_it_locks_out_only_the_forwarded_client(self, client, annotator, settings):
        settings.TRUSTED_PROXY_COUNT = 1
        self.fail_five_times(client, "203.0.113.5")
        assert self.log_in(Client(), "203.0.113.5") == 429
        assert self.log_in(Client(), "198.51.100.7") == 302

    def test_it_reads_the_address_the_trusted_proxy_appended(self, client, annotator, settings):
        settings.TRUSTED_PROXY_COUNT = 1
        self.fail_five_times(client, "10.9.9.9, 203.0.113.5")  # the left one is forgeable
        assert self.log_in(Client(), "10.1.1.1, 203.0.113.5") == 429

    def test_without_a_trusted_proxy_a_forged_header_changes_nothing(self, client, annotator):
        self.fail_five_times(client, "203.0.113.5")
        assert self.log_in(Client(), "198.51.100.7") == 429


class TestDatabaseUnavailable:
    def test_a_lost_connection_answers_503_with_retry_after(self):
        middleware = DatabaseUnavailableMiddleware(lambda request: HttpResponse())
        request = RequestFactory().post("/judge/1/submit/")
        error = OperationalError("server closed the connection unexpectedly")
        response = middleware.process_exception(request, error)
        assert response.status_code == 503
        assert response["Retry-After"] == "5"
        assert b"Please try again" in response.content

    def test_other_database_errors_stay_errors(self):
        middleware = DatabaseUnavailableMiddleware(lambda request: HttpResponse())
        request = RequestFactory().get("/")
        error = OperationalError("no such column: foo")
        assert middleware.process_exception(request, error) is None
