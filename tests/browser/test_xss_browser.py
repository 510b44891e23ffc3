"""Documents and summaries that contain HTML and script render as text: nothing executes."""

from __future__ import annotations

import pytest

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
