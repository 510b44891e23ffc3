"""The results pages and downloads, as a researcher uses them."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace

import numpy as np
import pytest
from django.urls import reverse
from scipy import stats
from statsmodels.stats.multitest import multipletests

from evaluation import assignments as engine
from evaluation import checks, criteria
from evaluation.models import Assignment, AuditEvent, Batch
from evaluation.services import import_batch
from tests.conftest import approved_pool_checks, doc_row, jsonl, make_user, settings_for

B_WINS = {"factual": "B", "informative": "equal", "grammatical": "A"}


def shown_for(item, verdicts: dict[str, str]) -> dict[str, str]:
    """What the annotator clicks, given the system-terms verdict and the screen order."""
    screen = {}
    for criterion, verdict in verdicts.items():
        if verdict == "equal":
            screen[criterion] = "equal"
        else:
            screen[criterion] = "left" if verdict == item.left_system else "right"
    return screen


@pytest.fixture
def judged(batch):
    """Three annotators judge all 4 comparisons: B better on factual, equal, A on grammar."""
    batch.status = Batch.Status.OPEN
    batch.save()
    for i in range(3):
        user = make_user(f"j{i}", "annotator")
        while (item := engine.lease_next(user, batch)) is not None:
            engine.submit_judgments(user, item.pk, shown_for(item, B_WINS), active_seconds=10.0)
    return batch


@pytest.mark.django_db
class TestBatchResults:
    def test_it_shows_the_table_in_system_terms(self, client, researcher, judged):
        client.force_login(researcher)
        response = client.get(reverse("batch_results", args=[judged.pk]))
        assert response.status_code == 200
        rows = {r["r"].criterion: r for r in response.context["rows"]}
        assert (rows["factual"].get("r").b_better, rows["factual"]["r"].judgments) == (12, 12)
        assert rows["informative"]["r"].equal_share == 1.0
        assert rows["grammatical"]["r"].a_better == 12
        assert rows["factual"]["sign"].p_value == pytest.approx(2 * 0.5**12)
        content = response.content.decode()
        assert "100.0%" in content
        assert f'src="{reverse("batch_chart", args=[judged.pk, "svg"])}"' in content
        assert "undefined: " in content  # alpha has no variation to measure

    def test_it_can_exclude_flagged_annotators_and_says_how_many(
        self, client, researcher, batch, monkeypatch
    ):
        batch.status = Batch.Status.OPEN
        batch.check_every = 2
        batch.checks_before_flag = 2
        batch.save()
        approved_pool_checks(batch, 2)
        monkeypatch.setattr(checks, "check_due", lambda batch, user_id, n: n % 2 == 1)
        sloppy = make_user("sloppy", "annotator")
        real = 0
        while (item := engine.lease_next(sloppy, batch)) is not None:
            # Always says A is more factual: right on real items here, wrong on the checks'
            # copies (the check's A is the unchanged summary, so give B instead).
            verdicts = {**B_WINS, "factual": "B" if item.comparison.is_check else "A"}
            engine.submit_judgments(sloppy, item.pk, shown_for(item, verdicts))
            real += not item.comparison.is_check
        assert real == 4
        client.force_login(researcher)
        url = reverse("batch_results", args=[batch.pk])
        plain = client.get(url)
        assert plain.context["flagged"] == 1
        assert b"Exclude the 1 annotator flagged" in plain.content
        factual = {r["r"].criterion: r["r"] for r in plain.context["rows"]}["factual"]
        assert factual.judgments == 4  # checks never count
        excluded = client.get(url + "?exclude_flagged=1")
        assert excluded.context["excluded_judgments"] == 4 * 3
        assert b"12 judgments excluded" in excluded.content
        rows = {r["r"].criterion: r["r"] for r in excluded.context["rows"]}
        assert rows["factual"].judgments == 0

    def test_quals_says_not_configured_instead_of_numbers(
        self, client, researcher, judged, settings
    ):
        settings.QUALS_MODEL = ""
        client.force_login(researcher)
        response = client.get(reverse("batch_results", args=[judged.pk]))
        metrics = {label: (m, why) for label, m, why, _ in response.context["metrics"]}
        assert metrics["QUALS"] == (None, "QUALS is not configured: set QUALS_MODEL to a local "
                                    "checkpoint directory")  # fmt: skip
        assert metrics["ROUGE-L F"][0] is not None and metrics["ROUGE-L F"][1] == ""
        assert metrics["Fragment coverage"][0] is not None
        assert b"Not configured: QUALS is not configured: set QUALS_MODEL" in response.content
        export = client.get(reverse("batch_export", args=[judged.pk, "scores", "csv"]))
        lines = b"".join(export.streaming_content).decode().splitlines()
        quals_rows = [line for line in lines if ",quals," in line]
        assert quals_rows and all(",not_configured," in line for line in quals_rows)

    def test_the_chart_downloads_as_valid_svg(self, client, researcher, judged):
        client.force_login(researcher)
        response = client.get(reverse("batch_chart", args=[judged.pk, "svg"]) + "?download=1")
        assert response["Content-Type"] == "image/svg+xml"
        assert response["Content-Disposition"] == 'attachment; filename="study-chart.svg"'
        ET.fromstring(response.content)

    def test_exports_stream_and_are_audited(self, client, researcher, judged):
        client.force_login(researcher)
        response = client.get(reverse("batch_export", args=[judged.pk, "judgments", "csv"]))
        assert response.streaming
        lines = b"".join(response.streaming_content).decode().splitlines()
        assert len(lines) == 1 + 4 * 3 * 3
        assert AuditEvent.objects.get(action="export").target == "judgments.csv"
        assert (
            client.get(reverse("batch_export", args=[judged.pk, "secrets", "csv"])).status_code
            == 404
        )

    def test_the_overview_groups_by_dataset(self, client, researcher, judged):
        client.force_login(researcher)
        response = client.get(reverse("results_overview"))
        assert response.status_code == 200
        assert [d["name"] for d in response.context["datasets"]] == ["XSUM"]
        assert b"XSUM" in response.content


def varied_verdicts(c: int, i: int) -> dict[str, str]:
    """Comparison c, annotator i: mostly B on factual, mixed elsewhere."""
    return {
        "factual": "A" if (c + i) % 4 == 0 else "B",
        "informative": ["A", "equal", "B", "B"][(c * i) % 4],
        "grammatical": ["A", "A", "equal", "B"][(c + 2 * i) % 4],
    }


def judge_varied(batch, prefix: str):
    """Three annotators judge all 4 comparisons with varied verdicts, sides as the engine
    draws them."""
    batch.status = Batch.Status.OPEN
    batch.save()
    ids = batch.comparisons.order_by("id").values_list("id", flat=True)
    order = {cid: c for c, cid in enumerate(ids)}
    for i in range(3):
        user = make_user(f"{prefix}{i}", "annotator")
        while (item := engine.lease_next(user, batch)) is not None:
            verdicts = varied_verdicts(order[item.comparison_id], i)
            engine.submit_judgments(user, item.pk, shown_for(item, verdicts))
    return batch


@pytest.fixture
def varied(batch):
    return judge_varied(batch, "v")


@pytest.fixture
def varied_other(db):
    spec = replace(settings_for("other"), dataset="CNNDM")
    return judge_varied(
        import_batch(jsonl([doc_row(i) for i in range(1, 5)]), "o.jsonl", spec), "o"
    )


def stored_judgments(batch) -> list[tuple]:
    """(comparison, annotator, criterion, code, left system) straight from the assignments."""
    rows = []
    for a in Assignment.objects.filter(comparison__batch=batch, status="submitted"):
        for c in criteria.CRITERIA:
            rows.append(
                (
                    a.comparison_id,
                    a.annotator_id,
                    c.key,
                    getattr(a, c.verdict_column),
                    a.left_system,
                )
            )
    return rows


def independent(rows: list[tuple], criterion: str, *, n_resamples: int = 2000) -> dict:
    """The comparison-level figures by other means: scipy's permutation test (sign flips of
    one sample), loops over comparisons, a naive loop bootstrap, scipy's binomtest."""
    mine = [r for r in rows if r[2] == criterion]
    by_comparison: dict[int, list[int]] = {}
    for cid, _, _, code, _ in mine:
        by_comparison.setdefault(cid, []).append(code)
    means = np.array([np.mean(v) for v in by_comparison.values()])
    flips = stats.permutation_test(
        (means,), np.sum, permutation_type="samples", n_resamples=20_000,
        random_state=np.random.default_rng(1),
    )  # fmt: skip
    codes = [r[3] for r in mine]
    a, b = codes.count(-1), codes.count(1)
    groups = list(by_comparison.values())
    rng = np.random.default_rng(2)
    nets, wins = [], []
    for _ in range(n_resamples):
        drawn = [v for j in rng.integers(0, len(groups), len(groups)) for v in groups[j]]
        nets.append(np.mean(drawn))
        decided = [v for v in drawn if v != 0]
        if decided:
            wins.append(np.mean(np.array(decided) == 1))
    left = [(code == -1) == (side == "A") for _, _, _, code, side in mine if code != 0]
    return {
        "p": flips.pvalue,
        "net": (b - a) / len(codes),
        "net_ci": np.percentile(nets, [2.5, 97.5]),
        "win": b / (a + b) if a + b else None,
        "win_ci": np.percentile(wins, [2.5, 97.5]) if wins else None,
        "left_share": np.mean(left) if left else None,
        "left_p": stats.binomtest(sum(left), len(left), 0.5).pvalue if left else None,
    }


