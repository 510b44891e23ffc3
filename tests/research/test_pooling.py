"""The pooled page (/results/) and its exports: batches grouped by dataset AND system pair,
swapped batches re-oriented, different systems never summed. Checked against counts made by
system name straight from the stored assignments."""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from scipy import stats
from statsmodels.stats.multitest import multipletests

from evaluation import criteria
from evaluation.models import Assignment, Role
from evaluation.services import BatchSettings, import_batch
from research import analysis, pooling, statistics
from research.exports import export_pooled
from tests.conftest import doc_row, jsonl, make_user
from tests.research.test_analysis import all_criteria, judge
from tests.research.test_exports import read_csv, read_jsonl


def make_batch(name: str, system_a: str, system_b: str, dataset: str = "XSUM"):
    spec = BatchSettings(name=name, dataset=dataset, system_a=system_a, system_b=system_b)
    return import_batch(jsonl([doc_row(i) for i in range(1, 5)]), f"{name}.jsonl", spec)


def judge_all(batch, users, verdict_of) -> None:
    """Every user judges every comparison: verdict_of(comparison index) on every criterion."""
    for c, comparison in enumerate(batch.comparisons.order_by("id")):
        for user in users:
            judge(comparison, user, all_criteria(verdict_of(c)))


@pytest.fixture
def users(db):
    return [make_user(f"p{i}", Role.ANNOTATOR) for i in range(3)]


@pytest.fixture
def opposite(users):
    """MLE vs QUALS, B (QUALS) better throughout; QUALS vs MLE, B (MLE) better throughout."""
    forward = make_batch("a-forward", "MLE", "QUALS")
    backward = make_batch("b-reverse", "QUALS", "MLE")
    judge_all(forward, users, lambda c: "B")
    judge_all(backward, users, lambda c: "B")
    return forward, backward


@pytest.fixture
def mixed(users):
    """MLE vs QUALS, QUALS always better; QUALS vs MLE with MLE better on three comparisons and
    QUALS on one; MLE vs OTHER (another pair, same dataset), OTHER better on two."""
    forward = make_batch("a-forward", "MLE", "QUALS")
    backward = make_batch("b-reverse", "QUALS", "MLE")
    other = make_batch("c-other", "MLE", "OTHER")
    judge_all(forward, users, lambda c: "B")
    judge_all(backward, users, lambda c: "A" if c == 0 else "B")
    judge_all(other, users, lambda c: "B" if c < 2 else "equal")
    return forward, backward, other


def by_name(batches) -> list[tuple]:
    """Per stored judgment: (comparison, criterion, winner's system name or "equal", system on
    the left), from the assignments, with nothing of research.pooling."""
    rows = []
    for batch in batches:
        names = {"A": batch.system_a, "B": batch.system_b}
        for a in Assignment.objects.filter(comparison__batch=batch, status="submitted"):
            for c in criteria.CRITERIA:
                code = getattr(a, c.verdict_column)
                winner = {-1: names["A"], 0: "equal", 1: names["B"]}[code]
                rows.append((a.comparison_id, c.key, winner, names[a.left_system]))
    return rows


def independent(rows: list[tuple], criterion: str, system_a: str, system_b: str) -> dict:
    """Counts by name; each comparison's mean verdict (+1 system_b) tested by scipy's
    permutation test; the share of non-tied verdicts for the left side by binomtest."""
    mine = [r for r in rows if r[1] == criterion]
    code = {system_a: -1, "equal": 0, system_b: 1}
    per: dict[int, list[int]] = {}
    for cid, _, winner, _ in mine:
        per.setdefault(cid, []).append(code[winner])
    means = np.array([np.mean(v) for v in per.values()])
    if np.any(means != 0):
        p = stats.permutation_test(
            (means,), np.sum, permutation_type="samples", n_resamples=100_000,
            random_state=np.random.default_rng(3),
        ).pvalue  # fmt: skip
    else:
        p = None
    decided = [(winner, left) for _, _, winner, left in mine if winner != "equal"]
    left = sum(w == side for w, side in decided)
    return {
        "b": sum(w == system_b for _, _, w, _ in mine),
        "a": sum(w == system_a for _, _, w, _ in mine),
        "equal": sum(w == "equal" for _, _, w, _ in mine),
        "p": p,
        "left_share": left / len(decided) if decided else None,
        "left_p": stats.binomtest(left, len(decided)).pvalue if decided else None,
    }


