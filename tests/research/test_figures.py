"""The results figure (matplotlib, Agg): SVG, PDF and PNG, with whiskers where the intervals
are, user text kept literal, and the same bytes every time."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
from django.urls import reverse
from matplotlib.container import ErrorbarContainer

from evaluation import criteria
from evaluation.models import Assignment
from research import analysis, figures
from research.results import batch_panel
from tests.research.test_paper_exports import checked  # noqa: F401  (a fixture)


def table(b: int, e: int, a: int, label: str = "Factual consistency") -> dict:
    n = b + e + a
    return {
        "label": label, "judgments": n, "b_better": b, "equal": e, "a_better": a,
        "b_better_share": b / n, "equal_share": e / n, "a_better_share": a / n,
    }  # fmt: skip


def panel(**overrides) -> figures.Panel:
    spec = {
        "title": "XSUM: QUALS (B) vs MLE (A)",
        "system_a": "MLE",
        "system_b": "QUALS",
        "table": {"factual": table(5, 3, 2)},
        "intervals": {
            "factual": {
                "b_better": {"low": 0.3, "high": 0.7},
                "a_better": {"low": 0.1, "high": 0.35},
            }
        },
    }
    return figures.Panel(**{**spec, **overrides})


def whisker_segments(figure) -> list[tuple[float, float]]:
    """(x from, x to) of every horizontal error bar drawn, in data coordinates."""
    out = []
    for ax in figure.axes:
        for container in ax.containers:
            if isinstance(container, ErrorbarContainer):
                for collection in container.lines[2]:
                    for segment in collection.get_segments():
                        out.append((float(segment[0][0]), float(segment[1][0])))
    return out


class TestResultsFigure:
    def test_it_writes_svg_pdf_and_png(self):
        svg = figures.results_figure([panel()], "svg")
        ET.fromstring(svg)
        assert figures.results_figure([panel()], "pdf").startswith(b"%PDF")
        assert figures.results_figure([panel()], "png").startswith(b"\x89PNG\r\n\x1a\n")
        with pytest.raises(ValueError, match="unknown figure format"):
            figures.results_figure([panel()], "gif")

    def test_whiskers_sit_on_the_edges_they_move(self):
        drawn = sorted(whisker_segments(figures.draw([panel()])))
        # share(B better) 0.3..0.7 at the end of the blue bar; share(B worse) 0.1..0.35 drawn
        # from the right: 1 - 0.35 .. 1 - 0.1.
        assert np.allclose(drawn, [(0.3, 0.7), (0.65, 0.9)])
        assert np.allclose(figures.whisker_ends(panel())["factual"], [(0.3, 0.7), (0.65, 0.9)])

    def test_it_keeps_user_text_literal_and_escaped(self):
        svg = figures.results_figure([panel(title="X$SUM$ <&>", system_b="B$1$")], "svg").decode()
        assert "X$SUM$ &lt;&amp;&gt;" in svg
        assert "B$1$ better" in svg

    def test_it_draws_one_panel_per_group_and_marks_missing_judgments(self):
        empty = {"label": "Informativeness", "judgments": 0, "b_better_share": None,
                 "equal_share": None, "a_better_share": None}  # fmt: skip
        other = panel(
            title="CNNDM: OTHER (B) vs MLE (A)",
            table={"factual": table(1, 1, 1), "informative": empty},
        )
        figure = figures.draw([panel(), other])
        assert len(figure.axes) == 2
        svg = figures.results_figure([panel(), other], "svg").decode()
        assert "no judgments yet" in svg and "CNNDM: OTHER (B) vs MLE (A)" in svg

    def test_it_is_the_same_file_every_time(self):
        for fmt in figures.FIGURE_FORMATS:
            assert figures.results_figure([panel()], fmt) == figures.results_figure([panel()], fmt)

    def test_it_says_so_when_there_is_nothing(self):
        assert "No judgments yet" in figures.results_figure([], "svg").decode()


def loop_bootstrap(batch, criterion: str, n_resamples: int = 2000) -> dict:
    """Percentile intervals of share(B better) and share(B worse), resampling comparisons
    with all their judgments, by a plain loop over the stored assignments."""
    column = criteria.BY_KEY[criterion].verdict_column
    per: dict[int, list[int]] = {}
    for a in Assignment.objects.filter(
        comparison__batch=batch, comparison__is_check=False, status="submitted"
    ):
        per.setdefault(a.comparison_id, []).append(getattr(a, column))
    groups = list(per.values())
    rng = np.random.default_rng(11)
    b, a = [], []
    for _ in range(n_resamples):
        drawn = np.array([v for j in rng.integers(0, len(groups), len(groups)) for v in groups[j]])
        b.append(np.mean(drawn == 1))
        a.append(np.mean(drawn == -1))
    return {"b": np.percentile(b, [2.5, 97.5]), "a": np.percentile(a, [2.5, 97.5])}


@pytest.mark.django_db
class TestBatchChart:
    def test_whiskers_match_an_independent_bootstrap(self, checked):  # noqa: F811
        batch, *_ = checked
        data = analysis.load_judgments([batch.pk])
        ends = figures.whisker_ends(batch_panel(batch, data))
        for criterion in analysis.CRITERIA:
            expected = loop_bootstrap(batch, criterion)
            (b_low, b_high), (a_from, a_to) = ends[criterion]
            assert (b_low, b_high) == pytest.approx(tuple(expected["b"]), abs=0.1)
            assert (1 - a_to, 1 - a_from) == pytest.approx(tuple(expected["a"]), abs=0.1)

    @pytest.mark.parametrize(
        "fmt,magic", [("svg", b"<?xml"), ("pdf", b"%PDF"), ("png", b"\x89PNG")]
    )
    def test_it_downloads_in_each_format(self, client, researcher, checked, fmt, magic):  # noqa: F811
        batch, *_ = checked
        client.force_login(researcher)
        url = reverse("batch_chart", args=[batch.pk, fmt])
        response = client.get(url, {"download": "1", "exclude_flagged": "1"})
        assert response.content.startswith(magic)
        assert response["Content-Type"] == figures.CONTENT_TYPES[fmt]
        assert response["Content-Disposition"] == (
            f'attachment; filename="study-chart-flagged-excluded.{fmt}"'
        )
        assert "Content-Disposition" not in client.get(url)  # shown on the page as an image

    def test_the_chart_says_when_flagged_annotators_are_left_out(self, client, researcher, checked):  # noqa: F811
        batch, *_ = checked
        client.force_login(researcher)
        url = reverse("batch_chart", args=[batch.pk, "svg"])
        svg = client.get(url, {"exclude_flagged": "1"}).content.decode()
        assert "Annotators flagged by attention checks excluded (1)" in svg
        assert "n = 7" in svg and "n = 11" in client.get(url).content.decode()

    def test_an_unknown_format_is_not_found(self, client, researcher, checked):  # noqa: F811
        client.force_login(researcher)
        assert client.get(reverse("batch_chart", args=[checked[0].pk, "gif"])).status_code == 404
