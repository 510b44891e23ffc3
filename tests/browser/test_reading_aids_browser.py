"""The reading aids in real Chromium, keyboard only: the next / previous keys scroll the source
to a summary's number or name and say which; V shows the word differences; paragraph numbers
are on screen; no aid key changes an answer; axe finds nothing with the aids on, light or dark."""

from __future__ import annotations

import pytest

from evaluation.models import Batch
from tests.browser.conftest import log_in, open_batch_for
from tests.browser.test_accessibility_browser import AXE, axe_violations
from tests.browser.test_judging_keys_browser import checked, source_top
from tests.conftest import doc_row

FILLER = [f"Paragraph {n}: the council met and talked at length." for n in range(60)]
SOURCE = "\n\n".join(
    FILLER[:40] + ["Mr Wren said the bridge cost 240,000 pounds."] + FILLER[40:]
    + ["In the end Mr Wren paid 240,000 pounds again."]
)  # fmt: skip
SUMMARIES = {
    "MLE": "Mr Wren paid 240,000 pounds for the bridge.",
    "QUALS": "Mr Wren paid 420,000 pounds for the bridge.",
    "OTHER": "Unused.",
}


def start(page, live_server, n: int = 2, **aids):
    rows = [doc_row(i, source=SOURCE, summaries=SUMMARIES) for i in range(1, n + 1)]
    batch = open_batch_for(rows, "reader")
    Batch.objects.filter(pk=batch.pk).update(**aids)
    log_in(page, live_server.url, "reader")
    page.goto(f"{live_server.url}/annotate/{batch.pk}/?start")
    page.wait_for_selector("#judge-form")
    page.wait_for_load_state("load")
    return batch


def status(page) -> str:
    return page.inner_text("#mark-status")


def current_in_view(page) -> bool:
    """The current mark lies inside the source pane's visible part."""
    return page.evaluate(
        """() => {
          const m = document.querySelector('#source-text mark.current');
          const p = document.querySelector('#work .source').getBoundingClientRect();
          if (!m) return false;
          const r = m.getBoundingClientRect();
          return r.top >= p.top && r.bottom <= p.bottom;
        }"""
    )


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
class TestReadingAids:
    def test_n_steps_through_the_source_and_says_which(self, page, live_server):
        start(page, live_server)
        assert page.evaluate("() => document.activeElement.id") == "work"
        page.keyboard.press("q")
        page.keyboard.press("s")
        before = checked(page)
        top = source_top(page)
        # Every mark in the source in order: "Wren", "240,000" (paragraph 41), then the same two
        # in paragraph 62; "420,000" is never in the source.
        page.keyboard.press("n")
        assert status(page) == "\u201cWren\u201d: 1 of 4 highlights in the source"
        assert source_top(page) > top and current_in_view(page)
        page.keyboard.press("n")
        assert status(page) == "\u201c240,000\u201d: 2 of 4 highlights in the source"
        page.keyboard.press("n")
        further = source_top(page)
        assert further > top and current_in_view(page)
        page.keyboard.press("Shift+N")
        assert status(page).startswith("\u201c240,000\u201d: 2 of 4")
        assert source_top(page) < further and current_in_view(page)
        assert checked(page) == before
        assert page.evaluate("() => document.activeElement.type") != "radio"

    def test_a_click_on_a_summary_mark_steps_through_that_term(self, page, live_server):
        start(page, live_server)
        page.locator(".summary mark", has_text="240,000").click()
        assert status(page) == "\u201c240,000\u201d: 1 of 2 in the source"
        page.keyboard.press("n")
        assert status(page) == "\u201c240,000\u201d: 2 of 2 in the source" and current_in_view(page)
        page.locator(".summary mark", has_text="420,000").click()
        assert status(page) == "\u201c420,000\u201d: not found in the source"

    def test_v_toggles_the_word_differences_of_both_summaries(self, page, live_server):
        start(page, live_server, aid_word_diff=True)
        page.keyboard.press("a")
        before = checked(page)
        assert not page.is_visible("#left-diff")
        page.keyboard.press("v")
        assert page.is_visible("#left-diff") and page.is_visible("#right-diff")
        assert not page.is_visible("#left-summary")
        assert page.get_attribute("#word-diff", "aria-pressed") == "true"
        differs = page.locator(".diff-view mark.differs").all_inner_texts()
        assert sorted(differs) == ["240,000", "420,000"]
        page.keyboard.press("v")
        assert page.is_visible("#left-summary") and not page.is_visible("#left-diff")
        assert page.get_attribute("#word-diff", "aria-pressed") == "false"
        assert checked(page) == before

    def test_paragraph_numbers_are_on_screen(self, page, live_server):
        start(page, live_server)
        numbers = page.locator("#source-text .para-no")
        assert numbers.count() == 62
        assert numbers.first.inner_text() == "1" and numbers.first.is_visible()

    def test_the_keys_work_after_the_next_comparison_is_swapped_in(self, page, live_server):
        start(page, live_server)
        page.keyboard.press("n")
        first = page.get_attribute("#work", "data-assignment")
        for key in "qsz":
            page.keyboard.press(key)
        page.keyboard.press("Enter")
        page.wait_for_function(
            f"() => document.querySelector('#work').dataset.assignment != '{first}'"
        )
        assert status(page) == ""
        page.keyboard.press("n")
        assert status(page) == "\u201cWren\u201d: 1 of 4 highlights in the source"
        assert checked(page) == {}

    def test_no_aid_keys_without_the_aids(self, page, live_server):
        start(page, live_server, aid_highlights=False, aid_paragraph_numbers=False)
        top = source_top(page)
        page.keyboard.press("n")
        page.keyboard.press("v")
        assert source_top(page) == top
        assert page.locator("mark").count() == 0 and page.locator(".para-no").count() == 0

    @pytest.mark.parametrize("scheme", ["light", "dark"])
    def test_axe_finds_nothing_with_the_aids_on(self, browser, live_server, scheme):
        if not AXE.exists():
            pytest.skip(f"axe-core not installed at {AXE} (npm install axe-core in var/axe)")
        context = browser.new_context(viewport={"width": 1280, "height": 720}, color_scheme=scheme)
        page = context.new_page()
        start(page, live_server, aid_word_diff=True)
        page.keyboard.press("n")  # a current mark, in its own colour
        assert axe_violations(page) == [], "marks"
        page.keyboard.press("v")
        assert axe_violations(page) == [], "word differences"
        context.close()