class TestGroupBatches:
    def batch(self, pk, name, a, b, dataset="XSUM"):
        return SimpleNamespace(pk=pk, name=name, dataset=dataset, system_a=a, system_b=b)

    def test_it_groups_by_dataset_and_pair_and_marks_swapped_batches(self):
        one = self.batch(1, "one", "MLE", "QUALS")
        two = self.batch(2, "two", "QUALS", "MLE")
        three = self.batch(3, "three", "MLE", "OTHER")
        four = self.batch(4, "four", "MLE", "QUALS", dataset="CNNDM")
        groups = pooling.group_batches([one, two, three, four])
        assert [(g.dataset, g.system_a, g.system_b) for g in groups] == [
            ("XSUM", "MLE", "QUALS"), ("XSUM", "MLE", "OTHER"), ("CNNDM", "MLE", "QUALS"),
        ]  # fmt: skip
        assert [b.name for b in groups[0].batches] == ["one", "two"]
        assert [b.name for b in groups[0].swapped] == ["two"]
        assert not groups[1].swapped and not groups[2].swapped

    def test_the_first_batch_sets_the_orientation(self):
        groups = pooling.group_batches(
            [self.batch(2, "two", "QUALS", "MLE"), self.batch(1, "one", "MLE", "QUALS")]
        )
        assert (groups[0].system_a, groups[0].system_b) == ("QUALS", "MLE")
        assert [b.name for b in groups[0].swapped] == ["one"]

    def test_reorienting_flips_verdicts_and_sides(self):
        data = analysis.Judgments.from_rows(
            [
                (1, 7, "factual", "A", "A"),
                (1, 8, "factual", "equal", "B"),
                (2, 7, "factual", "B", "B"),
            ]
        )
        flipped = pooling.reoriented(data)
        assert flipped.verdict.tolist() == [1, 0, -1]
        assert flipped.left_a.tolist() == [False, True, True]
        assert flipped.comparison.tolist() == data.comparison.tolist()


