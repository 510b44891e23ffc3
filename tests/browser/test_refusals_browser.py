"""A refused settings form on the batch page keeps the page (header, everything around the
form) and shows the reason beside the field, in development mode (django-htmx's debug script,
which replaces the whole page on a 400) as in production."""

from __future__ import annotations

import pytest

from evaluation.models import Batch
from scoring.tasks import score_rouge
from tests.browser.conftest import log_in
from tests.browser.test_accessibility_browser import AXE, axe_violations
from tests.conftest import doc_row, jsonl, make_user, settings_for


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
class TestRefusedSettings:
    @pytest.mark.parametrize("debug", [True, False], ids=["development", "production"])
    def test_the_page_stays_and_the_reason_is_beside_the_field(
        self, page, live_server, settings, monkeypatch, debug
    ):
        from evaluation.services import import_batch

        settings.DEBUG = debug
        monkeypatch.setattr(score_rouge, "delay", lambda *a: None)
        batch = import_batch(jsonl([doc_row(1), doc_row(2)]), "f.jsonl", settings_for())
        make_user("chief", "admin")
        log_in(page, live_server.url, "chief")
        page.goto(f"{live_server.url}/manage/batches/{batch.pk}/")
        page.wait_for_load_state("load")
        debug_script = page.locator("script[src*='django-htmx.js']").count()
        assert debug_script == (1 if debug else 0)  # the script this is about is there

        page.fill("#id_public_title", "A QUALS study")
        page.fill("#id_lease_minutes", "45")
        with page.expect_response(lambda r: r.request.method == "POST") as answer:
            page.click("#settings-form button[type=submit]")
        assert answer.value.status == 422
        reason = page.locator("#id_public_title_error")
        reason.wait_for()
        assert "must not name a system" in reason.inner_text()
        assert page.locator("header.top a.brand").is_visible()  # the page, not a bare fragment
        assert page.locator("h1").inner_text() == batch.name
        assert page.locator("#progress").count() == 1
        assert page.evaluate("() => document.activeElement.id") == "id_public_title"
        assert page.input_value("#id_public_title") == "A QUALS study"
        assert (
            page.locator("#settings-form[aria-busy], #settings-form button[disabled]").count() == 0
        )
        if AXE.exists():
            assert axe_violations(page) == []
        batch.refresh_from_db()
        assert (batch.public_title, batch.lease_minutes) == ("", 30)

        page.fill("#id_public_title", "A study")  # corrected in place, then saved
        with page.expect_navigation():
            page.click("#settings-form button[type=submit]")
        page.wait_for_load_state("load")
        assert page.input_value("#id_lease_minutes") == "45"
        assert page.locator("#settings-refused").count() == 0
        assert Batch.objects.get(pk=batch.pk).public_title == "A study"
