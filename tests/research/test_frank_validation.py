"""The analysis layer on the real FRANK data, checked against independent computations.

FRANK (Pagnoni et al., 2021) gives every CNN/DM summary a human factuality score in [0, 1].
Three simulated annotators compare pgn (A) with bart (B) on factual consistency by those scores
plus seeded noise; our table, sign test and alpha must match pandas, scipy and the
`krippendorff` package run directly on the same simulated verdicts.
"""

from __future__ import annotations

from datetime import timedelta

import krippendorff
import numpy as np
import pandas as pd
import pytest
from django.utils import timezone
from scipy import stats

from evaluation.criteria import VERDICT_CODES
from evaluation.models import Assignment, Judgment, Role
from evaluation.services import BatchSettings, import_batch
from research.analysis import (
    CRITERIA,
    bootstrap_shares,
    comparison_levels,
    krippendorff_alpha,
    load_judgments,
    results_table,
    sign_test,
)
from tests.conftest import make_user
from tests.research.test_results_views import holm_of, independent

CODES = {"A": -1, "equal": 0, "B": 1}
SHOWN = {("A", "A"): "left", ("A", "B"): "right", ("B", "A"): "right", ("B", "B"): "left"}


def simulated_verdicts(comparisons, annotators, seed: int = 7) -> list[dict]:
    """One dict per judgment. Annotator 3 skips about a tenth of the comparisons, so that the
    reliability matrix has missing cells."""
    rng = np.random.default_rng(seed)
    out = []
    for comparison in comparisons:
        human = comparison.document.meta["frank_human"]
        gap = human["bart"]["Factuality"] - human["pgn"]["Factuality"]
        lengths = len(comparison.summary_b.text) - len(comparison.summary_a.text)
        for i, user in enumerate(annotators):
            if i == 2 and rng.random() < 0.1:
                continue
            verdicts = {
                "factual": _verdict(gap + rng.normal(0, 0.1), 0.1),
                # Informativeness: longer is more informative, roughly; grammar: a coin.
                "informative": _verdict(lengths / 100 + rng.normal(0, 0.5), 0.3),
                "grammatical": rng.choice(["A", "equal", "equal", "B"]),
            }
            for criterion, verdict in verdicts.items():
                out.append(
                    {
                        "comparison": comparison.pk,
                        "annotator": user.pk,
                        "criterion": criterion,
                        "verdict": str(verdict),
                    }
                )
    return out


def _verdict(difference: float, equal_within: float) -> str:
    if abs(difference) <= equal_within:
        return "equal"
    return "B" if difference > 0 else "A"


def store(batch, simulated: list[dict]) -> None:
    """Submitted assignments and their judgments, in bulk."""
    now = timezone.now()
    pairs = sorted({(j["comparison"], j["annotator"]) for j in simulated})
    codes: dict[tuple, dict] = {}
    for j in simulated:
        codes.setdefault((j["comparison"], j["annotator"]), {})[f"verdict_{j['criterion']}"] = (
            VERDICT_CODES[j["verdict"]]
        )
    assignments = Assignment.objects.bulk_create(
        Assignment(
            comparison_id=cid,
            batch=batch,
            annotator_id=uid,
            left_system="AB"[(cid + uid) % 2],  # both sides, as the engine would show
            status=Assignment.Status.SUBMITTED,
            served_at=now - timedelta(seconds=90),
            lease_expires_at=now + timedelta(minutes=30),
            submitted_at=now,
            active_seconds=60.0,
            **codes[(cid, uid)],
        )
        for cid, uid in pairs
    )
    by_pair = {(a.comparison_id, a.annotator_id): a for a in assignments}
    Judgment.objects.bulk_create(
        Judgment(
            assignment=(a := by_pair[(j["comparison"], j["annotator"])]),
            criterion=j["criterion"],
            verdict=j["verdict"],
            shown="equal" if j["verdict"] == "equal" else SHOWN[(j["verdict"], a.left_system)],
        )
        for j in simulated
    )


@pytest.fixture
def frank(frank_file, db):
    spec = BatchSettings(name="frank", dataset="CNNDM", system_a="pgn", system_b="bart")
    batch = import_batch(frank_file.read_bytes(), frank_file.name, spec, frank_dataset="cnndm")
    annotators = [make_user(f"sim{i}", Role.ANNOTATOR) for i in range(3)]
    comparisons = batch.comparisons.select_related("document", "summary_a", "summary_b")
    simulated = simulated_verdicts(comparisons, annotators)
    store(batch, simulated)
    return batch, pd.DataFrame(simulated)


def majority(verdicts: pd.Series) -> str:
    counts = verdicts.value_counts()
    return "none" if (counts == counts.max()).sum() > 1 else counts.idxmax()