def holm_of(p_values: list[float]) -> list[float]:
    return multipletests(p_values, method="holm")[1].tolist()


@pytest.mark.django_db
class TestComparisonLevelResults:
    def test_it_matches_independent_computations(self, client, researcher, varied):
        client.force_login(researcher)
        response = client.get(reverse("batch_results", args=[varied.pk]))
        rows = stored_judgments(varied)
        levels = [row["level"] for row in response.context["rows"]]
        for level in levels:
            expected = independent(rows, level.criterion)
            assert level.test.method == "exact" and level.test.comparisons == 4
            assert level.test.p_value == pytest.approx(expected["p"])
            assert level.net.estimate == pytest.approx(expected["net"])
            assert level.net.ci.low == pytest.approx(expected["net_ci"][0], abs=0.1)
            assert level.net.ci.high == pytest.approx(expected["net_ci"][1], abs=0.1)
            assert level.win.estimate == pytest.approx(expected["win"])
            assert level.win.ci.low == pytest.approx(expected["win_ci"][0], abs=0.1)
            assert level.win.ci.high == pytest.approx(expected["win_ci"][1], abs=0.1)
            overall = level.position.overall
            assert overall.left_share == pytest.approx(expected["left_share"])
            assert overall.p_value == pytest.approx(expected["left_p"])
        assert [lv.holm_p for lv in levels] == pytest.approx(
            holm_of([lv.test.p_value for lv in levels])
        )

    def test_it_tests_each_annotators_left_share(self, client, researcher, varied):
        client.force_login(researcher)
        response = client.get(reverse("batch_results", args=[varied.pk]))
        rows = stored_judgments(varied)
        factual = response.context["rows"][0]["level"].position
        for bias in factual.annotators:
            left = [
                (code == -1) == (side == "A")
                for _, who, c, code, side in rows
                if c == "factual" and who == bias.annotator and code != 0
            ]
            assert (bias.non_tied, bias.left) == (len(left), sum(left))
            assert bias.p_value == pytest.approx(stats.binomtest(sum(left), len(left)).pvalue)

    def test_it_labels_the_primary_and_secondary_tests(self, client, researcher, varied):
        client.force_login(researcher)
        content = client.get(reverse("batch_results", args=[varied.pk])).content.decode()
        assert "Primary test: the comparison as the unit" in content
        assert "exact (all sign patterns)" in content
        assert "Holm-adjusted p" in content
        assert "ignores that judgments of one comparison are correlated" in content
        assert "comparison bootstrap only (only 3 annotators" in content
        assert "Design: not crossed: only 3 annotators" in content
        assert "Position bias" in content

    def test_the_overview_adjusts_across_criteria_and_datasets(
        self, client, researcher, varied, varied_other
    ):
        client.force_login(researcher)
        response = client.get(reverse("results_overview"))
        levels = [row["level"] for d in response.context["datasets"] for row in d["rows"]]
        assert len(levels) == 6
        defined = [lv for lv in levels if lv.test.p_value is not None]
        assert [lv.holm_p for lv in defined] == pytest.approx(
            holm_of([lv.test.p_value for lv in defined])
        )
        assert b"all criteria \xc3\x97 datasets" in response.content


