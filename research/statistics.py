"""Statistics for pairwise human evaluation, with the comparison as the unit of replication.

Pure functions over plain numpy arrays for ONE criterion, one element per judgment:
`comparison` (ids), `annotator` (ids) and `verdict` in system terms, -1 (A better), 0 (equal),
+1 (B better). No Django here. Results are frozen dataclasses; floats are never rounded, and a
statistic that is undefined is None with a `reason` in words.

Why the comparison: the annotators of one comparison read the same two summaries, so their
verdicts are correlated (typically rho 0.3-0.9). A test that treats every judgment as
independent (a sign test over all non-tied judgments) then rejects a true null far more often
than its nominal level; the tests and intervals here resample or flip whole comparisons.

- `comparison_means`, `sign_flip_test`: the primary test.
- `net_preference` (comparison and two-way bootstraps), `design_crossing`, `win_rate`.
- `holm`: Holm's step-down adjustment across criteria or system pairs.
- `alpha_bootstrap`: Krippendorff's ordinal alpha and raw agreement with bootstrap intervals.
- `design_effect`, `pilot_estimates`, `comparisons_needed`, `simulate_verdicts`,
  `simulate_power`, `comparisons_for_power`: planning.
- `position_bias`: do annotators favour the left side?
- `human_majority`, `tie_aware_accuracy`: metric against humans (Deutsch et al., 2023).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
from scipy import sparse, stats

SEED = 20210517
EXACT_MAX = 20  # exact sign-flip enumeration up to 2**20 sign patterns
BLOCK = 4_000_000  # elements per vectorised block, to bound memory
# Measured cost of the two-way bootstrap per comparison and resample: 17 s for 333k
# comparisons x 2,000 resamples on two cores (bench/statistics_bench.py).
TWO_WAY_SECONDS_PER_DRAW = 17 / (333_333 * 2000)


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


def _percentile_interval(values: np.ndarray, level: float = 0.95) -> Interval | None:
    """Percentile interval of the defined (non-NaN) bootstrap values, None if there are none."""
    values = values[~np.isnan(values)]
    if not len(values):
        return None
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return Interval(float(low), float(high))


def _codes(verdict) -> np.ndarray:
    verdict = np.asarray(verdict, dtype=np.int64)
    if verdict.size and (verdict.min() < -1 or verdict.max() > 1):
        raise ValueError("verdicts must be -1 (A better), 0 (equal) or +1 (B better)")
    return verdict


def unique(values, *, return_inverse: bool = False, return_counts: bool = False):
    """np.unique of a 1-D array (the same sorted values, inverse and counts), faster on
    integer ids that span a range not much wider than their number (database ids of one study):
    a bincount over the range instead of a sort or a hash, about a tenth of the time at 333k
    ids. Anything else goes to np.unique."""
    values = np.asarray(values).reshape(-1)
    dense = values.dtype.kind in "iu" and len(values) > 0
    if dense:
        low = int(values.min())
        span = int(values.max()) - low + 1
        dense = span <= 4 * len(values) + 1024
    if not dense:
        return np.unique(values, return_inverse=return_inverse, return_counts=return_counts)
    shifted = values.astype(np.int64) - low  # int64 first: a narrow type would overflow
    tally = np.bincount(shifted, minlength=span)
    present = tally > 0
    out = [np.flatnonzero(present).astype(values.dtype) + low]
    if return_inverse:
        rank = np.cumsum(present, dtype=np.int64) - 1
        out.append(rank[shifted])
    if return_counts:
        out.append(tally[present])
    return out[0] if len(out) == 1 else tuple(out)


# The counts of the last few (comparison, verdict) arrays seen, by identity: a page asks for the
# counts of one criterion's arrays from many statistics (test, intervals, alpha, power), and each
# costs a pass over 333k judgments at a million. Read-only arrays only, so that what they hold
# cannot change under the cache; the results are read-only too.
_COUNTS_SEEN: dict[tuple[int, int], tuple] = {}
_COUNTS_KEPT = 16


def comparison_counts(comparison, verdict) -> tuple[np.ndarray, np.ndarray]:
    """(sorted comparison ids, counts) where counts[i] = [#A, #equal, #B] of comparison i."""
    cacheable = all(
        isinstance(x, np.ndarray) and not x.flags.writeable for x in (comparison, verdict)
    )
    key = (id(comparison), id(verdict))
    seen = _COUNTS_SEEN.get(key) if cacheable else None
    if seen is not None and seen[0]() is comparison and seen[1]() is verdict:
        return seen[2]
    codes = _codes(verdict)
    ids, inverse = unique(comparison, return_inverse=True)
    cells = inverse.reshape(-1) * 3 + codes + 1
    result = ids, np.bincount(cells, minlength=3 * len(ids)).reshape(-1, 3)
    if cacheable:
        for array in result:
            array.flags.writeable = False
        if len(_COUNTS_SEEN) >= _COUNTS_KEPT:
            _COUNTS_SEEN.pop(next(iter(_COUNTS_SEEN)))
        _COUNTS_SEEN[key] = (weakref.ref(comparison), weakref.ref(verdict), result)
    return result


def _distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values, like np.unique: numpy 2.4's np.unique (hash-based) took 0.27 s
    on 333k mostly distinct int64 keys, a sort and a comparison take 5 ms."""
    ordered = np.sort(values)
    if not len(ordered):
        return ordered
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]


def _blocks(total: int, width: int):
    """(start, size) blocks of `total` rows of `width` elements, about BLOCK elements each."""
    step = max(1, BLOCK // max(width, 1))
    for start in range(0, total, step):
        yield start, min(step, total - start)


def _resample_counts(rng: np.random.Generator, size: int, n: int, dtype=np.float64):
    """(n, size): column j holds the multiplicities of n items drawn n times with
    replacement in resample j."""
    draws = rng.integers(0, n, size=(size, n), dtype=np.int32 if n < 2**31 else np.int64)
    out = np.empty((n, size), dtype=dtype)
    for j, row in enumerate(draws):
        out[:, j] = np.bincount(row, minlength=n)
    return out


def pattern_index(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distinct count vectors, their frequencies, each row's pattern) of [#A, #equal, #B]
    rows; one integer key per row, because np.unique on 1-D keys is much faster than on
    rows."""
    base = int(counts.max(initial=0)) + 1
    keys = (counts[:, 0] * base + counts[:, 1]) * base + counts[:, 2]
    distinct, inverse, freq = unique(keys, return_inverse=True, return_counts=True)
    patterns = np.stack([distinct // base**2, distinct // base % base, distinct % base], axis=1)
    return patterns, freq, inverse


# ---------------------------------------------------------------------------------------------
# The primary test


def comparison_means(comparison, verdict) -> tuple[np.ndarray, np.ndarray]:
    """(sorted comparison ids, each comparison's mean verdict over its annotators)."""
    ids, counts = comparison_counts(comparison, verdict)
    return ids, (counts[:, 2] - counts[:, 0]) / counts.sum(axis=1)


@dataclass(frozen=True)
class SignFlipTest:
    """Two-sided sign-flip (randomisation) test that comparison means are centred on zero."""

    statistic: float | None  # mean of the comparison means
    comparisons: int
    nonzero: int  # comparisons whose mean is not zero; only they carry a sign
    p_value: float | None
    method: str  # "exact" or "monte carlo"
    n_resamples: int | None  # sign patterns drawn (Monte Carlo only)
    seed: int | None  # Monte Carlo only
    reason: str = ""


def sign_flip_test(
    means, *, n_resamples: int = 10_000, seed: int = SEED, exact_max: int = EXACT_MAX
) -> SignFlipTest:
    """Under the null of no preference each comparison's mean verdict is as likely to be +m as
    -m (the annotators' A/B labels are exchangeable), so T = sum of the means is compared with
    T under independent random sign flips of every mean. p = P(|T*| >= |T|).

    Exact enumeration of all 2**m sign patterns of the m non-zero means when m <= `exact_max`
    (zeros do not change T). Otherwise Monte Carlo: p = (1 + hits) / (1 + n_resamples), as
    `scipy.stats.permutation_test` does, so that p is never 0. Monte Carlo is vectorised over
    the distinct values of the means: flipping the n_v means equal to v gives v * (2 B_v - n_v)
    with B_v ~ Binomial(n_v, 1/2), the same distribution as flipping each one, at a cost per
    resample of the number of distinct values (a handful with few annotators per comparison).
    """
    means = np.asarray(means, dtype=np.float64)
    if not len(means):
        return SignFlipTest(None, 0, 0, None, "", None, None, "no comparisons")
    nonzero = means[means != 0]
    statistic = float(means.mean())
    observed = abs(float(nonzero.sum()))
    # Sums of thirds and halves are not exact in floating point: count near-equal ones as equal.
    gamma = 1e-9 * max(1.0, float(np.abs(nonzero).sum()))
    if len(nonzero) <= exact_max:
        sums = np.zeros(1)
        for value in nonzero:
            sums = np.concatenate([sums + value, sums - value])
        p = float(np.mean(np.abs(sums) >= observed - gamma))
        return SignFlipTest(statistic, len(means), len(nonzero), p, "exact", None, None)
    values, counts = np.unique(nonzero, return_counts=True)
    rng = np.random.default_rng(seed)
    hits = 0
    for _, size in _blocks(n_resamples, len(values)):
        heads = rng.binomial(counts, 0.5, size=(size, len(values)))
        hits += int((np.abs((2 * heads - counts) @ values) >= observed - gamma).sum())
    p = (hits + 1) / (n_resamples + 1)
    return SignFlipTest(statistic, len(means), len(nonzero), p, "monte carlo", n_resamples, seed)


def sign_flip_normal_p(sums: np.ndarray, sums_of_squares: np.ndarray) -> np.ndarray:
    """Normal approximation to the sign-flip test, vectorised over studies: under sign flips T
    has mean 0 and variance sum(m**2), so p = 2 * (1 - Phi(|T| / sqrt(sum m**2))); p = 1 when
    every mean is zero. For simulations, where the exact test would be too slow."""
    sums = np.asarray(sums, dtype=np.float64)
    squares = np.asarray(sums_of_squares, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(squares > 0, np.abs(sums) / np.sqrt(squares), 0.0)
    return 2 * stats.norm.sf(z)


# ---------------------------------------------------------------------------------------------
# Effect sizes


def _pattern_totals(counts: np.ndarray, n_resamples: int, rng: np.random.Generator):
    """Cluster bootstrap of comparisons: (n_resamples, 3) totals of [#A, #equal, #B].

    Resampling n comparisons with replacement matters only through how many times each
    distinct count vector is drawn, which is multinomial with the vectors' frequencies: the same
    bootstrap, at a cost per resample of the number of distinct vectors (as in
    evaluation.analysis.bootstrap_shares)."""
    n = len(counts)
    patterns, freq, _ = pattern_index(counts)
    return np.concatenate(
        [
            rng.multinomial(n, freq / n, size=size) @ patterns
            for _, size in _blocks(n_resamples, len(patterns))
        ]
    )


@dataclass(frozen=True)
class Crossing:
    """Is the design crossed enough (annotators x comparisons) for the two-way bootstrap?"""

    crossed: bool
    annotators: int
    comparisons: int
    annotators_per_comparison: float | None  # mean
    comparisons_per_annotator: float | None  # median
    reason: str = ""


def design_crossing(
    comparison,
    annotator,
    *,
    min_annotators: int = 10,
    min_annotators_per_comparison: float = 2.0,
    min_comparisons_per_annotator: float = 2.0,
) -> Crossing:
    """A rule of thumb. The pigeonhole bootstrap resamples annotators as well as comparisons,
    so it needs enough annotators that resampling them means something (`min_annotators`;
    with 3 annotators there are only 10 distinct resamples), comparisons judged by several
    annotators (mean >= 2; otherwise comparisons are nested in annotators) and annotators
    who judged several comparisons (median >= 2; otherwise annotators are nested in
    comparisons and the comparison bootstrap already covers them)."""
    if not len(comparison):
        return Crossing(False, 0, 0, None, None, "no judgments")
    _, c = unique(comparison, return_inverse=True)
    people, a = unique(annotator, return_inverse=True)
    cells = _distinct(c.astype(np.int64) * len(people) + a)  # distinct (comparison, annotator)
    per_comparison = np.bincount(cells // len(people))
    per_annotator = np.bincount(cells % len(people), minlength=len(people))
    mean_k, median_m = float(per_comparison.mean()), float(np.median(per_annotator))
    result = (len(people), len(per_comparison), mean_k, median_m)
    if len(people) < min_annotators:
        reason = (
            f"only {len(people)} annotators (fewer than {min_annotators}): resampling so few "
            "gives a coarse, unstable interval"
        )
    elif mean_k < min_annotators_per_comparison:
        reason = f"comparisons have {mean_k:.2f} annotators on average: nested, not crossed"
    elif median_m < min_comparisons_per_annotator:
        reason = f"annotators judged a median of {median_m:g} comparisons: nested, not crossed"
    else:
        return Crossing(True, *result)
    return Crossing(False, *result, reason)


def _two_way_ratio(
    comparison, annotator, pairs: list[tuple], n_resamples: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Pigeonhole bootstrap (Owen 2007, "The pigeonhole bootstrap", Ann. Appl. Stat.; McCullagh
    2000 for why crossed data need it): draw comparisons with replacement (multiplicities u_c)
    and annotators with replacement (v_a), independently; judgment (c, a) then appears
    u_c * v_a times, and the net preference of the resample is
    sum u_c v_a y_ca / sum u_c v_a n_ca, with y the verdict sums and n the judgment counts of
    cell (c, a). `pairs` holds per ratio the per-judgment (numerator, denominator): (verdict,
    1) for the net preference, (B better, not tied) for the win rate; every ratio uses the
    same draws, so each is what it would be alone with this generator. Vectorised as sparse
    (comparisons x annotators) products with blocks of resamples. A resample where no drawn
    annotator judged a drawn comparison is NaN. Unlike the comparison bootstrap it cannot pool
    identical comparisons, so it costs O(resamples x comparisons): about 17 s for 2,000
    resamples of 333k comparisons on two cores (bench/statistics_bench.py), against 0.08 s
    for the comparison bootstrap."""
    _, c = unique(comparison, return_inverse=True)
    _, a = unique(annotator, return_inverse=True)
    n_c, n_a = int(c.max()) + 1, int(a.max()) + 1
    shape = (n_c, n_a)
    # u' Y v = v . (Y' u): one sparse product of [Y'; N'; ...] with a block of comparison
    # weights leaves (2 x ratios x annotators, block), and the annotator weights finish it.
    blocks = [
        sparse.csr_matrix((np.asarray(values, dtype=np.float32), (c, a)), shape=shape).T
        for pair in pairs
        for values in pair
    ]
    stacked = sparse.vstack(blocks).tocsr()
    out: list[list[np.ndarray]] = [[] for _ in pairs]
    for _, size in _blocks(n_resamples, n_c):
        u = _resample_counts(rng, size, n_c, np.float32)
        v = _resample_counts(rng, size, n_a)
        both = stacked @ u
        for r, values in enumerate(out):
            numerator = (both[2 * r * n_a : (2 * r + 1) * n_a] * v).sum(axis=0)
            denominator = (both[(2 * r + 1) * n_a : (2 * r + 2) * n_a] * v).sum(axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                values.append(np.where(denominator > 0, numerator / denominator, np.nan))
    return [np.concatenate(values) for values in out]


NORMAL_MIN_COMPARISONS = 2000  # below, the normal limit of the comparison weights is not used
NORMAL_MAX_ANNOTATORS = 2000  # three dense (annotators x annotators) Gram matrices


def _two_way_ratio_normal(
    comparison, annotator, pairs: list[tuple], n_resamples: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """The pigeonhole bootstrap with Poisson(1) weights (Owen & Eckles 2012, "Bootstrapping
    data arrays of arbitrary order", Ann. Appl. Stat.), at a cost free of the number of
    comparisons: annotator weights v are drawn; given v, comparison c contributes
    x_c = sum_a v_a y_ca to the numerator and w_c = sum_a v_a n_ca to the denominator, each
    times its weight u_c ~ Poisson(1), independent. Over many comparisons (X, W) =
    (sum u_c x_c, sum u_c w_c) is bivariate normal with mean (sum x_c, sum w_c) and covariance
    [[sum x_c^2, sum x_c w_c], [., sum w_c^2]], and these sums are quadratic forms in v of the
    Gram matrices Y'Y, Y'N, N'N (annotators x annotators), computed once, as blocks of one
    sparse product [Y N]'[Y N]. Each resample draws v and (X, W), and gives X / W. Checked
    against a naive loop of the pigeonhole bootstrap. `pairs` as in `_two_way_ratio`, all
    drawn with the same annotator weights and normal draws. With whole-number verdicts and
    Poisson weights every sum here is a whole number below 2**53, exact in floating point
    whatever the order of summing."""
    _, c = unique(comparison, return_inverse=True)
    people, a = unique(annotator, return_inverse=True)
    n_c, n_a = int(c.max()) + 1, len(people)
    forms = []
    for numerator, denominator in pairs:
        values = np.concatenate([np.asarray(x, np.float64) for x in (numerator, denominator)])
        both = sparse.csr_matrix(
            (values, (np.concatenate([c, c]), np.concatenate([a, a + n_a]))),
            shape=(n_c, 2 * n_a),
        )
        gram = (both.T @ both).toarray()
        totals = np.asarray(both.sum(axis=0)).ravel()
        # [Y'Y Y'N], N'N, and the totals of Y and N
        forms.append((gram[:n_a], gram[n_a:, n_a:], totals[:n_a], totals[n_a:]))
    out: list[list[np.ndarray]] = [[] for _ in pairs]
    for _, size in _blocks(n_resamples, n_a):
        v = rng.poisson(1.0, size=(size, n_a)).astype(np.float64)
        z = None
        for (top, nn, y_total, n_total), values in zip(forms, out, strict=True):
            vy = v @ top
            xx, xw = np.einsum("ij,ij->i", vy[:, :n_a], v), np.einsum("ij,ij->i", vy[:, n_a:], v)
            ww = np.einsum("ij,ij->i", v @ nn, v)
            if z is None:
                z = rng.standard_normal((2, size))
            with np.errstate(invalid="ignore", divide="ignore"):
                sd_w = np.sqrt(ww)
                slope = np.where(ww > 0, xw / sd_w, 0.0)
                rest = np.sqrt(np.maximum(xx - slope**2, 0.0))
                denominator = v @ n_total + sd_w * z[0]
                numerator = v @ y_total + slope * z[0] + rest * z[1]
                values.append(np.where(denominator > 0, numerator / denominator, np.nan))
    return [np.concatenate(values) for values in out]


@dataclass(frozen=True)
class NetPreference:
    """Net preference for B: share(B better) - share(A better) over judgments, which is the
    mean verdict. 95% percentile intervals by the comparison (cluster) bootstrap and, where the
    design is crossed, by the two-way (pigeonhole) bootstrap."""

    estimate: float | None
    b_share: float | None
    equal_share: float | None
    a_share: float | None
    judgments: int
    comparisons: int
    annotators: int
    ci: Interval | None
    two_way_ci: Interval | None
    two_way_reason: str
    seed: int
    n_resamples: int
    reason: str = ""
    two_way_method: str = ""  # how the two-way interval was drawn, when there is one


def net_preference(
    comparison,
    annotator,
    verdict,
    *,
    n_resamples: int = 2000,
    seed: int = SEED,
    two_way: bool = True,
    max_two_way_work: int | None = None,
    crossing: Crossing | None = None,
) -> NetPreference:
    """See NetPreference. The two-way interval is computed when `two_way` and
    `design_crossing` says the design is crossed; otherwise it is None and `two_way_reason`
    says why. Both bootstraps use `seed` (the same stream, comparison bootstrap first).

    The two-way bootstrap costs about TWO_WAY_SECONDS_PER_DRAW per comparison and resample;
    with `max_two_way_work`, it is skipped (and the reason gives the time it would take) when
    comparisons x resamples exceeds it, so that a page stays fast."""
    _, counts = comparison_counts(comparison, verdict)  # kept by identity: before converting
    verdict = _codes(verdict)
    annotator = np.asarray(annotator)
    people = len(unique(annotator))
    if not len(verdict):
        return NetPreference(
            None, None, None, None, 0, 0, 0, None, None, "no judgments", seed, n_resamples,
            "no judgments",
        )  # fmt: skip
    a, e, b = (int(x) for x in counts.sum(axis=0))
    n = a + e + b
    rng = np.random.default_rng(seed)
    totals = _pattern_totals(counts, n_resamples, rng)
    ci = _percentile_interval((totals[:, 2] - totals[:, 0]) / totals.sum(axis=1))
    if two_way and crossing is None:  # a caller may pass the design's, judged once
        crossing = design_crossing(comparison, annotator)
    [(two_way_ci, why, method)] = _two_way_intervals(
        comparison, annotator, [_net_pair(verdict)], len(counts), people, n_resamples, rng,
        crossing if two_way else None, max_two_way_work,
    )  # fmt: skip
    return NetPreference(
        (b - a) / n, b / n, e / n, a / n, n, len(counts), people, ci, two_way_ci, why, seed,
        n_resamples, two_way_method=method,
    )  # fmt: skip


def _two_way_intervals(
    comparison, annotator, pairs: list[tuple], comparisons: int, people: int,
    n_resamples: int, rng: np.random.Generator, crossing: Crossing | None,
    max_work: int | None,
) -> list[tuple[Interval | None, str, str]]:  # fmt: skip
    """Per (numerator, denominator) pair, (two-way interval of sum numerator / sum denominator,
    why there is none, how it was drawn): the pigeonhole bootstrap row by row up to `max_work`
    comparisons x resamples, its normal limit beyond (enough comparisons, not too many
    annotators), else none, with the time it would take."""
    if crossing is None:
        return [(None, "not asked for", "")] * len(pairs)
    if not crossing.crossed:
        return [(None, crossing.reason, "")] * len(pairs)
    work = comparisons * n_resamples
    comparison = np.asarray(comparison)
    if max_work is None or work <= max_work:
        method = "pigeonhole bootstrap, comparisons and annotators drawn with replacement"
        values = _two_way_ratio(comparison, annotator, pairs, n_resamples, rng)
    elif comparisons >= NORMAL_MIN_COMPARISONS and people <= NORMAL_MAX_ANNOTATORS:
        method = (
            "pigeonhole bootstrap with Poisson weights, the comparisons' by their normal "
            "limit given the annotators'"
        )
        values = _two_way_ratio_normal(comparison, annotator, pairs, n_resamples, rng)
    else:
        why = (
            f"the two-way bootstrap over annotators as well would take about "
            f"{work * TWO_WAY_SECONDS_PER_DRAW:.0f} s here ({comparisons:,} comparisons x "
            f"{n_resamples:,} resamples), too slow for a page"
        )
        return [(None, why, "")] * len(pairs)
    return [(_percentile_interval(v), "", method) for v in values]


@dataclass(frozen=True)
class WinRate:
    """wins_B / (wins_B + wins_A) over non-tied judgments, with a comparison-bootstrap 95%
    percentile interval (resamples without a non-tied judgment are left out) and, given the
    annotators of a crossed design, the two-way (pigeonhole) interval as for the net
    preference (`two_way_reason` says why there is none)."""

    estimate: float | None
    b_better: int
    a_better: int
    ties: int
    comparisons: int
    ci: Interval | None
    seed: int
    n_resamples: int
    reason: str = ""
    two_way_ci: Interval | None = None
    two_way_reason: str = "not asked for"
    two_way_method: str = ""


def win_rate(
    comparison,
    verdict,
    *,
    n_resamples: int = 2000,
    seed: int = SEED,
    annotator=None,
    max_two_way_work: int | None = None,
    crossing: Crossing | None = None,
) -> WinRate:
    """See WinRate. The two-way interval needs `annotator` (per judgment); it follows the
    comparison bootstrap in the same seeded stream, and `max_two_way_work` and `crossing`
    work as in `net_preference`."""
    _, counts = comparison_counts(comparison, verdict)
    verdict = _codes(verdict)
    a, e, b = (int(x) for x in counts.sum(axis=0))
    if a + b == 0:
        return _no_win_rate(b, a, e, len(counts), seed, n_resamples)
    rng = np.random.default_rng(seed)
    totals = _pattern_totals(counts, n_resamples, rng)
    two_way = (None, "not asked for", "")
    if annotator is not None:
        annotator = np.asarray(annotator)
        if crossing is None:
            crossing = design_crossing(comparison, annotator)
        [two_way] = _two_way_intervals(
            comparison, annotator, [_win_pair(verdict)], len(counts), len(unique(annotator)),
            n_resamples, rng, crossing, max_two_way_work,
        )  # fmt: skip
    return _win_rate_of(b, a, e, len(counts), totals, seed, n_resamples, two_way)


def _net_pair(verdict: np.ndarray) -> tuple:
    return verdict, np.ones(len(verdict))


def _win_pair(verdict: np.ndarray) -> tuple:
    return verdict == 1, verdict != 0


def _no_win_rate(b: int, a: int, e: int, comparisons: int, seed: int, n_resamples: int):
    why = "no judgment prefers either system"
    return WinRate(None, b, a, e, comparisons, None, seed, n_resamples, why, None, why)


def _win_rate_of(b, a, e, comparisons, totals, seed, n_resamples, two_way) -> WinRate:
    decided = totals[:, 0] + totals[:, 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = np.where(decided > 0, totals[:, 2] / decided, np.nan)
    ci = _percentile_interval(rates)
    return WinRate(b / (a + b), b, a, e, comparisons, ci, seed, n_resamples, "", *two_way)


def net_and_win(
    comparison,
    annotator,
    verdict,
    *,
    n_resamples: int = 2000,
    seed: int = SEED,
    two_way: bool = True,
    max_two_way_work: int | None = None,
    crossing: Crossing | None = None,
) -> tuple[NetPreference, WinRate]:
    """`net_preference(...)` and `win_rate(..., annotator=annotator if two_way else None)`,
    the same numbers at about half the cost: both start the same seeded generator with the
    same comparison bootstrap, so they draw the same resamples, here drawn once, and then the
    same two-way weights, also drawn once for both ratios."""
    _, counts = comparison_counts(comparison, verdict)
    a, e, b = (int(x) for x in counts.sum(axis=0))
    if not len(counts) or a + b == 0:  # nothing to share
        net = net_preference(
            comparison, annotator, verdict, n_resamples=n_resamples, seed=seed,
            two_way=two_way, max_two_way_work=max_two_way_work, crossing=crossing,
        )  # fmt: skip
        return net, _no_win_rate(b, a, e, len(counts), seed, n_resamples)
    verdict = _codes(verdict)
    annotator = np.asarray(annotator)
    people = len(unique(annotator))
    rng = np.random.default_rng(seed)
    totals = _pattern_totals(counts, n_resamples, rng)
    ci = _percentile_interval((totals[:, 2] - totals[:, 0]) / totals.sum(axis=1))
    if two_way and crossing is None:
        crossing = design_crossing(comparison, annotator)
    net_two_way, win_two_way = _two_way_intervals(
        comparison, annotator, [_net_pair(verdict), _win_pair(verdict)], len(counts), people,
        n_resamples, rng, crossing if two_way else None, max_two_way_work,
    )  # fmt: skip
    n = a + e + b
    net = NetPreference(
        (b - a) / n, b / n, e / n, a / n, n, len(counts), people, ci, net_two_way[0],
        net_two_way[1], seed, n_resamples, two_way_method=net_two_way[2],
    )  # fmt: skip
    win = _win_rate_of(b, a, e, len(counts), totals, seed, n_resamples, win_two_way)
    return net, win


# ---------------------------------------------------------------------------------------------
# Multiple comparisons


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment (Holm 1979), controlling the family-wise error rate.

    With the m defined p-values sorted ascending, p_(1) <= ... <= p_(m), the adjusted value is
    max over j <= i of min(1, (m - j + 1) p_(j)). None entries (undefined tests) are not
    counted in m and come back as None, in place."""
    known = [i for i, p in enumerate(p_values) if p is not None]
    values = np.array([p_values[i] for i in known], dtype=np.float64)
    m = len(values)
    order = np.argsort(values, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * values[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    out: list[float | None] = [None] * len(p_values)
    for i, value in zip(known, adjusted.tolist(), strict=True):
        out[i] = value
    return out


# ---------------------------------------------------------------------------------------------
# Reliability


@dataclass(frozen=True)
class AlphaBootstrap:
    """Krippendorff's ordinal alpha and raw pairwise agreement of one criterion, each with a
    95% percentile interval by resampling the pairable comparisons (those judged twice or
    more). Resamples where alpha is undefined (no variation) are left out and counted."""

    alpha: float | None
    alpha_ci: Interval | None
    agreement: float | None
    agreement_ci: Interval | None
    comparisons: int
    annotators: int
    undefined_resamples: int
    seed: int
    n_resamples: int
    reason: str = ""


def _coincidences(patterns: np.ndarray) -> np.ndarray:
    """Per unit (rows of value counts, 2+ values each), its (3 x 3) coincidence matrix
    (n_c n_k - [c = k] n_c) / (n_u - 1), as in Krippendorff (2011) and the package."""
    outer = patterns[:, :, None] * patterns[:, None, :] - patterns[:, :, None] * np.eye(3)
    return outer / (patterns.sum(axis=1) - 1)[:, None, None]


def _alphas(o: np.ndarray) -> np.ndarray:
    """Ordinal alpha per (3 x 3) coincidence matrix, stacked: 1 - sum(o d) / sum(e d) with
    expected coincidences e = (n_c n_k - [c = k] n_c) / (n - 1) and the ordinal distance
    d_ck = (n_c + ... + n_k - (n_c + n_k) / 2)**2 over the marginals n_v; NaN when alpha is
    undefined (a single value used)."""
    n_v = o.sum(axis=1)
    n = n_v.sum(axis=1)
    e = (n_v[:, :, None] * n_v[:, None, :] - n_v[:, :, None] * np.eye(3)) / (n - 1)[:, None, None]
    cum = np.concatenate([np.zeros((len(o), 1)), np.cumsum(n_v, axis=1)], axis=1)
    low, high = np.minimum.outer(range(3), range(3)), np.maximum.outer(range(3), range(3))
    between = cum[:, high + 1] - cum[:, low]
    d = (between - (n_v[:, :, None] + n_v[:, None, :]) / 2) ** 2
    expected = (e * d).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(expected > 0, 1 - (o * d).sum(axis=(1, 2)) / expected, np.nan)


def ordinal_alpha(counts: np.ndarray) -> float:
    """Krippendorff's ordinal alpha from per-comparison value counts [#A, #equal, #B] (units
    with 2+ values), NaN when undefined: the coincidences pooled over the distinct count
    vectors, then `_alphas`. The same number as `krippendorff.alpha(value_counts=counts)`
    (checked in tests) at a seventh of its time on 333k comparisons (0.07 s against 0.5 s)."""
    counts = np.asarray(counts, dtype=np.int64)
    counts = counts[counts.sum(axis=1) >= 2]
    if not len(counts) or (counts.sum(axis=0) > 0).sum() < 2:
        return math.nan
    patterns, freq, _ = pattern_index(counts)
    pooled = freq @ _coincidences(patterns).reshape(len(patterns), 9)
    return float(_alphas(pooled.reshape(1, 3, 3))[0])


def alpha_bootstrap(
    comparison, annotator, verdict, *, n_resamples: int = 2000, seed: int = SEED
) -> AlphaBootstrap:
    """Alpha depends on the reliability matrix only through each comparison's value counts:
    the point estimate is `ordinal_alpha` of them (the package's number, checked against
    `krippendorff.alpha` on the reliability matrix in tests). The coincidence matrix is a sum
    over units, so a resample of comparisons, which only matters through how often each
    distinct count vector is drawn (multinomial with their frequencies), has coincidences
    W @ (each vector's coincidences): every resample costs O(distinct vectors), and its alpha
    follows from the package's formula (`_alphas`, checked resample by resample against the
    package on the resampled reliability matrix). Raw agreement = agreeing pairs / pairs of
    judgments of one comparison, from the same resamples."""
    annotators = len(unique(annotator))
    _, counts = comparison_counts(comparison, verdict)
    counts = counts[counts.sum(axis=1) >= 2]
    n = len(counts)
    if annotators < 2 or n == 0:
        why = "no comparison was judged by two or more annotators"
        return AlphaBootstrap(None, None, None, None, n, annotators, 0, seed, n_resamples, why)
    patterns, freq, _ = pattern_index(counts)
    sizes = patterns.sum(axis=1)
    pairs = sizes * (sizes - 1) // 2
    agreeing = (patterns * (patterns - 1) // 2).sum(axis=1)
    agreement = float(freq @ agreeing / (freq @ pairs))
    units = _coincidences(patterns).reshape(len(patterns), 9)
    alpha = ordinal_alpha(counts)
    rng = np.random.default_rng(seed)
    weights = np.concatenate(
        [rng.multinomial(n, freq / n, size=size) for _, size in _blocks(n_resamples, len(patterns))]
    )
    alphas = _alphas((weights @ units).reshape(-1, 3, 3))
    agreements = (weights @ agreeing) / (weights @ pairs)
    undefined = int(np.isnan(alphas).sum())
    if math.isnan(alpha):
        why = "every judgment gives the same verdict: with no variation, alpha is undefined"
        return AlphaBootstrap(
            None, None, agreement, _percentile_interval(agreements), n, annotators, undefined,
            seed, n_resamples, why,
        )  # fmt: skip
    return AlphaBootstrap(
        alpha, _percentile_interval(alphas), agreement, _percentile_interval(agreements), n,
        annotators, undefined, seed, n_resamples,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Planning: correlation within comparisons, sample size, power


@dataclass(frozen=True)
class DesignEffect:
    """Within-comparison correlation of verdicts and the variance inflation it causes.

    `rho` is the one-way ANOVA intraclass correlation ICC(1) with unequal cluster sizes:
    (MSB - MSW) / (MSB + (k0 - 1) MSW), k0 = (N - sum n_i**2 / N) / (g - 1), for g comparisons
    with n_i judgments each, N in all. It can be negative (then below-chance similarity).
    `design_effect` = 1 + (k - 1) rho with k = N / g, the mean annotators per comparison: the
    factor by which clustering inflates the variance of the mean verdict."""

    rho: float | None
    annotators_per_comparison: float | None
    design_effect: float | None
    comparisons: int
    judgments: int
    reason: str = ""


def design_effect(comparison, verdict) -> DesignEffect:
    _, counts = comparison_counts(comparison, verdict)
    n_i = counts.sum(axis=1).astype(np.float64)
    g, total = len(n_i), float(n_i.sum())
    if g < 2 or total - g < 1:
        why = "needs two or more comparisons and some comparison judged twice or more"
        return DesignEffect(None, None, None, g, int(total), why)
    sums = (counts[:, 2] - counts[:, 0]).astype(np.float64)
    squares = (counts[:, 2] + counts[:, 0]).astype(np.float64)  # (+-1)**2 = 1
    grand = sums.sum() / total
    ssb = float((sums**2 / n_i).sum() - total * grand**2)
    ssw = float((squares - sums**2 / n_i).sum())
    msb, msw = ssb / (g - 1), ssw / (total - g)
    k0 = (total - (n_i**2).sum() / total) / (g - 1)
    denominator = msb + (k0 - 1) * msw
    k = total / g
    if denominator <= 0:
        why = "verdicts do not vary: the correlation is undefined"
        return DesignEffect(None, k, None, g, int(total), why)
    rho = float((msb - msw) / denominator)
    return DesignEffect(rho, k, 1 + (k - 1) * rho, g, int(total))


@dataclass(frozen=True)
class Pilot:
    """What a pilot study says for planning: shares (p_b, p_equal, p_a), rho and mean k."""

    shares: tuple[float, float, float]
    rho: float | None
    k: float | None
    comparisons: int
    judgments: int
    reason: str = ""


def pilot_estimates(comparison, verdict) -> Pilot:
    """Judgment-level shares and the within-comparison correlation of a pilot, to feed
    `comparisons_needed`, `simulate_power` and `comparisons_for_power`."""
    _, counts = comparison_counts(comparison, verdict)
    a, e, b = (int(x) for x in counts.sum(axis=0))
    n = a + e + b
    effect = design_effect(comparison, verdict)
    shares = (b / n, e / n, a / n) if n else (math.nan, math.nan, math.nan)
    k = effect.annotators_per_comparison
    return Pilot(shares, effect.rho, k, len(counts), n, effect.reason)


def _check_shares(shares) -> tuple[float, float, float]:
    p_b, p_equal, p_a = (float(x) for x in shares)
    if min(p_b, p_equal, p_a) < 0 or not math.isclose(p_b + p_equal + p_a, 1.0):
        raise ValueError("shares (p_b, p_equal, p_a) must be non-negative and sum to 1")
    return p_b, p_equal, p_a


def _check_rho(rho: float) -> float:
    if not 0 <= rho <= 1:
        raise ValueError("the generator needs 0 <= rho <= 1")
    return float(rho)


@dataclass(frozen=True)
class ComparisonsNeeded:
    """Comparisons (and judgments) for the primary test to reach `power`, by formula."""

    comparisons: int | None
    judgments: int | None
    net_preference: float
    rho: float
    k: int
    design_effect: float
    alpha: float
    power: float
    reason: str = ""


def comparisons_needed(
    shares, k: int, rho: float, *, alpha: float = 0.05, power: float = 0.8
) -> ComparisonsNeeded:
    """Normal-approximation sample size of the sign-flip test on comparison means.

    With judgment-level shares (p_b, p_equal, p_a): mu = p_b - p_a, sigma**2 = p_b + p_a -
    mu**2, and a comparison mean of k correlated verdicts has variance
    s**2 = sigma**2 (1 + (k - 1) rho) / k. The test rejects when
    |sum m| > z(1 - alpha/2) sqrt(sum m**2), and sum m**2 ~ n (s**2 + mu**2), so
    n = ((z(1 - alpha/2) sqrt(s**2 + mu**2) + z(power) s) / mu)**2, rounded up."""
    p_b, _, p_a = _check_shares(shares)
    mu = p_b - p_a
    deff = 1 + (k - 1) * rho
    if mu == 0:
        why = "no net preference: there is no effect to detect"
        return ComparisonsNeeded(None, None, mu, rho, k, deff, alpha, power, why)
    s2 = (p_b + p_a - mu**2) * deff / k
    z_alpha, z_power = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    n = math.ceil(((z_alpha * math.sqrt(s2 + mu**2) + z_power * math.sqrt(s2)) / mu) ** 2)
    return ComparisonsNeeded(n, n * k, mu, rho, k, deff, alpha, power)


def simulate_verdicts(
    shares, k: int, n_comparisons: int, rho: float, *, n_studies: int = 1, seed: int = SEED
) -> np.ndarray:
    """Correlated verdicts, shape (n_studies, n_comparisons, k), codes -1 / 0 / +1.

    Latent-copy generator: each comparison has a latent verdict L drawn from the shares
    (p_b, p_equal, p_a); each of its k annotators copies L with probability q = sqrt(rho) and
    otherwise draws a fresh verdict from the same shares. Every verdict then has exactly the
    shares as its marginal, and two annotators of one comparison covary only when both copy,
    with probability q**2: their correlation is q**2 = rho."""
    p_b, p_equal, p_a = _check_shares(shares)
    q = math.sqrt(_check_rho(rho))
    rng = np.random.default_rng(seed)
    values, probs = np.array([1, 0, -1], dtype=np.int8), [p_b, p_equal, p_a]
    latent = rng.choice(values, p=probs, size=(n_studies, n_comparisons, 1))
    fresh = rng.choice(values, p=probs, size=(n_studies, n_comparisons, k))
    copies = rng.random((n_studies, n_comparisons, k)) < q
    return np.where(copies, latent, fresh)


def _compositions(k: int) -> np.ndarray:
    """Every count vector [#A, #equal, #B] of k verdicts."""
    return np.array([(a, e, k - a - e) for a in range(k + 1) for e in range(k + 1 - a)])


def pattern_probabilities(shares, k: int, rho: float) -> tuple[np.ndarray, np.ndarray]:
    """See `_pattern_probabilities`; memoised (a power search asks for the same law at every
    size it tries), copies returned so that callers cannot change the cache."""
    patterns, probs = _pattern_probabilities(_check_shares(shares), int(k), float(rho))
    return patterns.copy(), probs.copy()


@lru_cache(maxsize=64)
def _pattern_probabilities(shares, k: int, rho: float) -> tuple[np.ndarray, np.ndarray]:
    """(patterns, probabilities): the law of one comparison's count vector [#A, #equal, #B]
    under `simulate_verdicts`' generator, summing over the latent verdict L and the number c
    of annotators who copy it (Binomial(k, sqrt(rho))); the other k - c are multinomial."""
    p_b, p_equal, p_a = _check_shares(shares)
    q = math.sqrt(_check_rho(rho))
    p = np.array([p_a, p_equal, p_b])
    patterns = _compositions(k)
    probs = np.zeros(len(patterns))
    for latent in range(3):
        for c in range(k + 1):
            rest = patterns.copy()
            rest[:, latent] -= c
            ok = (rest >= 0).all(axis=1)
            fresh = stats.multinomial.pmf(rest[ok], k - c, p) if k > c else 1.0
            probs[ok] += p[latent] * stats.binom.pmf(c, k, q) * fresh
    return patterns, probs


@dataclass(frozen=True)
class Power:
    """Simulated power of the primary (sign-flip) test."""

    power: float
    n_comparisons: int
    k: int
    rho: float
    shares: tuple[float, float, float]
    alpha: float
    n_sim: int
    seed: int
    method: str


def simulate_power(
    shares,
    k: int,
    n_comparisons: int,
    rho: float,
    *,
    alpha: float = 0.05,
    n_sim: int = 2000,
    seed: int = SEED,
    method: str = "normal",
) -> Power:
    """Share of `n_sim` simulated studies (n_comparisons x k verdicts from `simulate_verdicts`'
    generator) in which the primary test rejects at `alpha`.

    A study's comparisons are iid, so a study is a multinomial draw of how many comparisons
    have each count vector (`pattern_probabilities`), and sum m, sum m**2 follow by dot
    products: any n_comparisons costs the same. method "normal" uses `sign_flip_normal_p`
    (vectorised); "sign_flip" runs `sign_flip_test` (exact or 2,000 Monte Carlo flips) on
    each study, slower. Pass a `Pilot`'s shares, rho and round(k) to plan from a pilot."""
    shares = _check_shares(shares)
    patterns, probs = pattern_probabilities(shares, k, rho)
    means = (patterns[:, 2] - patterns[:, 0]) / k
    rng = np.random.default_rng(seed)
    tallies = rng.multinomial(n_comparisons, probs / probs.sum(), size=n_sim)
    if method == "normal":
        p = sign_flip_normal_p(tallies @ means, tallies @ means**2)
    elif method == "sign_flip":
        p = np.array(
            [
                sign_flip_test(np.repeat(means, t), n_resamples=2000, seed=seed + i).p_value
                for i, t in enumerate(tallies)
            ]
        )
    else:
        raise ValueError('method is "normal" or "sign_flip"')
    power = float(np.mean(p < alpha))
    return Power(power, n_comparisons, k, rho, shares, alpha, n_sim, seed, method)


@dataclass(frozen=True)
class PowerSearch:
    """Smallest n (comparisons) found whose simulated power reaches `target`."""

    comparisons: int | None
    power: float | None  # simulated power at `comparisons`
    target: float
    formula_hint: int | None  # comparisons_needed's closed form, for comparison
    evaluations: int  # simulate_power calls
    reason: str = ""


def comparisons_for_power(
    shares,
    k: int,
    rho: float,
    *,
    target: float = 0.8,
    alpha: float = 0.05,
    n_sim: int = 2000,
    seed: int = SEED,
    max_comparisons: int = 1_000_000,
) -> PowerSearch:
    """Doubling from 2 comparisons until the power reaches `target` (at most
    `max_comparisons`), then bisection on integers. Every evaluation uses the same seed
    (common random numbers), which keeps simulated power close to monotone in n; the answer
    is still a Monte Carlo estimate, good to the simulation error of n_sim studies."""
    hint = comparisons_needed(shares, k, rho, alpha=alpha, power=target).comparisons
    calls = 0

    def power_at(n: int) -> float:
        nonlocal calls
        calls += 1
        return simulate_power(shares, k, n, rho, alpha=alpha, n_sim=n_sim, seed=seed).power

    if hint is None:
        return PowerSearch(None, None, target, None, 0, "no net preference: power stays alpha")
    low, high = 1, 2
    while (found := power_at(high)) < target:
        if high >= max_comparisons:
            why = f"power {found:.3f} < {target} even at {high} comparisons"
            return PowerSearch(None, None, target, hint, calls, why)
        low, high = high, min(2 * high, max_comparisons)
    while high - low > 1:
        middle = (low + high) // 2
        if (p := power_at(middle)) >= target:
            high, found = middle, p
        else:
            low = middle
    return PowerSearch(high, found, target, hint, calls)


# ---------------------------------------------------------------------------------------------
# Position bias


@dataclass(frozen=True)
class PositionBias:
    """Share of non-tied verdicts that chose the summary shown on the LEFT, with a two-sided
    exact binomial test against 1/2. `flagged` when p < alpha (0.05 by default): a screen for
    a closer look, uncorrected for the number of annotators screened (`holm_p` is corrected
    across the annotators; None for the overall row)."""

    annotator: int | None  # None: everyone together
    non_tied: int
    left: int
    left_share: float | None
    p_value: float | None
    flagged: bool
    holm_p: float | None = None
    reason: str = ""


@dataclass(frozen=True)
class PositionBiasReport:
    overall: PositionBias
    annotators: tuple[PositionBias, ...]
    alpha: float


def _half_binomial_p(left: np.ndarray, non_tied: np.ndarray) -> np.ndarray:
    """Two-sided exact binomial p against 1/2, vectorised: with p = 1/2 the law is symmetric,
    so `scipy.stats.binomtest`'s two-sided p is 2 min(P(X <= k), P(X >= k)), capped at 1.
    One scipy call per annotator cost 0.8 s at 1,000 annotators; this costs milliseconds."""
    tails = np.minimum(
        stats.binom.cdf(left, non_tied, 0.5), stats.binom.sf(left - 1, non_tied, 0.5)
    )
    return np.minimum(1.0, 2 * tails)


def _left_test(who, non_tied: int, left: int, alpha: float, p: float) -> PositionBias:
    if non_tied == 0:
        return PositionBias(who, 0, 0, None, None, False, None, "no non-tied verdict")
    return PositionBias(who, non_tied, left, left / non_tied, p, p < alpha)


def position_bias(annotator, verdict, left, *, alpha: float = 0.05) -> PositionBiasReport:
    """`verdict` in system terms, `left` the system shown on the left per judgment ("A" or
    "B", or True where A was). A verdict chose the left side when it is A better with A on the
    left or B better with B on the left. With the side randomised, a system preference alone
    keeps the left share at 1/2, so a departure is the position's doing."""
    verdict, left = _codes(verdict), np.asarray(left)
    if left.dtype == bool:  # True where A was on the left: no array of strings to compare
        a_left = left
    elif np.isin(left, ("A", "B")).all():
        a_left = left == "A"
    else:
        raise ValueError('left must be "A" or "B" per judgment')
    decided = verdict != 0
    chose_left = np.where(a_left, verdict == -1, verdict == 1)
    ids, who = unique(annotator, return_inverse=True)
    n = np.bincount(who, weights=decided, minlength=len(ids)).astype(np.int64)
    k = np.bincount(who, weights=chose_left, minlength=len(ids)).astype(np.int64)
    p = _half_binomial_p(k, n).tolist()
    rows = [
        _left_test(int(i), int(a), int(b), alpha, q)
        for i, a, b, q in zip(ids.tolist(), n.tolist(), k.tolist(), p, strict=True)
    ]
    adjusted = holm([row.p_value for row in rows])
    rows = [replace(row, holm_p=q) for row, q in zip(rows, adjusted, strict=True)]
    total, left_total = int(decided.sum()), int(chose_left.sum())
    overall_p = float(_half_binomial_p(np.array([left_total]), np.array([total]))[0])
    overall = _left_test(None, total, left_total, alpha, overall_p)
    return PositionBiasReport(overall, tuple(rows), alpha)


# ---------------------------------------------------------------------------------------------
# Metric against humans


def human_majority(comparison, verdict) -> tuple[np.ndarray, np.ndarray]:
    """(sorted comparison ids, majority verdict): -1, 0 or +1 for a strict plurality (A/A/equal
    is A), -2 when two verdicts share the largest count (no majority)."""
    ids, counts = comparison_counts(comparison, verdict)
    top = counts.max(axis=1, keepdims=True)
    unique = (counts == top).sum(axis=1) == 1
    return ids, np.where(unique, counts.argmax(axis=1) - 1, -2)


@dataclass(frozen=True)
class TieAwareAccuracy:
    """Pairwise accuracy with ties as a class and tie calibration (Deutsch, Foster & Freitag,
    EMNLP 2023, "Ties Matter"): a comparison is correct when the metric and the human
    majority both say tie, or both prefer the same system. The metric says tie when
    |delta| <= epsilon; epsilon is chosen to maximise accuracy (smallest such epsilon)."""

    accuracy: float | None  # at the calibrated epsilon
    epsilon: float | None
    accuracy_without_calibration: float | None  # epsilon = 0: only exact zero deltas tie
    comparisons: int  # with a human majority
    human_ties: int
    no_majority: int  # left out
    ci: Interval | None  # epsilon re-calibrated in every resample
    seed: int
    n_resamples: int
    reason: str = ""
    ci_method: str = ""  # the epsilons each resample searched


def _calibrated(weights: np.ndarray, magnitude: np.ndarray, tie_ok, sign_ok):
    """Accuracy at every candidate epsilon, per row of weights (items already sorted by
    |delta|). Candidates are 0 and every distinct |delta|: accuracy only changes there.
    Returns (accuracy at the best epsilon per row, best epsilon per row, accuracy at 0)."""
    ends = np.flatnonzero(np.append(np.diff(magnitude) > 0, True))  # last of each |delta| run
    ties = np.cumsum(weights * tie_ok, axis=1)[:, ends]
    signs = np.cumsum(weights * sign_ok, axis=1)
    correct = ties + signs[:, -1:] - signs[:, ends]
    epsilons = magnitude[ends]
    if epsilons[0] > 0:  # epsilon = 0 with no zero delta: no metric ties at all
        correct = np.concatenate([signs[:, -1:], correct], axis=1)
        epsilons = np.concatenate([[0.0], epsilons])
    total = weights.sum(axis=1)
    best = correct.argmax(axis=1)
    return correct[np.arange(len(best)), best] / total, epsilons[best], correct[:, 0] / total


def _grid_bootstrap(
    magnitude, tie_ok, sign_ok, epsilon: float, n_resamples: int, rng, grid: int
) -> np.ndarray:
    """Bootstrap accuracies with epsilon re-chosen in each resample among a grid of candidates:
    0, the `grid` + 1 quantiles of |delta| and the point estimate's epsilon. With the
    candidates fixed, a comparison matters only through its bin (the first candidate that makes
    it a metric tie) and its class (human tie / same sign / neither): a resample is a
    multinomial draw over those cells, O(cells) instead of O(comparisons)."""
    n = len(magnitude)
    quantiles = np.quantile(magnitude, np.linspace(0, 1, grid + 1))
    candidates = np.unique(np.concatenate([[0.0], quantiles, [epsilon]]))
    bins = np.searchsorted(candidates, magnitude, side="left")  # ties at candidates[j >= bin]
    classes = np.where(tie_ok, 0, np.where(sign_ok, 1, 2))
    freq = np.bincount(bins * 3 + classes, minlength=3 * len(candidates))
    out = []
    for _, size in _blocks(n_resamples, len(freq)):
        drawn = rng.multinomial(n, freq / n, size=size).reshape(size, len(candidates), 3)
        ties = np.cumsum(drawn[:, :, 0], axis=1)  # human ties that the metric ties, at j
        signs = np.cumsum(drawn[:, :, 1], axis=1)
        correct = ties + signs[:, -1:] - signs  # same sign, |delta| beyond candidate j
        out.append(correct.max(axis=1) / n)
    return np.concatenate(out)


def tie_aware_accuracy(
    deltas,
    human,
    *,
    n_resamples: int = 1000,
    seed: int = SEED,
    max_exact_work: int = 2_000_000,
    grid: int = 200,
) -> TieAwareAccuracy:
    """`deltas` per comparison: metric(B) - metric(A); `human` per comparison: the majority
    (-1, 0, +1, or -2 for none, see `human_majority`). Comparisons without a majority are left
    out. The bootstrap resamples comparisons and re-runs the epsilon search in each resample,
    so the interval carries the optimism of choosing epsilon on the same data.

    The point estimate searches every epsilon. The bootstrap does too while comparisons x
    resamples <= `max_exact_work`; beyond it (4.5 s at 33k comparisons otherwise), each
    resample searches a grid of candidates (`_grid_bootstrap`) and `ci_method` says so."""
    deltas, human = np.asarray(deltas, dtype=np.float64), np.asarray(human, dtype=np.int64)
    keep = human != -2
    no_majority = int((~keep).sum())
    deltas, human = deltas[keep], human[keep]
    n = len(deltas)
    if n == 0:
        why = "no comparison has a human majority"
        return TieAwareAccuracy(None, None, None, 0, 0, no_majority, None, seed, n_resamples, why)
    order = np.argsort(np.abs(deltas), kind="stable")
    magnitude, human, deltas = np.abs(deltas)[order], human[order], deltas[order]
    tie_ok = human == 0
    sign_ok = (np.sign(deltas) == human) & (deltas != 0)
    accuracy, epsilon, plain = _calibrated(np.ones((1, n)), magnitude, tie_ok, sign_ok)
    rng = np.random.default_rng(seed)
    if n * n_resamples <= max_exact_work:
        method = "every epsilon"
        boot = np.concatenate(
            [
                _calibrated(_resample_counts(rng, size, n).T, magnitude, tie_ok, sign_ok)[0]
                for _, size in _blocks(n_resamples, n)
            ]
        )
    else:
        method = f"epsilon among {grid + 1} quantiles of |delta|"
        boot = _grid_bootstrap(
            magnitude, tie_ok, sign_ok, float(epsilon[0]), n_resamples, rng, grid
        )
    return TieAwareAccuracy(
        float(accuracy[0]), float(epsilon[0]), float(plain[0]), n, int(tie_ok.sum()),
        no_majority, _percentile_interval(boot), seed, n_resamples, ci_method=method,
    )  # fmt: skip