class TestFrankValidation:
    def test_it_imports_the_frank_scores(self, frank):
        batch, frame = frank
        assert batch.comparisons.count() == 250
        assert frame["comparison"].nunique() == 250

    def test_it_matches_pandas_counts_and_majorities(self, frank):
        batch, frame = frank
        table = results_table(load_judgments([batch.pk]))
        counts = frame.groupby(["criterion", "verdict"]).size()
        majorities = frame.groupby(["criterion", "comparison"])["verdict"].agg(majority)
        for criterion in CRITERIA:
            r, expected = table[criterion], counts[criterion]
            assert (r.a_better, r.equal, r.b_better) == (
                expected.get("A", 0), expected.get("equal", 0), expected.get("B", 0),
            )  # fmt: skip
            assert r.judgments == len(frame[frame["criterion"] == criterion])
            assert r.b_better_share == pytest.approx(expected.get("B", 0) / expected.sum())
            tally = majorities[criterion].value_counts()
            m = r.majority
            assert (m.a_better, m.equal, m.b_better, m.no_majority) == (
                tally.get("A", 0), tally.get("equal", 0), tally.get("B", 0), tally.get("none", 0),
            )  # fmt: skip

    def test_it_matches_scipy_binomtest(self, frank):
        batch, frame = frank
        table = results_table(load_judgments([batch.pk]))
        for criterion in CRITERIA:
            verdicts = frame.loc[frame["criterion"] == criterion, "verdict"]
            b, a = int((verdicts == "B").sum()), int((verdicts == "A").sum())
            r = table[criterion]
            expected = stats.binomtest(b, a + b, 0.5).pvalue
            assert sign_test(r.b_better, r.a_better).p_value == pytest.approx(expected)

    def test_it_finds_bart_more_factual_as_frank_does(self, frank):
        # FRANK's raw scores favour bart over pgn on 50 articles and pgn on 29.
        batch, _ = frank
        factual = results_table(load_judgments([batch.pk]))["factual"]
        assert factual.b_better > factual.a_better
        ci = bootstrap_shares(load_judgments([batch.pk]), "factual")
        assert ci.b_better.low < factual.b_better_share < ci.b_better.high

    def test_it_matches_krippendorff_on_the_reliability_matrix(self, frank):
        batch, frame = frank
        data = load_judgments([batch.pk])
        for criterion in CRITERIA:
            part = frame[frame["criterion"] == criterion]
            matrix = (
                part.assign(code=part["verdict"].map(CODES))
                .pivot(index="annotator", columns="comparison", values="code")
                .to_numpy(dtype=float)
            )
            assert np.isnan(matrix).any()  # annotator 3's skips
            expected = krippendorff.alpha(
                reliability_data=matrix, level_of_measurement="ordinal", value_domain=[-1, 0, 1]
            )
            assert krippendorff_alpha(data, criterion).value == pytest.approx(expected)

    def test_it_matches_independent_comparison_level_figures(self, frank):
        batch, frame = frank
        levels = comparison_levels(load_judgments([batch.pk]))
        sides = {
            (a.comparison_id, a.annotator_id): a.left_system
            for a in Assignment.objects.filter(comparison__batch=batch)
        }
        rows = [
            (
                j.comparison,
                j.annotator,
                j.criterion,
                CODES[j.verdict],
                sides[(j.comparison, j.annotator)],
            )
            for j in frame.itertuples()
        ]
        for level in levels:
            expected = independent(rows, level.criterion)
            test = level.test
            assert (test.method, test.n_resamples, test.seed) == ("monte carlo", 10_000, 20210517)
            # Two Monte Carlo estimates of one p: within a few of their standard errors.
            assert test.p_value == pytest.approx(expected["p"], abs=0.025)
            assert level.net.estimate == pytest.approx(expected["net"])
            assert level.net.ci.low == pytest.approx(expected["net_ci"][0], abs=0.02)
            assert level.net.ci.high == pytest.approx(expected["net_ci"][1], abs=0.02)
            assert level.win.estimate == pytest.approx(expected["win"])
            assert level.win.ci.low == pytest.approx(expected["win_ci"][0], abs=0.03)
            assert level.win.ci.high == pytest.approx(expected["win_ci"][1], abs=0.03)
            overall = level.position.overall
            assert overall.left_share == pytest.approx(expected["left_share"])
            assert overall.p_value == pytest.approx(expected["left_p"])
        p_values = [level.test.p_value for level in levels]
        assert [level.holm_p for level in levels] == pytest.approx(holm_of(p_values))

    def test_its_primary_test_is_more_cautious_than_the_judgment_level_one(self, frank):
        # Three correlated verdicts per comparison: the judgment-level sign test counts each
        # as independent evidence, so its p is smaller than the comparison-level test's.
        batch, _ = frank
        data = load_judgments([batch.pk])
        factual = comparison_levels(data)[0]
        r = results_table(data)["factual"]
        assert factual.net.estimate > 0  # bart, as FRANK says
        assert sign_test(r.b_better, r.a_better).p_value < factual.test.p_value
