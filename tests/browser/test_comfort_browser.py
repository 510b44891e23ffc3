"""Comfort over hours: a text size each annotator keeps, and dark mode from the system."""

from __future__ import annotations

import pytest

from tests.browser.conftest import log_in, open_batch_for
from tests.browser.test_accessibility_browser import AXE, axe_violations
from tests.conftest import doc_row, make_user


def source_px(page) -> float:
    return page.evaluate(
        "() => parseFloat(getComputedStyle(document.querySelector('#work .source .text')).fontSize)"
    )


def log_out(page) -> None:
    page.click("header.top button[type=submit]")
    page.wait_for_url(lambda url: "/login/" in url)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
class TestComfort:
    def test_the_text_size_is_remembered_for_each_user(self, page, live_server):
        batch = open_batch_for([doc_row(1), doc_row(2)], "big")
        batch.annotators.add(make_user("small", "annotator"))
        judging = f"{live_server.url}/annotate/{batch.pk}/?start"
        log_in(page, live_server.url, "big")
        page.goto(judging)
        page.wait_for_load_state("load")
        normal = source_px(page)
        page.click("#text-larger")
        page.click("#text-larger")
        larger = source_px(page)
        assert larger > normal
        page.reload(wait_until="load")
        assert source_px(page) == larger  # kept across pages and reloads

        log_out(page)
        log_in(page, live_server.url, "small")  # same browser, another annotator
        page.goto(judging)
        page.wait_for_load_state("load")
        assert source_px(page) == normal
        page.click("#text-smaller")
        assert source_px(page) < normal

    def test_dark_mode_follows_the_system_and_stays_accessible(self, browser, live_server):
        batch = open_batch_for([doc_row(1)], "night")
        context = browser.new_context(color_scheme="dark", viewport={"width": 1280, "height": 720})
        page = context.new_page()
        log_in(page, live_server.url, "night")
        page.goto(f"{live_server.url}/annotate/{batch.pk}/?start")
        page.wait_for_load_state("load")
        background = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        red, green, blue = (
            int(x) for x in background[background.index("(") + 1 : -1].split(",")[:3]
        )
        assert max(red, green, blue) < 60  # dark, not the light theme's #f7f8fa
        if AXE.exists():
            assert axe_violations(page) == []
        context.close()
