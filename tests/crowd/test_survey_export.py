"""Survey answers join the judgments export by annotator (the same pseudonym)."""

from __future__ import annotations

import pytest

from crowd.models import Participant, Phase
from research.exports import annotator_pseudonym, export
from tests.conftest import make_user
from tests.crowd.conftest import crowd_batch, make_study
from tests.research.test_analysis import all_criteria, judge
from tests.research.test_exports import read_csv, read_jsonl

FIRST, NEWS = "Your first language?", "How often do you read the news?"


@pytest.mark.django_db
class TestSurveyColumns:
    @pytest.fixture
    def judged(self):
        batch = crowd_batch(n_docs=2, k=2)
        study = make_study(batch)
        answered = make_user("p-ans", "annotator")
        Participant.objects.create(
            user=answered, study=study, platform="prolific", platform_id="X1",
            phase=Phase.COMPLETE, survey_answers={FIRST: "=Welsh", NEWS: "daily"},
        )  # fmt: skip
        staff = make_user("sam", "annotator")  # an annotator with an account, not a participant
        for comparison in batch.comparisons.filter(is_check=False):
            judge(comparison, answered, all_criteria("B"))
            judge(comparison, staff, all_criteria("A"))
        return batch, answered, staff

    def test_each_judgment_carries_its_participants_answers(self, judged):
        batch, answered, staff = judged
        rows = read_csv(export(batch, "judgments", "csv"))
        assert len(rows) == 2 * 2 * 3
        by = {
            annotator_pseudonym(answered.pk): ("'=Welsh", "daily"),
            annotator_pseudonym(staff.pk): ("", ""),
        }
        for row in rows:
            assert (row[f"survey: {FIRST}"], row[f"survey: {NEWS}"]) == by[row["annotator"]]

    def test_jsonl_keeps_the_answers_verbatim_and_empty_as_null(self, judged):
        batch, answered, _ = judged
        rows = read_jsonl(export(batch, "judgments", "jsonl"))
        mine = [r for r in rows if r["annotator"] == annotator_pseudonym(answered.pk)]
        others = [r for r in rows if r["annotator"] != annotator_pseudonym(answered.pk)]
        assert {r[f"survey: {FIRST}"] for r in mine} == {"=Welsh"}
        assert {r[f"survey: {NEWS}"] for r in others} == {None}

    def test_a_batch_without_a_study_has_no_survey_columns(self, batch):
        header = next(iter(export(batch, "judgments", "csv")))
        assert "survey:" not in header
