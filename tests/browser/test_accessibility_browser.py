"""Every page an annotator reaches, checked by axe-core (the npm package, injected) at laptop
and phone sizes; each radio is named by its meaning; each page has one h1."""

from __future__ import annotations

from pathlib import Path

import pytest

from evaluation.models import Assignment, Batch
from tests.browser.conftest import log_in, open_batch_for
from tests.conftest import doc_row

AXE = (
    Path(__file__).resolve().parents[2] / "var" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
)
SIZES = {"laptop": {"width": 1280, "height": 720}, "phone": {"width": 390, "height": 844}}


def axe_violations(page) -> list[str]:
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text("utf-8"))  # through the driver: the page's CSP is not involved
    found = page.evaluate("async () => (await axe.run(document)).violations")
    return [f"{v['id']}: {[n['target'] for n in v['nodes']]}" for v in found]


def assert_accessible(page, where: str) -> None:
    page.wait_for_load_state("load")
    assert page.locator("h1").count() == 1, where
    assert axe_violations(page) == [], where


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
class TestAccessibility:
    @pytest.mark.parametrize("size", SIZES, ids=list(SIZES))
    def test_axe_finds_nothing_on_any_annotator_page(self, browser, live_server, size):
        if not AXE.exists():
            pytest.skip(f"axe-core not installed at {AXE} (npm install axe-core in var/axe)")
        batch = open_batch_for([doc_row(1)], "reader")
        Batch.objects.filter(pk=batch.pk).update(guidelines="## Facts\n\n**Check** every number.")
        context = browser.new_context(viewport=SIZES[size])
        page = context.new_page()
        page.goto(live_server.url + "/login/")
        assert_accessible(page, "login")
        log_in(page, live_server.url, "reader")
        assert_accessible(page, "home")
        page.goto(f"{live_server.url}/annotate/{batch.pk}/")
        assert_accessible(page, "guidelines before starting")
        page.goto(f"{live_server.url}/annotate/{batch.pk}/guidelines/")
        assert_accessible(page, "guidelines")
        page.goto(f"{live_server.url}/annotate/{batch.pk}/?start")
        page.wait_for_selector("#judge-form")
        assert_accessible(page, "judging")
        page.click("details.skip summary")
        assert_accessible(page, "judging, skip panel open")
        page.click("#guidelines-link")
        assert_accessible(page, "judging, guidelines open")
        page.keyboard.press("Escape")
        for name in ("factual", "informative", "grammatical"):
            page.check(f"input[name={name}][value=equal]")
        page.click("#judge-form button[type=submit]")
        page.wait_for_selector(".finished")
        assert_accessible(page, "finished")
        submitted = Assignment.objects.get().pk
        page.goto(f"{live_server.url}/judge/{submitted}/")
        assert_accessible(page, "submitted (Back after a submit)")
        page.goto(f"{live_server.url}/judge/{submitted}/revise/")
        page.wait_for_selector("#revise-note")
        assert_accessible(page, "changing a submitted comparison")
        context.close()

    def test_each_radio_is_named_by_its_meaning(self, page, live_server):
        batch = open_batch_for([doc_row(1)], "reader")
        log_in(page, live_server.url, "reader")
        page.goto(f"{live_server.url}/annotate/{batch.pk}/?start")
        page.wait_for_selector("#judge-form")
        for name, value in (
            ("Factual consistency: Left better", "left"),
            ("Grammaticality: Equal", "equal"),
        ):
            radio = page.get_by_role("radio", name=name, exact=True)
            assert radio.get_attribute("value") == value
        assert (
            page.get_by_role("radio", name="Informativeness: Right better", exact=True).count() == 1
        )
        assert page.get_by_role("radio", name="Q", exact=True).count() == 0
