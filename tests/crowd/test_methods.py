"""The methods paragraph tells how crowd participants were recruited, trained and paid
(the sentence alone, then as the results page's paragraph carries it)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse

from crowd.methods import recruitment
from crowd.models import Participant, Phase
from research import methods
from tests.conftest import make_user
from tests.crowd.conftest import crowd_batch, make_study


@pytest.mark.django_db
class TestRecruitmentSentence:
    def test_counts_training_quota_and_the_hourly_rate_at_the_median_time(self):
        batch = crowd_batch(quota=4)
        study = make_study(batch, reward="3.00", training_pass_mark=0.5)
        spent = {"a": 10, "b": 20, "c": 45}  # minutes from arrival to completion
        for name, minutes in spent.items():
            p = Participant.objects.create(
                user=make_user(f"p-{name}", "annotator"), study=study, platform="prolific",
                platform_id=name, phase=Phase.COMPLETE,
            )  # fmt: skip
            Participant.objects.filter(pk=p.pk).update(
                finished_at=p.created_at + timedelta(minutes=minutes)
            )
        Participant.objects.create(
            user=make_user("p-d", "annotator"), study=study, platform="prolific",
            platform_id="d", phase=Phase.SCREENED_OUT, screened_out_reason="training",
        )  # fmt: skip
        facts = methods.MethodsFacts(**{**_blank_facts(), "batch_ids": [batch.pk]})
        text = recruitment(facts)
        assert "recruited through Prolific: 4 joined, 3 completed, 1 were screened out" in text
        assert "pass mark 50%, two attempts" in text
        assert "at most 4 comparisons, checks included" in text
        # median of 10, 20, 45 minutes is 20: 3.00 for 20 minutes is 9.00 an hour
        assert "3.00 GBP for a median 20.0 minutes, 9.00 GBP an hour" in text

    def test_a_batch_without_a_crowd_study_says_nothing_of_recruitment(self):
        batch = crowd_batch()
        facts = methods.MethodsFacts(**{**_blank_facts(), "batch_ids": [batch.pk]})
        assert recruitment(facts) is None

    def test_the_results_page_paragraph_carries_it(self, client):
        batch = crowd_batch()
        make_study(batch)
        client.force_login(make_user("rita", "researcher"))
        response = client.get(reverse("batch_results", args=[batch.pk]))
        assert "recruited through study links: 0 joined" in response.context["methods_paragraph"]


def _blank_facts() -> dict:
    return dict(  # noqa: C408 (keywords read as the dataclass's fields)
        dataset="XSUM", system_a="MLE", system_b="QUALS", comparisons=0, comparisons_in_batch=0,
        annotators=0, ks=[2], judgments=0, criteria=[], check_every=[0], check_comparisons=0,
        check_answers=0, check_thresholds=[0.5], flagged=0, excluded_annotators=0,
        excluded=False, test_methods=[], test_resamples=None, test_seed=None,
        bootstrap_resamples=0, bootstrap_seed=0, version="test",
    )  # fmt: skip