@pytest.fixture
def crossed(db):
    """12 comparisons, 12 annotators, 3 per comparison (i, i + 1, i + 2): a crossed design."""
    from tests.research.test_analysis import judge

    batch = import_batch(jsonl([doc_row(i) for i in range(1, 13)]), "x.jsonl", settings_for())
    users = [make_user(f"x{i}", "annotator") for i in range(12)]
    rng = np.random.default_rng(2)
    for c, comparison in enumerate(batch.comparisons.order_by("id")):
        for j in range(3):
            verdicts = {k: str(rng.choice(["A", "equal", "B"], p=[0.3, 0.2, 0.5])) for k in B_WINS}
            judge(comparison, users[(c + j) % 12], verdicts)
    return batch


@pytest.mark.django_db
class TestTwoWayIntervals:
    def test_the_win_rate_shows_both_intervals_each_named(self, client, researcher, crossed):
        client.force_login(researcher)
        response = client.get(reverse("batch_results", args=[crossed.pk]))
        content = response.content.decode()
        for row in response.context["rows"]:
            net, win = row["level"].net, row["level"].win
            assert net.two_way_ci is not None and win.two_way_ci is not None
            assert "pigeonhole" in win.two_way_method
            low, high = (f"{100 * x:.1f}%" for x in (win.two_way_ci.low, win.two_way_ci.high))
            assert f"two-way, annotators too: [{low}, {high}]" in content
            low, high = (f"{100 * x:.1f}%" for x in (win.ci.low, win.ci.high))
            assert f"comparisons resampled: [{low}, {high}]" in content
        assert content.count("two-way, annotators too: [") == 2 * 3  # net and win, 3 criteria
        assert "for the net preference and the win rate alike" in content
