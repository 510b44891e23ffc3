"""The break reminder after N minutes of continuous judging, on a faked clock (Playwright's
page.clock drives Date, performance.now() and the timers of the page)."""

from __future__ import annotations

import pytest

from evaluation.models import Assignment, Batch
from tests.browser.conftest import log_in, open_batch_for
from tests.browser.test_accessibility_browser import AXE, axe_violations
from tests.conftest import doc_row

MINUTE = 60_000


def checked(page) -> list[str]:
    return page.evaluate(
        "() => [...document.querySelectorAll('#judge-form input[type=radio]:checked')]"
        ".map(r => r.name + '=' + r.value)"
    )


def focused(page) -> dict:
    return page.evaluate(
        "() => ({id: document.activeElement.id, type: document.activeElement.type || ''})"
    )


def wait_for_next(page, shown: str) -> None:
    page.wait_for_function(f"() => document.getElementById('work').dataset.assignment != {shown}")


def tab_to(page, element_id: str) -> None:
    """Tab through the page, as a keyboard user does, until the element has the focus."""
    for _ in range(40):
        page.keyboard.press("Tab")
        if focused(page)["id"] == element_id:
            return
    raise AssertionError(f"#{element_id} is not reachable with Tab")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
class TestBreakReminder:
    def test_it_suggests_a_break_after_n_minutes_and_continue_dismisses_it(self, page, live_server):
        batch = open_batch_for([doc_row(1), doc_row(2)], "steady")
        Batch.objects.filter(pk=batch.pk).update(break_reminder_minutes=1)
        log_in(page, live_server.url, "steady")
        page.clock.install()
        page.goto(f"{live_server.url}/annotate/{batch.pk}/?start")
        page.wait_for_selector("#judge-form")
        page.wait_for_load_state("load")
        page.keyboard.press("q")
        page.keyboard.press("s")
        answers = checked(page)
        notice = page.locator("#break-due")
        assert notice.is_hidden()

        page.clock.run_for(30_000)
        assert notice.is_hidden()  # not yet: half the batch's minute
        page.keyboard.press("ArrowDown")  # reading on
        page.clock.run_for(40_000)
        notice.wait_for()
        assert "judging for 1 minute" in notice.inner_text()
        assert page.locator("#break-reminder[role=status]").count() == 1
        assert focused(page)["id"] == "work"  # the notice took no focus
        assert checked(page) == answers
        if AXE.exists():
            assert axe_violations(page) == []

        tab_to(page, "break-continue")
        page.keyboard.press("Enter")
        assert notice.is_hidden()
        assert focused(page)["id"] == "work" and checked(page) == answers

        page.keyboard.press("ArrowDown")
        page.clock.run_for(70_000)  # another minute: re-armed
        notice.wait_for()
        page.clock.run_for(6 * MINUTE)  # nobody there for five minutes: that was a break
        assert notice.is_hidden()
        assert checked(page) == answers

    def test_a_break_stops_the_clock_of_the_comparison(self, page, live_server):
        batch = open_batch_for([doc_row(1), doc_row(2)], "rested")
        Batch.objects.filter(pk=batch.pk).update(break_reminder_minutes=1)
        log_in(page, live_server.url, "rested")
        page.clock.install()
        page.goto(f"{live_server.url}/annotate/{batch.pk}/?start")
        page.wait_for_selector("#judge-form")
        page.wait_for_load_state("load")
        item = int(page.get_attribute("#work", "data-assignment"))
        for key in "qsc":
            page.keyboard.press(key)
        answers = checked(page)
        page.clock.run_for(65_000)
        page.locator("#break-due").wait_for()

        tab_to(page, "break-take")
        page.keyboard.press("Enter")
        page.locator("#break-on").wait_for()
        assert page.locator("#break-due").is_hidden()
        page.clock.run_for(20 * MINUTE)  # away, the tab still open
        assert page.locator("#break-on").is_visible()  # a break lasts until they resume
        tab_to(page, "break-resume")
        page.keyboard.press("Enter")
        assert page.locator("#break-on").is_hidden() and focused(page)["id"] == "work"
        assert checked(page) == answers

        page.clock.run_for(10_000)
        with page.expect_request(lambda r: "/submit/" in r.url) as sent:
            page.keyboard.press("Enter")
        fields = dict(pair.split("=") for pair in sent.value.post_data.split("&"))
        # 65 s judging and 10 s after the break; the 20 minutes of the break are not counted.
        # (The browser's figure, as sent: the server caps it by its own, real, clock.)
        assert 70 <= float(fields["active_seconds"]) < 90
        wait_for_next(page, str(item))
        assert Assignment.objects.get(pk=item).status == Assignment.Status.SUBMITTED

    def test_the_count_carries_across_comparisons_and_reloads(self, page, live_server):
        batch = open_batch_for([doc_row(1), doc_row(2), doc_row(3)], "onward")
        Batch.objects.filter(pk=batch.pk).update(break_reminder_minutes=1)
        log_in(page, live_server.url, "onward")
        page.clock.install()
        page.goto(f"{live_server.url}/annotate/{batch.pk}/?start")
        page.wait_for_selector("#judge-form")
        page.wait_for_load_state("load")
        first = page.get_attribute("#work", "data-assignment")
        page.clock.run_for(40_000)
        for key in "qsc":
            page.keyboard.press(key)
        page.keyboard.press("Enter")  # the next comparison, swapped in by htmx
        wait_for_next(page, first)
        page.reload(wait_until="load")  # and a reload on top
        page.wait_for_selector("#judge-form")
        assert page.locator("#break-due").is_hidden()
        page.clock.run_for(30_000)  # 40 s + 30 s of the same stretch
        page.locator("#break-due").wait_for()
        assert checked(page) == []  # the new comparison's answers are untouched

    def test_a_tab_hidden_for_five_minutes_starts_the_count_again(self, page, live_server):
        batch = open_batch_for([doc_row(1)], "away")
        Batch.objects.filter(pk=batch.pk).update(break_reminder_minutes=1)
        log_in(page, live_server.url, "away")
        page.clock.install()
        page.goto(f"{live_server.url}/annotate/{batch.pk}/?start")
        page.wait_for_selector("#judge-form")
        page.wait_for_load_state("load")
        page.clock.run_for(40_000)

        def set_visibility(state: str) -> None:  # as the browser does when the tab changes
            page.evaluate(
                "s => { Object.defineProperty(document, 'visibilityState',"
                " {value: s, configurable: true});"
                " document.dispatchEvent(new Event('visibilitychange')); }",
                state,
            )

        set_visibility("hidden")
        page.clock.run_for(6 * MINUTE)
        set_visibility("visible")
        page.keyboard.press("ArrowDown")
        page.clock.run_for(30_000)  # 40 s + 30 s, but the hidden six minutes were a break
        assert page.locator("#break-due").is_hidden()
        page.clock.run_for(35_000)
        page.locator("#break-due").wait_for()  # a minute after coming back
