"""An annotator judges with the keyboard only, reloads midway, and the database holds exactly
what they said, mapped to the right systems on either side."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from evaluation.models import Assignment, Batch, Judgment
from evaluation.services import import_batch
from tests.browser.conftest import log_in, open_batch_for
from tests.conftest import doc_row, jsonl, make_user, settings_for

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "comparison.png"
FAITHFUL = "opened a bridge"  # system B (QUALS) in doc_row; system A (MLE) says "closed"


def annotator_seeing_both_sides(batch):
    """Any annotator: sides are counterbalanced per annotator (never more than one item from
    half), so of their first three comparisons at least one shows system A on the left and at
    least one on the right, and the test covers swapped sides for sure."""
    return make_user("reader", "annotator")


def answer_with_keys(page, factual_key_left: bool):
    page.keyboard.press("q" if factual_key_left else "e")  # factual: the faithful side
    page.keyboard.press("s")  # informativeness: equal
    page.keyboard.press("z")  # grammaticality: left


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
class TestKeyboardJudging:
    def test_it_judges_three_comparisons_with_the_keyboard_and_resumes_after_reload(
        self, page, live_server
    ):
        batch = import_batch(jsonl([doc_row(i) for i in range(1, 6)]), "f.jsonl", settings_for(k=1))
        batch.status = Batch.Status.OPEN
        batch.public_title = "Newsroom study"
        batch.guidelines = "Factual consistency: is every claim supported by the source?"
        batch.save()
        user = annotator_seeing_both_sides(batch)
        batch.annotators.add(user)

        page.goto(live_server.url + "/login/")
        page.keyboard.type(user.username)  # the username field has autofocus
        page.keyboard.press("Tab")
        page.keyboard.type("pw-" + user.username)
        page.keyboard.press("Enter")
        page.wait_for_url(live_server.url + "/")
        assert "Newsroom study" in page.content()

        page.goto(f"{live_server.url}/annotate/{batch.pk}/")
        assert "is every claim supported" in page.inner_text("main")  # guidelines first
        page.keyboard.press("Enter")  # the Start link has autofocus
        page.wait_for_selector("#judge-form")
        page.wait_for_load_state("load")  # keys are handled once the page's script has run

        # Guidelines are one key away, and Escape closes them.
        page.keyboard.press("g")
        assert page.is_visible("#guidelines-dialog")
        page.keyboard.press("Escape")
        assert not page.is_visible("#guidelines-dialog")

        expected = {}
        for n in range(3):
            url = page.url
            left_text = page.inner_text("#left-summary")
            faithful_left = FAITHFUL in left_text
            answer_with_keys(page, faithful_left)
            if n == 1:
                page.reload(wait_until="load")  # midway: the same comparison comes back
                assert page.url == url
                assert page.inner_text("#left-summary") == left_text
                answer_with_keys(page, faithful_left)
            if n == 0 and os.environ.get("UPDATE_SCREENSHOTS"):
                page.screenshot(path=str(SCREENSHOT))
            expected[url.rstrip("/").split("/")[-1]] = left_text
            page.keyboard.press("Enter")
            # No string evaluation: the site's Content-Security-Policy forbids eval.
            expect(page).not_to_have_url(url)
            page.wait_for_selector("#judge-form, .finished")

        submitted = Assignment.objects.filter(annotator=user, status="submitted")
        assert sorted(str(a.pk) for a in submitted) == sorted(expected)
        assert {a.left_system for a in submitted} == {"A", "B"}
        for a in submitted:
            verdicts = dict(a.judgments.values_list("criterion", "verdict"))
            # factual: the faithful summary is system B wherever it was shown;
            # grammaticality: "left" means whichever system was on the left.
            assert verdicts == {
                "factual": "B",
                "informative": "equal",
                "grammatical": a.left_system,
            }
            assert a.active_seconds is not None  # measured by the page, even if a robot is fast
        assert sum(a.active_seconds for a in submitted) > 0
        assert Judgment.objects.count() == 9

    def test_it_works_with_javascript_off(self, browser, live_server):
        batch = open_batch_for([doc_row(1)], "nojs")
        context = browser.new_context(java_script_enabled=False)
        page = context.new_page()
        log_in(page, live_server.url, "nojs")
        page.goto(f"{live_server.url}/annotate/{batch.pk}/?start")
        page.check("input[name=factual][value=left]")
        page.check("input[name=informative][value=equal]")
        page.check("input[name=grammatical][value=right]")
        page.click("#judge-form button[type=submit]")
        assert "All done" in page.inner_text("main")
        context.close()
        shown = dict(Judgment.objects.values_list("criterion", "shown"))
        assert shown == {"factual": "left", "informative": "equal", "grammatical": "right"}
