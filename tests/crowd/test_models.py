"""The crowd tables' invariants, held by the database whatever the code does."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from crowd.models import CrowdStudy, Participant
from tests.conftest import make_user
from tests.crowd.conftest import crowd_batch

pytestmark = pytest.mark.django_db


@pytest.fixture
def study():
    return CrowdStudy.objects.create(batch=crowd_batch())


def participant(study, pid="P", **fields) -> Participant:
    user = make_user(f"p-{pid}-{Participant.objects.count()}", "annotator")
    return Participant.objects.create(
        user=user, study=study, platform="prolific", platform_id=pid, **fields
    )


class TestConstraints:
    def test_one_participant_per_platform_id(self, study):
        participant(study, "P")
        participant(study, "P2")
        with pytest.raises(IntegrityError), transaction.atomic():
            participant(study, "P")

    def test_the_same_id_on_another_platform_is_another_participant(self, study):
        participant(study, "P")
        user = make_user("p-other", "annotator")
        Participant.objects.create(user=user, study=study, platform="mturk", platform_id="P")
        assert Participant.objects.count() == 2

    @pytest.mark.parametrize(
        "pid, fields",
        [
            ("P", {"phase": "judged"}),
            ("P", {"platform": "myspace"}),
            ("", {}),
            ("P", {"training_attempts": 3}),
        ],
    )
    def test_it_refuses_an_invalid_row(self, study, pid, fields):
        with pytest.raises(IntegrityError), transaction.atomic():
            user = make_user("p-bad", "annotator")
            row = {"platform": "prolific", "platform_id": pid} | fields
            Participant.objects.create(user=user, study=study, **row)

    def test_codes_differ_and_pass_mark_is_a_share(self, study):
        with pytest.raises(IntegrityError), transaction.atomic():
            CrowdStudy.objects.filter(pk=study.pk).update(completion_code=study.screenout_code)
        with pytest.raises(IntegrityError), transaction.atomic():
            CrowdStudy.objects.filter(pk=study.pk).update(training_pass_mark=1.5)

    def test_tokens_and_codes_are_drawn_per_study(self, study):
        other = CrowdStudy.objects.create(batch=crowd_batch(name="other"))
        assert other.token != study.token and len(study.token) >= 32
        assert other.completion_code != study.completion_code
