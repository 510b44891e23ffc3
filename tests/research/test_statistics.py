"""research.statistics, every figure checked against an independent computation: scipy,
statsmodels, pandas, the `krippendorff` package on a reliability matrix, or a plain loop.

Real data: the XSum factuality labels of Maynez et al. (2020) in /work/shared/data (three
workers per summary, is_factual yes/no). A comparison is one article, system A = PtGen,
system B = TConvS2S; a worker's verdict is factual(B) - factual(A) in {-1, 0, +1}.
"""

from __future__ import annotations

import itertools
import math

import krippendorff
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from research.statistics import (
    alpha_bootstrap,
    comparison_means,
    comparisons_for_power,
    comparisons_needed,
    design_crossing,
    design_effect,
    holm,
    human_majority,
    net_and_win,
    net_preference,
    pattern_probabilities,
    pilot_estimates,
    position_bias,
    sign_flip_normal_p,
    sign_flip_test,
    simulate_power,
    simulate_verdicts,
    tie_aware_accuracy,
    win_rate,
)
from tests.conftest import SHARED_DATA

XSUM = SHARED_DATA / "xsum_hallucination_annotations"
NULL = (0.3, 0.4, 0.3)  # (p_b, p_equal, p_a): no preference


def flat(verdicts: np.ndarray, annotators: int | None = None, seed: int = 0):
    """(comparison, annotator, verdict) arrays of one simulated study (n, k). Annotators come
    from a pool of `annotators` (k distinct per comparison), or are 0..k-1 when None."""
    n, k = verdicts.shape
    if annotators is None:
        who = np.tile(np.arange(k), n)
    else:
        rng = np.random.default_rng(seed)
        who = rng.random((n, annotators)).argsort(axis=1)[:, :k].reshape(-1)
    return np.repeat(np.arange(n), k), who, verdicts.reshape(-1).astype(np.int64)


def xsum_verdicts(a: str = "PtGen", b: str = "TConvS2S"):
    path = XSUM / "factuality_annotations_xsum_summaries.csv"
    if not path.exists():
        pytest.skip(f"real data absent: {path} (see /work/shared/data/README.md)")
    frame = pd.read_csv(path)
    frame["factual"] = (frame["is_factual"] == "yes").astype(int)
    wide = frame.pivot(index=["bbcid", "worker_id"], columns="system", values="factual")
    wide = wide[[a, b]].dropna()
    comparison = wide.index.get_level_values("bbcid").to_numpy()
    annotator = pd.factorize(wide.index.get_level_values("worker_id"))[0]
    return comparison, annotator, (wide[b] - wide[a]).astype(int).to_numpy()