@pytest.mark.django_db
class TestPooledPage:
    def test_opposite_batches_pool_to_a_consistent_direction(self, client, researcher, opposite):
        client.force_login(researcher)
        response = client.get(reverse("results_overview"))
        [group] = response.context["datasets"]
        factual = group["rows"][0]["r"]
        # Not "B better 24 vs 0": QUALS won the first batch's 12, MLE the second's 12.
        assert (factual.b_better, factual.a_better) == (12, 12)
        expected = independent(by_name(opposite), "factual", "MLE", "QUALS")
        assert (factual.b_better, factual.a_better) == (expected["b"], expected["a"])
        assert group["rows"][0]["level"].net.estimate == pytest.approx(0.0)
        assert group["rows"][0]["level"].test.p_value == pytest.approx(expected["p"])
        content = response.content.decode()
        assert "XSUM: QUALS (B) vs MLE (A)" in content
        assert (
            "Re-oriented (their A and B swapped to match, verdicts flipped): b-reverse" in content
        )

    def test_it_matches_counts_by_system_name_and_keeps_other_pairs_apart(
        self, client, researcher, mixed
    ):
        forward, backward, other = mixed
        client.force_login(researcher)
        response = client.get(reverse("results_overview"))
        groups = response.context["datasets"]
        assert [g["label"] for g in groups] == [
            "XSUM: QUALS (B) vs MLE (A)", "XSUM: OTHER (B) vs MLE (A)",
        ]  # fmt: skip
        assert [b.name for b in groups[0]["swapped"]] == ["b-reverse"]
        assert [b.name for b in groups[1]["batches"]] == ["c-other"]
        pairs = [(by_name([forward, backward]), "MLE", "QUALS"), (by_name([other]), "MLE", "OTHER")]
        for group, (rows, a, b) in zip(groups, pairs, strict=True):
            for row in group["rows"]:
                expected = independent(rows, row["r"].criterion, a, b)
                r, level = row["r"], row["level"]
                assert (r.b_better, r.equal, r.a_better) == (
                    expected["b"], expected["equal"], expected["a"],
                )  # fmt: skip
                assert level.test.p_value == pytest.approx(expected["p"], abs=0.01)
                overall = level.position.overall
                assert overall.left_share == pytest.approx(expected["left_share"])
                assert overall.p_value == pytest.approx(expected["left_p"])
        # QUALS: 12 in the first batch, 3 in the second; MLE: 9 in the second.
        assert (groups[0]["rows"][0]["r"].b_better, groups[0]["rows"][0]["r"].a_better) == (15, 9)
        assert groups[1]["rows"][0]["r"].judgments == 12  # never summed with the others
        assert b"each pair is listed on its own below, never summed" in response.content
        levels = [row["level"] for g in groups for row in g["rows"]]
        assert [lv.holm_p for lv in levels] == pytest.approx(
            multipletests([lv.test.p_value for lv in levels], method="holm")[1]
        )

    def test_it_computes_only_what_it_shows(self, client, researcher, mixed, monkeypatch):
        def not_shown(*args, **kwargs):
            raise AssertionError("the pooled page does not show this")

        for name in ("bootstrap_shares", "power_hint", "reliability", "pairwise_agreement"):
            monkeypatch.setattr(analysis, name, not_shown)
        for name in ("_two_way_ratio", "_two_way_ratio_normal"):
            monkeypatch.setattr(statistics, name, not_shown)
        client.force_login(researcher)
        response = client.get(reverse("results_overview"))
        assert response.status_code == 200
        level = response.context["datasets"][0]["rows"][0]["level"]
        assert level.net.ci is not None and level.win.ci is not None
        assert level.net.two_way_ci is None and level.win.two_way_ci is None

    def test_the_chart_has_one_panel_per_group(self, client, researcher, mixed):
        client.force_login(researcher)
        response = client.get(reverse("results_chart", args=["svg"]))
        assert response["Content-Type"] == "image/svg+xml"
        svg = response.content.decode()
        assert "XSUM: QUALS (B) vs MLE (A)" in svg and "XSUM: OTHER (B) vs MLE (A)" in svg
        assert "Re-oriented" in svg
        excluded = client.get(reverse("results_chart", args=["svg"]), {"exclude_flagged": "1"})
        assert "Annotators flagged by attention checks excluded (0)" in excluded.content.decode()
        png = client.get(reverse("results_chart", args=["png"]) + "?download=1")
        assert png.content.startswith(b"\x89PNG")
        assert png["Content-Disposition"] == 'attachment; filename="results-by-dataset-chart.png"'

    def test_an_unknown_chart_format_is_not_found(self, client, researcher, db):
        client.force_login(researcher)
        assert client.get(reverse("results_chart", args=["gif"])).status_code == 404


