"""What the exports say beyond the rows: the exclusion switch in every download, each
annotator's attention-check record, skips and problem reports, the study table as LaTeX and
Markdown, and the methods paragraph. Numbers checked against loops over the stored data,
scipy and statsmodels."""

from __future__ import annotations

import re
from datetime import timedelta

import numpy as np
import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from scipy import stats
from statsmodels.stats.multitest import multipletests

from evaluation import criteria
from evaluation.models import Assignment, AuditEvent, Role
from research import methods
from research.exports import FORMATS_OF, ROW_FORMATS, annotator_pseudonym, export
from tests.conftest import approved_pool_checks, make_user
from tests.research.test_analysis import all_criteria, judge
from tests.research.test_exports import read_csv, read_jsonl

PROBLEM = '=HYPERLINK("http://evil.example","x") the text is cut'


def skipped(comparison, user, *, skip: str = "", problem: str = ""):
    now = timezone.now()
    return Assignment.objects.create(
        comparison=comparison, annotator=user, left_system="B", status="skipped", served_at=now,
        lease_expires_at=now + timedelta(minutes=30), skip_reason=skip, problem_report=problem,
    )  # fmt: skip


@pytest.fixture
def checked(batch):
    """Two approved attention checks from a check pool (flagged from two answered checks).
    alice answers both right, bob both wrong (flagged), carol skips one. Real comparisons:
    alice and bob judge all four, carol three and reports a problem with the fourth."""
    batch.check_every, batch.checks_before_flag = 2, 2
    batch.save()
    made = approved_pool_checks(batch, 2)
    alice, bob, carol = (make_user(n, Role.ANNOTATOR) for n in ("alice", "bob", "carol"))
    real = list(batch.comparisons.filter(is_check=False).order_by("id"))
    for c, comparison in enumerate(real):
        judge(comparison, alice, all_criteria("B"))
        judge(comparison, bob, all_criteria("A" if c == 0 else "B"))
        if c < 3:
            judge(comparison, carol, all_criteria("equal" if c == 0 else "B"))
    skipped(real[3], carol, problem=PROBLEM)
    for check in made:
        right = check.expected["factual"]  # the faithful side is drawn per check
        judge(check, alice, all_criteria(right))
        judge(check, bob, all_criteria("B" if right == "A" else "A"))
    skipped(made[0], carol, skip="not sure")
    return batch, (alice, bob, carol), real


def lines_of(response) -> str:
    return b"".join(response.streaming_content).decode()


@pytest.mark.django_db
class TestExclusionSwitch:
    @pytest.mark.parametrize(
        "what,fmt", [(w, f) for w, formats in FORMATS_OF.items() for f in formats]
    )
    def test_every_download_applies_it_and_says_so(self, client, researcher, checked, what, fmt):
        batch, (alice, bob, carol), _ = checked
        client.force_login(researcher)
        url = reverse("batch_export", args=[batch.pk, what, fmt])
        response = client.get(url, {"exclude_flagged": "1"})
        assert response.status_code == 200
        assert response["Content-Disposition"] == (
            f'attachment; filename="study-{what}-flagged-excluded.{fmt}"'
        )
        text = lines_of(response)
        assert annotator_pseudonym(bob.pk) not in text
        if fmt in ROW_FORMATS:
            rows = read_csv(text) if fmt == "csv" else read_jsonl(text.splitlines())
            assert rows and {str(r["flagged_excluded"]) for r in rows} == {"True"}
        else:
            assert "excluded (1)" in text
        assert AuditEvent.objects.get(action="export").target == (
            f"{what}.{fmt} without flagged annotators"
        )
        plain = client.get(url)
        assert plain["Content-Disposition"] == f'attachment; filename="study-{what}.{fmt}"'
        if fmt in ROW_FORMATS:
            text = lines_of(plain)
            rows = read_csv(text) if fmt == "csv" else read_jsonl(text.splitlines())
            assert {str(r["flagged_excluded"]) for r in rows} == {"False"}

    def test_the_table_download_counts_what_the_page_shows(self, client, researcher, checked):
        batch, *_ = checked
        client.force_login(researcher)
        page = client.get(reverse("batch_results", args=[batch.pk]), {"exclude_flagged": "1"})
        response = client.get(
            reverse("batch_export", args=[batch.pk, "table", "jsonl"]), {"exclude_flagged": "1"}
        )
        rows = read_jsonl(lines_of(response).splitlines())
        shown = [row["r"].judgments for row in page.context["rows"]]
        assert [r["judgments"] for r in rows] == shown == [4 + 3] * 3  # alice's and carol's
        assert b'export/table.csv?exclude_flagged=1"' in page.content

    def test_the_comparisons_export_counts_without_them(self, checked):
        batch, _, real = checked
        rows = read_jsonl(export(batch, "comparisons", "jsonl", exclude_flagged=True))
        first = next(r for r in rows if r["comparison_id"] == real[0].pk)
        # alice B, carol equal; bob's A left out.
        assert (first["submitted"], first["factual_b_better"], first["factual_a_better"]) == (
            2, 1, 0,
        )  # fmt: skip
        everyone = read_jsonl(export(batch, "comparisons", "jsonl"))
        first = next(r for r in everyone if r["comparison_id"] == real[0].pk)
        real[0].refresh_from_db()  # the stored counter (tests.research.test_analysis.judge
        # leaves it as it was)
        assert (first["submitted"], first["factual_a_better"]) == (real[0].annotations_done, 1)

    def test_the_command_takes_the_switch(self, checked, tmp_path):
        from django.core.management import call_command

        batch, (_, bob, _), _ = checked
        path = tmp_path / "j.csv"
        call_command(
            "export_results", batch.name, "--exclude-flagged", "--output", str(path),
            stderr=__import__("io").StringIO(),
        )  # fmt: skip
        rows = read_csv(path.read_text())
        assert rows and {r["flagged_excluded"] for r in rows} == {"True"}
        assert annotator_pseudonym(bob.pk) not in {r["annotator"] for r in rows}


