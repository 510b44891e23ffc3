"""A Prolific participant's whole path in Chromium: the link, consent, training failed once and
passed on the second attempt, the quota with an attention check, the survey, the completion code
and the redirect back to the platform. With UPDATE_SCREENSHOTS set it refreshes the pictures in
docs/crowd.md."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from crowd.models import Participant
from evaluation import checks
from evaluation.models import Assignment, Batch, Judgment
from tests.conftest import approved_pool_checks, make_user
from tests.crowd.conftest import crowd_batch, link, make_study

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def shoot(page, name: str) -> None:
    if os.environ.get("UPDATE_SCREENSHOTS"):
        page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def answer_training(page, factual: str) -> None:
    for fieldset in page.locator("section.training-item fieldset").all():
        legend = fieldset.locator("legend").inner_text()
        value = factual if legend.lower().startswith("factual") else "equal"
        fieldset.locator(f"input[value={value}]").check()
    page.click("main form button[type=submit]")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
class TestParticipantPath:
    def test_link_to_completion_code_and_back_to_the_platform(self, page, live_server, monkeypatch):
        batch = crowd_batch(n_docs=3, k=1, quota=3)
        Batch.objects.filter(pk=batch.pk).update(public_title="News summaries", check_every=3)
        approved_pool_checks(batch, 1)
        # Check slots are a random draw per annotator (tests/evaluation/test_checks.py); here
        # the participant's second item, so that the quota surely holds one.
        monkeypatch.setattr(checks, "_slot_low", lambda batch, user_id, n: n == 1)
        study = make_study(
            batch,
            consent_text="This study asks you to compare short news summaries. "
            "It takes about 15 minutes and pays 2.50 GBP.",
            prolific_return_url=live_server.url + "/?cc={code}",
        )

        page.goto(live_server.url + link(study, pid="5f00aa11bb22cc33"))
        expect(page.locator("h1")).to_have_text("Before you start")
        shoot(page, "crowd-consent.png")
        page.click("button[value=yes]")
        expect(page.locator("h1")).to_have_text("Guidelines")
        page.click("main form button[type=submit]")

        expect(page.locator("h1")).to_contain_text("attempt 1 of 2")
        answer_training(page, "left")  # the source says Tuesday: "right" was expected
        expect(page.locator(".outcome")).to_contain_text("try once more")
        assert "Explanation 0: the source says Tuesday." in page.inner_text("main")
        shoot(page, "crowd-training-feedback.png")
        page.click("text=Try again")
        expect(page.locator("h1")).to_contain_text("attempt 2 of 2")
        answer_training(page, "right")
        expect(page.locator(".outcome")).to_contain_text("You passed")
        page.click("text=Start the study")

        for _ in range(3):
            page.wait_for_selector("#judge-form")
            page.wait_for_load_state("load")
            url = page.url
            page.check("input[name=factual][value=left]")
            page.check("input[name=informative][value=equal]")
            page.check("input[name=grammatical][value=right]")
            page.click("#judge-form button[type=submit]")
            expect(page).not_to_have_url(url)
        page.wait_for_url(f"**/crowd/{study.pk}/survey/")
        page.fill("#id_q0", "English")
        page.fill("#id_q1", "Every day")
        page.click("main form button[type=submit]")

        expect(page.locator("h1")).to_contain_text("you have finished")
        assert study.completion_code in page.inner_text("main")
        assert "5f00aa11bb22cc33" not in page.content()  # never the platform id
        shoot(page, "crowd-complete.png")
        page.click("#return")
        page.wait_for_url(f"**/?cc={study.completion_code}")

        participant = Participant.objects.get()
        assert participant.phase == "complete" and participant.training_attempts == 2
        assert participant.survey_answers["Your first language?"] == "English"
        served = Assignment.objects.filter(annotator=participant.user)
        assert served.filter(status="submitted").count() == 3
        assert served.filter(comparison__is_check=True).count() == 1  # the check, in the quota
        assert Judgment.objects.count() == 9  # the quota's; training stored none

    def test_the_admin_sees_links_and_places(self, page, live_server):
        from tests.browser.conftest import log_in

        admin = make_user("ada", "admin")
        batch = crowd_batch(n_docs=10, k=3, quota=20)
        make_study(batch)
        log_in(page, live_server.url, admin.username)
        page.goto(f"{live_server.url}/manage/batches/{batch.pk}/crowd/")
        assert "2 places" in page.inner_text("#capacity")  # 10 x 3 / 20 = 1.5
        assert "PROLIFIC_PID={{%PROLIFIC_PID%}}" in page.inner_text("#links")
        shoot(page, "crowd-study.png")
