"""Keys over hours of work: focus rests on the comparison, scrolling keys scroll the source and
never change an answer, skip and report are a key away."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from evaluation.models import Assignment
from tests.browser.conftest import log_in, open_batch_for
from tests.conftest import doc_row

LONG = "\n\n".join(f"Paragraph {n}: the council met and talked at length." for n in range(80))


def checked(page) -> dict[str, str]:
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('#judge-form input:checked')]
              .map(i => [i.name, i.value]))"""
    )


def source_top(page) -> float:
    return page.evaluate("() => document.querySelector('#work .source').scrollTop")


def start_judging(page, live_server, n: int = 3):
    batch = open_batch_for([doc_row(i, source=LONG) for i in range(1, n + 1)], "keys")
    log_in(page, live_server.url, "keys")
    page.goto(f"{live_server.url}/annotate/{batch.pk}/?start")
    page.wait_for_selector("#judge-form")
    page.wait_for_load_state("load")
    return batch


def focused_id(page) -> str:
    return page.evaluate("() => document.activeElement.id")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
class TestJudgingKeys:
    def test_it_scrolls_the_source_and_never_changes_an_answer(self, page, live_server):
        start_judging(page, live_server)
        assert focused_id(page) == "work"
        page.keyboard.press("q")
        page.keyboard.press("s")  # half-answered, as in the report
        before = checked(page)
        assert before == {"factual": "left", "informative": "equal"}

        top = source_top(page)
        for key in ("ArrowDown", "PageDown", "Space"):
            page.keyboard.press(key)
            assert source_top(page) > top, key
            top = source_top(page)
        for key in ("ArrowUp", "PageUp", "Shift+Space"):
            page.keyboard.press(key)
            assert source_top(page) < top, key
            top = source_top(page)
        assert checked(page) == before

        # Even with a radio focused (tabbed to), arrows and Space leave every answer alone.
        for _ in range(40):
            page.keyboard.press("Tab")
            if page.evaluate("() => document.activeElement.type") == "radio":
                break
        assert page.evaluate("() => document.activeElement.type") == "radio"
        for key in ("ArrowDown", "ArrowUp", "ArrowLeft", "ArrowRight", "Space", "PageDown"):
            page.keyboard.press(key)
        assert checked(page) == before

    def test_focus_is_on_the_comparison_after_each_swap(self, page, live_server):
        start_judging(page, live_server)
        for _ in range(2):
            url = page.url
            for key in "qsz":
                page.keyboard.press(key)
            page.keyboard.press("Enter")
            expect(page).not_to_have_url(url)
            page.wait_for_selector("#judge-form")
            assert focused_id(page) == "work"
            page.keyboard.press("ArrowDown")
            assert checked(page) == {}  # the new comparison starts unanswered and stays so

    def test_k_skips_and_r_reports_with_the_keyboard_only(self, page, live_server):
        start_judging(page, live_server)
        assert "K" in page.inner_text("details.skip summary")
        assert "R" in page.inner_text("details.skip summary")
        first = int(page.get_attribute("#work", "data-assignment"))
        page.keyboard.press("k")
        assert page.is_visible("#skip-reason") and focused_id(page) == "skip-reason"
        page.keyboard.type("source is cut off")
        page.keyboard.press("Control+Enter")
        page.wait_for_function(
            f"() => document.querySelector('#work').dataset.assignment != '{first}'"
        )
        assert focused_id(page) == "work"

        second = int(page.get_attribute("#work", "data-assignment"))
        page.keyboard.press("r")
        page.keyboard.type("summary in another language")
        page.keyboard.press("Control+Enter")
        page.wait_for_function(
            f"() => document.querySelector('#work').dataset.assignment != '{second}'"
        )

        skipped = Assignment.objects.get(pk=first)
        reported = Assignment.objects.get(pk=second)
        assert (skipped.status, skipped.skip_reason) == ("skipped", "source is cut off")
        assert (reported.status, reported.problem_report) == (
            "skipped",
            "summary in another language",
        )

        # Escape closes the panel without sending, and the focus comes back to the comparison.
        page.keyboard.press("k")
        page.keyboard.press("Escape")
        assert not page.is_visible("#skip-reason") and focused_id(page) == "work"

    def test_g_opens_the_guidelines_at_the_top(self, page, live_server):
        batch = start_judging(page, live_server)
        batch.guidelines = "\n\n".join(f"Rule {n}." for n in range(200))
        batch.save()
        page.reload(wait_until="load")
        page.keyboard.press("g")
        assert page.evaluate("() => document.getElementById('guidelines-dialog').scrollTop") == 0
        page.keyboard.press("Escape")
