"""An admin creates a batch in the browser and watches it move while an annotator works."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from evaluation.models import Batch
from scoring.tasks import score_rouge
from tests.browser.conftest import log_in
from tests.conftest import doc_row, jsonl, make_user

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def files(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(jsonl([doc_row(1)]) + b"\n{not json\n" + jsonl([doc_row(1)]))
    good = tmp_path / "good.jsonl"
    good.write_bytes(jsonl([doc_row(i) for i in range(1, 4)]))
    return bad, good


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
class TestAdminDashboard:
    def test_an_admin_uploads_opens_and_watches_progress(
        self, browser, live_server, files, monkeypatch
    ):
        monkeypatch.setattr(score_rouge, "delay", lambda *a: None)
        admin = make_user("boss", "admin")
        annotator = make_user("worker", "annotator")
        bad, good = files
        admin_ctx = browser.new_context(viewport={"width": 1366, "height": 900})
        page = admin_ctx.new_page()
        page.set_default_timeout(15000)
        log_in(page, live_server.url, admin.username)
        assert page.url.endswith("/manage/")

        def fill_upload(path):
            page.goto(live_server.url + "/manage/batches/new/")
            page.set_input_files("#id_file", str(path))
            page.fill("#id_name", "Browser study")
            page.fill("#id_dataset", "XSUM")
            page.fill("#id_system_a", "MLE")
            page.fill("#id_system_b", "QUALS")
            page.fill("#id_annotators_per_item", "1")
            page.click("#import")

        fill_upload(bad)
        problems = page.inner_text("#import-problems")
        assert "nothing was written" in problems
        assert "line 2: not valid JSON" in problems
        assert not Batch.objects.exists()

        fill_upload(good)
        page.wait_for_url("**/manage/batches/*/")
        batch = Batch.objects.get(name="Browser study")
        batch.annotators.add(annotator)
        page.click("button[value=open]")
        page.wait_for_selector("#progress[hx-trigger]")
        assert page.inner_text("#batch-status") == "Open"
        assert page.inner_text("#done-count") == "0"

        worker_ctx = browser.new_context()
        worker = worker_ctx.new_page()
        worker.set_default_timeout(15000)
        log_in(worker, live_server.url, annotator.username)
        worker.goto(f"{live_server.url}/annotate/{batch.pk}/?start")
        for expected_done in ("1", "2"):
            worker.check("input[name=factual][value=left]")
            worker.check("input[name=informative][value=equal]")
            worker.check("input[name=grammatical][value=right]")
            worker.click("#judge-form button[type=submit]")
            # The admin's page updates by itself (htmx polling), no reload.
            expect(page.locator("#done-count")).to_have_text(expected_done, timeout=10000)
        assert "worker" in page.inner_text("#progress")
        if os.environ.get("UPDATE_SCREENSHOTS"):
            page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)
        worker_ctx.close()
        admin_ctx.close()
