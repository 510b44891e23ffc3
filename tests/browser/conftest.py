"""Real Chromium (Debian's package) driven by Playwright against a live server."""

from __future__ import annotations

import shutil

import pytest

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture(autouse=True)
def allow_orm_beside_playwright(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the test still talks to the
    # database synchronously, which is safe here because nothing else runs in that loop.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def browser(allow_orm_beside_playwright):
    # Per test, not per session: Playwright's event loop must not outlive the setting above.
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from django.db import connections
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()
        # The test's own queries ran while Playwright's event loop was running, so Django
        # (whose connections are per thread and per async context) gave them a connection of
        # their own; close it here, in that context, or PostgreSQL cannot drop the test database.
        connections.close_all()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


def log_in(page, base_url: str, username: str) -> None:
    """Log in through the form, as a person does (test users' password is "pw-" + name)."""
    page.goto(base_url + "/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw-" + username)
    page.click("main button[type=submit]")
    page.wait_for_url(lambda url: "/login/" not in url)


def open_batch_for(rows: list[dict], username: str, k: int = 1):
    """An open batch of these documents with one annotator allowed on it."""
    from evaluation.models import Batch
    from evaluation.services import import_batch
    from tests.conftest import jsonl, make_user, settings_for

    batch = import_batch(jsonl(rows), "f.jsonl", settings_for(k=k))
    Batch.objects.filter(pk=batch.pk).update(status=Batch.Status.OPEN)
    batch.annotators.add(make_user(username, "annotator"))
    return batch
