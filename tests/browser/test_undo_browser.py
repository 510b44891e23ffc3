"""Undo with the keyboard only, and Back after a submission: never a stale judging page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from evaluation.criteria import keyboard_map
from evaluation.models import Assignment, Judgment
from tests.browser.test_judging_keys_browser import checked, focused_id, start_judging


def key_for(criterion: str, shown: str) -> str:
    return next(k for k, v in keyboard_map().items() if tuple(v) == (criterion, shown))


FIRST = {"factual": "left", "informative": "equal", "grammatical": "right"}


def answer_and_submit(page) -> tuple[int, int]:
    """Answer FIRST and press Enter; (the submitted assignment, the one shown next)."""
    first = int(page.get_attribute("#work", "data-assignment"))
    for criterion, shown in FIRST.items():
        page.keyboard.press(key_for(criterion, shown))
    assert checked(page) == FIRST
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => document.querySelector('#work').dataset.assignment != '{first}'")
    return first, int(page.get_attribute("#work", "data-assignment"))


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
class TestUndo:
    def test_u_reopens_the_last_answer_and_saving_returns_to_the_held_one(self, page, live_server):
        start_judging(page, live_server)
        left_before = page.inner_text("#left-summary")
        first, held = answer_and_submit(page)
        expect(page.locator("#undo-button")).to_be_visible()
        assert "U" in page.inner_text("#undo-button")
        # An answer already chosen on the held comparison survives the detour.
        page.keyboard.press(key_for("informative", "right"))

        page.keyboard.press("u")
        page.wait_for_selector("#revise-note")
        assert int(page.get_attribute("#work", "data-assignment")) == first
        assert "changing answers you already submitted" in page.inner_text("#revise-note")
        assert page.inner_text("#left-summary") == left_before  # the same screen sides
        assert checked(page) == FIRST  # the stored answers, chosen
        assert focused_id(page) == "work"

        page.keyboard.press(key_for("factual", "right"))
        page.keyboard.press("Enter")
        page.wait_for_function(
            f"() => document.querySelector('#work').dataset.assignment == '{held}'"
        )
        assert page.locator("#revise-note").count() == 0
        assert page.url.endswith(f"/judge/{held}/")
        assert checked(page) == {"informative": "right"}
        stored = dict(
            Judgment.objects.filter(assignment_id=first).values_list("criterion", "shown")
        )
        assert stored == {**FIRST, "factual": "right"}
        assert Assignment.objects.get(pk=first).revisions == 1
        live = Assignment.objects.filter(status="leased").values_list("pk", flat=True)
        assert list(live) == [held]

        # Reopened again and left with Escape: nothing changes, back at the held comparison.
        page.keyboard.press(key_for("grammatical", "left"))
        page.keyboard.press("u")
        page.wait_for_selector("#revise-note")
        page.keyboard.press("Escape")
        page.wait_for_function(
            f"() => document.querySelector('#work').dataset.assignment == '{held}'"
        )
        page.wait_for_load_state("load")
        assert Assignment.objects.get(pk=first).revisions == 1
        assert checked(page) == {"informative": "right", "grammatical": "left"}
        # Submitted, the next comparison starts with nothing chosen.
        for criterion, shown in FIRST.items():
            page.keyboard.press(key_for(criterion, shown))
        page.keyboard.press("Enter")
        page.wait_for_function(
            f"() => document.querySelector('#work').dataset.assignment != '{held}'"
        )
        page.wait_for_selector("#judge-form")
        assert checked(page) == {}

    def test_back_after_a_submit_says_it_was_submitted_and_links_on(self, page, live_server):
        start_judging(page, live_server)
        first, held = answer_and_submit(page)
        page.go_back()
        expect(page.locator("h1")).to_have_text("This comparison was submitted")
        assert page.locator("#judge-form").count() == 0  # nothing stale to answer
        assert page.url.endswith(f"/judge/{first}/")
        expect(page.locator("#undo-button")).to_be_visible()
        page.click("#current-comparison")
        page.wait_for_selector("#judge-form")
        assert int(page.get_attribute("#work", "data-assignment")) == held
        assert Judgment.objects.filter(assignment_id=first).count() == 3
