"""Metric against humans on the results page: tie-aware pairwise accuracy (Deutsch et al.
2023) against an independent loop, and one metric version per figure, never mixed."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.urls import reverse
from django.utils import timezone

from evaluation.models import Role
from research.analysis import compare_metric_with_humans, metric_agreement
from scoring.models import MetricScore
from tests.conftest import make_user
from tests.research.test_analysis import all_criteria, judge


def loop_tie_aware(deltas, humans) -> tuple[float, float]:
    """(best accuracy, smallest epsilon reaching it) over epsilon in {0} and every |delta|."""
    best, best_eps = -1.0, None
    for eps in sorted({0.0, *(abs(d) for d in deltas)}):
        correct = 0
        for d, h in zip(deltas, humans, strict=True):
            metric = 0 if abs(d) <= eps else (1 if d > 0 else -1)
            correct += metric == h
        if correct / len(deltas) > best:
            best, best_eps = correct / len(deltas), eps
    return best, best_eps


class TestTieAwareAccuracy:
    def test_it_matches_a_loop_over_epsilons_with_a_loop_bootstrap_interval(self):
        rng = np.random.default_rng(3)
        n = 60
        humans = rng.choice([-1, 0, 1, -2], p=[0.3, 0.25, 0.35, 0.1], size=n)
        deltas = np.round(humans.clip(-1, 1) * 0.3 + rng.normal(0, 0.4, n), 2)
        rows = [(i, 0.0, float(d)) for i, d in enumerate(deltas)]
        result = compare_metric_with_humans("rouge1", rows, dict(enumerate(humans.tolist())))
        kept = humans != -2
        accuracy, epsilon = loop_tie_aware(deltas[kept].tolist(), humans[kept].tolist())
        tie_aware = result.tie_aware
        assert (tie_aware.accuracy, tie_aware.epsilon) == (pytest.approx(accuracy), epsilon)
        assert tie_aware.comparisons == kept.sum() == result.tau_comparisons
        boot = []
        for _ in range(300):
            j = rng.integers(0, kept.sum(), kept.sum())
            boot.append(loop_tie_aware(deltas[kept][j].tolist(), humans[kept][j].tolist())[0])
        low, high = np.percentile(boot, [2.5, 97.5])
        assert tie_aware.ci.low == pytest.approx(low, abs=0.04)
        assert tie_aware.ci.high == pytest.approx(high, abs=0.04)


def score(summary, value: float, version: str, minutes_ago: int) -> None:
    MetricScore.objects.create(
        summary=summary, metric="rouge1", version=version, status="ok", value=value
    )
    when = timezone.now() - timedelta(minutes=minutes_ago)
    MetricScore.objects.filter(summary=summary, metric="rouge1").update(computed_at=when)


@pytest.fixture
def mixed(batch):
    """Four comparisons judged B better; three scored by version "new" (B higher), one by
    the older "old" (A higher, which would count as a disagreement if mixed in)."""
    users = [make_user(f"m{i}", Role.ANNOTATOR) for i in range(3)]
    comparisons = list(batch.comparisons.select_related("summary_a", "summary_b"))
    for i, comparison in enumerate(comparisons):
        old = i == 0
        version = "rouge-score 0.1.1" if old else "rouge-score 0.1.2"
        score(comparison.summary_a, 0.9 if old else 0.1, version, 60 if old else 1)
        score(comparison.summary_b, 0.2 if old else 0.5, version, 60 if old else 1)
        for user in users:
            judge(comparison, user, all_criteria("B"))
    return batch


@pytest.mark.django_db
class TestMetricVersions:
    def test_it_uses_only_the_current_version(self, mixed):
        result = metric_agreement([mixed.pk], "rouge1")
        assert result.version == "rouge-score 0.1.2"
        assert result.other_versions == {"rouge-score 0.1.1": 2}
        assert (result.agree, result.disagree, result.missing_scores) == (3, 0, 1)
        assert list(result.missing_reasons) == [
            "scored by another version (rouge-score 0.1.1): re-score to include it"
        ]

    def test_the_page_names_the_version_and_says_versions_are_mixed(
        self, client, researcher, mixed
    ):
        client.force_login(researcher)
        content = client.get(reverse("batch_results", args=[mixed.pk])).content.decode()
        assert "<code>rouge-score 0.1.2</code>" in content
        assert "Mixed versions:" in content and "left out, not mixed in" in content
        assert "Tie-aware pairwise accuracy" in content

    def test_one_version_is_not_called_mixed(self, client, researcher, batch):
        comparison = batch.comparisons.select_related("summary_a", "summary_b").first()
        score(comparison.summary_a, 0.1, "v1", 1)
        score(comparison.summary_b, 0.2, "v1", 1)
        result = metric_agreement([batch.pk], "rouge1")
        assert (result.version, result.other_versions) == ("v1", {})


class TestTieAwareGridBootstrap:
    def test_the_grid_interval_of_a_large_study_matches_the_every_epsilon_interval(self):
        from research.statistics import tie_aware_accuracy

        rng = np.random.default_rng(8)
        n = 3000
        humans = rng.choice([-1, 0, 1], p=[0.3, 0.3, 0.4], size=n)
        deltas = rng.normal(0.2 * humans, 0.3)
        exact = tie_aware_accuracy(deltas, humans, n_resamples=400, max_exact_work=10**9)
        grid = tie_aware_accuracy(deltas, humans, n_resamples=400, max_exact_work=0)
        assert exact.ci_method == "every epsilon" and "quantiles" in grid.ci_method
        assert (grid.accuracy, grid.epsilon) == (exact.accuracy, exact.epsilon)
        assert grid.ci.low == pytest.approx(exact.ci.low, abs=0.006)
        assert grid.ci.high == pytest.approx(exact.ci.high, abs=0.006)


@pytest.mark.django_db
class TestMetricsExport:
    def test_it_says_what_the_page_says(self, client, researcher, mixed):
        import json

        client.force_login(researcher)
        page = client.get(reverse("batch_results", args=[mixed.pk]))
        shown = {metric: m for _, m, _, metric in page.context["metrics"]}
        response = client.get(reverse("batch_export", args=[mixed.pk, "metrics", "jsonl"]))
        lines = b"".join(response.streaming_content).decode().splitlines()
        rows = {r["metric"]: r for r in map(json.loads, lines)}
        assert set(rows) == set(shown)
        row, m = rows["rouge1"], shown["rouge1"]
        assert (row["metric_version"], row["other_versions"]) == (
            "rouge-score 0.1.2", "rouge-score 0.1.1: 2",
        )  # fmt: skip
        assert (row["agree"], row["disagree"], row["missing_scores"]) == (3, 0, 1)
        t = m.tie_aware
        assert (row["tie_aware_accuracy"], row["tie_aware_epsilon"]) == (t.accuracy, t.epsilon)
        assert (row["tie_aware_ci_low"], row["tie_aware_ci_high"]) == (t.ci.low, t.ci.high)
        assert (row["tie_aware_seed"], row["tie_aware_resamples"]) == (20210517, 1000)
        assert row["tie_aware_ci_method"] == t.ci_method == "every epsilon"
        # Three comparisons with both current scores, all B better by the metric and humans.
        assert row["tie_aware_comparisons"] == 3 and row["tie_aware_accuracy"] == 1.0
        assert row["flagged_excluded"] is False
        assert b"export/metrics.csv" in page.content

    def test_a_family_that_cannot_score_says_why(self, mixed, settings):
        from research.exports import export

        settings.QUALS_MODEL = ""
        text = "".join(export(mixed, "metrics", "csv"))
        import csv
        import io

        quals = [r for r in csv.DictReader(io.StringIO(text)) if r["metric"] == "quals"]
        assert quals and quals[0]["unavailable"].startswith("QUALS is not configured")
        assert quals[0]["tie_aware_accuracy"] == ""


class TestMetricArrays:
    """The page's numpy comparison of a metric with the humans against the loop over rows."""

    @pytest.mark.parametrize("seed", [1, 2, 3])
    def test_it_matches_the_loop_bucket_by_bucket(self, seed):
        import dataclasses

        from research.analysis import NOT_SCORED, compare_metric_arrays

        rng = np.random.default_rng(seed)
        n = 3000
        cid = np.arange(n, dtype=np.int64) * 3 + 7
        summary_a, summary_b = 2 * cid, 2 * cid + 1
        scores: dict = {}
        for s in np.concatenate([summary_a, summary_b]).tolist():
            r = rng.random()
            if r < 0.8:
                scores[s] = float(np.round(rng.random(), 1))  # rounding makes metric ties
            elif r < 0.9:
                scores[s] = "no score: empty summary"
            # else: not scored yet (absent)
        majorities = {
            int(c): int(rng.choice([-1, 0, 1, -2])) for c in cid.tolist() if rng.random() < 0.9
        }
        rows = [
            (int(c), scores.get(int(a), NOT_SCORED), scores.get(int(b), NOT_SCORED))
            for c, a, b in zip(cid, summary_a, summary_b, strict=True)
        ]
        loop = compare_metric_with_humans("rouge1", rows, majorities)
        arrays = compare_metric_arrays("rouge1", (cid, summary_a, summary_b), scores, majorities)
        assert dataclasses.asdict(arrays) == dataclasses.asdict(loop)
        assert list(arrays.missing_reasons) == list(loop.missing_reasons)  # first seen, first
        assert loop.metric_ties and loop.human_ties and loop.human_no_majority and loop.unjudged

    def test_no_scores_and_no_comparisons(self):
        from research.analysis import compare_metric_arrays

        empty = np.array([], dtype=np.int64)
        result = compare_metric_arrays("rouge1", (empty, empty, empty), {}, {})
        assert (result.comparisons, result.missing_scores, result.tau_comparisons) == (0, 0, 0)
        ids = np.array([1, 2], dtype=np.int64)
        result = compare_metric_arrays("rouge1", (ids, ids * 2, ids * 2 + 1), {}, {1: 1})
        assert result.missing_scores == 2 and result.missing_reasons == {"not scored yet": 4}
