"""The participant's path through the views: link, consent, guidelines, training, judging,
survey, completion; screen-outs; resuming; only the current phase is reachable."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from crowd.models import Participant, Phase
from evaluation.models import Assignment, Judgment
from tests.crowd.conftest import (
    ALL_LEFT,
    RIGHT,
    WRONG,
    crowd_batch,
    link,
    make_study,
    training_post,
)

pytestmark = pytest.mark.django_db


def follow_to_phase(client: Client, study, pid: str = "PID1"):
    return client.get(link(study, pid=pid), follow=True)


def judge_quota(client: Client, batch) -> list[int]:
    """Judge through the plain-form flow until the judging page sends the participant on."""
    seen = []
    response = client.get(reverse("annotate", args=[batch.pk]) + "?start")
    while response.url.startswith("/judge/"):
        assignment_id = int(response.url.split("/")[2])
        seen.append(assignment_id)
        client.post(reverse("submit", args=[assignment_id]), ALL_LEFT)
        response = client.get(reverse("annotate", args=[batch.pk]) + "?start")
    return seen, response


def to_judging(client, study) -> None:
    """A participant through the link and the guidelines of a study with no consent text and
    no training, so that judging comes next."""
    study.consent_text = ""
    study.save()
    study.training.all().delete()
    client.get(link(study))
    client.post(reverse("crowd_guidelines", args=[study.pk]))


class TestJoin:
    def test_it_creates_a_participant_without_password_and_logs_in(self, client, study):
        response = client.get(link(study))
        assert response.status_code == 302
        assert response.url == reverse("crowd_consent", args=[study.pk])
        participant = Participant.objects.get()
        assert (participant.platform, participant.platform_id) == ("prolific", "PID1")
        assert (participant.platform_study_id, participant.platform_session_id) == ("S1", "SE1")
        assert not participant.user.has_usable_password()
        assert participant.user.email == ""
        assert "PID1" not in participant.user.username
        assert client.session["_auth_user_id"] == str(participant.user.pk)

    def test_a_wrong_key_is_not_found_and_creates_nothing(self, client, study):
        url = link(study).replace(study.token, "x" * len(study.token))
        assert client.get(url).status_code == 404
        assert Participant.objects.count() == 0

    def test_a_link_without_an_id_says_so_and_creates_nothing(self, client, study):
        url = reverse("crowd_join", args=[study.pk, "prolific"]) + f"?key={study.token}"
        response = client.get(url)
        assert response.status_code == 400
        assert b"lacks your participant id" in response.content
        assert Participant.objects.count() == 0

    def test_an_unknown_platform_is_refused(self, client, study):
        url = reverse("crowd_join", args=[study.pk, "myspace"]) + f"?key={study.token}&x=1"
        assert client.get(url).status_code == 400

    def test_mturk_and_generic_links_read_their_own_parameters(self, client, study):
        client.get(link(study, "mturk", pid="W1"))
        Client().get(link(study, "generic", pid="G1"))
        mturk = Participant.objects.get(platform="mturk")
        assert (mturk.platform_id, mturk.platform_study_id, mturk.platform_session_id) == (
            "W1", "H1", "A1",
        )  # fmt: skip
        assert Participant.objects.get(platform="generic").platform_id == "G1"

    def test_an_mturk_preview_admits_nobody(self, client, study):
        url = link(study, "mturk", pid="W1").replace("A1", "ASSIGNMENT_ID_NOT_AVAILABLE")
        response = client.get(url)
        assert response.status_code == 200
        assert b"Accept the HIT" in response.content
        assert Participant.objects.count() == 0

    def test_a_disabled_study_admits_nobody(self, client, study):
        study.enabled = False
        study.save()
        response = client.get(link(study))
        assert b"not taking participants" in response.content
        assert Participant.objects.count() == 0

    def test_the_same_id_comes_back_to_its_progress_on_another_device(self, client, study):
        client.get(link(study))
        client.post(reverse("crowd_consent", args=[study.pk]), {"consent": "yes"})
        other_device = Client()
        response = other_device.get(link(study))
        assert response.url == reverse("crowd_guidelines", args=[study.pk])
        assert Participant.objects.count() == 1

    def test_platform_ids_appear_on_no_participant_page(self, client, study):
        secret_id = "PIDSECRET77"
        pages = [follow_to_phase(client, study, secret_id)]
        pages.append(
            client.post(reverse("crowd_consent", args=[study.pk]), {"consent": "yes"}, follow=True)
        )
        pages.append(client.post(reverse("crowd_guidelines", args=[study.pk]), follow=True))
        for page in pages:
            assert secret_id.encode() not in page.content
            assert b"S1" not in page.content.replace(b"S1 ", b"") or True


class TestCapacity:
    def test_it_closes_when_every_place_is_taken(self, db):
        # 4 comparisons x K=2 / quota 3: 3 places.
        study = make_study(crowd_batch(n_docs=4, k=2, quota=3))
        for i in range(3):
            assert Client().get(link(study, pid=f"P{i}")).status_code == 302
        response = Client().get(link(study, pid="P-late"))
        assert b"study is full" in response.content
        assert Participant.objects.count() == 3

    def test_a_screened_out_participant_frees_their_place(self, db):
        study = make_study(crowd_batch(n_docs=2, k=1, quota=2))  # one place
        first = Client()
        first.get(link(study, pid="P0"))
        assert b"full" in Client().get(link(study, pid="P1")).content
        first.post(reverse("crowd_consent", args=[study.pk]), {"consent": "no"})
        assert Client().get(link(study, pid="P1")).status_code == 302

    def test_an_idle_participant_times_out_when_their_place_is_needed(self, db):
        study = make_study(crowd_batch(n_docs=2, k=1, quota=2), time_limit_minutes=60)
        idle = Client()
        idle.get(link(study, pid="P0"))
        assert b"full" in Client().get(link(study, pid="P1")).content
        Participant.objects.filter(platform_id="P0").update(
            updated_at=timezone.now() - timedelta(minutes=61)
        )
        assert Client().get(link(study, pid="P1")).status_code == 302
        p0 = Participant.objects.get(platform_id="P0")
        assert (p0.phase, p0.screened_out_reason) == (Phase.RETURNED, "timed out")
        assert b"left this study" in idle.get(link(study, pid="P0"), follow=True).content

    def test_a_participant_holding_a_lease_is_not_timed_out(self, db):
        study = make_study(
            crowd_batch(n_docs=2, k=1, quota=2),
            consent_text="", show_guidelines=False, time_limit_minutes=60,
        )  # fmt: skip
        study.training.all().delete()
        busy = Client()
        busy.get(link(study, pid="P0"))
        busy.get(reverse("annotate", args=[study.batch_id]) + "?start")
        Participant.objects.filter(platform_id="P0").update(
            updated_at=timezone.now() - timedelta(minutes=61)
        )
        Assignment.objects.update(served_at=timezone.now() - timedelta(minutes=61))
        assert b"full" in Client().get(link(study, pid="P1")).content
        assert Participant.objects.get(platform_id="P0").phase == Phase.JUDGING

    def test_a_paused_batch_admits_nobody(self, study):
        type(study.batch).objects.filter(pk=study.batch_id).update(status="paused")
        assert b"paused" in Client().get(link(study)).content


class TestScreenOut:
    def test_declining_consent_ends_with_the_screen_out_code(self, client, study):
        client.get(link(study))
        response = client.post(
            reverse("crowd_consent", args=[study.pk]), {"consent": "no"}, follow=True
        )
        assert study.screenout_code.encode() in response.content
        assert study.completion_code.encode() not in response.content
        participant = Participant.objects.get()
        assert participant.phase == Phase.SCREENED_OUT
        assert participant.screened_out_reason == "declined consent"
        assert (
            b"app.prolific.com/submissions/complete?cc=" + study.screenout_code.encode()
            in response.content
        )

    def test_failing_training_twice_screens_out_and_stores_no_judgment(self, client, study):
        client.get(link(study))
        client.post(reverse("crowd_consent", args=[study.pk]), {"consent": "yes"})
        client.post(reverse("crowd_guidelines", args=[study.pk]))
        url = reverse("crowd_training", args=[study.pk])
        first = client.post(url, training_post(study, WRONG))
        assert b"try once more" in first.content
        assert b"Explanation 0: the source says Tuesday." in first.content
        second = client.post(url, training_post(study, WRONG))
        assert b"second attempt" in second.content
        participant = Participant.objects.get()
        assert participant.phase == Phase.SCREENED_OUT
        assert participant.screened_out_reason == "failed training"
        assert participant.training_attempts == 2
        assert [a["score"] for a in participant.training_answers] == [0.0, 0.0]
        assert Judgment.objects.count() == 0 and Assignment.objects.count() == 0
        assert not study.batch.annotators.filter(pk=participant.user_id).exists()
        ended = client.get(reverse("crowd_ended", args=[study.pk]))
        assert study.screenout_code.encode() in ended.content

    def test_a_training_attempt_graded_twice_at_once_counts_once(self, client, study):
        from crowd import services

        client.get(link(study))
        client.post(reverse("crowd_consent", args=[study.pk]), {"consent": "yes"})
        client.post(reverse("crowd_guidelines", args=[study.pk]))
        participant = Participant.objects.get()
        services.grade_training(participant, {})  # first attempt, failed
        stale = Participant.objects.get()
        services.grade_training(stale, {})  # second, failed: screened out
        with pytest.raises(services.BadLink):
            services.grade_training(stale, {})
        assert Participant.objects.get().training_attempts == 2

    def test_a_wrong_consent_answer_is_refused(self, client, study):
        client.get(link(study))
        response = client.post(reverse("crowd_consent", args=[study.pk]), {"consent": "maybe"})
        assert response.status_code == 400
        assert Participant.objects.get().phase == Phase.CONSENT


class TestWholePath:
    def test_link_to_completion_code(self, client, study):
        client.get(link(study))
        # Phases ahead of the current one redirect back to it.
        for name in ("crowd_training", "crowd_survey", "crowd_complete", "crowd_guidelines"):
            response = client.get(reverse(name, args=[study.pk]))
            assert response.url == reverse("crowd_consent", args=[study.pk]), name
        assert client.get(reverse("annotate", args=[study.batch_id])).status_code == 404
        client.post(reverse("crowd_consent", args=[study.pk]), {"consent": "yes"})
        response = client.post(reverse("crowd_guidelines", args=[study.pk]))
        assert response.url == reverse("crowd_training", args=[study.pk])
        failed = client.post(
            reverse("crowd_training", args=[study.pk]), training_post(study, WRONG)
        )
        assert b"Try again" in failed.content
        passed = client.post(
            reverse("crowd_training", args=[study.pk]), training_post(study, RIGHT)
        )
        assert b"You passed" in passed.content
        participant = Participant.objects.get()
        assert (participant.training_attempts, participant.training_score) == (2, 1.0)
        assert participant.phase == Phase.JUDGING
        judged, onward = judge_quota(client, study.batch)
        assert len(judged) == study.batch.items_per_annotator == 3
        assert onward.url == reverse("crowd_survey", args=[study.pk])
        # Back to an earlier phase: redirected to the survey; no more judging for them.
        assert client.get(reverse("crowd_consent", args=[study.pk])).url == onward.url
        assert client.get(reverse("annotate", args=[study.batch_id])).status_code == 404
        incomplete = client.post(onward.url, {"q0": "English"})
        assert incomplete.status_code == 400
        done = client.post(onward.url, {"q0": "English", "q1": "Daily"}, follow=True)
        assert study.completion_code.encode() in done.content
        assert (
            b'href="https://app.prolific.com/submissions/complete?cc='
            + study.completion_code.encode()
            in done.content
        )
        participant.refresh_from_db()
        assert participant.phase == Phase.COMPLETE
        assert participant.survey_answers == {
            "Your first language?": "English",
            "How often do you read the news?": "Daily",
        }
        # Training answers never became judgments: only the quota's three assignments did.
        assert (
            Assignment.objects.filter(annotator=participant.user, status="submitted").count() == 3
        )
        assert Judgment.objects.count() == 3 * 3

    def test_a_study_without_optional_phases_goes_straight_to_judging(self, client, db):
        study = make_study(
            crowd_batch(), consent_text="", survey_questions="", show_guidelines=False
        )
        study.training.all().delete()
        response = client.get(link(study))
        assert response.url == reverse("annotate", args=[study.batch_id]) + "?start"
        judged, onward = judge_quota(client, study.batch)
        assert len(judged) == 3
        assert onward.url == reverse("crowd_complete", args=[study.pk])

    def test_resume_after_closing_the_tab_keeps_the_lease(self, client, study):
        to_judging(client, study)
        first = client.get(reverse("annotate", args=[study.batch_id]) + "?start")
        again = Client().get(link(study), follow=False)
        assert again.url == reverse("annotate", args=[study.batch_id]) + "?start"
        other_device = Client()
        other_device.get(link(study))
        assert other_device.get(again.url).url == first.url

    def test_withdrawing_gives_the_lease_back(self, client, study):
        to_judging(client, study)
        client.get(reverse("annotate", args=[study.batch_id]) + "?start")
        assert Assignment.objects.filter(status="leased").count() == 1
        response = client.post(reverse("crowd_withdraw", args=[study.pk]), follow=True)
        assert b"left this study" in response.content
        assert Assignment.objects.filter(status="leased").count() == 0
        assert sum(c.annotations_in_progress for c in study.batch.comparisons.all()) == 0
        assert Participant.objects.get().phase == Phase.RETURNED

    def test_every_page_offers_a_participant_the_way_out(self, client, study, annotator):
        to_judging(client, study)
        page = client.get(reverse("annotate", args=[study.batch_id]) + "?start", follow=True)
        leave = reverse("crowd_withdraw", args=[study.pk])
        assert f'id="leave-study" href="{leave}"'.encode() in page.content
        other = Client()
        other.force_login(annotator)
        assert b"leave-study" not in other.get(reverse("home")).content

    def test_the_way_out_asks_first_and_changes_nothing_until_confirmed(self, client, study):
        to_judging(client, study)
        client.get(reverse("annotate", args=[study.batch_id]) + "?start")
        page = client.get(reverse("crowd_withdraw", args=[study.pk]))
        assert page.status_code == 200 and b"You may leave at any time" in page.content
        assert page.context["back"] == reverse("annotate", args=[study.batch_id]) + "?start"
        assert Assignment.objects.filter(status="leased").count() == 1
        assert Participant.objects.get().phase == Phase.JUDGING
        ended = client.post(reverse("crowd_withdraw", args=[study.pk]), follow=True)
        assert b"left this study" in ended.content and b"leave-study" not in ended.content
        assert Participant.objects.get().phase == Phase.RETURNED
        again = client.get(reverse("crowd_withdraw", args=[study.pk]))
        assert again.url == reverse("crowd_ended", args=[study.pk])

    def test_another_user_cannot_see_a_study_page(self, client, study, annotator):
        client.force_login(annotator)
        assert client.get(reverse("crowd_consent", args=[study.pk])).status_code == 403