@pytest.mark.django_db
class TestJudgmentCheckRecords:
    def test_each_row_carries_its_annotators_check_record(self, checked):
        batch, people, _ = checked
        rows = read_jsonl(export(batch, "judgments", "jsonl"))
        expected = {}
        for user in people:  # by hand from the stored check answers and skips
            answers = [
                a.judgments.get(criterion="factual").verdict == "A"
                for a in Assignment.objects.filter(
                    annotator=user, comparison__is_check=True, status="submitted"
                )
            ]
            accuracy = sum(answers) / len(answers) if answers else None
            skips = Assignment.objects.filter(
                annotator=user, comparison__is_check=True, status="skipped"
            ).count()
            flagged = accuracy is not None and accuracy < batch.check_threshold
            expected[annotator_pseudonym(user.pk)] = (flagged, accuracy, skips)
        assert expected[annotator_pseudonym(people[2].pk)] == (False, None, 1)
        for row in rows:
            record = (
                row["annotator_flagged"],
                row["annotator_check_accuracy"],
                row["annotator_checks_skipped"],
            )
            assert record == expected[row["annotator"]]
        assert {r["annotator_flagged"] for r in rows} == {True, False}

    def test_csv_leaves_an_unknown_accuracy_empty(self, checked):
        batch, (_, _, carol), _ = checked
        rows = read_csv(export(batch, "judgments", "csv"))
        mine = [r for r in rows if r["annotator"] == annotator_pseudonym(carol.pk)]
        assert mine and {
            (r["annotator_check_accuracy"], r["annotator_checks_skipped"]) for r in mine
        } == {("", "1")}


@pytest.mark.django_db
class TestExportSkips:
    def test_it_lists_skips_and_problem_reports(self, checked):
        batch, (_, _, carol), real = checked
        rows = read_jsonl(export(batch, "skips", "jsonl"))
        kinds = sorted((r["kind"], r["reason"], r["is_check"]) for r in rows)
        assert kinds == [("problem", PROBLEM, False), ("skip", "not sure", True)]
        assert {r["annotator"] for r in rows} == {annotator_pseudonym(carol.pk)}
        problem = next(r for r in rows if r["kind"] == "problem")
        assert problem["comparison_id"] == real[3].pk
        assert problem["document_id"] == real[3].document.external_id
        assert problem["annotator_flagged"] is False

    def test_csv_neutralises_formula_reasons(self, checked):
        rows = read_csv(export(checked[0], "skips", "csv"))
        problem = next(r for r in rows if r["kind"] == "problem")
        assert problem["reason"] == "'" + PROBLEM


def table_cells(tex: str) -> dict[str, list[str]]:
    """criterion label -> the cells of its row of the LaTeX table."""
    labels = {c.label for c in criteria.CRITERIA}
    rows = {}
    for line in tex.splitlines():
        cells = [c.strip() for c in line.removesuffix(r"\\").split(" & ")]
        if cells[0] in labels:
            rows[cells[0]] = cells[1:]
    return rows


def independent_table(batch, criterion: str) -> dict:
    """Shares, primary p (scipy's sign-flip permutation test of the comparison means) and a
    loop bootstrap over comparisons of share(B better), from the stored assignments."""
    per: dict[int, list[int]] = {}
    column = criteria.BY_KEY[criterion].verdict_column
    for a in Assignment.objects.filter(
        comparison__batch=batch, comparison__is_check=False, status="submitted"
    ):
        per.setdefault(a.comparison_id, []).append(getattr(a, column))
    codes = [v for vs in per.values() for v in vs]
    means = np.array([np.mean(v) for v in per.values()])
    p = stats.permutation_test((means,), np.sum, permutation_type="samples").pvalue
    groups = list(per.values())
    rng = np.random.default_rng(5)
    b_shares = []
    for _ in range(2000):
        drawn = [v for j in rng.integers(0, len(groups), len(groups)) for v in groups[j]]
        b_shares.append(np.mean(np.array(drawn) == 1))
    return {
        "b": codes.count(1) / len(codes),
        "equal": codes.count(0) / len(codes),
        "a": codes.count(-1) / len(codes),
        "net": (codes.count(1) - codes.count(-1)) / len(codes),
        "p": p,
        "b_ci": np.percentile(b_shares, [2.5, 97.5]),
    }


