"""The results page's uncertainty, reliability and power figures (issue 13, points 2 and 3),
each against an independent computation: loops over comparisons, the krippendorff package on
the reliability matrix, a naive pigeonhole loop, an analytic normal power."""

from __future__ import annotations

import itertools
import math

import krippendorff
import numpy as np
import pytest
from scipy import stats

from research import analysis
from research.statistics import simulate_verdicts
from tests.research.test_statistics import (
    close_interval,
    flat,
    naive_pigeonhole,
    naive_pigeonhole_win,
)


def judgments(comparison, annotator, verdict) -> analysis.Judgments:
    """One criterion (factual) of a simulated study."""
    return analysis.Judgments(
        comparison=np.asarray(comparison, dtype=np.int64),
        annotator=np.asarray(annotator, dtype=np.int64),
        criterion=np.zeros(len(verdict), dtype=np.int8),
        verdict=np.asarray(verdict, dtype=np.int8),
    )


def study(n=300, annotators=30, shares=(0.45, 0.25, 0.3), rho=0.5, seed=11):
    return flat(simulate_verdicts(shares, 3, n, rho, seed=seed)[0], annotators)


def by_comparison(comparison, verdict) -> list[list[int]]:
    groups: dict[int, list[int]] = {}
    for c, v in zip(comparison.tolist(), verdict.tolist(), strict=True):
        groups.setdefault(c, []).append(v)
    return list(groups.values())


def loop_agreement(groups) -> float:
    pairs = [x == y for g in groups for x, y in itertools.combinations(g, 2)]
    return float(np.mean(pairs))


def loop_icc(groups) -> float:
    """One-way ANOVA ICC(1) with unequal group sizes, by the textbook sums of squares."""
    values = [v for g in groups for v in g]
    grand, total, g = np.mean(values), len(values), len(groups)
    ssb = sum(len(x) * (np.mean(x) - grand) ** 2 for x in groups)
    ssw = sum(sum((v - np.mean(x)) ** 2 for v in x) for x in groups)
    msb, msw = ssb / (g - 1), ssw / (total - g)
    k0 = (total - sum(len(x) ** 2 for x in groups) / total) / (g - 1)
    return (msb - msw) / (msb + (k0 - 1) * msw)


def normal_power(shares, k, rho, n, alpha=0.05) -> float:
    """Analytic power of the comparison-level z test (the sign-flip test's normal form)."""
    p_b, _, p_a = shares
    mu = p_b - p_a
    s2 = (p_b + p_a - mu**2) * (1 + (k - 1) * rho) / k
    z = stats.norm.ppf(1 - alpha / 2)
    shift = abs(mu) * math.sqrt(n)
    return float(stats.norm.cdf((shift - z * math.sqrt(s2 + mu**2)) / math.sqrt(s2)))


class TestTwoWayOnThePage:
    def test_a_crossed_design_gets_the_pigeonhole_interval_of_a_naive_loop(self):
        comparison, annotator, verdict = study()
        level = analysis.comparison_level(judgments(comparison, annotator, verdict), "factual")
        assert level.net.two_way_reason == ""
        close_interval(level.net.two_way_ci, naive_pigeonhole(comparison, annotator, verdict))
        assert level.win.two_way_reason == ""
        close_interval(level.win.two_way_ci, naive_pigeonhole_win(comparison, annotator, verdict))

    def test_a_page_that_does_not_show_it_skips_it(self):
        comparison, annotator, verdict = study()
        data = judgments(comparison, annotator, verdict)
        level = analysis.comparison_level(data, "factual", two_way=False)
        assert level.net.two_way_ci is None and level.win.two_way_ci is None
        full = analysis.comparison_level(data, "factual")
        assert (level.net.ci, level.win.ci, level.test) == (full.net.ci, full.win.ci, full.test)

    def test_a_nested_design_says_why_there_is_none(self):
        comparison, annotator, verdict = study(annotators=None)
        level = analysis.comparison_level(judgments(comparison, annotator, verdict), "factual")
        assert level.net.two_way_ci is None
        assert "only 3 annotators" in level.net.two_way_reason

    def test_a_large_study_says_how_long_it_would_take(self, monkeypatch):
        monkeypatch.setattr(analysis, "TWO_WAY_MAX_WORK", 1000)
        comparison, annotator, verdict = study()
        level = analysis.comparison_level(judgments(comparison, annotator, verdict), "factual")
        assert level.net.two_way_ci is None and level.net.ci is not None
        assert "would take about" in level.net.two_way_reason
        assert "300 comparisons x 2,000 resamples" in level.net.two_way_reason


