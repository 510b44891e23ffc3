"""Researcher exports and the export_results command."""

from __future__ import annotations

import csv
import hashlib
import inspect
import io
import json

import numpy as np
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.urls import reverse
from scipy import stats
from statsmodels.stats.multitest import multipletests

from evaluation.models import Role
from research.exports import (
    annotator_pseudonym,
    export,
    export_comparisons,
    export_filename,
    export_judgments,
    export_position_bias,
    export_scores,
    export_table,
    majority_name,
)
from scoring.models import MetricScore
from tests.conftest import make_user
from tests.research.test_analysis import all_criteria, judge


def read_csv(lines) -> list[dict]:
    return list(csv.DictReader(io.StringIO("".join(lines))))


def read_jsonl(lines) -> list[dict]:
    return [json.loads(line) for line in lines]


@pytest.fixture
def judged(batch):
    """Comparison 1: alice B, bob B, carol A on every criterion; comparison 2: alice equal."""
    users = [make_user(name, Role.ANNOTATOR) for name in ("alice", "bob", "carol")]
    first, second = batch.comparisons.all()[:2]
    for user, verdict in zip(users, "BBA", strict=True):
        judge(first, user, all_criteria(verdict), active=4.5 if verdict == "A" else None)
    judge(second, users[0], all_criteria("equal"))
    judge(second, users[1], all_criteria("A"), status="leased")
    return batch, users


@pytest.mark.django_db
class TestExportJudgments:
    def test_it_writes_one_row_per_submitted_assignment_and_criterion(self, judged):
        batch, _ = judged
        rows = read_csv(export_judgments(batch, "csv"))
        assert len(rows) == 4 * 3
        assert {r["criterion"] for r in rows} == {"factual", "informative", "grammatical"}
        assert {(r["batch"], r["dataset"], r["system_a"], r["system_b"]) for r in rows} == {
            ("study", "XSUM", "MLE", "QUALS")
        }

    def test_it_names_the_better_system_next_to_the_verdict(self, judged):
        batch, _ = judged
        pairs = {
            (r["verdict"], r["better_system"], r["shown"])
            for r in read_csv(export_judgments(batch))
        }
        assert pairs == {("B", "QUALS", "right"), ("A", "MLE", "left"), ("equal", "equal", "equal")}

    def test_it_uses_stable_pseudonyms_not_usernames(self, judged):
        batch, users = judged
        lines = list(export_judgments(batch, "csv"))
        assert not any(user.username in "".join(lines) for user in users)
        digest = hashlib.sha256(f"{settings.SECRET_KEY}{users[0].pk}".encode()).hexdigest()
        assert "ann-" + digest[:10] in {r["annotator"] for r in read_csv(lines)}
        assert lines == list(export_judgments(batch, "csv"))

    def test_it_writes_the_same_values_in_csv_and_json_lines(self, judged):
        batch, _ = judged
        batch.name, batch.system_b = 'XSUM, "pilot"', "QUALS\nv2"
        as_csv = read_csv(export_judgments(batch, "csv"))
        as_json = read_jsonl(export_judgments(batch, "jsonl"))
        as_text = [{k: "" if v is None else str(v) for k, v in row.items()} for row in as_json]
        assert as_csv == as_text
        assert as_csv[0]["batch"] == 'XSUM, "pilot"'

    def test_it_marks_attention_checks(self, judged):
        batch, _ = judged
        batch.comparisons.filter(pk=batch.comparisons.first().pk).update(
            is_check=True, check_state="approved"
        )
        rows = read_csv(export_judgments(batch))
        assert [r["is_check"] for r in rows].count("True") == 9
        table = read_jsonl(export_table(batch, "jsonl"))
        assert table[0]["judgments"] == 1

    def test_it_marks_revised_judgments(self, judged):
        from datetime import UTC, datetime

        from evaluation.models import Assignment

        batch, users = judged
        revised = Assignment.objects.filter(annotator=users[2], status="submitted").get()
        at = datetime(2026, 5, 4, 12, 30, tzinfo=UTC)
        Assignment.objects.filter(pk=revised.pk).update(revisions=2, revised_at=at)
        for fmt, read in (("csv", read_csv), ("jsonl", read_jsonl)):
            rows = read(export_judgments(batch, fmt))
            marks = {(str(r["revisions"]), r["revised_at"]) for r in rows if r["active_seconds"]}
            assert marks == {("2", at.isoformat())}, fmt
            others = {(str(r["revisions"]), r["revised_at"] or None) for r in rows}
            assert others - marks == {("0", None)}, fmt

    def test_it_writes_json_lines_with_null_for_unknown_times(self, judged):
        batch, _ = judged
        rows = read_jsonl(export_judgments(batch, "jsonl"))
        assert len(rows) == 12
        assert {r["active_seconds"] for r in rows} == {None, 4.5}
        assert all(r["served_at"] < r["submitted_at"] for r in rows)
        assert isinstance(rows[0]["comparison_id"], int)

    def test_it_is_a_lazy_generator(self, judged, django_assert_num_queries):
        batch, _ = judged
        with django_assert_num_queries(0):
            lines = export_judgments(batch, "csv")
        assert inspect.isgenerator(lines)

    def test_a_download_cut_short_closes_cleanly(self, judged, monkeypatch):
        import gc
        import sys

        raised = []
        monkeypatch.setattr(sys, "unraisablehook", raised.append)
        batch, _ = judged
        lines = export_judgments(batch, "csv")
        next(lines), next(lines)
        lines.close()
        del lines
        gc.collect()
        assert raised == []
        assert len(read_csv(export_judgments(batch, "csv"))) == 12  # the connection still works

    def test_it_refuses_an_unknown_format(self, judged):
        with pytest.raises(ValueError, match="unknown format"):
            list(export_judgments(judged[0], "xml"))


