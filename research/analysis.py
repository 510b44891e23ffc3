"""The study's statistics: the better / equal / worse table, its uncertainty and its reliability.

Two layers:

- Loaders (`load_judgments`, `load_timing`, `load_annotator_names`, `metric_agreement`) read
  the database with `values_list(...).iterator()` or aggregate queries, never per-row model
  objects, so that a batch of a million judgments loads in well under a second on PostgreSQL.
  Only judgments of SUBMITTED assignments count, and never those of attention checks
  (`Comparison.is_check`).
- Statistics are pure functions over plain data (`Judgments`, `Timing`, or a list of
  `JudgmentRow`), easy to test by hand. They return dataclasses a template can render; floats
  are never rounded here (templates round), and a statistic that is undefined is `None` with a
  `reason` in words rather than a misleading number.

Verdicts are always in SYSTEM terms: "A" (system A better), "equal", "B" (system B better),
coded -1 / 0 / +1 in the arrays, so that "+1" always means "B better than A". The study reports
shares of judgments where B is better than, equal to and worse than A.

Typical use by the results page::

    data = load_judgments([batch.pk])
    table = results_table(data)                       # {criterion: CriterionResult}
    tests = {c: sign_test(r.b_better, r.a_better, ties=r.equal) for c, r in table.items()}
    cis = {c: bootstrap_shares(data, c) for c in CRITERIA}
    alphas = {c: krippendorff_alpha(data, c) for c in CRITERIA}
    people = annotator_report(data, load_timing([batch.pk]), load_annotator_names(...))
"""

from __future__ import annotations

import io
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import NamedTuple

import numpy as np
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import (
    Case,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    Q,
    Value,
    When,
)
from django.db.models.functions import Extract
from scipy import stats

from evaluation import criteria
from evaluation.criteria import VERDICT_CODES, VERDICT_NAMES
from evaluation.models import Assignment, Comparison, Judgment
from scoring.metrics import FAMILIES
from scoring.models import MetricScore

from . import statistics

CRITERIA: tuple[str, ...] = criteria.KEYS  # factual, informative, grammatical, from the registry
BOOTSTRAP_SEED = 20210517
CHUNK = 20_000


# ---------------------------------------------------------------------------------------------
# Plain data


class JudgmentRow(NamedTuple):
    """One judgment as plain data: which comparison, who, which criterion, what (system terms)."""

    comparison_id: int
    annotator_id: int
    criterion: str
    verdict: str


@dataclass(eq=False)
class Judgments:
    """Judgments in columns (numpy arrays of equal length), one element per judgment.

    `criterion` indexes CRITERIA; `verdict` is -1 (A better), 0 (equal) or +1 (B better);
    `left_a` is True where system A was shown on the left (None when not known), for the
    position-bias screen.
    """

    comparison: np.ndarray
    annotator: np.ndarray
    criterion: np.ndarray
    verdict: np.ndarray
    left_a: np.ndarray | None = None
    # Per-criterion counts are needed by most statistics; computing them once saves time.
    _counts: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.verdict)

    def of(self, criterion: str) -> CriterionJudgments:
        """The judgments of one criterion, selected once and kept (read-only, so that the
        statistics may keep what they compute from them; see statistics.comparison_counts)."""
        key = ("judgments of", criterion)
        if key not in self._counts:
            mask = self.criterion == CRITERIA.index(criterion)
            left = None if self.left_a is None else self.left_a[mask]
            arrays = [self.comparison[mask], self.annotator[mask], self.verdict[mask], left]
            for array in arrays:
                if array is not None:
                    array.flags.writeable = False
            self._counts[key] = CriterionJudgments(*arrays)
        return self._counts[key]

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence]) -> Judgments:
        """From (comparison_id, annotator_id, criterion, verdict) tuples, e.g. JudgmentRow,
        optionally with a fifth element: the system on the left ("A" or "B")."""
        rows = list(rows)
        sided = bool(rows) and all(len(r) > 4 for r in rows)
        return cls(
            comparison=np.array([r[0] for r in rows], dtype=np.int64),
            annotator=np.array([r[1] for r in rows], dtype=np.int64),
            criterion=np.array([CRITERIA.index(r[2]) for r in rows], dtype=np.int8),
            verdict=np.array([VERDICT_CODES[r[3]] for r in rows], dtype=np.int8),
            left_a=np.array([r[4] == "A" for r in rows], dtype=bool) if sided else None,
        )

    def rows(self) -> list[JudgmentRow]:
        """Back to plain tuples (for small data: tests, debugging)."""
        return [
            JudgmentRow(int(c), int(a), CRITERIA[k], VERDICT_NAMES[int(v)])
            for c, a, k, v in zip(
                self.comparison, self.annotator, self.criterion, self.verdict, strict=True
            )
        ]


class CriterionJudgments(NamedTuple):
    """One criterion's judgments (see Judgments.of)."""

    comparison: np.ndarray
    annotator: np.ndarray
    verdict: np.ndarray
    left_a: np.ndarray | None


def as_judgments(rows: Judgments | Iterable[Sequence]) -> Judgments:
    return rows if isinstance(rows, Judgments) else Judgments.from_rows(rows)


@dataclass(eq=False)
class Timing:
    """One element per submitted assignment: who, and how long (NaN when unknown)."""

    annotator: np.ndarray
    active_seconds: np.ndarray
    wall_seconds: np.ndarray

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence]) -> Timing:
        """From (annotator_id, active_seconds or None, wall_seconds or None) tuples."""
        rows = list(rows)
        return cls(
            annotator=np.array([r[0] for r in rows], dtype=np.int64),
            active_seconds=_floats(r[1] for r in rows),
            wall_seconds=_floats(r[2] for r in rows),
        )


