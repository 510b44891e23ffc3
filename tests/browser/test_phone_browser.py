"""A phone (390x844, touch only): nothing cut off, targets a thumb can hit, no key hints, the
stacked summaries called Top and Bottom, and the stored verdict is what was on screen."""

from __future__ import annotations

import pytest

from evaluation.models import Assignment, Judgment
from tests.browser.conftest import log_in, open_batch_for
from tests.conftest import doc_row

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


@pytest.fixture
def phone(browser):
    context = browser.new_context(**PHONE)
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


def boxes(page, selector: str) -> list[dict]:
    return [b for b in (el.bounding_box() for el in page.query_selector_all(selector)) if b]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
class TestPhone:
    def open(self, phone, live_server):
        batch = open_batch_for([doc_row(1)], "thumb")
        log_in(phone, live_server.url, "thumb")
        phone.goto(f"{live_server.url}/annotate/{batch.pk}/?start")
        phone.wait_for_selector("#judge-form")
        phone.wait_for_load_state("load")

    def test_the_criteria_fit_and_every_target_is_44_px(self, phone, live_server):
        self.open(phone, live_server)
        assert phone.evaluate("() => document.documentElement.scrollWidth") <= 390
        choices = boxes(phone, "label.choice")
        assert len(choices) == 9
        for box in choices:
            assert box["x"] >= 0 and box["x"] + box["width"] <= 390  # no column cut off
            assert box["width"] >= 44 and box["height"] >= 44
        for box in boxes(phone, "#work button:visible, #work summary, .bar a"):
            assert box["width"] >= 44 and box["height"] >= 44
        # each answer says what it means
        assert phone.locator(".choice-text:visible", has_text="Bottom better").count() == 3

    def test_key_hints_are_hidden_on_a_touch_only_device(self, phone, live_server):
        self.open(phone, live_server)
        assert phone.evaluate("() => matchMedia('(hover: none) and (pointer: coarse)').matches")
        assert phone.locator("#work kbd:visible, #work .key-hint:visible").count() == 0

    def test_the_stacked_summaries_are_top_and_bottom_and_the_verdict_is_what_was_shown(
        self, phone, live_server
    ):
        self.open(phone, live_server)
        assert phone.inner_text("#left-heading").lower() == "top summary"
        assert phone.inner_text("#right-heading").lower() == "bottom summary"
        top, bottom = boxes(phone, "#left-summary")[0], boxes(phone, "#right-summary")[0]
        assert top["y"] + top["height"] <= bottom["y"]
        top_text = phone.inner_text("#left-summary")
        assert (
            phone.get_by_role("radio", name="Factual consistency: Top better", exact=True).count()
            == 1
        )

        for name, value in (
            ("factual", "left"),
            ("informative", "equal"),
            ("grammatical", "right"),
        ):
            phone.tap(f"input[name={name}][value={value}] >> xpath=..")  # the label, by touch
        phone.tap("#judge-form button[type=submit]")
        phone.wait_for_selector(".finished")

        item = Assignment.objects.get(status="submitted")
        shown_on_top = "A" if item.comparison.summary_a.text == top_text.strip() else "B"
        assert item.left_system == shown_on_top
        judgments = {j.criterion: (j.shown, j.verdict) for j in Judgment.objects.all()}
        other = "B" if shown_on_top == "A" else "A"
        assert judgments == {
            "factual": ("left", shown_on_top),
            "informative": ("equal", "equal"),
            "grammatical": ("right", other),
        }