@pytest.mark.django_db
class TestExportComparisons:
    def test_it_counts_verdicts_and_majorities_per_comparison(self, judged):
        batch, _ = judged
        rows = read_csv(export_comparisons(batch, "csv"))
        assert len(rows) == 4
        first, second, third = rows[:3]
        assert (first["factual_b_better"], first["factual_a_better"], first["factual_equal"]) == (
            "2", "1", "0",
        )  # fmt: skip
        assert first["factual_majority"] == first["grammatical_majority"] == "B"
        assert (second["informative_equal"], second["informative_majority"]) == ("1", "equal")
        assert second["informative_a_better"] == "0"  # bob's lease does not count
        assert (third["submitted"], third["factual_majority"]) == ("0", "none")

    def test_it_agrees_with_analysis_on_ties(self):
        assert majority_name(1, 1, 1) == "none"
        assert majority_name(2, 1, 2) == "none"
        assert majority_name(0, 2, 1) == "equal"
        assert majority_name(0, 0, 0) == "none"


@pytest.mark.django_db
class TestExportScores:
    def test_it_writes_every_summary_and_metric_with_missing_values_empty(self, batch):
        comparison = batch.comparisons.first()
        MetricScore.objects.create(
            summary=comparison.summary_a, metric="rouge1", version="v", status="ok", value=0.0
        )
        MetricScore.objects.create(
            summary=comparison.summary_b, metric="quals", version="v", status="no_score",
            reason="QUALS not configured",
        )  # fmt: skip
        rows = read_csv(export_scores(batch, "csv"))
        metrics = ["quals", "rougeL", "rouge1", "rouge2", "coverage", "density"]
        assert len(rows) == 4 * 2 * len(metrics)  # comparisons x summaries x metrics
        assert [r["metric"] for r in rows[: len(metrics)]] == metrics
        by_key = {(r["summary_id"], r["metric"]): r for r in rows}
        ok = by_key[(str(comparison.summary_a_id), "rouge1")]
        assert (ok["status"], ok["value"], ok["role"], ok["system"]) == ("ok", "0.0", "A", "MLE")
        none = by_key[(str(comparison.summary_b_id), "quals")]
        assert (none["status"], none["value"], none["reason"]) == (
            "no_score", "", "QUALS not configured",
        )  # fmt: skip
        assert by_key[(str(comparison.summary_b_id), "rouge2")]["status"] == "not_scored"

    def test_it_says_why_a_family_that_cannot_run_here_has_no_score(self, batch, settings):
        settings.QUALS_MODEL = ""
        rows = read_csv(export_scores(batch, "csv"))
        quals = [r for r in rows if r["metric"] == "quals"]
        assert quals and {(r["status"], r["value"]) for r in quals} == {("not_configured", "")}
        assert {r["reason"] for r in quals} == {
            "QUALS is not configured: set QUALS_MODEL to a local checkpoint directory"
        }
        assert {r["status"] for r in rows if r["metric"] == "coverage"} == {"not_scored"}

    def test_it_writes_null_values_in_json_lines(self, batch):
        rows = read_jsonl(export_scores(batch, "jsonl"))
        assert {r["value"] for r in rows} == {None}


