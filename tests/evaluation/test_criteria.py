"""The criteria registry is the one place the criteria are defined."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import IntegrityError, transaction

from evaluation import criteria
from evaluation.criteria import CRITERIA, CriterionSpec, keyboard_map
from evaluation.models import Assignment, Criterion, Judgment
from research.forms import CheckForm

STATIC = Path(__file__).resolve().parents[2] / "evaluation" / "static" / "evaluation"


class TestRegistry:
    def test_every_criterion_has_three_distinct_keys_and_a_definition(self):
        for c in CRITERIA:
            assert len(set(c.keys)) == 3 and c.definition.endswith("?")

    def test_the_keyboard_map_answers_every_criterion_three_ways(self):
        keys = keyboard_map()
        assert len(keys) == 3 * len(CRITERIA)
        assert keys["q"] == ("factual", "left") and keys["c"] == ("grammatical", "right")

    def test_a_key_given_to_two_criteria_is_refused(self, monkeypatch):
        clash = CriterionSpec("clarity", "Clarity", "Which is clearer?", ("q", "y", "u"))
        monkeypatch.setattr(criteria, "CRITERIA", (*CRITERIA, clash))
        with pytest.raises(ValueError, match=r"\['q'\] answer two criteria"):
            criteria.keyboard_map()

    def test_no_page_key_answers_a_criterion(self):
        keys = criteria.page_keys()
        answering = set(keyboard_map())
        assert keys["skip"] == "k" and keys["guidelines"] == "g"
        assert not {k.lower() for k in keys.values()} & answering

    def test_a_page_key_that_answers_a_criterion_is_refused(self, monkeypatch):
        monkeypatch.setitem(criteria.PAGE_KEYS, "undo", "Q")
        with pytest.raises(ValueError, match=r"\['Q'\] both answer a criterion"):
            criteria.page_keys()

    def test_two_actions_on_one_key_are_refused(self, monkeypatch):
        monkeypatch.setitem(criteria.PAGE_KEYS, "undo", "k")
        with pytest.raises(ValueError, match="share a key"):
            criteria.page_keys()

    def test_the_schema_reads_it(self):
        assert Criterion.values == [c.key for c in CRITERIA]
        assert [f.name for f in Assignment._meta.fields if f.name.startswith("verdict_")] == [
            c.verdict_column for c in CRITERIA
        ]
        assert Judgment._meta.get_field("criterion").choices == [(c.key, c.label) for c in CRITERIA]

    def test_the_check_form_asks_for_every_criterion(self):
        form = CheckForm({"comparison": 1, "factual": "A", "grammatical": "equal"})
        assert form.is_valid()
        assert form.expected() == {"factual": "A", "grammatical": "equal"}
        assert [name for name in form.fields if name != "comparison"] == [c.key for c in CRITERIA]

    def test_the_judging_script_holds_no_list_of_criteria_or_keys(self):
        script = (STATIC / "annotate.js").read_text()
        for c in CRITERIA:
            assert f'"{c.key}"' not in script
            assert f"{c.keys[0]}: [" not in script
        for key in criteria.PAGE_KEYS.values():
            assert f'key === "{key}"' not in script


@pytest.mark.django_db
class TestVerdictColumnsConstraint:
    def test_a_submitted_assignment_needs_a_code_for_every_criterion(self, batch, annotator):
        from django.utils import timezone

        now = timezone.now()
        codes = {c.verdict_column: 0 for c in CRITERIA[:-1]}  # the last criterion missing
        with pytest.raises(IntegrityError), transaction.atomic():
            Assignment.objects.create(
                comparison=batch.comparisons.first(), annotator=annotator, left_system="A",
                status="submitted", served_at=now, lease_expires_at=now, submitted_at=now,
                **codes,
            )  # fmt: skip
