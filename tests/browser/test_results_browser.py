"""A researcher copies the results page's methods paragraph into a paper."""

from __future__ import annotations

import pytest

from evaluation.services import import_batch
from tests.browser.conftest import log_in
from tests.conftest import doc_row, jsonl, make_user, settings_for

PARAGRAPH = "#methods-text"
# No clipboard: the writes are refused, as where permission is denied.
DENIED = """
Object.defineProperty(navigator, "clipboard", {
  value: { writeText: () => Promise.reject(new DOMException("denied", "NotAllowedError")) },
});
"""


def results_page(browser, live_server, *, clipboard: bool):
    batch = import_batch(jsonl([doc_row(i) for i in range(1, 4)]), "b.jsonl", settings_for())
    make_user("rita", "researcher")
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    if clipboard:
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    else:
        context.add_init_script(DENIED)
    page = context.new_page()
    page.set_default_timeout(15000)
    log_in(page, live_server.url, "rita")
    page.goto(f"{live_server.url}/batches/{batch.pk}/results/")
    return page


def press_copy(page) -> None:
    """From the keyboard: focus the button, then Enter, as a keyboard user does."""
    page.focus("#copy-methods")
    page.keyboard.press("Enter")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
class TestCopyMethods:
    def test_the_button_puts_the_paragraph_on_the_clipboard(self, browser, live_server):
        page = results_page(browser, live_server, clipboard=True)
        paragraph = page.input_value(PARAGRAPH)
        assert paragraph.startswith("Annotators compared summaries of QUALS (B) and MLE (A)")
        press_copy(page)
        page.wait_for_function(
            "() => document.getElementById('methods-copied').textContent.includes('Copied')"
        )
        assert page.evaluate("() => navigator.clipboard.readText()") == paragraph

    def test_without_the_clipboard_it_selects_the_paragraph(self, browser, live_server):
        page = results_page(browser, live_server, clipboard=False)
        paragraph = page.input_value(PARAGRAPH)
        press_copy(page)
        page.wait_for_function(
            "() => document.getElementById('methods-copied').textContent.includes('selected')"
        )
        selected = page.evaluate(
            """() => {
                const field = document.getElementById('methods-text');
                return [document.activeElement === field,
                        field.value.slice(field.selectionStart, field.selectionEnd)];
            }"""
        )
        assert selected == [True, paragraph]
        assert "press Ctrl+C" in page.inner_text("#methods-copied")