class TestReliability:
    def test_alpha_and_raw_agreement_match_the_package_and_a_loop_with_intervals(self):
        comparison, annotator, verdict = study(n=120)
        result = analysis.reliability(judgments(comparison, annotator, verdict), "factual")
        matrix = np.full((30, 120), np.nan)
        matrix[annotator, comparison] = verdict
        expected = krippendorff.alpha(
            reliability_data=matrix, value_domain=[-1, 0, 1], level_of_measurement="ordinal"
        )
        groups = by_comparison(comparison, verdict)
        assert result.alpha == pytest.approx(expected)
        assert result.agreement == pytest.approx(loop_agreement(groups))
        rng = np.random.default_rng(5)
        agreements = []
        for _ in range(1000):
            drawn = [groups[j] for j in rng.integers(0, len(groups), len(groups))]
            agreements.append(loop_agreement(drawn))
        close_interval(result.agreement_ci, np.percentile(agreements, [2.5, 97.5]))
        assert result.alpha_ci.low < result.alpha < result.alpha_ci.high


class TestPowerHint:
    def test_it_plans_from_the_shares_and_the_icc_of_the_data(self):
        comparison, annotator, verdict = study(n=200, shares=(0.4, 0.3, 0.3), rho=0.5)
        hint = analysis.power_hint(judgments(comparison, annotator, verdict), "factual")
        groups = by_comparison(comparison, verdict)
        codes = verdict.tolist()
        shares = tuple(codes.count(v) / len(codes) for v in (1, 0, -1))
        assert hint.pilot.shares == pytest.approx(shares)
        assert hint.rho == pytest.approx(loop_icc(groups))
        assert (hint.k, hint.design_effect) == (3, pytest.approx(1 + 2 * hint.rho))
        analytic_now = normal_power(shares, 3, hint.rho, 200)
        assert hint.power_now.power == pytest.approx(analytic_now, abs=0.04)
        n = hint.needed.comparisons
        assert normal_power(shares, 3, hint.rho, n) == pytest.approx(0.8, abs=0.03)
        assert hint.needed.power >= 0.8

    def test_it_has_no_answer_without_an_effect_or_replication(self):
        same = judgments([1, 1, 2, 2], [1, 2, 1, 2], [1, -1, -1, 1])
        assert analysis.power_hint(same, "factual").needed.comparisons is None
        single = judgments([1, 2, 3], [1, 1, 1], [1, 1, -1])
        hint = analysis.power_hint(single, "factual")
        assert hint.needed is None and "judged twice or more" in hint.reason


class TestTwoWayNormalLimit:
    def test_a_large_crossed_study_gets_the_interval_of_a_naive_pigeonhole_loop(self, monkeypatch):
        monkeypatch.setattr(analysis, "TWO_WAY_MAX_WORK", 1000)  # as if the study were huge
        comparison, annotator, verdict = study(n=4000, annotators=40, rho=0.3)
        # Annotators who differ: a per-annotator lean, so that resampling them matters.
        lean = np.random.default_rng(4).random(40) < 0.3
        verdict = np.where(lean[annotator] & (verdict == -1), 0, verdict)
        level = analysis.comparison_level(judgments(comparison, annotator, verdict), "factual")
        assert "normal limit" in level.net.two_way_method and level.net.two_way_reason == ""
        expected = naive_pigeonhole(comparison, annotator, verdict, n_resamples=600)
        close_interval(level.net.two_way_ci, expected, share=0.15)
        one_way = level.net.ci.high - level.net.ci.low
        assert level.net.two_way_ci.high - level.net.two_way_ci.low > one_way
        assert "normal limit" in level.win.two_way_method
        expected = naive_pigeonhole_win(comparison, annotator, verdict, n_resamples=600)
        close_interval(level.win.two_way_ci, expected, share=0.15)
        assert level.win.two_way_ci.high - level.win.two_way_ci.low > (
            level.win.ci.high - level.win.ci.low
        )
