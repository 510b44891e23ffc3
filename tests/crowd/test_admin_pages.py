"""The admins' crowd pages: setting a study up, its links and capacity, the participants page
with quality figures and the pay calculator, flags, and the exports."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse

from crowd.models import CrowdStudy, Participant, TrainingItem
from evaluation.models import Assignment, Batch
from research.exports import annotator_pseudonym
from tests.crowd.conftest import ALL_LEFT, crowd_batch, link, make_study

pytestmark = pytest.mark.django_db


def study_form(**overrides) -> dict:
    data = {
        "enabled": "on",
        "consent_text": "You agree.",
        "show_guidelines": "on",
        "training_pass_mark": "0.8",
        "survey_questions": "First language?",
        "time_limit_minutes": "90",
        "reward": "1.50",
        "prolific_return_url": "https://app.prolific.com/submissions/complete?cc={code}",
        "mturk_return_url": "",
        "generic_return_url": "",
        "items_per_annotator": "4",
    }
    return data | overrides


class TestStudyManage:
    def test_it_sets_up_a_study_with_quota_links_and_places(self, client, admin_user):
        batch = crowd_batch(n_docs=10, k=3, quota=0)
        client.force_login(admin_user)
        url = reverse("crowd_study", args=[batch.pk])
        assert client.post(url, study_form()).status_code == 302
        batch.refresh_from_db()
        study = CrowdStudy.objects.get(batch=batch)
        assert batch.items_per_annotator == 4 and study.enabled and study.reward == 1.5
        page = client.get(url).content.decode()
        # 10 comparisons x 3 / 4 = 7.5: 8 places.
        assert "8 places" in page
        assert f"key={study.token}" in page
        assert "PROLIFIC_PID={{%PROLIFIC_PID%}}" in page
        assert f"/crowd/{study.pk}/join/mturk/?key={study.token}<" in page
        assert study.completion_code in page and study.screenout_code in page

    def test_a_bad_quota_is_refused_and_changes_nothing(self, client, admin_user):
        batch = crowd_batch(quota=3)
        client.force_login(admin_user)
        url = reverse("crowd_study", args=[batch.pk])
        response = client.post(url, study_form(items_per_annotator="-1"))
        assert response.status_code == 422
        assert response.context["form"].errors["items_per_annotator"]
        batch.refresh_from_db()
        assert batch.items_per_annotator == 3
        assert not CrowdStudy.objects.get(batch=batch).enabled

    def test_it_replaces_training_items_from_jsonl(self, client, admin_user):
        batch = crowd_batch()
        client.force_login(admin_user)
        line = {"source": "S", "left": "L", "right": "R", "expected": {"factual": "left"}}
        url = reverse("crowd_training_upload", args=[batch.pk])
        assert client.post(url, {"items": json.dumps(line)}).status_code == 302
        assert TrainingItem.objects.count() == 1

    @pytest.mark.parametrize(
        "items, error",
        [
            ("not json", "not JSON"),
            ('{"source": "S", "left": "L", "right": "R"}', "'expected' answers are missing"),
            (
                '{"source": "S", "left": "L", "right": "R", "expected": {"vibes": "left"}}',
                "unknown criterion",
            ),
            (
                '{"source": "S", "left": "L", "right": "R", "expected": {"factual": "A"}}',
                "must be one of",
            ),
            ('{"left": "L", "right": "R", "expected": {"factual": "left"}}', "'source'"),
        ],
    )
    def test_bad_training_items_are_refused_and_keep_the_old_ones(
        self, client, admin_user, items, error
    ):
        study = make_study(crowd_batch())
        client.force_login(admin_user)
        url = reverse("crowd_training_upload", args=[study.batch_id])
        response = client.post(url, {"items": items})
        # The study page again (header and all), the reason beside the training field.
        assert response.status_code == 422
        assert b'class="brand"' in response.content
        assert error in " ".join(response.context["training_form"].errors["items"])
        assert response.context["training_form"]["items"].value() == items
        assert TrainingItem.objects.filter(study=study).count() == 2


def run_participant(study, pid: str, judge: int, *, seconds: float, minutes: float) -> Participant:
    """A participant who judged `judge` comparisons (each `seconds` active) and, when they did
    the whole quota, completed `minutes` after arriving."""
    client = Client()
    client.get(link(study, pid=pid))
    participant = Participant.objects.get(platform_id=pid)
    user, batch = participant.user, study.batch
    from evaluation import assignments as engine

    for _ in range(judge):
        item = engine.lease_next(user, batch)
        Assignment.objects.filter(pk=item.pk).update(served_at=item.served_at - timedelta(hours=1))
        engine.submit_judgments(user, item.pk, ALL_LEFT, active_seconds=seconds)
    if judge == batch.items_per_annotator:
        client.get(reverse("annotate", args=[batch.pk]) + "?start")  # on to completion
        participant.refresh_from_db()
        Participant.objects.filter(pk=participant.pk).update(
            finished_at=participant.created_at + timedelta(minutes=minutes)
        )
    participant.refresh_from_db()
    return participant


@pytest.fixture
def ran_study(db):
    study = make_study(
        crowd_batch(n_docs=6, k=2, quota=3),
        consent_text="",
        survey_questions="",
        show_guidelines=False,
        reward="1.00",
    )
    study.training.all().delete()
    run_participant(study, "PA", 3, seconds=30, minutes=10)
    run_participant(study, "PB", 3, seconds=50, minutes=20)
    run_participant(study, "=cmd|' /C calc'!A0", 1, seconds=40, minutes=0)
    return study


class TestParticipantsPage:
    def test_it_shows_each_participants_phase_quality_and_status(
        self, client, admin_user, ran_study
    ):
        client.force_login(admin_user)
        page = client.get(reverse("crowd_participants", args=[ran_study.batch_id]))
        rows = {r.participant.platform_id: r for r in page.context["rows"]}
        assert rows["PA"].submitted == 3 and rows["PA"].median_active_seconds == 30
        assert rows["PB"].median_active_seconds == 50
        assert rows["PA"].completion == "completed: approve"
        assert rows["=cmd|' /C calc'!A0"].completion == "in progress"
        assert b"PA" in page.content  # platform ids: this page is the admins'

    def test_the_calculator_uses_the_observed_median_time(self, client, admin_user, ran_study):
        client.force_login(admin_user)
        page = client.get(reverse("crowd_participants", args=[ran_study.batch_id]))
        # Completed in 10 and 20 minutes: median 15; 1.00 for 15 minutes is 4.00 an hour.
        assert page.context["observed_minutes"] == pytest.approx(15)
        assert page.context["pay"].hourly == pytest.approx(4.0)
        assert b"Below the floor" in page.content
        assert b"pay at least 1.50" in page.content

    def test_the_calculator_takes_a_pilot_time_and_reward(
        self, client, admin_user, ran_study, settings
    ):
        settings.CROWD_PAY_FLOOR_PER_HOUR = 5.0
        settings.CROWD_PAY_RECOMMENDED_PER_HOUR = 8.0
        client.force_login(admin_user)
        url = reverse("crowd_participants", args=[ran_study.batch_id])
        page = client.get(url, {"reward": "3.00", "minutes": "20"})
        assert page.context["pay"].hourly == pytest.approx(9.0)
        assert b"Below the floor" not in page.content
        assert b"below the recommendation" not in page.content
        assert b"floor 5.00, recommended 8.00" in page.content

    def test_a_flag_is_recorded_and_rejects_nobody(self, client, admin_user, ran_study):
        client.force_login(admin_user)
        participant = Participant.objects.get(platform_id="PA")
        url = reverse("crowd_flag", args=[ran_study.batch_id, participant.pk])
        client.post(url, {"flagged": "1", "note": "fast clicks"})
        participant.refresh_from_db()
        assert participant.flagged and participant.flag_note == "fast clicks"
        assert participant.phase == "complete"

    def test_a_flag_on_another_batchs_participant_is_not_found(self, client, admin_user, ran_study):
        other = Batch.objects.exclude(pk=ran_study.batch_id).first() or crowd_batch(name="o")
        client.force_login(admin_user)
        participant = Participant.objects.get(platform_id="PA")
        url = reverse("crowd_flag", args=[other.pk, participant.pk])
        assert client.post(url, {"flagged": "1"}).status_code == 404


def rows_of(response) -> list[dict]:
    text = b"".join(response.streaming_content).decode()
    if response["Content-Type"].startswith("text/csv"):
        return list(csv.DictReader(io.StringIO(text)))
    return [json.loads(line) for line in text.splitlines()]


class TestExport:
    def test_admins_get_platform_ids_with_formulas_neutralised(self, client, admin_user, ran_study):
        client.force_login(admin_user)
        rows = rows_of(client.get(reverse("crowd_export", args=[ran_study.batch_id, "csv"])))
        ids = {r["participant"] for r in rows}
        assert ids == {"PA", "PB", "'=cmd|' /C calc'!A0"}
        pa = next(r for r in rows if r["participant"] == "PA")
        assert (pa["phase"], pa["submitted"], pa["median_active_seconds"]) == (
            "complete",
            "3",
            "30.0",
        )
        assert json.loads(pa["survey_answers"]) == {}
        assert pa["screened_out_reason"] == "" and pa["flagged"] == "False"

    def test_researchers_get_the_judgments_pseudonyms(self, client, researcher, ran_study):
        client.force_login(researcher)
        response = client.get(reverse("crowd_export", args=[ran_study.batch_id, "jsonl"]))
        rows = rows_of(response)
        users = dict(Participant.objects.values_list("platform_id", "user_id"))
        assert {r["participant"] for r in rows} == {annotator_pseudonym(u) for u in users.values()}
        body = json.dumps(rows)
        assert "PA" not in body.replace("PARTICIPANT", "") and "calc" not in body
        # JSONL is never changed by the CSV quoting.
        assert all(not r["participant"].startswith("'") for r in rows)

    def test_an_unknown_format_is_not_found(self, client, admin_user, ran_study):
        client.force_login(admin_user)
        assert (
            client.get(reverse("crowd_export", args=[ran_study.batch_id, "xlsx"])).status_code
            == 404
        )
