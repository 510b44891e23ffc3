"""Documents and summaries that contain HTML and script render as text: nothing executes."""

from __future__ import annotations

import pytest

from evaluation.models import Batch
from evaluation.services import import_batch
from tests.conftest import doc_row, jsonl, make_user, settings_for

PAYLOAD = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_script_in_a_document_and_a_summary_does_not_run(page, live_server):
    row = doc_row(1, source="Breaking: " + PAYLOAD)
    row["summaries"]["MLE"] = "Summary " + PAYLOAD
    batch = import_batch(jsonl([row]), "x.jsonl", settings_for(k=1))
    Batch.objects.filter(pk=batch.pk).update(status="open")
    user = make_user("victim", "annotator")
    batch.annotators.add(user)
    page.goto(live_server.url + "/login/")
    page.fill("#id_username", "victim")
    page.fill("#id_password", "pw-victim")
    page.click("main button[type=submit]")
    page.goto(f"{live_server.url}/annotate/{batch.pk}/?start")
    page.wait_for_load_state("load")
    assert page.evaluate("window.__pwned === undefined")
    assert PAYLOAD in page.inner_text(".source")
    summaries = page.inner_text("#left-summary") + page.inner_text("#right-summary")
    assert PAYLOAD in summaries
    assert page.locator("img[src=x]").count() == 0
