"""ROUGE scoring of summaries and the progress of scoring jobs."""

from __future__ import annotations

import pytest
from rouge_score import rouge_scorer

from evaluation.models import Summary
from scoring import services
from scoring.models import MetricScore, ScoringJob
from scoring.rouge import rouge_f
from scoring.tasks import score_rouge


class TestRougeF:
    def test_it_matches_the_rouge_score_package_with_stemming(self):
        scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
        expected = scorer.score("The cats were running home.", "A cat runs home.")
        got = rouge_f("A cat runs home.", "The cats were running home.")
        assert got == {k: v.fmeasure for k, v in expected.items()}
        assert got["rouge1"] == pytest.approx(2 * (3 / 4) * (3 / 5) / (3 / 4 + 3 / 5))


@pytest.mark.django_db
class TestScoreSummaryRouge:
    def test_it_stores_three_f_scores(self, batch):
        summary = Summary.objects.get(document__external_id="doc-1", system="QUALS")
        services.score_summary("rouge", summary.pk)
        scores = {s.metric: s for s in MetricScore.objects.filter(summary=summary)}
        assert set(scores) == {"rouge1", "rouge2", "rougeL"}
        expected = rouge_f(summary.text, summary.document.reference)
        assert scores["rouge1"].value == pytest.approx(expected["rouge1"])
        assert scores["rouge1"].version.startswith("rouge-score 0.1.2")

    def test_it_stores_no_score_with_a_reason_without_a_reference(self, batch):
        summary = Summary.objects.filter(document__batch=batch).first()
        summary.document.reference = ""
        summary.document.save()
        services.score_summary("rouge", summary.pk)
        score = MetricScore.objects.get(summary=summary, metric="rougeL")
        assert (score.status, score.value) == ("no_score", None)
        assert score.reason == "the document has no reference summary"

    def test_it_is_safe_to_run_twice(self, batch):
        summary = Summary.objects.first()
        job = ScoringJob.objects.create(batch=batch, kind="rouge", total=1)
        score_rouge.run(summary.pk, job.pk)
        score_rouge.run(summary.pk, job.pk)
        assert MetricScore.objects.filter(summary=summary).count() == 3
        job.refresh_from_db()
        assert (job.done, job.status) == (1, "done")
        assert job.finished_at is not None

    def test_it_ignores_a_deleted_summary(self, batch):
        score_rouge.run(999999)
        assert not MetricScore.objects.exists()


@pytest.mark.django_db
class TestScoringJobs:
    def test_it_enqueues_every_family_for_every_summary_and_skips_unconfigured_quals(
        self, batch, settings, sent_tasks
    ):
        settings.QUALS_MODEL = ""
        jobs = {job.kind: job for job in services.start_batch_scoring(batch.pk)}
        assert set(jobs) == {"rouge", "fragments"}
        assert jobs["rouge"].total == jobs["fragments"].total == 8
        summaries = sorted(
            Summary.objects.filter(document__batch=batch).values_list("id", flat=True)
        )
        for kind, job in jobs.items():
            assert sorted(s for k, s, j in sent_tasks if k == kind and j == job.pk) == summaries

    def test_it_leaves_scored_summaries_alone_unless_forced(self, batch, monkeypatch):
        monkeypatch.setattr(score_rouge, "delay", lambda *args: None)
        services.score_summary("rouge", Summary.objects.first().pk)
        assert services.start_batch_scoring(batch.pk, ["rouge"])[0].total == 7
        assert services.start_batch_scoring(batch.pk, ["rouge"], force=True)[0].total == 8

    def test_it_records_each_failure_once_with_its_reason(self, batch):
        job = ScoringJob.objects.create(batch=batch, kind="rouge", total=2)
        services.record_failure(job.pk, 1, "OperationalError: gone")
        services.record_failure(job.pk, 1, "OperationalError: gone")
        job.refresh_from_db()
        assert job.failed == 1
        assert job.failures == [{"summary_id": 1, "reason": "OperationalError: gone"}]

    def test_it_finishes_with_failures(self, batch):
        summary = Summary.objects.first()
        job = ScoringJob.objects.create(batch=batch, kind="rouge", total=2)
        services.record_failure(job.pk, 123, "boom")
        services.score_summary("rouge", summary.pk, job.pk)
        job.refresh_from_db()
        assert (job.done, job.failed, job.status) == (1, 1, "failed")
