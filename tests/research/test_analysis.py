"""The statistics of the results page, each against a case computed by hand."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from evaluation.assignments import lease_next, submit_judgments
from evaluation.criteria import VERDICT_CODES
from evaluation.models import Assignment, Judgment, Role
from research import analysis
from research.analysis import (
    JudgmentRow,
    Judgments,
    Timing,
    annotator_report,
    bootstrap_shares,
    compare_metric_with_humans,
    krippendorff_alpha,
    load_judgments,
    load_timing,
    metric_agreement,
    pairwise_agreement,
    results_table,
    sample_size_hint,
    sign_test,
)
from scoring.models import MetricScore
from tests.conftest import make_user

SHOWN_IF_A_LEFT = {"A": "left", "B": "right", "equal": "equal"}


def rows_for(criterion: str, verdicts_by_comparison: dict[int, list[str]]) -> list[JudgmentRow]:
    """Annotators 1, 2, 3... in order on each comparison."""
    return [
        JudgmentRow(cid, annotator, criterion, verdict)
        for cid, verdicts in verdicts_by_comparison.items()
        for annotator, verdict in enumerate(verdicts, start=1)
    ]


def verdict_codes(verdicts: dict[str, str]) -> dict[str, int]:
    """The codes a submitted assignment carries next to its judgments (see the model)."""
    return {f"verdict_{c}": VERDICT_CODES[v] for c, v in verdicts.items()}


def judge(comparison, user, verdicts: dict[str, str], *, status="submitted", active=None, wall=60):
    """A stored assignment with its judgments, system A on the left."""
    now = timezone.now()
    assignment = Assignment.objects.create(
        comparison=comparison,
        annotator=user,
        left_system="A",
        status=status,
        served_at=now - timedelta(seconds=wall),
        lease_expires_at=now + timedelta(minutes=30),
        submitted_at=now if status == "submitted" else None,
        active_seconds=active,
        **(verdict_codes(verdicts) if status == "submitted" else {}),
    )
    Judgment.objects.bulk_create(
        Judgment(assignment=assignment, criterion=c, verdict=v, shown=SHOWN_IF_A_LEFT[v])
        for c, v in verdicts.items()
    )
    return assignment


def all_criteria(verdict: str) -> dict[str, str]:
    return dict.fromkeys(analysis.CRITERIA, verdict)


class TestJudgments:
    def test_it_round_trips_plain_rows_through_columns(self):
        rows = rows_for("informative", {7: ["A", "equal", "B"]})
        data = Judgments.from_rows(rows)
        assert data.verdict.tolist() == [-1, 0, 1]
        assert data.rows() == rows

    def test_it_accepts_empty_data(self):
        table = results_table([])
        assert table["factual"].judgments == 0
        assert table["factual"].b_better_share is None


class TestResultsTable:
    # factual: comparison 1 B, B, A; comparison 2 B, equal, equal; comparison 3 A, B, equal.
    ROWS = rows_for(
        "factual", {1: ["B", "B", "A"], 2: ["B", "equal", "equal"], 3: ["A", "B", "equal"]}
    )

    def test_it_counts_and_shares_judgments(self):
        r = results_table(self.ROWS)["factual"]
        assert (r.judgments, r.comparisons) == (9, 3)
        assert (r.b_better, r.equal, r.a_better) == (4, 3, 2)
        assert r.b_better_share == pytest.approx(4 / 9)
        assert r.equal_share == pytest.approx(3 / 9)
        assert r.a_better_share == pytest.approx(2 / 9)
        assert (r.b_worse, r.b_worse_share) == (r.a_better, r.a_better_share)

    def test_it_takes_per_comparison_majorities_and_reports_ties_apart(self):
        m = results_table(self.ROWS)["factual"].majority
        assert (m.comparisons, m.b_better, m.equal, m.a_better, m.no_majority) == (3, 1, 1, 0, 1)
        assert m.no_majority_share == pytest.approx(1 / 3)

    def test_it_counts_a_two_way_split_as_no_majority(self):
        m = results_table(rows_for("factual", {1: ["A", "B"]}))["factual"].majority
        assert m.no_majority == 1

    def test_it_lists_every_criterion_even_without_judgments(self):
        table = results_table(self.ROWS)
        assert list(table) == ["factual", "informative", "grammatical"]
        assert table["grammatical"].judgments == 0
        assert table["grammatical"].equal_share is None
        assert table["grammatical"].label == "Grammaticality"


class TestSignTest:
    def test_it_matches_the_exact_binomial_p_value(self):
        # P(X >= 8) + P(X <= 2) for X ~ Bin(10, 1/2) = 2 * (1 + 10 + 45) / 1024.
        result = sign_test(8, 2, ties=5)
        assert result.p_value == pytest.approx(112 / 1024)
        assert (result.n, result.ties) == (10, 5)

    def test_it_is_one_when_preferences_balance(self):
        assert sign_test(5, 5).p_value == pytest.approx(1.0)

    def test_it_has_no_p_value_without_non_tied_judgments(self):
        result = sign_test(0, 0, ties=12)
        assert result.p_value is None
        assert "no judgment prefers either system" in result.reason


class TestBootstrapShares:
    def test_it_gives_a_degenerate_interval_when_all_comparisons_are_alike(self):
        rows = rows_for("factual", {c: ["A", "equal", "B"] for c in range(20)})
        ci = bootstrap_shares(rows, "factual")
        for interval in (ci.b_better, ci.equal, ci.a_better):
            assert (interval.low, interval.high) == pytest.approx((1 / 3, 1 / 3))

    def test_it_reports_the_seed_and_is_reproducible(self):
        rows = rows_for("factual", {c: ["A", "B", "B"][: 1 + c % 3] for c in range(50)})
        first, again = bootstrap_shares(rows, "factual"), bootstrap_shares(rows, "factual")
        assert first.seed == 20210517
        assert (first.n_resamples, first.comparisons) == (2000, 50)
        assert first == again
        assert bootstrap_shares(rows, "factual", seed=1) != first

    def test_it_agrees_with_a_naive_cluster_bootstrap(self):
        rng = np.random.default_rng(0)
        verdicts = {
            c: list(rng.choice(["A", "equal", "B"], size=3, p=[0.3, 0.2, 0.5])) for c in range(300)
        }
        rows = rows_for("factual", verdicts)
        ci = bootstrap_shares(rows, "factual", n_resamples=4000)
        counts = np.array(
            [[v.count("A"), v.count("equal"), v.count("B")] for v in verdicts.values()]
        )
        draws = rng.integers(0, len(counts), size=(4000, len(counts)))
        totals = counts[draws].sum(axis=1)
        naive = np.percentile(totals[:, 2] / totals.sum(axis=1), [2.5, 97.5])
        assert ci.b_better.low == pytest.approx(naive[0], abs=0.01)
        assert ci.b_better.high == pytest.approx(naive[1], abs=0.01)
        share = results_table(rows)["factual"].b_better_share
        assert ci.b_better.low < share < ci.b_better.high

    def test_it_has_no_interval_without_judgments(self):
        ci = bootstrap_shares([], "factual")
        assert ci.b_better is None
        assert "no judgments" in ci.reason


class TestSampleSizeHint:
    def test_it_uses_the_normal_approximation(self):
        # p = 0.6: ((1.959964 * 0.5 + 0.841621 * sqrt(0.24)) / 0.1)^2 = 193.85 -> 194.
        hint = sample_size_hint(60, 40)
        assert hint.observed_b_share == pytest.approx(0.6)
        assert hint.non_tied_judgments == 194
        assert hint.judgments == 194
        assert hint.comparisons is None

    def test_it_scales_by_ties_and_judgments_per_comparison(self):
        # 20 ties in 120 judgments: 194 / (5/6) = 232.8 -> 233 judgments, / 3 -> 78 comparisons.
        hint = sample_size_hint(60, 40, ties=20, judgments_per_comparison=3)
        assert hint.tie_rate == pytest.approx(1 / 6)
        assert (hint.judgments, hint.comparisons) == (233, 78)

    def test_it_is_symmetric_in_the_direction_of_the_effect(self):
        assert sample_size_hint(40, 60).non_tied_judgments == 194

    def test_it_has_no_hint_for_a_zero_effect(self):
        hint = sample_size_hint(30, 30, ties=4)
        assert hint.non_tied_judgments is None
        assert "effect is zero" in hint.reason
        assert "no observed effect" in sample_size_hint(0, 0, ties=3).reason


class TestKrippendorffAlpha:
    def test_it_is_one_for_perfect_agreement(self):
        rows = rows_for("factual", {1: ["A"] * 3, 2: ["B"] * 3, 3: ["equal"] * 3})
        result = krippendorff_alpha(rows, "factual")
        assert result.value == pytest.approx(1.0)
        assert (result.annotators, result.comparisons, result.pairable_judgments) == (3, 3, 9)

    def test_it_matches_a_hand_computed_ordinal_alpha(self):
        # Values A, B only: n_A = n_B = 3, n = 6; ordinal delta^2(A, B) = (6 - 3)^2 = 9.
        # Observed: the split comparison gives o(A,B) = o(B,A) = 1 -> 18.
        # Expected: 2 * 3 * 3 * 9 / (n - 1) = 32.4. Alpha = 1 - 18 / 32.4 = 4/9.
        rows = rows_for("factual", {1: ["A", "A"], 2: ["B", "B"], 3: ["A", "B"]})
        assert krippendorff_alpha(rows, "factual").value == pytest.approx(4 / 9)

    def test_it_ignores_comparisons_with_a_single_judgment(self):
        rows = rows_for("factual", {1: ["A", "A"], 2: ["B", "B"], 3: ["A", "B"], 4: ["B"]})
        result = krippendorff_alpha(rows, "factual")
        assert result.value == pytest.approx(4 / 9)
        assert result.comparisons == 3

    def test_it_is_undefined_with_one_annotator_per_comparison(self):
        rows = [JudgmentRow(c, c, "factual", "B" if c % 2 else "A") for c in range(6)]
        result = krippendorff_alpha(rows, "factual")
        assert result.value is None
        assert result.reason == "no comparison was judged by two or more annotators"

    def test_it_is_undefined_without_variation(self):
        result = krippendorff_alpha(rows_for("factual", {1: ["B"] * 3, 2: ["B"] * 3}), "factual")
        assert result.value is None
        assert "no variation" in result.reason

    def test_it_is_undefined_without_judgments(self):
        assert krippendorff_alpha([], "factual").value is None


class TestPairwiseAgreement:
    def test_it_shares_agreeing_pairs(self):
        # B,B,A: 1 of 3 pairs agree; B,equal,equal: 1 of 3.
        rows = rows_for("factual", {1: ["B", "B", "A"], 2: ["B", "equal", "equal"]})
        result = pairwise_agreement(rows, "factual")
        assert (result.agreeing_pairs, result.pairs) == (2, 6)
        assert result.share == pytest.approx(1 / 3)

    def test_it_is_undefined_without_pairs(self):
        result = pairwise_agreement(rows_for("factual", {1: ["B"]}), "factual")
        assert result.share is None
        assert "two or more" in result.reason


class TestCompareMetricWithHumans:
    def test_it_computes_kendall_tau_b_on_a_known_case(self):
        # x = 1, 2, 3, 4 against y = -1, 0, 1, 1: 5 concordant pairs, none discordant, one tie
        # in y: tau-b = 5 / sqrt(6 * 5).
        rows = [(1, 0.0, 1.0), (2, 0.0, 2.0), (3, 0.0, 3.0), (4, 0.0, 4.0)]
        result = compare_metric_with_humans("rouge1", rows, {1: -1, 2: 0, 3: 1, 4: 1})
        assert result.kendall_tau == pytest.approx(5 / math.sqrt(30))
        assert result.tau_comparisons == 4
        assert (result.agree, result.disagree, result.human_ties) == (2, 1, 1)
        assert result.agreement_share == pytest.approx(2 / 3)

    def test_it_puts_each_comparison_in_one_bucket(self):
        rows = [
            (1, 0.5, 0.5, 1),  # metric tie
            (2, 0.1, 0.2, -2),  # no human majority
            (3, 0.1, 0.2, None),  # unjudged
            (4, "empty summary", 0.2, 1),  # missing
            (5, 0.3, 0.1, -1),  # agree: both say A
        ]
        majorities = {cid: h for cid, _, _, h in rows if h is not None}
        result = compare_metric_with_humans("quals", [r[:3] for r in rows], majorities)
        assert (result.metric_ties, result.human_no_majority, result.unjudged) == (1, 1, 1)
        assert (result.missing_scores, result.agree, result.comparisons) == (1, 1, 5)
        assert result.missing_reasons == {"empty summary": 1}

    def test_it_has_no_tau_when_one_side_is_constant(self):
        result = compare_metric_with_humans("rouge1", [(1, 0, 1.0), (2, 0, 2.0)], {1: 1, 2: 1})
        assert result.kendall_tau is None
        assert "do not vary" in result.tau_reason


@pytest.mark.django_db
class TestMetricAgreement:
    def test_it_counts_missing_scores_and_never_treats_them_as_zero(self, batch):
        users = [make_user(f"ann{i}", Role.ANNOTATOR) for i in range(3)]
        comparisons = list(batch.comparisons.select_related("summary_a", "summary_b"))
        scores = [(0.2, 0.5), (0.6, 0.1), ("empty summary", 0.4), (0.3, None)]
        for comparison, (a, b) in zip(comparisons, scores, strict=True):
            for summary, value in ((comparison.summary_a, a), (comparison.summary_b, b)):
                store_score(summary, value)
            for user in users:
                judge(comparison, user, all_criteria("B"))
        result = metric_agreement([batch.pk], "quals")
        # Zero for the missing scores would have made comparison 3 an agreement (0.4 > 0).
        assert (result.agree, result.disagree, result.missing_scores) == (1, 1, 2)
        assert result.missing_reasons == {"empty summary": 1, "not scored yet": 1}
        assert result.kendall_tau is None  # the humans say B on both scored comparisons

    def test_it_uses_only_submitted_factual_judgments(self, batch):
        users = [make_user(f"ann{i}", Role.ANNOTATOR) for i in range(3)]
        comparison = batch.comparisons.first()
        store_score(comparison.summary_a, 0.1)
        store_score(comparison.summary_b, 0.9)
        judge(comparison, users[0], {"factual": "A", "informative": "B", "grammatical": "B"})
        judge(comparison, users[1], all_criteria("B"), status="leased")
        result = metric_agreement([batch.pk], "rouge1")
        assert (result.disagree, result.agree, result.unjudged) == (1, 0, 0)

    def test_the_results_rows_equal_each_metric_read_on_its_own(self, batch):
        # A metric with no score at all skips reading the comparisons; scored or not, each
        # row must be what a full read of every comparison gives.
        users = [make_user(f"ann{i}", Role.ANNOTATOR) for i in range(3)]
        comparisons = list(batch.comparisons.select_related("summary_a", "summary_b"))
        for i, comparison in enumerate(comparisons):
            store_score(comparison.summary_a, 0.1 * i)
            store_score(comparison.summary_b, 0.5)
            for user in users[: 1 + i % 3]:
                judge(comparison, user, all_criteria("AB"[i % 2]))
        data = analysis.load_judgments([batch.pk])
        majorities = analysis.majorities_of(data, "factual")
        rows = analysis.metric_rows([batch.pk], data)
        available = {metric: a for _, a, unavailable, metric in rows if not unavailable}
        scored = {m for m, a in available.items() if a.missing_scores < a.comparisons}
        assert "rouge1" in scored and set(available) - scored  # both kinds here
        for _, agreement, unavailable, metric in rows:
            if unavailable:
                assert agreement is None
                continue
            full = metric_agreement([batch.pk], metric, majorities, FullRead([batch.pk]))
            assert agreement == full, metric
            assert agreement.comparisons == len(comparisons)


class FullRead(analysis.ComparisonPairs):
    """Every comparison read, scored or not: the reference for the shortcut."""

    def for_scores(self, scores):
        return analysis.summary_pairs(self.batch_ids)


def store_score(summary, value):
    if value is None:
        return
    if isinstance(value, str):
        MetricScore.objects.create(
            summary=summary, metric="quals", version="t", status="no_score", reason=value
        )
        return
    for metric in ("quals", "rouge1"):
        MetricScore.objects.create(
            summary=summary, metric=metric, version="t", status="ok", value=value
        )


@pytest.mark.django_db
class TestLoadJudgments:
    def test_it_loads_submitted_judgments_in_system_terms(self, batch):
        batch.status = "open"
        batch.save()
        alice, bob = make_user("alice", Role.ANNOTATOR), make_user("bob", Role.ANNOTATOR)
        leased = lease_next(alice, batch)
        answers = {"factual": "left", "informative": "right", "grammatical": "equal"}
        submit_judgments(alice, leased.pk, answers, active_seconds=12.5)
        lease_next(bob, batch)  # leased, never submitted: does not count
        rows = load_judgments([batch.pk]).rows()
        left, right = leased.left_system, "B" if leased.left_system == "A" else "A"
        assert sorted(rows) == sorted(
            [
                JudgmentRow(leased.comparison_id, alice.pk, "factual", left),
                JudgmentRow(leased.comparison_id, alice.pk, "informative", right),
                JudgmentRow(leased.comparison_id, alice.pk, "grammatical", "equal"),
            ]
        )

    def test_it_leaves_out_excluded_annotators(self, batch):
        alice, bob = make_user("alice", Role.ANNOTATOR), make_user("bob", Role.ANNOTATOR)
        comparison = batch.comparisons.first()
        judge(comparison, alice, all_criteria("A"))
        judge(comparison, bob, all_criteria("B"))
        data = load_judgments([batch.pk], exclude_annotator_ids=[bob.pk])
        assert set(data.annotator.tolist()) == {alice.pk}
        assert len(data) == 3

    def test_it_leaves_out_attention_checks(self, batch):
        alice = make_user("alice", Role.ANNOTATOR)
        check, real = batch.comparisons.all()[:2]
        check.is_check, check.check_state = True, "approved"
        check.save()
        judge(check, alice, all_criteria("A"))
        judge(real, alice, all_criteria("B"))
        assert set(load_judgments([batch.pk]).comparison.tolist()) == {real.pk}
        assert len(load_timing([batch.pk]).annotator) == 1

    def test_it_loads_timing_per_submitted_assignment(self, batch):
        alice = make_user("alice", Role.ANNOTATOR)
        first, second = batch.comparisons.all()[:2]
        judge(first, alice, all_criteria("A"), active=12.0, wall=90)
        judge(second, alice, all_criteria("A"), status="skipped")
        timing = load_timing([batch.pk])
        assert timing.annotator.tolist() == [alice.pk]
        assert timing.active_seconds.tolist() == [12.0]
        assert timing.wall_seconds.tolist() == pytest.approx([90.0])


class TestAnnotatorReport:
    ROWS = [
        *rows_for("factual", {1: ["B", "B", "A"]}),
        *rows_for("informative", {1: ["B", "B", "B"]}),
        *rows_for("grammatical", {1: ["equal", "equal", "equal"]}),
    ]

    def test_it_measures_agreement_with_the_other_annotators_majority(self):
        report = {s.annotator_id: s for s in annotator_report(self.ROWS, [])}
        # Annotator 3: factual against B, B (disagree), then two agreements.
        assert report[3].agreement_with_others == pytest.approx(2 / 3)
        assert report[3].agreement_judgments == 3
        # Annotator 1: on factual the others split B / A, so only two judgments count.
        assert report[1].agreement_with_others == pytest.approx(1.0)
        assert report[1].agreement_judgments == 2
        assert report[1].judgments == 3

    def test_it_gives_median_times_and_ignores_unknown_active_time(self):
        timing = Timing.from_rows(
            [(1, 10.0, 60.0), (1, 30.0, 120.0), (1, None, 300.0), (2, None, 5.0)]
        )
        report = annotator_report(self.ROWS, timing, names={1: "alice"})
        one, two = report[0], report[1]
        assert (one.name, one.assignments_submitted) == ("alice", 3)
        assert (one.median_active_seconds, one.median_wall_seconds) == (20.0, 120.0)
        assert two.median_active_seconds is None
        assert two.median_wall_seconds == 5.0
        assert report[2].assignments_submitted == 0
        assert report[2].median_wall_seconds is None

    def test_it_has_no_agreement_for_a_lone_annotator(self):
        (only,) = annotator_report(rows_for("factual", {1: ["B"]}), [])
        assert only.agreement_with_others is None


def binary_copy(*columns, kinds=None) -> bytes:
    """One row of PostgreSQL's binary COPY whose fields are int8 / float8 arrays, built by
    hand from the documented formats (COPY's header, the array's send format)."""
    import struct

    out = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0) + struct.pack(">h", len(columns))
    for values, kind in zip(columns, kinds or ["q"] * len(columns), strict=True):
        oid = 20 if kind == "q" else 701
        body = struct.pack(">iiiii", 1, 0, oid, len(values), 1)
        body += b"".join(struct.pack(f">i{kind}", 8, v) for v in values)
        out += struct.pack(">i", len(body)) + body
    return out + struct.pack(">h", -1)


class TestBinaryCopy:
    def test_it_reads_the_arrays_of_one_row(self):
        data = binary_copy([3, -1, 2**40], [0.5, math.nan, -2.0], kinds=["q", "d"])
        ids, values = analysis._binary_arrays(memoryview(data), [">i8", ">f8"])
        assert ids.tolist() == [3, -1, 2**40]
        assert values[0] == 0.5 and math.isnan(values[1]) and values[2] == -2.0

    def test_it_refuses_what_it_cannot_read(self):
        with pytest.raises(ValueError, match="not a binary COPY"):
            analysis._binary_arrays(memoryview(b"1,2,3\n" * 5), [">i8"])
        with pytest.raises(ValueError, match="number of columns"):
            analysis._binary_arrays(memoryview(binary_copy([1], [2])), [">i8"])