@pytest.mark.django_db
class TestExportTable:
    def test_it_writes_the_results_table_per_criterion(self, judged):
        batch, _ = judged
        rows = read_jsonl(export_table(batch, "jsonl"))
        assert [r["criterion"] for r in rows] == ["factual", "informative", "grammatical"]
        factual = rows[0]
        assert (factual["judgments"], factual["b_better"], factual["b_worse"]) == (4, 2, 1)
        assert factual["b_better_share"] == pytest.approx(0.5)
        assert factual["bootstrap_seed"] == 20210517
        assert factual["sign_test_p"] == pytest.approx(1.0)
        assert factual["majority_none"] == 0

    def test_it_writes_the_comparison_level_figures(self, judged):
        batch, _ = judged
        rows = read_jsonl(export_table(batch, "jsonl"))
        # Every criterion: comparison 1 has B, B, A (mean 1/3), comparison 2 equal (mean 0).
        flips = stats.permutation_test(
            (np.array([1 / 3, 0.0]),), np.sum, permutation_type="samples"
        ).pvalue
        holm = multipletests([flips] * 3, method="holm")[1]
        for row, adjusted in zip(rows, holm, strict=True):
            assert row["comparison_test_p"] == pytest.approx(flips)
            assert (row["comparison_test_method"], row["comparison_test_resamples"]) == (
                "exact",
                None,
            )
            assert row["comparison_test_holm_p"] == pytest.approx(adjusted)
            assert row["net_preference"] == pytest.approx((2 - 1) / 4)
            assert row["net_preference_ci_low"] <= 0.25 <= row["net_preference_ci_high"]
            assert row["win_rate"] == pytest.approx(2 / 3)
            assert row["win_rate_ci_low"] <= 2 / 3 <= row["win_rate_ci_high"]
            # System A is always on the left (tests.research.test_analysis.judge): only carol's
            # "A better" chose the left summary, 1 of 3 non-tied verdicts.
            assert row["left_share"] == pytest.approx(1 / 3)
            assert row["left_share_p"] == pytest.approx(stats.binomtest(1, 3).pvalue)
            assert row["sign_test_p"] == pytest.approx(stats.binomtest(2, 3).pvalue)

    def test_it_writes_csv_with_a_header(self, judged):
        rows = read_csv(export_table(judged[0], "csv"))
        assert len(rows) == 3
        assert rows[0]["alpha_reason"] == ""

    def test_it_writes_the_pages_intervals(self, client, judged):
        batch, _ = judged
        client.force_login(make_user("rita", Role.RESEARCHER))
        page = client.get(reverse("batch_results", args=[batch.pk]))
        rows = read_jsonl(export_table(batch, "jsonl"))
        for row, shown in zip(rows, page.context["rows"], strict=True):
            reliability, level = shown["reliability"], shown["level"]
            assert (row["krippendorff_alpha_ci_low"], row["krippendorff_alpha_ci_high"]) == (
                reliability.alpha_ci.low, reliability.alpha_ci.high,
            )  # fmt: skip
            assert (row["pairwise_agreement_ci_low"], row["pairwise_agreement_ci_high"]) == (
                reliability.agreement_ci.low, reliability.agreement_ci.high,
            )  # fmt: skip
            assert (row["reliability_seed"], row["reliability_resamples"]) == (20210517, 2000)
            # Three annotators: no two-way interval, and the export says why, as the page.
            assert row["net_preference_two_way_ci_low"] is None
            assert row["win_rate_two_way_ci_high"] is None
            assert row["two_way_reason"] == level.net.two_way_reason
            assert "only 3 annotators" in row["two_way_reason"]


@pytest.mark.django_db
class TestExportPositionBias:
    def test_it_tests_everyone_and_each_annotator(self, judged):
        batch, users = judged
        rows = read_jsonl(export_position_bias(batch, "jsonl"))
        assert len(rows) == 3 * (1 + 3)  # per criterion: everyone, alice, bob, carol
        factual = [r for r in rows if r["criterion"] == "factual"]
        assert factual[0]["annotator"] == "all" and factual[0]["holm_p"] is None
        # A is always on the left: carol's "A better" is the only verdict for the left side.
        assert (factual[0]["non_tied"], factual[0]["left"]) == (3, 1)
        assert factual[0]["p_value"] == pytest.approx(stats.binomtest(1, 3).pvalue)
        carol = next(r for r in factual if r["annotator"] == annotator_pseudonym(users[2].pk))
        assert (carol["left"], carol["left_share"], carol["flagged"]) == (1, 1.0, False)
        assert carol["p_value"] == pytest.approx(stats.binomtest(1, 1).pvalue)
        annotators = [r for r in factual if r["annotator"] != "all"]
        defined = [r["p_value"] for r in annotators if r["p_value"] is not None]
        adjusted = multipletests(defined, method="holm")[1]
        assert [r["holm_p"] for r in annotators if r["p_value"] is not None] == pytest.approx(
            adjusted
        )
        alice = next(r for r in factual if r["annotator"] == annotator_pseudonym(users[0].pk))
        assert alice["non_tied"] == 1  # her "equal" on comparison 2 is a tie

    def test_it_writes_csv_with_a_header(self, judged):
        rows = read_csv(export(judged[0], "position_bias", "csv"))
        assert rows[0]["annotator"] == "all" and rows[0]["criterion"] == "factual"