@pytest.mark.django_db
class TestPooledExports:
    def test_the_table_writes_each_group_in_its_orientation(self, mixed):
        forward, backward, other = mixed
        rows = read_jsonl(export_pooled("table", "jsonl"))
        assert len(rows) == 2 * len(criteria.CRITERIA)
        first = [r for r in rows if r["system_b"] == "QUALS"]
        assert {r["reoriented_batches"] for r in first} == {"b-reverse"}
        assert {r["batches"] for r in first} == {"a-forward; b-reverse"}
        expected = independent(by_name([forward, backward]), "factual", "MLE", "QUALS")
        factual = first[0]
        assert (factual["b_better"], factual["b_worse"]) == (expected["b"], expected["a"])
        assert factual["comparison_test_p"] == pytest.approx(expected["p"], abs=0.01)
        assert factual["flagged_excluded"] is False
        assert [r["comparison_test_holm_p"] for r in rows] == pytest.approx(
            multipletests([r["comparison_test_p"] for r in rows], method="holm")[1]
        )
        second = [r for r in rows if r["system_b"] == "OTHER"]
        assert second[0]["judgments"] == 12 and second[0]["reoriented_batches"] == ""

    def test_csv_latex_and_markdown_come_from_the_page(self, client, researcher, mixed):
        client.force_login(researcher)
        csv_response = client.get(reverse("results_export", args=["table", "csv"]))
        assert csv_response["Content-Disposition"] == (
            'attachment; filename="results-by-dataset-table.csv"'
        )
        assert len(read_csv(b"".join(csv_response.streaming_content).decode())) == 6
        tex = b"".join(
            client.get(reverse("results_export", args=["table", "tex"])).streaming_content
        ).decode()
        assert r"\toprule" in tex and r"\bottomrule" in tex
        assert r"\textit{XSUM: QUALS (B) vs MLE (A)}" in tex and "Re-oriented" in tex
        md = b"".join(
            client.get(reverse("results_export", args=["table", "md"])).streaming_content
        ).decode()
        assert "**XSUM: OTHER (B) vs MLE (A)**" in md
        assert client.get(reverse("results_export", args=["table", "pdf"])).status_code == 404
        assert client.get(reverse("results_export", args=["cats", "csv"])).status_code == 404

    def test_the_switch_applies_and_is_said(self, client, researcher, mixed):
        client.force_login(researcher)
        response = client.get(
            reverse("results_export", args=["table", "csv"]), {"exclude_flagged": "1"}
        )
        assert response["Content-Disposition"] == (
            'attachment; filename="results-by-dataset-table-flagged-excluded.csv"'
        )
        rows = read_csv(b"".join(response.streaming_content).decode())
        assert {r["flagged_excluded"] for r in rows} == {"True"}


@pytest.mark.django_db
class TestPooledMethods:
    def test_the_page_and_the_export_state_the_pooling(self, client, researcher, mixed):
        forward, backward, _ = mixed
        client.force_login(researcher)
        response = client.get(reverse("results_overview"))
        first = response.context["datasets"][0]["methods_paragraph"]
        rows = by_name([forward, backward])
        factual = independent(rows, "factual", "MLE", "QUALS")
        judgments = len(rows)  # every criterion
        for part in (
            "The results pool 2 batches (a-forward, b-reverse); b-reverse compared the systems "
            "the other way round and were re-oriented, their verdicts flipped to match.",
            "8 comparisons (a source document with both summaries; 8 in 2 batches)",
            f"3 annotators gave {judgments} counted judgments",
            "all 6 tests of the pooled table (3 criteria x 2 groups) with Holm's method",
            f"factual consistency {(factual['b'] - factual['a']) / judgments * 3:+.2f}",
        ):
            assert part in first, part
        assert "Methods paragraph (XSUM: OTHER (B) vs MLE (A))" in response.content.decode()
        response = client.get(reverse("results_export", args=["methods", "txt"]))
        text = " ".join(b"".join(response.streaming_content).decode().split())
        assert first in text
        tex = b"".join(
            client.get(reverse("results_export", args=["table", "tex"])).streaming_content
        ).decode()
        assert "% Methods (XSUM: QUALS (B) vs MLE (A)): " in tex


@pytest.mark.django_db
class TestPooledExportCommand:
    def test_it_writes_the_pooled_table(self, mixed):
        out = io.StringIO()
        call_command("export_results", "pooled", "--what", "table", "--format", "md", stdout=out)
        assert "**XSUM: QUALS (B) vs MLE (A)**" in out.getvalue()
        out = io.StringIO()
        call_command("export_results", "pooled", "--what", "table", stdout=out)
        assert len(read_csv(out.getvalue())) == 6

    def test_it_refuses_what_the_pooled_page_does_not_export(self, db):
        with pytest.raises(CommandError, match="the pooled page exports table, methods"):
            call_command("export_results", "pooled", "--what", "judgments")
        with pytest.raises(CommandError, match="table exports as csv, jsonl, tex, md, not txt"):
            call_command("export_results", "pooled", "--what", "table", "--format", "txt")