def _floats(values: Iterable[float | None]) -> np.ndarray:
    return np.array([math.nan if v is None else v for v in values], dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# Loaders


def _submitted(
    batch_ids: Iterable[int], exclude_annotator_ids: Iterable[int] = (), prefix: str = ""
) -> Q:
    """Submitted assignments of these batches, minus excluded annotators and attention checks
    (which never count in the results); `prefix` reaches the assignment from another model
    ("assignment__" from Judgment)."""
    query = Q(
        **{
            f"{prefix}comparison__batch_id__in": list(batch_ids),
            f"{prefix}comparison__is_check": False,
            f"{prefix}status": Assignment.Status.SUBMITTED,
        }
    )
    excluded = list(exclude_annotator_ids)
    if excluded:
        query &= ~Q(**{f"{prefix}annotator_id__in": excluded})
    return query


def load_judgments(
    batch_ids: Iterable[int], exclude_annotator_ids: Iterable[int] = ()
) -> Judgments:
    """Every judgment of the submitted assignments of these batches, as columns."""
    return load_batch_data(batch_ids, exclude_annotator_ids, timing=False)[0]


def load_timing(batch_ids: Iterable[int], exclude_annotator_ids: Iterable[int] = ()) -> Timing:
    """Per submitted assignment: annotator, active seconds, wall seconds (served to submitted)."""
    return load_batch_data(batch_ids, exclude_annotator_ids)[1]


def load_batch_data(
    batch_ids: Iterable[int], exclude_annotator_ids: Iterable[int] = (), *, timing: bool = True
) -> tuple[Judgments, Timing]:
    """Judgments and timing in one query: what the results page needs.

    One row per submitted assignment with its three verdict codes (stored on the assignment
    beside its judgments) and which system was on the left (1 for A, 0 for B), straight into
    numpy: a third of the rows of a judgment-per-row query, no join, and no Python work per
    judgment.
    """
    query, names = _assignment_rows(list(batch_ids), list(exclude_annotator_ids), timing)
    if connection.vendor == "postgresql":
        table = _copied_table(query, names)
    else:
        table = _fetched_table(query, timing)
    if not timing:
        table = np.pad(table, ((0, 0), (0, 2)))
    return _judgments_from(table), Timing(
        annotator=table[:, 1].astype(np.int64),
        active_seconds=table[:, 3 + len(CRITERIA)].copy(),
        wall_seconds=table[:, 4 + len(CRITERIA)].copy(),
    )


NO_CODE = 9  # a NULL verdict code, inside PostgreSQL's arrays (NaN in the table)


def _copied_table(query, names: list[str]) -> np.ndarray:
    """PostgreSQL aggregates each column into one array (NULLs as NO_CODE or NaN) and sends
    the one row through a binary COPY, which numpy reads without parsing: no Python object per
    value and one message, not one per row (COPY of 333k rows as CSV cost a Python call per
    row and a text parse, 0.4 s of this process's time; this costs 0.1 s)."""
    sql, params = query.query.sql_with_params()
    floats = {"active_seconds", "wall"}
    quoted = connection.ops.quote_name
    arrays = ", ".join(
        f"array_agg(COALESCE({quoted(name)}, 'NaN')::float8)"
        if name in floats
        else f"array_agg(COALESCE({quoted(name)}, {NO_CODE})::int8)"
        for name in names
    )
    buffer = io.BytesIO()
    with connection.cursor() as cursor:
        raw = cursor.cursor
        select = raw.mogrify(sql, params).decode()
        raw.copy_expert(
            f"COPY (SELECT {arrays} FROM ({select}) AS assignment_rows) TO STDOUT "
            "WITH (FORMAT binary)",
            buffer,
        )
    kinds = [">f8" if name in floats else ">i8" for name in names]
    columns = _binary_arrays(buffer.getbuffer(), kinds)
    table = np.empty((len(columns[0]), len(names)))
    for i, column in enumerate(columns):
        table[:, i] = column  # float64: NaN for NULL, and ids below 2**53 stay exact
    codes = table[:, 2 : 2 + len(CRITERIA)]
    codes[codes == NO_CODE] = np.nan
    return table


def _binary_arrays(data: memoryview, kinds: list[str]) -> list[np.ndarray]:
    """The one row of a binary COPY whose fields are one-dimensional arrays without NULLs of
    8-byte values (PostgreSQL's binary COPY and array formats): a 19-byte header (and its
    extension area, empty today), the field count, then per field its length and the array
    (dimensions, null flag, element type, size and lower bound, then per element its length
    and value)."""
    if bytes(data[:11]) != b"PGCOPY\n\xff\r\n\x00":
        raise ValueError("not a binary COPY")

    def integer(at: int, size: int = 4) -> int:
        return int.from_bytes(data[at : at + size], "big", signed=True)

    at = 19 + integer(15)  # after the header and its extension area
    if integer(at, 2) != len(kinds):
        raise ValueError("unexpected number of columns")
    at += 2
    out = []
    for kind in kinds:
        length = integer(at)
        at += 4
        if length < 0:  # NULL: array_agg of no rows
            out.append(np.empty(0))
            continue
        if integer(at) != 1 or integer(at + 4) != 0:
            raise ValueError("expected a one-dimensional array without NULLs")
        size = integer(at + 12)
        element = np.dtype([("length", ">i4"), ("value", kind)])
        values = np.frombuffer(data, dtype=element, count=size, offset=at + 20)
        if size and not (values["length"] == 8).all():
            raise ValueError("expected 8-byte array elements")
        out.append(values["value"])
        at += length
    return out


def _fetched_table(query, timing: bool) -> np.ndarray:
    rows = query.iterator(chunk_size=CHUNK)
    if timing and not connection.features.has_native_duration_field:
        rows = ((*row[:-1], row[-1].total_seconds()) for row in rows)
    width = 3 + len(CRITERIA) + (2 if timing else 0)
    chunks = [np.empty((0, width))]
    while chunk := list(islice(rows, CHUNK)):
        chunks.append(np.array(chunk, dtype=np.float64))
    return np.concatenate(chunks)


def _assignment_rows(batch_ids: list[int], exclude: list[int], timing: bool) -> tuple:
    # The assignment carries its three verdicts as codes (-1 / 0 / +1): one row per
    # assignment, no join with the judgments and no GROUP BY. The side is a number so that the
    # whole row parses as floats (COPY's CSV straight into numpy).
    fields = ["comparison_id", "annotator_id", *(c.verdict_column for c in criteria.CRITERIA)]
    fields.append("left_a")
    left_a = Case(When(left_system="A", then=Value(1)), default=Value(0))
    # The assignment's own batch (Assignment.save copies the comparison's) and the attention
    # checks left out by a hashed subquery: no join with the comparisons, a quarter less work
    # for PostgreSQL at 333k assignments.
    checks = Comparison.objects.filter(batch_id__in=batch_ids, is_check=True).values("id")
    query = Assignment.objects.filter(batch_id__in=batch_ids, status=Assignment.Status.SUBMITTED)
    query = query.exclude(comparison_id__in=checks).order_by()
    if exclude:
        query = query.exclude(annotator_id__in=exclude)
    query = query.annotate(left_a=left_a)
    duration = ExpressionWrapper(F("submitted_at") - F("served_at"), output_field=DurationField())
    if timing and connection.vendor == "postgresql":
        # date_part is a float8, where EXTRACT is a numeric that costs a text round trip.
        epoch = Func(Value("epoch"), duration, function="date_part", output_field=FloatField())
        query = query.annotate(wall=epoch)
        fields += ["active_seconds", "wall"]
    elif timing and connection.features.has_native_duration_field:
        query = query.annotate(wall=Extract(duration, "epoch"))
        fields += ["active_seconds", "wall"]
    elif timing:
        query = query.annotate(wall=duration)
        fields += ["active_seconds", "wall"]
    return query.values_list(*fields), fields


def _judgments_from(table: np.ndarray) -> Judgments:
    n, k = len(table), len(CRITERIA)
    codes = table[:, 2 : 2 + k].reshape(-1)
    known = ~np.isnan(codes)
    return Judgments(
        comparison=np.repeat(table[:, 0].astype(np.int64), k)[known],
        annotator=np.repeat(table[:, 1].astype(np.int64), k)[known],
        criterion=np.tile(np.arange(k, dtype=np.int8), n)[known],
        verdict=codes[known].astype(np.int8),
        left_a=np.repeat(table[:, 2 + k] == 1, k)[known],
    )


def load_annotator_names(annotator_ids: Iterable[int]) -> dict[int, str]:
    """User id -> username, for the researcher's annotator table."""
    users = get_user_model().objects.filter(pk__in=list(annotator_ids))
    return dict(users.values_list("pk", "username"))


# ---------------------------------------------------------------------------------------------
# The results table


@dataclass
class MajorityCounts:
    """Per-comparison majority verdicts of one criterion.

    The majority is the verdict with the strictly largest number of judgments on the comparison
    (a plurality: with 3 annotators, A/A/equal is A). When two verdicts share the largest count
    (A/B/equal, or A/B) the comparison has no majority and is counted in `no_majority`. Shares
    are over all `comparisons` (no-majority ones included), so the four shares sum to 1.
    """

    comparisons: int
    b_better: int
    equal: int
    a_better: int
    no_majority: int
    b_better_share: float | None
    equal_share: float | None
    a_better_share: float | None
    no_majority_share: float | None


@dataclass
class CriterionResult:
    """Judgment-level counts and shares for one criterion: is B better than, equal to or worse
    than A? Shares are over `judgments` and are None when there are none."""

    criterion: str
    label: str
    judgments: int
    comparisons: int
    b_better: int
    equal: int
    a_better: int
    b_better_share: float | None
    equal_share: float | None
    a_better_share: float | None
    majority: MajorityCounts

    @property
    def b_worse(self) -> int:
        """The study's wording for "A better"."""
        return self.a_better

    @property
    def b_worse_share(self) -> float | None:
        return self.a_better_share


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def comparison_counts(rows: Judgments | Iterable[Sequence], criterion: str):
    """(comparison ids, counts) for one criterion: counts[i] = [#A, #equal, #B] of comparison i."""
    data = as_judgments(rows)
    if criterion not in data._counts:
        one = data.of(criterion)
        data._counts[criterion] = statistics.comparison_counts(one.comparison, one.verdict)
    return data._counts[criterion]


def majority_codes(counts: np.ndarray) -> np.ndarray:
    """Per row of [#A, #equal, #B]: -1, 0 or +1 for a strict plurality, else -2 (no majority).

    Decided once per distinct row and looked up: rows are a handful of distinct count vectors,
    and numpy's reductions along rows of three are slow (0.05 s per call at 333k rows)."""
    counts = np.asarray(counts)
    if len(counts) < 1000:
        return _majority_of_rows(counts)
    patterns, _, inverse = statistics.pattern_index(counts)
    return _majority_of_rows(patterns)[inverse]


def _majority_of_rows(counts: np.ndarray) -> np.ndarray:
    top = counts.max(axis=1, keepdims=True)
    unique = ((counts == top).sum(axis=1) == 1) & (top[:, 0] > 0)
    return np.where(unique, counts.argmax(axis=1) - 1, -2)


def _majority_counts(counts: np.ndarray) -> MajorityCounts:
    codes = majority_codes(counts)
    n = len(codes)
    tally = {code: int((codes == code).sum()) for code in (-1, 0, 1, -2)}
    return MajorityCounts(
        comparisons=n,
        b_better=tally[1],
        equal=tally[0],
        a_better=tally[-1],
        no_majority=tally[-2],
        b_better_share=_share(tally[1], n),
        equal_share=_share(tally[0], n),
        a_better_share=_share(tally[-1], n),
        no_majority_share=_share(tally[-2], n),
    )


def criterion_result(rows: Judgments | Iterable[Sequence], criterion: str) -> CriterionResult:
    _, counts = comparison_counts(rows, criterion)
    a, e, b = (int(x) for x in counts.sum(axis=0))
    n = a + e + b
    return CriterionResult(
        criterion=criterion,
        label=criteria.BY_KEY[criterion].label,
        judgments=n,
        comparisons=len(counts),
        b_better=b,
        equal=e,
        a_better=a,
        b_better_share=_share(b, n),
        equal_share=_share(e, n),
        a_better_share=_share(a, n),
        majority=_majority_counts(counts),
    )


def results_table(rows: Judgments | Iterable[Sequence]) -> dict[str, CriterionResult]:
    """The study's table: per criterion (in CRITERIA order), B better / equal / B worse.

    Every criterion is present, with zero counts and None shares when it has no judgments.
    """
    data = as_judgments(rows)
    return {criterion: criterion_result(data, criterion) for criterion in CRITERIA}


# ---------------------------------------------------------------------------------------------
# Significance, uncertainty, sample size


@dataclass
class SignTest:
    """Two-sided exact binomial sign test of "B better" against "A better"; ties excluded."""

    b_better: int
    a_better: int
    ties: int
    n: int
    p_value: float | None
    reason: str = ""


def sign_test(b_better: int, a_better: int, *, ties: int = 0) -> SignTest:
    """`scipy.stats.binomtest(b_better, b_better + a_better, 0.5)`, two-sided.

    Ties ("equal") carry no sign and are excluded; pass `ties` to have them reported alongside.
    `p_value` is None (with a reason) when there is no non-tied judgment.
    """
    n = b_better + a_better
    if n == 0:
        return SignTest(b_better, a_better, ties, 0, None, "no judgment prefers either system")
    result = stats.binomtest(b_better, n, 0.5, alternative="two-sided")
    return SignTest(b_better, a_better, ties, n, float(result.pvalue))


@dataclass
class Interval:
    low: float
    high: float


@dataclass
class BootstrapShares:
    """95% percentile intervals of the judgment-level shares, resampling comparisons."""

    criterion: str
    seed: int
    n_resamples: int
    comparisons: int
    b_better: Interval | None
    equal: Interval | None
    a_better: Interval | None
    reason: str = ""


def bootstrap_shares(
    rows: Judgments | Iterable[Sequence],
    criterion: str,
    seed: int = BOOTSTRAP_SEED,
    n_resamples: int = 2000,
) -> BootstrapShares:
    """Cluster bootstrap: comparisons are resampled with replacement, each bringing all of its
    judgments, because judgments of one comparison are not independent.

    Resampling n comparisons only matters through how many times each distinct count vector
    [#A, #equal, #B] is drawn, and those numbers are multinomial with probabilities equal to
    each vector's frequency. Drawing them directly is exactly the same bootstrap (not an
    approximation) and costs O(distinct vectors) per resample instead of O(comparisons), so
    100k comparisons take milliseconds. The seed is fixed and reported for reproducibility.
    """
    _, counts = comparison_counts(rows, criterion)
    n = len(counts)
    if n == 0:
        return BootstrapShares(
            criterion, seed, n_resamples, 0, None, None, None, "no judgments for this criterion"
        )
    # One integer per count vector: np.unique on 1-D keys is much faster than on rows.
    base = int(counts.max()) + 1
    keys, freq = np.unique(
        (counts[:, 0] * base + counts[:, 1]) * base + counts[:, 2], return_counts=True
    )
    patterns = np.stack([keys // base**2, keys // base % base, keys % base], axis=1)
    rng = np.random.default_rng(seed)
    # Bound memory when comparisons are so varied that nearly every vector is distinct.
    step = max(1, 5_000_000 // len(patterns))
    totals = np.concatenate(
        [
            rng.multinomial(n, freq / n, size=min(step, n_resamples - start)) @ patterns
            for start in range(0, n_resamples, step)
        ]
    )
    shares = totals / totals.sum(axis=1, keepdims=True)
    low, high = np.percentile(shares, [2.5, 97.5], axis=0)
    a, e, b = (Interval(float(lo), float(hi)) for lo, hi in zip(low, high, strict=True))
    return BootstrapShares(criterion, seed, n_resamples, n, b_better=b, equal=e, a_better=a)


@dataclass
class SampleSizeHint:
    """Judgments (and comparisons) a two-sided sign test needs to detect the observed effect."""

    observed_b_share: float | None
    alpha: float
    power: float
    non_tied_judgments: int | None
    tie_rate: float | None
    judgments: int | None
    comparisons: int | None
    reason: str = ""


def sample_size_hint(
    b_better: int,
    a_better: int,
    alpha: float = 0.05,
    power: float = 0.8,
    *,
    ties: int = 0,
    judgments_per_comparison: float | None = None,
) -> SampleSizeHint:
    """How many judgments would detect the observed effect with a two-sided sign test.

    p = b_better / (b_better + a_better) is the observed share of "B better" among non-tied
    judgments. With the normal approximation to the binomial, the number of non-tied judgments
    is n = ((z(1 - alpha/2) * 0.5 + z(power) * sqrt(p (1 - p))) / (p - 0.5))^2, rounded up.
    Ties carry no information for the sign test, so the judgments needed are n / (1 - tie
    rate), with tie rate = ties / all judgments; comparisons needed are those judgments divided
    by `judgments_per_comparison` (e.g. judgments / comparisons observed), when given. A rough
    guide for planning, not an exact power analysis (the approximation is poor for tiny n).
    """
    non_tied = b_better + a_better
    total = non_tied + ties
    tie_rate = _share(ties, total)
    if non_tied == 0:
        reason = "no judgment prefers either system: there is no observed effect"
        return SampleSizeHint(None, alpha, power, None, tie_rate, None, None, reason)
    p = b_better / non_tied
    if p == 0.5:
        reason = "B and A are preferred equally often: the observed effect is zero"
        return SampleSizeHint(p, alpha, power, None, tie_rate, None, None, reason)
    z_alpha = stats.norm.ppf(1 - alpha / 2)
    z_power = stats.norm.ppf(power)
    n = ((z_alpha * 0.5 + z_power * math.sqrt(p * (1 - p))) / (p - 0.5)) ** 2
    n_non_tied = math.ceil(n)
    judgments = math.ceil(n_non_tied / (1 - tie_rate))
    comparisons = (
        math.ceil(judgments / judgments_per_comparison) if judgments_per_comparison else None
    )
    return SampleSizeHint(p, alpha, power, n_non_tied, tie_rate, judgments, comparisons)


# ---------------------------------------------------------------------------------------------
# The primary test: the comparison as the unit of replication (research.statistics)


@dataclass
class ComparisonLevel:
    """One criterion at the comparison level: the sign-flip test of the comparisons' mean
    verdicts against 0 (`holm_p` adjusted across the family of tests it was reported with),
    the net preference share(B) - share(A) and the win rate among non-ties, each with a
    comparison-bootstrap 95% interval, and the position-bias screen (None when the sides are
    not known)."""

    criterion: str
    test: statistics.SignFlipTest
    net: statistics.NetPreference
    win: statistics.WinRate
    position: statistics.PositionBiasReport | None
    holm_p: float | None = None


# Comparisons x resamples up to which the page runs the two-way bootstrap (about 0.25 s per
# criterion, statistics.TWO_WAY_SECONDS_PER_DRAW); beyond it the page says what it would cost.
TWO_WAY_MAX_WORK = 10_000_000


def comparison_level(
    data: Judgments,
    criterion: str,
    crossing: statistics.Crossing | None = None,
    *,
    two_way: bool = True,
) -> ComparisonLevel:
    """The two-way (annotator x comparison) bootstrap of the net preference and of the win
    rate runs where the design is crossed and the work is at most TWO_WAY_MAX_WORK, beyond it
    by its normal limit (see `statistics.net_preference`); where it does not, `two_way_reason`
    says why and the intervals resample comparisons only. `two_way=False` skips it (a page
    that does not show it)."""
    comparison, annotator, verdict, left_a = data.of(criterion)
    if two_way and crossing is None:
        crossing = statistics.design_crossing(comparison, annotator)
    _, means = statistics.comparison_means(comparison, verdict)
    position = None
    if left_a is not None:
        position = statistics.position_bias(annotator, verdict, left_a)
    net, win = statistics.net_and_win(
        comparison,
        annotator,
        verdict,
        seed=BOOTSTRAP_SEED,
        two_way=two_way,
        max_two_way_work=TWO_WAY_MAX_WORK,
        crossing=crossing,
    )
    test = statistics.sign_flip_test(means, seed=BOOTSTRAP_SEED)
    return ComparisonLevel(criterion, test, net, win, position)


def comparison_levels(data: Judgments, *, two_way: bool = True) -> list[ComparisonLevel]:
    """Per criterion (CRITERIA order), with Holm's adjustment across the criteria."""
    crossing = design_of(data) if two_way else None  # the same assignments for every criterion
    levels = [
        comparison_level(data, criterion, crossing, two_way=two_way) for criterion in CRITERIA
    ]
    return with_holm(levels)


def with_holm(levels: list[ComparisonLevel]) -> list[ComparisonLevel]:
    """Holm's adjustment of the primary tests' p-values across `levels` (one family)."""
    adjusted = statistics.holm([level.test.p_value for level in levels])
    for level, p in zip(levels, adjusted, strict=True):
        level.holm_p = p
    return levels


def design_of(data: Judgments) -> statistics.Crossing:
    """Is the design crossed (annotators x comparisons)? Judged on the criterion with the most
    judgments: every criterion has the same assignments, and one is a third of the work.
    Judged once per Judgments (the page and its statistics both ask)."""
    if not len(data):
        return statistics.design_crossing([], [])
    if "design" not in data._counts:
        one = data.of(CRITERIA[int(np.bincount(data.criterion).argmax())])
        data._counts["design"] = statistics.design_crossing(one.comparison, one.annotator)
    return data._counts["design"]


@dataclass
class PowerHint:
    """How many comparisons the primary test needs, clustering included: the judgment shares
    and the within-comparison correlation (ICC) of the data in hand, K = the mean annotators
    per comparison rounded, the simulated power of the sign-flip test at the comparisons
    observed, and the smallest number of comparisons whose simulated power reaches 80%."""

    criterion: str
    pilot: statistics.Pilot
    k: int | None
    rho: float | None  # as used: a negative ICC is taken as 0 (no clustering)
    power_now: statistics.Power | None
    needed: statistics.PowerSearch | None
    reason: str = ""

    @property
    def design_effect(self) -> float | None:
        return None if self.k is None else 1 + (self.k - 1) * self.rho


def power_hint(data: Judgments, criterion: str, *, n_sim: int = 2000) -> PowerHint:
    one = data.of(criterion)
    pilot = statistics.pilot_estimates(one.comparison, one.verdict)
    if pilot.rho is None or pilot.k is None:
        return PowerHint(criterion, pilot, None, None, None, None, pilot.reason)
    k, rho = max(1, round(pilot.k)), min(1.0, max(0.0, pilot.rho))
    shares = pilot.shares
    power_now = statistics.simulate_power(
        shares, k, pilot.comparisons, rho, n_sim=n_sim, seed=BOOTSTRAP_SEED
    )
    needed = statistics.comparisons_for_power(shares, k, rho, n_sim=n_sim, seed=BOOTSTRAP_SEED)
    return PowerHint(criterion, pilot, k, rho, power_now, needed, needed.reason)


def reliability(data: Judgments, criterion: str) -> statistics.AlphaBootstrap:
    """Ordinal alpha and raw agreement with comparison-bootstrap intervals (seeded)."""
    one = data.of(criterion)
    return statistics.alpha_bootstrap(
        one.comparison, one.annotator, one.verdict, seed=BOOTSTRAP_SEED
    )


# ---------------------------------------------------------------------------------------------
# Reliability


@dataclass
class AlphaResult:
    """Krippendorff's ordinal alpha of one criterion, or None with the reason it is undefined."""

    criterion: str
    value: float | None
    annotators: int
    comparisons: int  # comparisons with judgments from two or more annotators
    pairable_judgments: int
    reason: str = ""


def krippendorff_alpha(rows: Judgments | Iterable[Sequence], criterion: str) -> AlphaResult:
    """Ordinal alpha on verdicts in system terms (A = -1 < equal = 0 < B = +1).

    The data is the reliability matrix annotators x comparisons (NaN where an annotator did not
    judge a comparison). Alpha depends on that matrix only through each comparison's value
    counts, so they are given to the `krippendorff` package directly (`value_counts`), which is
    the same number without building a matrix of annotators x comparisons (1000 x 100k floats
    would be 800 MB). Comparisons judged by a single annotator carry no pairable value and
    drop out, as in the package.
    """
    data = as_judgments(rows)
    annotators = len(statistics.unique(data.of(criterion).annotator))
    _, counts = comparison_counts(data, criterion)
    pairable = counts[counts.sum(axis=1) >= 2]
    result = AlphaResult(criterion, None, annotators, len(pairable), int(pairable.sum()))
    if annotators < 2 or len(pairable) == 0:
        result.reason = "no comparison was judged by two or more annotators"
    elif (pairable.sum(axis=0) > 0).sum() < 2:
        result.reason = (
            "every judgment gives the same verdict: with no variation, alpha is undefined"
        )
    else:
        # The package's number (tests check it on the reliability matrix), computed from the
        # distinct count vectors: 0.07 s instead of the package's 0.5 s at 333k comparisons.
        result.value = statistics.ordinal_alpha(pairable)
    return result


@dataclass
class PairwiseAgreement:
    """Share of pairs of annotators on the same comparison who gave the same verdict."""

    criterion: str
    share: float | None
    agreeing_pairs: int
    pairs: int
    reason: str = ""


def pairwise_agreement(rows: Judgments | Iterable[Sequence], criterion: str) -> PairwiseAgreement:
    """Raw agreement: over all pairs of judgments of one comparison, the share that are equal."""
    _, counts = comparison_counts(rows, criterion)
    pairs = int((counts.sum(axis=1) * (counts.sum(axis=1) - 1) // 2).sum())
    agreeing = int((counts * (counts - 1) // 2).sum())
    if pairs == 0:
        reason = "no comparison was judged by two or more annotators"
        return PairwiseAgreement(criterion, None, 0, 0, reason)
    return PairwiseAgreement(criterion, agreeing / pairs, agreeing, pairs)


# ---------------------------------------------------------------------------------------------
# Automatic metrics against the humans


@dataclass
class MetricAgreement:
    """Does sign(score(B) - score(A)) agree with the human majority on factual consistency?

    Every comparison lands in exactly one bucket, checked in this order: `missing_scores`
    (either summary has no score: not scored yet, or "no score" with a reason, never zero),
    `unjudged` (no submitted factual judgment), `metric_ties` (delta exactly 0), `human_ties`
    (the majority says "equal"), `human_no_majority` (annotators split with no plurality),
    then `agree` or `disagree`. `agreement_share` = agree / (agree + disagree).

    Kendall's tau-b is between delta and the human majority coded -1 / 0 / +1 over the
    `tau_comparisons` that have both scores and a majority (metric and human ties included,
    since tau-b handles ties).
    """

    metric: str
    comparisons: int
    agree: int
    disagree: int
    metric_ties: int
    human_ties: int
    human_no_majority: int
    unjudged: int
    missing_scores: int
    missing_reasons: dict[str, int]
    agreement_share: float | None
    kendall_tau: float | None
    kendall_p: float | None
    tau_comparisons: int
    tau_reason: str = ""
    # Tie-aware pairwise accuracy (Deutsch et al. 2023) over the `tau_comparisons`.
    tie_aware: statistics.TieAwareAccuracy | None = None
    # The metric version the figures use, and the scores of other versions left out.
    version: str = ""
    other_versions: dict[str, int] = field(default_factory=dict)


NOT_SCORED = "not scored yet"
TIE_AWARE_RESAMPLES = 1000


def summary_pairs(batch_ids: Iterable[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(comparison ids, summary A ids, summary B ids) of these batches' comparisons (checks
    left out), in id order: what every metric's agreement reads."""
    pairs = (
        Comparison.objects.filter(batch_id__in=list(batch_ids), is_check=False)
        .order_by("id")
        .values_list("id", "summary_a_id", "summary_b_id")
    )
    sql, params = pairs.query.sql_with_params()
    with connection.cursor() as cursor:  # plain tuples, no model layer per row
        cursor.execute(sql, params)
        chunks = [np.empty((0, 3), dtype=np.int64)]
        while rows := cursor.fetchmany(CHUNK):
            chunks.append(np.array(rows, dtype=np.int64))
    table = np.concatenate(chunks)
    return table[:, 0], table[:, 1], table[:, 2]


class ComparisonPairs:
    """The comparisons a metric is compared on, read when first needed and kept, so that many
    metrics share one read: `summary_pairs` for a metric with scores; for one without a single
    score only their number matters (every comparison misses both scores, whichever summaries
    it holds), so stand-ins of that length, from one count: ids (-1) that match no score and
    no majority."""

    def __init__(self, batch_ids: Iterable[int]) -> None:
        self.batch_ids = list(batch_ids)
        self._read: dict[bool, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def for_scores(self, scores: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        scored = bool(scores)
        if scored not in self._read:
            self._read[scored] = summary_pairs(self.batch_ids) if scored else self._unread()
        return self._read[scored]

    def _unread(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = Comparison.objects.filter(batch_id__in=self.batch_ids, is_check=False).count()
        unread = np.full(n, -1, dtype=np.int64)
        return unread, unread, unread


def metric_agreement(
    batch_ids: Iterable[int],
    metric: str,
    majorities: dict[int, int] | None = None,
    pairs: ComparisonPairs | None = None,
) -> MetricAgreement:
    """Load scores and factual majorities for these batches and compare them (see the class).

    `majorities` (see `majorities_of`) replaces the database's when some annotators are
    excluded from the judgments in hand; `pairs`, shared by many metrics, the comparisons."""
    batch_ids = list(batch_ids)
    pairs = ComparisonPairs(batch_ids) if pairs is None else pairs
    scores, version, others = _scores(batch_ids, metric)
    if majorities is None:
        majorities = factual_majorities(batch_ids)
    result = compare_metric_arrays(metric, pairs.for_scores(scores), scores, majorities)
    return replace(result, version=version, other_versions=others)


def _positions(table: dict, keys: np.ndarray) -> np.ndarray:
    """Per key, its position among the table's entries (dict order), len(table) when absent:
    an id -> value dict read for many ids at once, by binary search on its sorted ids."""
    ids = np.fromiter(table.keys(), dtype=np.int64, count=len(table))
    if not len(ids):
        return np.zeros(len(keys), dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    at = np.minimum(np.searchsorted(ids[order], keys), len(ids) - 1)
    return np.where(ids[order][at] == keys, order[at], len(ids))


def _score_columns(scores: dict, summaries: np.ndarray, texts: dict[str, int]):
    """(value or NaN, the code of the reason in `texts` where there is no value, else -1) per
    summary; `texts` gains the reasons it has not seen. Python touches each stored score
    once, never each comparison."""
    entries = [*scores.values(), NOT_SCORED]
    is_text = [isinstance(v, str) for v in entries]
    value = np.array([math.nan if t else v for v, t in zip(entries, is_text, strict=True)])
    code = np.array(
        [
            texts.setdefault(v, len(texts)) if t else -1
            for v, t in zip(entries, is_text, strict=True)
        ],
        dtype=np.int64,
    )
    at = _positions(scores, summaries)
    return value[at], code[at]


def _first_seen_counts(codes: np.ndarray, texts: dict[str, int]) -> dict[str, int]:
    """{reason: how many} of these codes, in the order each is first seen."""
    if not len(codes):
        return {}
    names = list(texts)
    distinct, first, counts = np.unique(codes, return_index=True, return_counts=True)
    order = np.argsort(first)
    return {names[distinct[i]]: int(counts[i]) for i in order}


def compare_metric_arrays(
    metric: str,
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray],
    scores: dict[int, float | str],
    majorities: dict[int, int],
) -> MetricAgreement:
    """`compare_metric_with_humans` of the rows (comparison, scores.get(summary A,
    NOT_SCORED), scores.get(summary B, NOT_SCORED)) per pair, in numpy, the same buckets in
    the same order (tests compare the two): 0.1 s a metric less at 111k comparisons."""
    cid, summary_a, summary_b = pairs
    texts: dict[str, int] = {}
    a_value, a_reason = _score_columns(scores, summary_a, texts)
    b_value, b_reason = _score_columns(scores, summary_b, texts)
    missing = (a_reason >= 0) | (b_reason >= 0)
    at = _positions(majorities, cid)
    judged = at < len(majorities)
    human = np.fromiter(majorities.values(), dtype=np.int64, count=len(majorities))
    human = np.append(human, 0)[at]
    rest = ~missing & judged
    delta = b_value - a_value
    tie = rest & (delta == 0)
    human_tie = rest & ~tie & (human == 0)
    no_majority = rest & ~tie & (human == -2)
    decided = rest & ~tie & (human != 0) & (human != -2)
    agree = decided & ((delta > 0) == (human > 0))
    kept = rest & (human != -2)
    both = np.stack([a_reason[missing], b_reason[missing]], axis=1).reshape(-1)
    reasons = _first_seen_counts(both[both >= 0], texts)
    deltas, humans = delta[kept], human[kept]
    tau, p, why = _kendall_tau_b(deltas, humans)
    tie_aware = statistics.tie_aware_accuracy(
        deltas, humans, n_resamples=TIE_AWARE_RESAMPLES, seed=BOOTSTRAP_SEED
    )
    n_agree, n_disagree = int(agree.sum()), int((decided & ~agree).sum())
    return MetricAgreement(
        metric=metric,
        comparisons=len(cid),
        agree=n_agree,
        disagree=n_disagree,
        metric_ties=int(tie.sum()),
        human_ties=int(human_tie.sum()),
        human_no_majority=int(no_majority.sum()),
        unjudged=int((~missing & ~judged).sum()),
        missing_scores=int(missing.sum()),
        missing_reasons=dict(reasons),
        agreement_share=_share(n_agree, n_agree + n_disagree),
        kendall_tau=tau,
        kendall_p=p,
        tau_comparisons=len(deltas),
        tau_reason=why,
        tie_aware=tie_aware,
    )


def metric_rows(batch_ids: list[int], data: Judgments) -> list[tuple]:
    """(label, agreement, why unavailable, metric) per metric of every family: each metric
    against the human factual majority of the judgments in hand, so that excluded annotators
    are excluded here too; a family that cannot score here has no agreement, and says why."""
    majorities = majorities_of(data, "factual")
    pairs = ComparisonPairs(batch_ids)
    rows = []
    for family in FAMILIES:
        unavailable = family.unavailable()
        for metric, label in family.metrics:
            agreement = (
                None if unavailable else metric_agreement(batch_ids, metric, majorities, pairs)
            )
            rows.append((label, agreement, unavailable, metric))
    return rows


def other_version(version: str) -> str:
    return f"scored by another version ({version}): re-score to include it"


def _scores(batch_ids: list[int], metric: str) -> tuple[dict[int, float | str], str, dict]:
    """(summary id -> value or the reason it has no score, the version used, {other version:
    scores left out}). Scores of different versions (another QUALS mode or model, another
    package) are never mixed: the current version is that of the most recently computed
    score, and a summary scored by another one counts as missing, with the reason."""
    query = MetricScore.objects.filter(
        summary__document__batch_id__in=batch_ids, metric=metric
    ).values_list("summary_id", "status", "value", "reason", "version", "computed_at")
    rows = list(query.iterator(chunk_size=CHUNK))
    if not rows:
        return {}, "", {}
    current = max(rows, key=lambda r: r[5])[4]
    scores, others = {}, Counter()
    for sid, status, value, reason, version, _ in rows:
        if version != current:
            others[version] += 1
            scores[sid] = other_version(version)
        else:
            scores[sid] = value if status == MetricScore.Status.OK else (reason or "no score")
    return scores, current, dict(others)


def majorities_of(rows: Judgments | Iterable[Sequence], criterion: str) -> dict[int, int]:
    """comparison id -> majority verdict (-1, 0, +1, or -2 for no majority) of these judgments."""
    ids, counts = comparison_counts(rows, criterion)
    if not len(ids):
        return {}
    return dict(zip(ids.tolist(), majority_codes(counts).tolist(), strict=True))


def factual_majorities(batch_ids: Iterable[int]) -> dict[int, int]:
    """comparison id -> majority factual verdict (-1, 0, +1, or -2 for no majority)."""
    query = (
        Judgment.objects.filter(_submitted(batch_ids, prefix="assignment__"), criterion="factual")
        .order_by()
        .values_list("assignment__comparison_id", "verdict")
        .annotate(n=Count("id"))
    )
    counts: dict[int, list[int]] = {}
    for cid, verdict, n in query:
        counts.setdefault(cid, [0, 0, 0])[VERDICT_CODES[verdict] + 1] = n
    if not counts:
        return {}
    codes = majority_codes(np.array(list(counts.values()), dtype=np.int64))
    return dict(zip(counts, codes.tolist(), strict=True))


BUCKETS = ("metric_ties", "human_ties", "human_no_majority", "agree", "disagree")
METRIC_TIES, HUMAN_TIES, NO_MAJORITY, AGREE, DISAGREE = range(len(BUCKETS))


def compare_metric_with_humans(
    metric: str,
    rows: Iterable[tuple[int, float | str, float | str]],
    majorities: dict[int, int],
) -> MetricAgreement:
    """Pure part of `metric_agreement`.

    rows: (comparison id, score of A, score of B), where a score is a float or, when missing,
    a string saying why. majorities: comparison id -> -1 / 0 / +1, or -2 for no majority;
    comparisons absent from it are unjudged.
    """
    # One pass, counted in local integers (a Counter per row took 0.6 s a metric at 111k).
    counts = [0] * len(BUCKETS)
    comparisons = missing_scores = unjudged = 0
    reasons: list[str] = []  # of the missing scores, in order
    deltas, humans = [], []
    human_of = majorities.get
    for cid, score_a, score_b in rows:
        comparisons += 1
        a_missing, b_missing = isinstance(score_a, str), isinstance(score_b, str)
        if a_missing or b_missing:
            missing_scores += 1
            if a_missing:
                reasons.append(score_a)
            if b_missing:
                reasons.append(score_b)
            continue
        human = human_of(cid)
        if human is None:
            unjudged += 1
            continue
        delta = score_b - score_a
        if delta == 0:
            counts[METRIC_TIES] += 1
        elif human == 0:
            counts[HUMAN_TIES] += 1
        elif human == -2:
            counts[NO_MAJORITY] += 1
            continue
        else:
            counts[AGREE if (delta > 0) == (human > 0) else DISAGREE] += 1
        if human != -2:
            deltas.append(delta)
            humans.append(human)
    buckets = dict(zip(BUCKETS, counts, strict=True))
    buckets.update(comparisons=comparisons, missing_scores=missing_scores, unjudged=unjudged)
    missing = Counter(reasons)
    tau, p, reason = _kendall_tau_b(deltas, humans)
    tie_aware = statistics.tie_aware_accuracy(
        deltas, humans, n_resamples=TIE_AWARE_RESAMPLES, seed=BOOTSTRAP_SEED
    )
    agree, disagree = buckets["agree"], buckets["disagree"]
    return MetricAgreement(
        metric=metric,
        comparisons=buckets["comparisons"],
        agree=agree,
        disagree=disagree,
        metric_ties=buckets["metric_ties"],
        human_ties=buckets["human_ties"],
        human_no_majority=buckets["human_no_majority"],
        unjudged=buckets["unjudged"],
        missing_scores=buckets["missing_scores"],
        missing_reasons=dict(missing),
        agreement_share=_share(agree, agree + disagree),
        kendall_tau=tau,
        kendall_p=p,
        tau_comparisons=len(deltas),
        tau_reason=reason,
        tie_aware=tie_aware,
    )


def _kendall_tau_b(deltas: list[float], humans: list[int]):
    if len(deltas) < 2:
        return None, None, "fewer than two comparisons have both scores and a human majority"
    if len(set(deltas)) < 2 or len(set(humans)) < 2:
        return None, None, "the metric deltas or the human majorities do not vary"
    result = stats.kendalltau(deltas, humans, variant="b")
    return float(result.statistic), float(result.pvalue), ""


# ---------------------------------------------------------------------------------------------
# Annotators


@dataclass
class AnnotatorStats:
    """One annotator: how much, how fast, and how often they side with the others.

    `agreement_with_others` pools the three criteria: over the judgments where the OTHER
    annotators of the same comparison have a strict majority verdict, the share that match it
    (`agreement_judgments` such judgments; None when there are none).
    """

    annotator_id: int
    name: str
    assignments_submitted: int
    judgments: int
    median_active_seconds: float | None
    median_wall_seconds: float | None
    agreement_with_others: float | None
    agreement_judgments: int


def annotator_report(
    rows: Judgments | Iterable[Sequence],
    timing: Timing | Iterable[Sequence],
    names: dict[int, str] | None = None,
) -> list[AnnotatorStats]:
    """Per annotator (sorted by id), from the judgments and the per-assignment timing."""
    data = as_judgments(rows)
    timing = timing if isinstance(timing, Timing) else Timing.from_rows(timing)
    names = names or {}
    ids = np.union1d(statistics.unique(data.annotator), statistics.unique(timing.annotator))
    judged = _per_annotator_count(ids, data.annotator)
    submitted = _per_annotator_count(ids, timing.annotator)
    agree, comparable = _agreement_with_others(data, ids)
    active = _per_annotator_median(ids, timing.annotator, timing.active_seconds)
    wall = _per_annotator_median(ids, timing.annotator, timing.wall_seconds)
    return [
        AnnotatorStats(
            annotator_id=int(uid),
            name=names.get(int(uid), f"user {uid}"),
            assignments_submitted=int(submitted[i]),
            judgments=int(judged[i]),
            median_active_seconds=active[i],
            median_wall_seconds=wall[i],
            agreement_with_others=_share(int(agree[i]), int(comparable[i])),
            agreement_judgments=int(comparable[i]),
        )
        for i, uid in enumerate(ids)
    ]


def _per_annotator_count(ids: np.ndarray, who: np.ndarray) -> np.ndarray:
    return np.bincount(np.searchsorted(ids, who), minlength=len(ids))


def _per_annotator_median(ids: np.ndarray, who: np.ndarray, values: np.ndarray) -> list:
    known = ~np.isnan(values)
    who, values = who[known], values[known]
    # Grouped by annotator with a stable sort of small integer codes (numpy sorts them by
    # radix); np.median does not need the values within a group in order.
    codes = np.searchsorted(ids, who).astype(np.int16 if len(ids) < 2**15 else np.int64)
    order = np.argsort(codes, kind="stable")
    who, values = who[order], values[order]
    starts = np.searchsorted(who, ids, side="left")
    ends = np.searchsorted(who, ids, side="right")
    return [
        float(np.median(values[s:e])) if e > s else None
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True)
    ]


def _agreement_with_others(data: Judgments, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per annotator: judgments matching the others' strict majority, and judgments where the
    others have one. The others' counts are the group's counts minus the judgment itself."""
    if len(data) == 0:
        zeros = np.zeros(len(ids), dtype=np.int64)
        return zeros, zeros
    _, comp = statistics.unique(data.comparison, return_inverse=True)
    group = comp.astype(np.int64) * len(CRITERIA) + data.criterion
    column = data.verdict.astype(np.int64) + 1
    counts = np.bincount(group * 3 + column, minlength=3 * (int(group.max()) + 1))
    others = counts.reshape(-1, 3)[group]
    others[np.arange(len(column)), column] -= 1
    majority = majority_codes(others)
    comparable = majority != -2
    agrees = comparable & (majority == data.verdict)
    who = np.searchsorted(ids, data.annotator)
    return (
        np.bincount(who, weights=agrees, minlength=len(ids)).astype(np.int64),
        np.bincount(who, weights=comparable, minlength=len(ids)).astype(np.int64),
    )