def two_sided_binomial_p(b: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Exact two-sided binomial p at 1/2 (what binomtest gives there), vectorised."""
    n = a + b
    return np.minimum(1.0, 2 * stats.binom.cdf(np.minimum(a, b), n, 0.5))


def brute_sign_flip_p(means) -> float:
    means = [m for m in means if m != 0]
    observed = abs(sum(means))
    hits = [
        abs(sum(s * m for s, m in zip(signs, means, strict=True))) >= observed - 1e-9
        for signs in itertools.product((1, -1), repeat=len(means))
    ]
    return sum(hits) / len(hits)


def scipy_sign_flip(means, n_resamples, seed=0):
    return stats.permutation_test(
        (np.asarray(means),),
        lambda x, axis: np.sum(x, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=n_resamples,
        alternative="two-sided",
        rng=np.random.default_rng(seed),
    ).pvalue


class TestComparisonMeans:
    def test_it_matches_pandas_group_means(self):
        rng = np.random.default_rng(1)
        comparison = rng.integers(0, 40, 200)
        verdict = rng.integers(-1, 2, 200)
        ids, means = comparison_means(comparison, verdict)
        expected = pd.Series(verdict).groupby(comparison).mean()
        assert ids.tolist() == expected.index.tolist()
        assert means == pytest.approx(expected.to_numpy())

    def test_it_rejects_codes_other_than_minus_one_zero_one(self):
        with pytest.raises(ValueError):
            comparison_means([1, 2], [1, 2])


class TestSignFlipTest:
    def test_it_enumerates_exactly_like_scipy_and_a_brute_force_loop(self):
        rng = np.random.default_rng(2)
        means = rng.choice([-1, -2 / 3, -1 / 3, 0, 1 / 3, 2 / 3, 1], size=14)
        result = sign_flip_test(means)
        assert result.method == "exact" and result.n_resamples is None
        assert result.p_value == pytest.approx(brute_sign_flip_p(means), rel=1e-12)
        assert result.p_value == pytest.approx(scipy_sign_flip(means, np.inf), rel=1e-9)
        assert result.statistic == pytest.approx(means.mean())

    def test_it_uses_monte_carlo_beyond_twenty_nonzero_means(self):
        rng = np.random.default_rng(3)
        means = rng.choice([-1, -1 / 3, 0, 1 / 3, 1], size=60, p=[0.15, 0.2, 0.2, 0.2, 0.25])
        result = sign_flip_test(means, n_resamples=20_000)
        assert (result.method, result.n_resamples, result.seed) == ("monte carlo", 20_000, 20210517)
        expected = scipy_sign_flip(means, 20_000)
        # Two independent Monte Carlo estimates of one p: within 4 standard errors.
        se = math.sqrt(2 * expected * (1 - expected) / 20_000)
        assert abs(result.p_value - expected) < 4 * se + 1e-4
        assert sign_flip_test(means, n_resamples=20_000) == result

    def test_it_matches_the_exact_null_distribution_by_convolution(self):
        # Integers after scaling by 3: the exact law of sum(+-m) is a convolution of
        # binomials, independent of both the enumeration and the Monte Carlo code.
        rng = np.random.default_rng(4)
        thirds = rng.choice([-3, -1, 1, 3], size=200, p=[0.2, 0.3, 0.25, 0.25])
        law = np.array([1.0])
        for value in np.abs(thirds):
            step = np.zeros(2 * value + 1)
            step[[0, -1]] = 0.5
            law = np.convolve(law, step)
        support = np.arange(len(law)) - (len(law) - 1) // 2
        exact = law[np.abs(support) >= abs(thirds.sum())].sum()
        result = sign_flip_test(thirds / 3, n_resamples=20_000)
        assert abs(result.p_value - exact) < 4 * math.sqrt(exact * (1 - exact) / 20_000) + 1e-4

    def test_it_agrees_with_a_loop_of_explicit_sign_flips(self):
        rng = np.random.default_rng(5)
        means = rng.choice([-1, -1 / 2, 0, 1 / 2, 1], size=40, p=[0.15, 0.2, 0.2, 0.2, 0.25])
        observed = abs(means.sum())
        hits = sum(
            abs((rng.choice([-1, 1], size=len(means)) * means).sum()) >= observed - 1e-9
            for _ in range(5000)
        )
        loop = (hits + 1) / 5001
        result = sign_flip_test(means, n_resamples=5000)
        assert abs(result.p_value - loop) < 4 * math.sqrt(2 * loop * (1 - loop) / 5000) + 1e-3

    def test_it_never_gives_zero_by_monte_carlo(self):
        result = sign_flip_test(np.ones(30), n_resamples=999)
        assert result.p_value == pytest.approx(1 / 1000)

    def test_it_is_one_when_every_mean_is_zero_and_undefined_without_comparisons(self):
        assert sign_flip_test(np.zeros(5)).p_value == 1.0
        empty = sign_flip_test([])
        assert empty.p_value is None and empty.reason

    def test_it_runs_on_real_xsum_labels(self):
        comparison, _, verdict = xsum_verdicts()
        _, means = comparison_means(comparison, verdict)
        result = sign_flip_test(means, n_resamples=20_000)
        expected = scipy_sign_flip(means, 20_000)
        assert abs(result.p_value - expected) < 4 * math.sqrt(expected / 10_000) + 1e-3

    def test_its_normal_approximation_is_the_z_test_on_flips(self):
        means = np.array([1, 1 / 3, -1 / 3, 1, 0, 2 / 3])
        z = means.sum() / math.sqrt((means**2).sum())
        assert sign_flip_normal_p(means.sum(), (means**2).sum()) == pytest.approx(
            2 * stats.norm.sf(z)
        )


def naive_cluster_bootstrap(comparison, verdict, statistic, n_resamples=2000, seed=9):
    groups = [verdict[comparison == c] for c in np.unique(comparison)]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_resamples):
        drawn = np.concatenate([groups[i] for i in rng.integers(0, len(groups), len(groups))])
        values.append(statistic(drawn))
    return np.nanpercentile(values, [2.5, 97.5])


def naive_pigeonhole(comparison, annotator, verdict, n_resamples=2000, seed=9):
    _, c = np.unique(comparison, return_inverse=True)
    _, a = np.unique(annotator, return_inverse=True)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_resamples):
        u = np.bincount(rng.integers(0, c.max() + 1, c.max() + 1), minlength=c.max() + 1)
        v = np.bincount(rng.integers(0, a.max() + 1, a.max() + 1), minlength=a.max() + 1)
        weight = u[c] * v[a]
        values.append((weight * verdict).sum() / weight.sum())
    return np.percentile(values, [2.5, 97.5])


def naive_pigeonhole_win(comparison, annotator, verdict, n_resamples=2000, seed=9):
    """The win rate's pigeonhole bootstrap, one resample at a time: B's wins over the non-tied
    judgments, each judgment weighted by its comparison's and its annotator's draws."""
    _, c = np.unique(comparison, return_inverse=True)
    _, a = np.unique(annotator, return_inverse=True)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_resamples):
        u = np.bincount(rng.integers(0, c.max() + 1, c.max() + 1), minlength=c.max() + 1)
        v = np.bincount(rng.integers(0, a.max() + 1, a.max() + 1), minlength=a.max() + 1)
        weight = u[c] * v[a]
        decided = (weight * (verdict != 0)).sum()
        if decided:
            values.append((weight * (verdict == 1)).sum() / decided)
    return np.percentile(values, [2.5, 97.5])


def close_interval(interval, expected, share=0.1):
    width = expected[1] - expected[0]
    assert interval.low == pytest.approx(expected[0], abs=share * width)
    assert interval.high == pytest.approx(expected[1], abs=share * width)


class TestNetPreference:
    def study(self, annotators=30, n=300, shares=(0.45, 0.25, 0.3), rho=0.5):
        return flat(simulate_verdicts(shares, 3, n, rho, seed=11)[0], annotators)

    def test_it_is_the_mean_verdict_with_a_comparison_bootstrap_interval(self):
        comparison, annotator, verdict = self.study()
        result = net_preference(comparison, annotator, verdict, two_way=False)
        assert result.estimate == pytest.approx(verdict.mean())
        assert result.estimate == pytest.approx(result.b_share - result.a_share)
        assert (result.judgments, result.comparisons, result.annotators) == (900, 300, 30)
        assert (result.seed, result.n_resamples, result.two_way_ci) == (20210517, 2000, None)
        close_interval(result.ci, naive_cluster_bootstrap(comparison, verdict, np.mean))

    def test_its_two_way_interval_matches_a_naive_pigeonhole_loop(self):
        comparison, annotator, verdict = self.study()
        result = net_preference(comparison, annotator, verdict)
        assert result.two_way_reason == ""
        close_interval(result.two_way_ci, naive_pigeonhole(comparison, annotator, verdict))

    def test_its_two_way_interval_widens_when_annotators_differ(self):
        # Each annotator leans one way: verdicts share the annotator, and only resampling
        # annotators too shows that uncertainty.
        rng = np.random.default_rng(12)
        comparison = np.repeat(np.arange(400), 3)
        annotator = rng.integers(0, 12, 1200)
        lean = rng.normal(0, 0.6, 12)[annotator]
        verdict = np.digitize(lean + rng.normal(0, 0.5, 1200), [-0.4, 0.4]) - 1
        result = net_preference(comparison, annotator, verdict)
        assert result.two_way_ci.high - result.two_way_ci.low > 1.5 * (
            result.ci.high - result.ci.low
        )

    def test_it_explains_why_there_is_no_two_way_interval(self):
        comparison, annotator, verdict = self.study(annotators=None)
        result = net_preference(comparison, annotator, verdict)
        assert result.two_way_ci is None and "only 3 annotators" in result.two_way_reason

    def test_it_has_no_estimate_without_judgments(self):
        result = net_preference([], [], [])
        assert result.estimate is None and result.reason


class TestDesignCrossing:
    def test_it_accepts_a_crossed_design(self):
        comparison, annotator, _ = flat(np.zeros((100, 3)), annotators=20)
        crossing = design_crossing(comparison, annotator)
        assert crossing.crossed and crossing.annotators_per_comparison == 3.0
        assert crossing.comparisons_per_annotator == pytest.approx(
            np.median(np.bincount(annotator))
        )

    def test_it_refuses_few_annotators(self):
        comparison, annotator, _ = flat(np.zeros((100, 3)))
        crossing = design_crossing(comparison, annotator)
        assert not crossing.crossed and "only 3 annotators" in crossing.reason

    def test_it_refuses_annotators_nested_in_comparisons(self):
        comparison, annotator = np.repeat(np.arange(50), 3), np.arange(150)
        crossing = design_crossing(comparison, annotator)
        assert not crossing.crossed and "median of 1 comparisons" in crossing.reason

    def test_it_refuses_one_annotator_per_comparison(self):
        crossing = design_crossing(np.arange(100), np.arange(100) % 20)
        assert not crossing.crossed and "1.00 annotators on average" in crossing.reason


class TestWinRate:
    def test_it_is_wins_of_b_among_non_ties_with_a_cluster_interval(self):
        comparison, _, verdict = flat(simulate_verdicts((0.45, 0.25, 0.3), 3, 300, 0.5, seed=13)[0])
        result = win_rate(comparison, verdict)
        b, a = (verdict == 1).sum(), (verdict == -1).sum()
        assert (result.b_better, result.a_better, result.ties) == (b, a, (verdict == 0).sum())
        assert result.estimate == pytest.approx(b / (a + b))

        def rate(v):
            decided = (v != 0).sum()
            return (v == 1).sum() / decided if decided else np.nan

        close_interval(result.ci, naive_cluster_bootstrap(comparison, verdict, rate))

    def test_it_is_undefined_when_every_verdict_is_a_tie(self):
        result = win_rate([1, 1, 2], [0, 0, 0])
        assert result.estimate is None and result.ci is None and result.reason

    def test_its_two_way_interval_matches_a_naive_pigeonhole_loop(self):
        comparison, annotator, verdict = flat(
            simulate_verdicts((0.45, 0.25, 0.3), 3, 300, 0.5, seed=11)[0], 30
        )
        result = win_rate(comparison, verdict, annotator=annotator)
        assert result.two_way_reason == "" and "pigeonhole" in result.two_way_method
        close_interval(result.two_way_ci, naive_pigeonhole_win(comparison, annotator, verdict))
        # The same comparison interval as without the annotators: it comes first in the stream.
        assert result.ci == win_rate(comparison, verdict).ci

    def test_it_explains_why_there_is_no_two_way_interval(self):
        comparison, annotator, verdict = flat(
            simulate_verdicts((0.45, 0.25, 0.3), 3, 300, 0.5, seed=11)[0]
        )
        assert win_rate(comparison, verdict).two_way_reason == "not asked for"
        result = win_rate(comparison, verdict, annotator=annotator)
        assert result.two_way_ci is None and "only 3 annotators" in result.two_way_reason


class TestNetAndWin:
    """The page computes both effect sizes at once, sharing their draws: the same numbers as
    each alone."""

    def check(self, comparison, annotator, verdict, **options):
        net, win = net_and_win(comparison, annotator, verdict, **options)
        assert net == net_preference(comparison, annotator, verdict, **options)
        two_way = options.pop("two_way", True)
        options.pop("crossing", None)
        alone = win_rate(comparison, verdict, annotator=annotator if two_way else None, **options)
        assert win == alone
        return net, win

    def test_crossed_row_by_row(self):
        comparison, annotator, verdict = flat(
            simulate_verdicts((0.45, 0.25, 0.3), 3, 300, 0.5, seed=11)[0], 30
        )
        net, win = self.check(comparison, annotator, verdict)
        assert net.two_way_ci is not None and win.two_way_ci is not None

    def test_crossed_by_the_normal_limit(self):
        comparison, annotator, verdict = flat(
            simulate_verdicts((0.45, 0.25, 0.3), 3, 2500, 0.3, seed=12)[0], 40
        )
        net, win = self.check(comparison, annotator, verdict, max_two_way_work=1000)
        assert "normal limit" in net.two_way_method and "normal limit" in win.two_way_method

    def test_nested_without_two_way_and_all_ties(self):
        comparison, annotator, verdict = flat(
            simulate_verdicts((0.45, 0.25, 0.3), 3, 50, 0.5, seed=13)[0]
        )
        net, win = self.check(comparison, annotator, verdict)
        assert net.two_way_ci is None and "only 3 annotators" in win.two_way_reason
        self.check(comparison, annotator, verdict, two_way=False)
        net, win = self.check([1, 1, 2], [1, 2, 1], [0, 0, 0])
        assert win.estimate is None and net.estimate == 0


class TestHolm:
    def test_it_matches_statsmodels(self):
        multitest = pytest.importorskip(
            "statsmodels.stats.multitest", reason="statsmodels is not installed"
        )
        rng = np.random.default_rng(14)
        p = np.concatenate([rng.uniform(0, 0.05, 6), rng.uniform(0, 1, 14), [0.01, 0.01]])
        expected = multitest.multipletests(p, method="holm")[1]
        assert holm(p.tolist()) == pytest.approx(expected.tolist())

    def test_it_passes_none_through_and_leaves_it_out_of_the_count(self):
        assert holm([0.01, None, 0.04, 0.03]) == pytest.approx([0.03, None, 0.06, 0.06])
        assert holm([None]) == [None] and holm([]) == []

    def test_it_matches_statsmodels_on_real_xsum_tests(self):
        multitest = pytest.importorskip(
            "statsmodels.stats.multitest", reason="statsmodels is not installed"
        )
        systems = ["PtGen", "TConvS2S", "TranS2S", "BERTS2S"]
        p = []
        for a, b in itertools.combinations(systems, 2):
            comparison, _, verdict = xsum_verdicts(a, b)
            p.append(sign_flip_test(comparison_means(comparison, verdict)[1]).p_value)
        assert holm(p) == pytest.approx(multitest.multipletests(p, method="holm")[1].tolist())


def reliability_matrix(comparison, annotator, verdict, columns):
    """annotators x columns (comparison ids, repeats allowed), NaN where not judged."""
    people = sorted(set(annotator.tolist()))
    matrix = np.full((len(people), len(columns)), np.nan)
    cell = {(c, a): v for c, a, v in zip(comparison, annotator, verdict, strict=True)}
    for j, c in enumerate(columns):
        for i, a in enumerate(people):
            if (c, a) in cell:
                matrix[i, j] = cell[(c, a)]
    return matrix


class TestAlphaBootstrap:
    def study(self):
        verdicts = simulate_verdicts((0.4, 0.3, 0.3), 3, 60, 0.5, seed=15)[0]
        comparison, annotator, verdict = flat(verdicts, annotators=5)
        keep = np.random.default_rng(15).random(len(verdict)) > 0.15  # missing cells
        return comparison[keep], annotator[keep], verdict[keep]

    def test_it_matches_krippendorff_on_the_reliability_matrix_resample_by_resample(self):
        comparison, annotator, verdict = self.study()
        result = alpha_bootstrap(comparison, annotator, verdict, n_resamples=40)
        ids, sizes = np.unique(comparison, return_counts=True)
        pairable = ids[sizes >= 2]
        assert result.comparisons == len(pairable)

        def alpha(columns):
            matrix = reliability_matrix(comparison, annotator, verdict, columns)
            return krippendorff.alpha(reliability_data=matrix, level_of_measurement="ordinal")

        assert result.alpha == pytest.approx(alpha(pairable))
        # The same draws: how many times each distinct count vector is drawn; a resample is
        # then any comparisons with those vectors, as columns of a reliability matrix.
        counts = np.array(
            [np.bincount(verdict[comparison == c] + 1, minlength=3) for c in pairable]
        )
        patterns, first, freq = np.unique(counts, axis=0, return_index=True, return_counts=True)
        rng = np.random.default_rng(result.seed)
        weights = rng.multinomial(len(pairable), freq / len(pairable), size=40)
        alphas = [alpha(np.repeat(pairable[first], w)) for w in weights]
        low, high = np.percentile(alphas, [2.5, 97.5])
        assert (result.alpha_ci.low, result.alpha_ci.high) == pytest.approx((low, high))
        value_counts = [
            krippendorff.alpha(
                value_counts=np.repeat(patterns, w, axis=0), level_of_measurement="ordinal"
            )
            for w in weights
        ]
        assert value_counts == pytest.approx(alphas)

    def test_it_reports_raw_agreement_over_pairs_of_judgments(self):
        comparison, annotator, verdict = self.study()
        agree = pairs = 0
        for c in np.unique(comparison):
            for x, y in itertools.combinations(verdict[comparison == c], 2):
                agree, pairs = agree + (x == y), pairs + 1
        result = alpha_bootstrap(comparison, annotator, verdict, n_resamples=200)
        assert result.agreement == pytest.approx(agree / pairs)
        assert result.agreement_ci.low <= result.agreement <= result.agreement_ci.high

    def test_it_matches_krippendorff_on_real_xsum_labels(self):
        comparison, annotator, verdict = xsum_verdicts()
        result = alpha_bootstrap(comparison, annotator, verdict, n_resamples=200)
        frame = pd.DataFrame({"c": comparison, "a": annotator, "v": verdict})
        matrix = frame.pivot(index="a", columns="c", values="v").to_numpy(dtype=float)
        expected = krippendorff.alpha(reliability_data=matrix, level_of_measurement="ordinal")
        assert result.alpha == pytest.approx(expected)
        assert result.alpha_ci.low < result.alpha < result.alpha_ci.high

    def test_it_is_undefined_without_pairs_or_variation(self):
        assert alpha_bootstrap([1, 2], [1, 2], [1, -1]).alpha is None
        same = alpha_bootstrap([1, 1, 2, 2], [1, 2, 1, 2], [1, 1, 1, 1], n_resamples=10)
        assert same.alpha is None and same.reason and same.agreement == 1.0


def anova_icc(comparison, verdict) -> float:
    """ICC(1) from pandas group statistics, textbook formulas."""
    frame = pd.DataFrame({"c": comparison, "v": verdict.astype(float)})
    groups = frame.groupby("c")["v"]
    n_i, means = groups.size(), groups.mean()
    total, g = len(frame), len(n_i)
    ssb = (n_i * (means - frame["v"].mean()) ** 2).sum()
    ssw = ((frame["v"] - groups.transform("mean")) ** 2).sum()
    msb, msw = ssb / (g - 1), ssw / (total - g)
    k0 = (total - (n_i**2).sum() / total) / (g - 1)
    return (msb - msw) / (msb + (k0 - 1) * msw)


class TestDesignEffect:
    def test_it_matches_the_anova_icc_on_unbalanced_data(self):
        comparison, _, verdict = flat(simulate_verdicts(NULL, 4, 500, 0.4, seed=16)[0])
        keep = np.random.default_rng(16).random(len(verdict)) > 0.3
        result = design_effect(comparison[keep], verdict[keep])
        assert result.rho == pytest.approx(anova_icc(comparison[keep], verdict[keep]))
        k = keep.sum() / len(np.unique(comparison[keep]))
        assert result.design_effect == pytest.approx(1 + (k - 1) * result.rho)

    def test_it_matches_the_anova_icc_on_real_xsum_labels(self):
        comparison, _, verdict = xsum_verdicts()
        assert design_effect(comparison, verdict).rho == pytest.approx(
            anova_icc(comparison, verdict)
        )

    def test_it_is_undefined_without_replication_or_variation(self):
        assert design_effect([1, 2, 3], [1, 0, -1]).rho is None
        assert design_effect([1, 1, 2, 2], [1, 1, 1, 1]).rho is None


class TestGenerator:
    @pytest.mark.parametrize("rho", [0.34, 0.67, 0.89])
    def test_it_keeps_the_shares_and_gives_the_asked_correlation(self, rho):
        shares = (0.45, 0.25, 0.3)
        verdicts = simulate_verdicts(shares, 3, 20_000, rho, seed=17)[0]
        for code, share in zip((1, 0, -1), shares, strict=True):
            assert (verdicts == code).mean() == pytest.approx(share, abs=0.01)
        pearson = np.corrcoef(verdicts.T)[np.triu_indices(3, 1)]
        assert pearson == pytest.approx([rho] * 3, abs=0.025)
        comparison, _, verdict = flat(verdicts)
        assert design_effect(comparison, verdict).rho == pytest.approx(rho, abs=0.02)

    def test_its_pattern_law_matches_simulated_frequencies(self):
        shares, k, rho = (0.45, 0.25, 0.3), 3, 0.5
        patterns, probs = pattern_probabilities(shares, k, rho)
        assert probs.sum() == pytest.approx(1)
        verdicts = simulate_verdicts(shares, k, 50_000, rho, seed=18)[0]
        counts = np.stack([(verdicts == c).sum(axis=1) for c in (-1, 0, 1)], axis=1)
        for pattern, p in zip(patterns, probs, strict=True):
            seen = (counts == pattern).all(axis=1).mean()
            assert seen == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / 50_000) + 1e-4)

    def test_it_estimates_a_pilot(self):
        comparison, _, verdict = flat(simulate_verdicts((0.5, 0.2, 0.3), 3, 5000, 0.6, seed=19)[0])
        pilot = pilot_estimates(comparison, verdict)
        assert pilot.shares == pytest.approx((0.5, 0.2, 0.3), abs=0.02)
        assert (pilot.rho, pilot.k) == (pytest.approx(0.6, abs=0.03), 3.0)


class TestPower:
    def test_the_primary_test_holds_its_level_and_the_judgment_sign_test_does_not(self):
        # 100 comparisons x 3 annotators, no preference, rho 0.67: the comparison-level test
        # rejects about 5%; the sign test over all non-tied judgments far more.
        verdicts = simulate_verdicts(NULL, 3, 100, 0.67, n_studies=4000, seed=20)
        means = verdicts.mean(axis=2)
        primary = sign_flip_normal_p(means.sum(axis=1), (means**2).sum(axis=1))
        assert np.mean(primary < 0.05) == pytest.approx(0.05, abs=0.012)
        b, a = (verdicts == 1).sum(axis=(1, 2)), (verdicts == -1).sum(axis=(1, 2))
        judgment_level = two_sided_binomial_p(b, a)
        for i in range(20):  # the vectorised p is binomtest's
            assert judgment_level[i] == pytest.approx(stats.binomtest(b[i], a[i] + b[i]).pvalue)
        assert np.mean(judgment_level < 0.05) > 0.11

    def test_the_exact_primary_test_agrees_with_its_normal_approximation(self):
        verdicts = simulate_verdicts(NULL, 3, 100, 0.67, n_studies=150, seed=21)
        means = verdicts.mean(axis=2)
        normal = sign_flip_normal_p(means.sum(axis=1), (means**2).sum(axis=1))
        flips = np.array([sign_flip_test(m, n_resamples=2000).p_value for m in means])
        # Discreteness makes the normal p a little small at large p; near alpha they agree.
        near = normal < 0.1
        assert near.sum() >= 10
        assert np.abs(flips - normal)[near].max() < 0.01
        assert np.mean((flips < 0.05) == (normal < 0.05)) > 0.97

    @pytest.mark.parametrize("rho", [0.34, 0.89])
    def test_the_judgment_sign_test_overshoots_at_other_correlations(self, rho):
        verdicts = simulate_verdicts(NULL, 3, 100, rho, n_studies=3000, seed=22)
        b, a = (verdicts == 1).sum(axis=(1, 2)), (verdicts == -1).sum(axis=(1, 2))
        assert np.mean(two_sided_binomial_p(b, a) < 0.05) > 0.09

    def test_simulated_power_matches_brute_force_studies(self):
        shares, k, n, rho = (0.42, 0.28, 0.3), 3, 150, 0.5
        result = simulate_power(shares, k, n, rho, n_sim=3000)
        means = simulate_verdicts(shares, k, n, rho, n_studies=3000, seed=23).mean(axis=2)
        brute = np.mean(sign_flip_normal_p(means.sum(axis=1), (means**2).sum(axis=1)) < 0.05)
        se = math.sqrt(2 * brute * (1 - brute) / 3000)
        assert abs(result.power - brute) < 4 * se
        assert (result.n_sim, result.seed, result.method) == (3000, 20210517, "normal")

    def test_simulated_power_with_the_sign_flip_test_agrees(self):
        shares, k, n, rho = (0.42, 0.28, 0.3), 3, 150, 0.5
        normal = simulate_power(shares, k, n, rho, n_sim=300).power
        flips = simulate_power(shares, k, n, rho, n_sim=300, method="sign_flip").power
        assert abs(normal - flips) < 0.05

    def test_the_formula_gives_about_the_power_asked(self):
        shares, k, rho = (0.4, 0.3, 0.3), 3, 0.5
        needed = comparisons_needed(shares, k, rho)
        assert needed.design_effect == pytest.approx(2.0)
        assert simulate_power(shares, k, needed.comparisons, rho, n_sim=4000).power == (
            pytest.approx(0.8, abs=0.03)
        )

    def test_the_search_finds_the_smallest_n_reaching_the_target(self):
        shares, k, rho = (0.4, 0.3, 0.3), 3, 0.5
        found = comparisons_for_power(shares, k, rho)
        assert found.power >= 0.8
        below = simulate_power(shares, k, found.comparisons - 1, rho).power
        assert below < 0.8
        assert found.comparisons == pytest.approx(found.formula_hint, rel=0.1)

    def test_there_is_nothing_to_find_without_an_effect(self):
        assert comparisons_needed(NULL, 3, 0.5).comparisons is None
        assert comparisons_for_power(NULL, 3, 0.5).comparisons is None

    def test_it_stops_at_the_bound(self):
        found = comparisons_for_power((0.301, 0.4, 0.299), 3, 0.5, max_comparisons=1000)
        assert found.comparisons is None and "1000 comparisons" in found.reason


class TestPositionBias:
    def test_it_matches_a_loop_per_annotator_and_flags_a_biased_one(self):
        rng = np.random.default_rng(24)
        annotator = rng.integers(0, 6, 1200)
        left = rng.choice(["A", "B"], 1200)
        verdict = rng.integers(-1, 2, 1200)
        lazy = (annotator == 5) & (verdict != 0) & (rng.random(1200) < 0.6)
        verdict[lazy] = np.where(left[lazy] == "A", -1, 1)  # picks the left summary
        report = position_bias(annotator, verdict, left)
        by_hand = []
        for row in report.annotators:
            n = k = 0
            for who, v, side in zip(annotator, verdict, left, strict=True):
                if who == row.annotator and v != 0:
                    n += 1
                    k += (v == -1 and side == "A") or (v == 1 and side == "B")
            p = stats.binomtest(k, n, 0.5).pvalue
            assert (row.non_tied, row.left) == (n, k)
            assert row.p_value == pytest.approx(p) and row.flagged == (p < 0.05)
            by_hand.append(p)
        assert report.annotators[5].flagged and report.annotators[5].left_share > 0.6
        assert [r.holm_p for r in report.annotators] == pytest.approx(holm(by_hand))
        assert report.overall.non_tied == (verdict != 0).sum()

    def test_its_vectorised_p_matches_scipy_binomtest_on_every_count(self):
        for n in (1, 2, 7, 30, 101):
            for k in range(n + 1):
                verdict = [-1] * k + [1] * (n - k)  # A better, A on the left: k left of n
                report = position_bias([1] * n, verdict, ["A"] * n)
                expected = stats.binomtest(k, n, 0.5).pvalue
                assert report.overall.p_value == pytest.approx(expected, rel=1e-9)
                assert report.annotators[0].p_value == pytest.approx(expected, rel=1e-9)

    def test_it_has_no_test_without_non_tied_verdicts(self):
        report = position_bias([1, 1], [0, 0], ["A", "B"])
        assert report.overall.p_value is None and not report.overall.flagged

    def test_it_refuses_sides_other_than_a_and_b(self):
        with pytest.raises(ValueError):
            position_bias([1], [1], ["left"])


def brute_tie_accuracy(deltas, human):
    pairs = [(d, h) for d, h in zip(deltas, human, strict=True) if h != -2]
    best = (-1.0, None)
    for eps in sorted({0.0, *(abs(d) for d, _ in pairs)}):
        correct = sum(
            (h == 0) if abs(d) <= eps else (d > 0 and h == 1) or (d < 0 and h == -1)
            for d, h in pairs
        )
        if correct / len(pairs) > best[0]:
            best = (correct / len(pairs), eps)
    return best


class TestHumanMajority:
    def test_it_matches_pandas_value_counts(self):
        rng = np.random.default_rng(25)
        comparison, verdict = rng.integers(0, 50, 200), rng.integers(-1, 2, 200)
        ids, codes = human_majority(comparison, verdict)
        for c, code in zip(ids, codes, strict=True):
            counts = pd.Series(verdict[comparison == c]).value_counts()
            expected = counts.idxmax() if (counts == counts.max()).sum() == 1 else -2
            assert code == expected


class TestTieAwareAccuracy:
    def test_it_matches_a_hand_computed_example(self):
        # epsilon 0: ties {0.0}; right: 1st, 3rd, 4th -> 3/5. epsilon 0.05 ties the first
        # three magnitudes (0, 0.01, 0.05), all human ties: 5/5. epsilon 0.2: 4/5.
        result = tie_aware_accuracy([0.0, 0.05, -0.3, 0.2, 0.01], [0, 0, -1, 1, 0])
        assert (result.accuracy, result.epsilon) == (1.0, 0.05)
        assert result.accuracy_without_calibration == pytest.approx(0.6)
        assert (result.comparisons, result.human_ties) == (5, 3)

    def test_it_matches_a_brute_force_epsilon_search(self):
        rng = np.random.default_rng(26)
        for _ in range(20):
            deltas = np.round(rng.normal(0, 0.1, 80), 2)  # repeated magnitudes and zeros
            human = rng.choice([-2, -1, 0, 1], 80, p=[0.1, 0.3, 0.3, 0.3])
            result = tie_aware_accuracy(deltas, human, n_resamples=10)
            assert (result.accuracy, result.epsilon) == pytest.approx(
                brute_tie_accuracy(deltas, human)
            )
            assert result.no_majority == (human == -2).sum()

    def test_its_interval_matches_a_brute_force_bootstrap(self):
        rng = np.random.default_rng(27)
        deltas, human = rng.normal(0, 0.1, 60), rng.choice([-1, 0, 1], 60)
        result = tie_aware_accuracy(deltas, human, n_resamples=200)
        # The same draws, in the order the function takes them (sorted by |delta|).
        order = np.argsort(np.abs(deltas), kind="stable")
        draws = np.random.default_rng(result.seed).integers(0, 60, size=(200, 60))
        values = [brute_tie_accuracy(deltas[order][d], human[order][d])[0] for d in draws]
        low, high = np.percentile(values, [2.5, 97.5])
        assert (result.ci.low, result.ci.high) == pytest.approx((low, high))

    def test_it_is_undefined_without_a_human_majority(self):
        result = tie_aware_accuracy([0.1, 0.2], [-2, -2])
        assert result.accuracy is None and result.no_majority == 2 and result.reason

    def test_it_matches_brute_force_on_real_xsum_bertscore(self):
        comparison, _, verdict = xsum_verdicts()
        scores = pd.read_csv(XSUM / "eval_scores_xsum_summaries.csv").set_index("system_bbcid")
        ids, human = human_majority(comparison, verdict)
        scored = [f"tconvs2s_{c}" in scores.index and f"ptgen_{c}" in scores.index for c in ids]
        ids, human = ids[scored], human[scored]
        assert len(ids) > 200
        deltas = np.array(
            [
                scores.at[f"tconvs2s_{c}", "BERTScore"] - scores.at[f"ptgen_{c}", "BERTScore"]
                for c in ids
            ]
        )
        result = tie_aware_accuracy(deltas, human, n_resamples=500)
        assert (result.accuracy, result.epsilon) == pytest.approx(brute_tie_accuracy(deltas, human))
        assert result.accuracy >= result.accuracy_without_calibration
        assert result.ci.low <= result.accuracy <= result.ci.high + 0.05
