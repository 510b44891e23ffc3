"""Each database invariant, attacked directly: the database itself must refuse."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from evaluation.models import (
    Assignment,
    Batch,
    Comparison,
    Document,
    Judgment,
    Summary,
    names_system,
)
from scoring.models import MetricScore, ScoringJob


def refused(fn) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        fn()


def make_assignment(comparison: Comparison, user, **fields) -> Assignment:
    now = timezone.now()
    values = {"left_system": "A", "served_at": now, "lease_expires_at": now, **fields}
    return Assignment.objects.create(comparison=comparison, annotator=user, **values)


@pytest.mark.django_db
class TestBatchConstraints:
    def test_it_refuses_the_same_system_twice(self):
        refused(lambda: Batch.objects.create(name="x", dataset="X", system_a="M", system_b="M"))

    def test_it_refuses_zero_annotators_per_item(self):
        refused(
            lambda: Batch.objects.create(
                name="x", dataset="X", system_a="A", system_b="B", annotators_per_item=0
            )
        )

    def test_it_refuses_an_unknown_status(self):
        refused(
            lambda: Batch.objects.create(
                name="x", dataset="X", system_a="A", system_b="B", status="running"
            )
        )

    def test_it_refuses_a_duplicate_name(self, batch):
        refused(
            lambda: Batch.objects.create(name=batch.name, dataset="X", system_a="A", system_b="B")
        )

    @pytest.mark.parametrize("minutes", [0, 1441])
    def test_it_refuses_a_lease_outside_one_minute_to_a_day(self, batch, minutes):
        refused(lambda: Batch.objects.filter(pk=batch.pk).update(lease_minutes=minutes))

    @pytest.mark.parametrize("gap", [0, 101])
    def test_it_refuses_a_check_gap_outside_1_to_100(self, batch, gap):
        refused(lambda: Batch.objects.filter(pk=batch.pk).update(check_min_gap=gap))

    def test_it_refuses_flagging_before_any_answered_check(self, batch):
        refused(lambda: Batch.objects.filter(pk=batch.pk).update(checks_before_flag=0))

    def test_it_takes_a_lease_of_a_day(self, batch):
        assert Batch.objects.filter(pk=batch.pk).update(lease_minutes=1440) == 1

    def test_it_refuses_an_empty_name(self):
        refused(lambda: Batch.objects.create(name="", dataset="X", system_a="A", system_b="B"))


@pytest.mark.django_db
class TestDocumentAndSummaryConstraints:
    def test_it_refuses_a_duplicate_document_id_in_a_batch(self, batch):
        refused(lambda: Document.objects.create(batch=batch, external_id="doc-1", source="s"))

    def test_it_refuses_an_empty_source(self, batch):
        refused(lambda: Document.objects.create(batch=batch, external_id="new", source=""))

    def test_it_refuses_two_summaries_of_one_system(self, batch):
        doc = batch.documents.first()
        refused(lambda: Summary.objects.create(document=doc, system="MLE", text="again"))

    def test_it_refuses_an_empty_summary(self, batch):
        doc = batch.documents.first()
        refused(lambda: Summary.objects.create(document=doc, system="NEW", text=""))


@pytest.mark.django_db
class TestComparisonConstraints:
    def test_it_refuses_a_summary_compared_with_itself(self, batch):
        comparison = batch.comparisons.first()
        refused(
            lambda: Comparison.objects.create(
                batch=batch,
                document=comparison.document,
                summary_a=comparison.summary_a,
                summary_b=comparison.summary_a,
                annotations_needed=3,
            )
        )

    @pytest.mark.parametrize(
        ("is_check", "state"), [(False, "approved"), (False, "pending"), (True, ""), (True, "x")]
    )
    def test_it_refuses_a_check_state_that_does_not_fit(self, batch, is_check, state):
        pk = batch.comparisons.first().pk
        refused(
            lambda: Comparison.objects.filter(pk=pk).update(is_check=is_check, check_state=state)
        )

    def test_it_takes_a_check_waiting_for_approval(self, batch):
        pk = batch.comparisons.first().pk
        assert Comparison.objects.filter(pk=pk).update(is_check=True, check_state="pending")

    def test_it_refuses_more_annotations_than_needed(self, batch):
        comparison = batch.comparisons.first()
        Comparison.objects.filter(pk=comparison.pk).update(annotations_done=3)
        refused(
            lambda: Comparison.objects.filter(pk=comparison.pk).update(
                annotations_done=F("annotations_done") + 1
            )
        )
        comparison.refresh_from_db()
        assert comparison.annotations_done == 3


@pytest.mark.django_db
class TestAssignmentConstraints:
    def test_it_refuses_a_second_assignment_of_the_same_comparison(self, batch, annotator):
        comparison = batch.comparisons.first()
        make_assignment(comparison, annotator)
        refused(lambda: make_assignment(comparison, annotator, left_system="B"))

    def test_it_refuses_an_unknown_left_system(self, batch, annotator):
        refused(lambda: make_assignment(batch.comparisons.first(), annotator, left_system="C"))

    def test_it_refuses_a_submission_without_its_time(self, batch, annotator):
        refused(lambda: make_assignment(batch.comparisons.first(), annotator, status="submitted"))

    def test_it_refuses_negative_active_time(self, batch, annotator):
        refused(lambda: make_assignment(batch.comparisons.first(), annotator, active_seconds=-1))


@pytest.mark.django_db
class TestJudgmentConstraints:
    @pytest.fixture
    def assignment(self, batch, annotator):
        return make_assignment(batch.comparisons.first(), annotator)

    def test_it_refuses_two_answers_to_one_criterion(self, assignment):
        Judgment.objects.create(
            assignment=assignment, criterion="factual", verdict="A", shown="left"
        )
        refused(
            lambda: Judgment.objects.create(
                assignment=assignment, criterion="factual", verdict="B", shown="right"
            )
        )

    def test_it_refuses_equal_on_screen_but_not_in_system_terms(self, assignment):
        refused(
            lambda: Judgment.objects.create(
                assignment=assignment, criterion="factual", verdict="A", shown="equal"
            )
        )

    def test_it_refuses_an_unknown_criterion(self, assignment):
        refused(
            lambda: Judgment.objects.create(
                assignment=assignment, criterion="style", verdict="A", shown="left"
            )
        )


@pytest.mark.django_db
class TestScoreConstraints:
    def test_it_refuses_a_second_score_of_one_metric(self, batch):
        summary = Summary.objects.first()
        MetricScore.objects.create(summary=summary, metric="quals", status="ok", value=-1.0)
        refused(
            lambda: MetricScore.objects.create(
                summary=summary, metric="quals", status="ok", value=-2.0
            )
        )

    def test_it_refuses_a_score_without_a_value(self, batch):
        summary = Summary.objects.first()
        refused(lambda: MetricScore.objects.create(summary=summary, metric="quals", status="ok"))

    def test_it_refuses_no_score_without_a_reason(self, batch):
        summary = Summary.objects.first()
        refused(
            lambda: MetricScore.objects.create(summary=summary, metric="quals", status="no_score")
        )

    def test_it_refuses_a_no_score_that_carries_a_number(self, batch):
        summary = Summary.objects.first()
        refused(
            lambda: MetricScore.objects.create(
                summary=summary, metric="quals", status="no_score", value=-1e5, reason="no pair"
            )
        )

    def test_it_refuses_progress_beyond_the_total(self, batch):
        refused(
            lambda: ScoringJob.objects.create(batch=batch, kind="rouge", total=2, done=2, failed=1)
        )


class TestNamesSystem:
    @pytest.mark.parametrize(
        ("text", "system"),
        [
            ("con-seq study", "ConSeq"),
            ("ConSeq", "ConSeq"),
            ("A QUALS pilot", "QUALS"),
            ("q.u.a.l.s", "QUALS"),
            ("Ml E", "MLE"),
            ("pgn, bart", "BART"),
            ("Compare with Bart-Large.", "bart_large"),
        ],
    )
    def test_it_finds_a_system_whatever_the_case_spacing_or_punctuation(self, text, system):
        assert names_system(text, system)

    @pytest.mark.parametrize(
        ("text", "system"),
        [
            ("A study", "MLE"),
            ("Bartholomew's news", "BART"),
            ("Is one equal to the other? Choose equals.", "QUALS"),
            ("", "MLE"),
        ],
    )
    def test_it_ignores_a_name_inside_a_longer_word(self, text, system):
        assert not names_system(text, system)


@pytest.mark.django_db
class TestBatchClean:
    def test_it_refuses_a_title_or_guidelines_naming_a_system(self, batch):
        batch.public_title, batch.guidelines = "con-seq study", "Compare with q-u-a-l-s."
        batch.system_a = "ConSeq"
        with pytest.raises(ValidationError) as refused_:
            batch.full_clean()
        assert set(refused_.value.message_dict) == {"public_title", "guidelines"}

    def test_it_takes_a_neutral_title(self, batch):
        batch.public_title, batch.guidelines = "A study", "Read both summaries."
        batch.full_clean()

    def test_the_admin_form_refuses_it_too(self, batch, rf):
        from django.contrib.admin.sites import site

        from evaluation.admin import BatchAdmin

        request = rf.get("/")
        request.user = User.objects.create_superuser("root", "r@example.org", "pw")
        form_class = BatchAdmin(Batch, site).get_form(request, batch, fields=["public_title"])
        form = form_class({"public_title": "QUALS study"}, instance=batch)
        assert not form.is_valid() and "public_title" in form.errors