def p_cell(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3g}"


@pytest.mark.django_db
class TestStudyTable:
    def test_latex_has_booktabs_shares_intervals_and_both_p(self, checked):
        batch, *_ = checked
        tex = "".join(export(batch, "table", "tex"))
        for rule in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}{lrrrrrr}"):
            assert rule in tex
        cells = table_cells(tex)
        expected = {c.key: independent_table(batch, c.key) for c in criteria.CRITERIA}
        holm = multipletests([expected[c.key]["p"] for c in criteria.CRITERIA], method="holm")[1]
        for c, adjusted in zip(criteria.CRITERIA, holm, strict=True):
            row, want = cells[c.label], expected[c.key]
            b, low, high = re.match(
                r"([\d.]+) \{\\scriptsize \[([\d.]+), ([\d.]+)\]\}", row[0]
            ).groups()
            assert float(b) == pytest.approx(100 * want["b"], abs=0.05)
            assert float(low) == pytest.approx(100 * want["b_ci"][0], abs=10)
            assert float(high) == pytest.approx(100 * want["b_ci"][1], abs=10)
            assert row[1].startswith(f"{100 * want['equal']:.1f}")
            assert row[2].startswith(f"{100 * want['a']:.1f}")
            assert row[3].startswith(f"{want['net']:+.2f}")
            assert row[4] == p_cell(want["p"])
            assert row[5] == p_cell(adjusted)
        assert "% Methods: " in tex  # the paragraph rides along as a comment

    def test_latex_escapes_user_text(self, checked):
        batch, *_ = checked
        batch.dataset = "X_SUM & 100%"
        batch.save()
        tex = "".join(export(batch, "table", "tex"))
        assert r"X\_SUM \& 100\%" in tex

    def test_markdown_has_the_same_numbers_and_the_methods(self, checked):
        batch, *_ = checked
        md = "".join(export(batch, "table", "md"))
        tex_cells = table_cells("".join(export(batch, "table", "tex")))
        for c in criteria.CRITERIA:
            line = next(x for x in md.splitlines() if x.startswith(f"| {c.label} |"))
            cells = [x.strip() for x in line.strip("|").split("|")][1:]
            plain = [re.sub(r" \{\\scriptsize (.*)\}", r" \1", x) for x in tex_cells[c.label]]
            assert [re.sub(r"\\(.)", r"\1", x) for x in cells] == plain
        assert (
            "| Criterion | B better (%) | Equal (%) | B worse (%) | Net preference | p | Holm p |"
            in md
        )
        assert "Methods. " in md


@pytest.mark.django_db
class TestMethodsParagraph:
    def test_it_states_the_design_and_the_analysis_with_the_numbers(self, checked):
        batch, *_ = checked
        text = " ".join("".join(export(batch, "methods", "txt")).split())
        for part in (
            "4 comparisons", "K = 3 annotators", "3 annotators gave 33 counted judgments",
            "at most 2 of its 3 annotators saw either system on the left", "per-batch secret",
            "least-judged first", "one every 2 comparisons", "2 checks", "4 answers",
            "below 70% accuracy", "flagged (1)", "flagged annotators were not excluded",
            "two-sided sign-flip permutation test", "exactly, over all sign patterns",
            "Holm's method", "cluster bootstrap", "2,000 resamples, seed 20210517",
            f"factpair {settings.FACTPAIR_VERSION}",
        ):  # fmt: skip
            assert part in text, part
        factual = independent_table(batch, "factual")
        assert f"factual consistency {factual['net']:+.2f}" in text.lower()

    def test_the_page_offers_it_and_says_what_the_switch_did(self, client, researcher, checked):
        batch, *_ = checked
        client.force_login(researcher)
        response = client.get(reverse("batch_results", args=[batch.pk]), {"exclude_flagged": "1"})
        paragraph = response.context["methods_paragraph"]
        assert "flagged annotators were excluded (1)" in paragraph
        assert "2 annotators gave 21 counted judgments" in paragraph
        assert '<textarea class="methods" readonly' in response.content.decode()
        exported = "".join(export(batch, "methods", "txt", exclude_flagged=True))
        assert " ".join(exported.split()) == paragraph

    def test_a_sentence_can_be_added_in_one_place(self, checked, monkeypatch):
        batch, *_ = checked
        monkeypatch.setattr(
            methods, "SENTENCES", [*methods.SENTENCES, lambda f: f"Reading aid: {f.ks[0]} each."]
        )
        assert "".join(export(batch, "methods", "md")).rstrip().endswith("Reading aid: 3 each.")

    def test_markdown_has_a_heading(self, checked):
        text = "".join(export(checked[0], "methods", "md"))
        assert text.startswith("## Methods (XSUM: QUALS (B) vs MLE (A))")
