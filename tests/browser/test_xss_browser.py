"""Documents and summaries that contain HTML and script render as text: nothing executes."""

from __future__ import annotations

import pytest

from evaluation.models import Batch
from tests.browser.conftest import log_in, open_batch_for
from tests.conftest import doc_row

PAYLOAD = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_script_in_a_document_and_a_summary_does_not_run(page, live_server):
    row = doc_row(1, source="Breaking: " + PAYLOAD)
    row["summaries"]["MLE"] = "Summary " + PAYLOAD
    batch = open_batch_for([row], "victim")
    log_in(page, live_server.url, "victim")
    page.goto(f"{live_server.url}/annotate/{batch.pk}/?start")
    page.wait_for_load_state("load")
    assert page.evaluate("window.__pwned === undefined")
    assert PAYLOAD in page.inner_text(".source")
    summaries = page.inner_text("#left-summary") + page.inner_text("#right-summary")
    assert PAYLOAD in summaries
    assert page.locator("img[src=x]").count() == 0


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_script_in_the_guidelines_does_not_run_and_markdown_renders(page, live_server):
    batch = open_batch_for([doc_row(1)], "reader")
    guidelines = "## Numbers\n\n**Check** every number.\n\n" + PAYLOAD
    Batch.objects.filter(pk=batch.pk).update(guidelines=guidelines)
    log_in(page, live_server.url, "reader")
    for path in (f"/annotate/{batch.pk}/guidelines/", f"/annotate/{batch.pk}/?start"):
        page.goto(live_server.url + path)
        page.wait_for_load_state("load")
        assert page.evaluate("window.__pwned === undefined")
        assert page.locator(".guidelines-text h2", has_text="Numbers").count() == 1
        assert page.locator(".guidelines-text strong", has_text="Check").count() == 1
        assert page.locator(".guidelines-text img, .guidelines-text script").count() == 0
