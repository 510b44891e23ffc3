"""A refused skip or report says why beside the reason, in place, with the panel open, in
development mode (django-htmx's debug script) as in production."""

from __future__ import annotations

import pytest

from evaluation.models import Assignment
from tests.browser.conftest import log_in, open_batch_for
from tests.conftest import doc_row


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
class TestSkipRefusal:
    @pytest.mark.parametrize("debug", [True, False], ids=["development", "production"])
    def test_a_blank_reason_is_refused_beside_the_field_and_nothing_is_lost(
        self, page, live_server, settings, debug
    ):
        settings.DEBUG = debug
        batch = open_batch_for([doc_row(1), doc_row(2)], "skipper")
        log_in(page, live_server.url, "skipper")
        page.goto(f"{live_server.url}/annotate/{batch.pk}/?start")
        page.wait_for_selector("#judge-form")
        page.wait_for_load_state("load")
        item = int(page.get_attribute("#work", "data-assignment"))
        page.keyboard.press("q")  # an answer already chosen survives the refusal

        page.keyboard.press("r")
        page.keyboard.press("Control+Enter")  # empty: the browser's required check stops it
        assert page.evaluate("() => document.getElementById('skip-reason').validity.valueMissing")

        page.keyboard.type("   ")  # blank: the server refuses it
        with page.expect_response(lambda r: "/skip/" in r.url) as answer:
            page.keyboard.press("Control+Enter")
        assert answer.value.status == 422
        error = page.locator("#skip-panel #skip-error")
        error.wait_for()
        assert error.inner_text() == "Please describe the problem."
        assert page.locator("#skip-panel[open]").count() == 1
        assert page.locator("header.top").count() == 1  # the page itself is still there
        assert page.is_checked("input[name=factual][value=left]")
        assert page.evaluate("() => document.activeElement.id") == "skip-reason"
        assert Assignment.objects.get(pk=item).status == "leased"

        page.keyboard.type("the summary is in French")
        page.keyboard.press("Control+Enter")  # still a report: the panel kept the key chosen
        page.wait_for_function(
            f"() => document.querySelector('#work').dataset.assignment != '{item}'"
        )
        reported = Assignment.objects.get(pk=item)
        assert reported.status == "skipped"
        assert reported.problem_report.strip() == "the summary is in French"
