"""An annotator works through a batch with attention checks: nothing the browser shows (page
structure, attributes, URLs, counters, title) tells a check from a real comparison."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from evaluation import checks
from evaluation.models import Assignment, Batch
from tests.browser.conftest import log_in, open_batch_for
from tests.conftest import approved_pool_checks, doc_row

# Every element of the page with its attributes, numbers (ids in URLs and data attributes)
# and the per-request CSRF token blanked: what differs between two pages apart from texts.
# The reading aids' marks and paragraph numbers are left out: they follow the texts (a term's
# marks, a source's paragraphs), the same rule for checks and real items.
STRUCTURE = """elements => elements
    .filter(e => !e.closest("mark") && !e.classList.contains("para-no"))
    .map(e => e.tagName + "[" + Array.from(e.attributes)
    .map(a => a.name + "=" + (e.name === "csrfmiddlewaretoken" && a.name === "value"
        ? "" : a.value.replace(/[0-9]+/g, "#")))
    .join(" ") + "]").join("\\n")"""


def page_view(page) -> dict:
    return {
        "structure": page.locator("body *").evaluate_all(STRUCTURE),
        "url": re.sub(r"\d+", "#", page.url),
        "title": page.title(),
        "counter": page.inner_text("#progress"),
    }


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
class TestChecksLookLikeRealItems:
    def test_nothing_on_the_page_tells_a_check_from_a_real_item(
        self, page, live_server, monkeypatch
    ):
        batch = open_batch_for([doc_row(i) for i in range(1, 5)], "checker")
        Batch.objects.filter(pk=batch.pk).update(check_every=2, check_min_gap=1)
        approved_pool_checks(batch, 3)
        # The slots are random (tested in tests/evaluation/test_checks.py); here every second
        # item, so that the walk surely meets both kinds.
        monkeypatch.setattr(checks, "_slot_low", lambda batch, user_id, n: n % 2 == 1)

        log_in(page, live_server.url, "checker")
        page.goto(f"{live_server.url}/annotate/{batch.pk}/?start")
        views = []
        while page.locator("#judge-form").count():
            page.wait_for_load_state("load")
            views.append(page_view(page))
            page.check("input[name=factual][value=left]")
            page.check("input[name=informative][value=equal]")
            page.check("input[name=grammatical][value=equal]")
            url, shown = page.url, page.get_attribute("#work", "data-assignment")
            page.click("#judge-form button[type=submit]")
            expect(page).not_to_have_url(url)
            # The new comparison itself, settled (htmx's swap classes gone), not the old one
            # still on screen as the URL moves.
            page.wait_for_function(
                "shown => !document.querySelector('.htmx-swapping, .htmx-added, .htmx-settling')"
                " && (document.querySelector('.finished') || (document.querySelector("
                "'#judge-form') && document.querySelector('#work').dataset.assignment !== shown))",
                arg=shown,
            )

        served = list(Assignment.objects.filter(annotator__username="checker").order_by("id"))
        kinds = [a.comparison.is_check for a in served]
        assert kinds.count(True) == 3 and kinds.count(False) == 4
        assert len(views) == len(served) == 7
        # From the second item on, every page carries the "Undo last" control (for the item
        # before, check or not): compare those, so the first page's lack of it is not a kind.
        assert not kinds[0] and "undo-button" not in views[0]["structure"]
        after_first = list(zip(views, kinds, strict=True))[1:]
        assert all("id=undo-button" in v["structure"] for v, _ in after_first)
        check_views = [v for v, is_check in after_first if is_check]
        real_views = [v for v, is_check in after_first if not is_check]
        for key in ("structure", "url", "title"):
            assert {v[key] for v in check_views} == {v[key] for v in real_views}, key
        # The counter counts every item alike, and its total (check slots included) never
        # moves: 0 of 7, 1 of 7, ... whatever was served.
        assert [v["counter"] for v in views] == [f"{n} of 7 done" for n in range(7)]