@pytest.mark.django_db
class TestExportResultsCommand:
    def test_it_writes_to_stdout(self, judged):
        batch, _ = judged
        out = io.StringIO()
        call_command("export_results", batch.name, "--what", "judgments", stdout=out)
        assert len(read_csv([out.getvalue()])) == 12

    def test_it_writes_a_file_by_batch_id(self, judged, tmp_path):
        batch, _ = judged
        path = tmp_path / "table.jsonl"
        call_command(
            "export_results", str(batch.pk), "--what", "comparisons", "--format", "jsonl",
            "--output", str(path), stderr=io.StringIO(),
        )  # fmt: skip
        assert len(path.read_text().splitlines()) == 4

    def test_it_refuses_an_unknown_batch(self, db):
        with pytest.raises(CommandError, match="no batch named or numbered 'nope'"):
            call_command("export_results", "nope")

    def test_it_refuses_an_unknown_export(self, batch):
        with pytest.raises(CommandError, match="invalid choice"):
            call_command("export_results", batch.name, "--what", "everything")


@pytest.mark.django_db
class TestExportHelpers:
    def test_it_dispatches_by_name(self, batch):
        assert next(export(batch, "scores", "csv")).startswith("batch,dataset,document_id")
        with pytest.raises(ValueError, match="unknown export"):
            export(batch, "everything", "csv")

    def test_it_makes_a_safe_file_name(self, batch):
        batch.name = 'XSUM pilot / "v2"'
        assert export_filename(batch, "judgments", "csv") == "xsum-pilot-v2-judgments.csv"


FORMULA = '=HYPERLINK("http://evil.example","x")'


@pytest.fixture
def formula_batch(db):
    """Batch, systems and a document id that a spreadsheet would run as formulas."""
    from evaluation.services import BatchSettings, import_batch
    from tests.conftest import doc_row, jsonl

    row = doc_row(1, id="@x", summaries={"+1": "One summary.", "-2": "Another summary."})
    settings_ = BatchSettings(name=FORMULA, dataset="XSUM", system_a="+1", system_b="-2")
    batch = import_batch(jsonl([row]), "f.jsonl", settings_)
    user = make_user("alice", Role.ANNOTATOR)
    judge(batch.comparisons.get(), user, all_criteria("B"))
    return batch


@pytest.mark.django_db
class TestCsvInjection:
    @pytest.mark.parametrize("what", ["judgments", "comparisons", "scores", "table"])
    def test_it_quotes_formula_cells_in_csv_and_keeps_json_lines_verbatim(
        self, formula_batch, what
    ):
        csv_row = read_csv(export(formula_batch, what, "csv"))[0]
        json_row = read_jsonl(export(formula_batch, what, "jsonl"))[0]
        assert csv_row["batch"] == "'" + FORMULA and json_row["batch"] == FORMULA
        if what in ("judgments", "comparisons", "table"):
            assert csv_row["system_a"] == "'+1" and json_row["system_a"] == "+1"
            assert csv_row["system_b"] == "'-2" and json_row["system_b"] == "-2"
        if what in ("judgments", "comparisons", "scores"):
            assert csv_row["document_id"] == "'@x" and json_row["document_id"] == "@x"
        if what == "scores":
            assert {csv_row["system"], json_row["system"]} in ({"'+1", "+1"}, {"'-2", "-2"})

    def test_it_leaves_numbers_alone(self):
        from research.exports import csv_safe

        assert csv_safe([-1, -0.5, "-1", "\tx", "\rx", "a=b", ""]) == [
            -1, -0.5, "'-1", "'\tx", "'\rx", "a=b", ""
        ]  # fmt: skip


class TestTimesAsText:
    """PostgreSQL hands the judgments export its times as text; they are written as
    datetime.isoformat() writes them."""

    @pytest.mark.parametrize(
        "text",
        [
            "2026-01-01 00:00:50.74+00",
            "2026-01-01 00:00:50.740568+00",
            "2026-01-01 00:00:50.000001+00",
            "2026-01-01 23:59:59+00",
            "2026-06-30 12:00:00.5+02",  # not UTC: parsed, offset kept
        ],
    )
    def test_it_writes_what_isoformat_writes(self, text):
        from datetime import datetime

        from research.exports import _iso

        parsed = datetime.fromisoformat(text)
        assert _iso(text) == parsed.isoformat()
        assert _iso(parsed) == parsed.isoformat() and _iso(None) is None
