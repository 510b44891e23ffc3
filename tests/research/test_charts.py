"""The server-rendered SVG of the results."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from research.analysis import JudgmentRow, results_table
from research.charts import stacked_bars_svg

SVG = "{http://www.w3.org/2000/svg}"


def table(b: int, e: int, a: int) -> dict:
    rows = [JudgmentRow(i, i, "factual", "B") for i in range(b)]
    rows += [JudgmentRow(100 + i, i, "factual", "equal") for i in range(e)]
    rows += [JudgmentRow(200 + i, i, "factual", "A") for i in range(a)]
    return results_table(rows)


def texts(svg: str) -> list[str]:
    return [el.text for el in ET.fromstring(svg).iter(f"{SVG}text")]


class TestStackedBarsSvg:
    def test_it_is_valid_standalone_svg(self):
        svg = stacked_bars_svg({"XSUM": table(5, 3, 2)}, system_a="MLE", system_b="QUALS")
        root = ET.fromstring(svg)
        assert root.tag == f"{SVG}svg"
        assert root.find(f"{SVG}title").text == "Human evaluation"
        assert "<script" not in svg
        assert "http" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")

    def test_it_writes_percentages_inside_wide_segments_only(self):
        svg = stacked_bars_svg({"XSUM": table(50, 48, 2)})
        assert {"50%", "48%"} <= set(texts(svg))
        assert "2%" not in texts(svg)

    def test_it_has_a_legend_named_after_system_b(self):
        svg = stacked_bars_svg({"XSUM": table(1, 1, 1)}, system_a="MLE", system_b="QUALS")
        assert {"QUALS better", "Equal", "QUALS worse", "QUALS (B) vs MLE (A)"} <= set(texts(svg))

    def test_it_escapes_user_supplied_names(self):
        name = "<script>alert(\"x\")</script> & 'CNN'"
        svg = stacked_bars_svg({name: table(1, 1, 1)}, system_b="B&B <new>")
        assert "<script>" not in svg
        assert name in texts(svg)
        assert "B&B <new> better" in texts(svg)

    def test_it_draws_one_bar_per_dataset_and_criterion(self):
        svg = stacked_bars_svg({"XSUM": table(1, 1, 1), "CNNDM": table(2, 0, 1)})
        labels = texts(svg)
        assert labels.count("Factual consistency") == 2
        assert labels.count("Informativeness") == 2
        assert labels.index("XSUM") < labels.index("CNNDM")

    def test_it_marks_a_criterion_without_judgments(self):
        svg = stacked_bars_svg({"XSUM": table(1, 1, 1)})
        assert texts(svg).count("no judgments yet") == 2  # informative and grammatical

    def test_it_sizes_segments_by_share(self):
        svg = stacked_bars_svg({"XSUM": {"factual": table(3, 1, 0)["factual"]}})
        widths = [
            float(r.get("width"))
            for r in ET.fromstring(svg).iter(f"{SVG}rect")
            if r.find(f"{SVG}title") is not None
        ]
        assert widths == [345.0, 115.0, 0.0]

    def test_it_accepts_plain_dicts(self):
        row = {"b_better_share": 0.5, "equal_share": 0.25, "a_better_share": 0.25, "judgments": 4}
        svg = stacked_bars_svg({"XSUM": {"factual": row}})
        assert "Factual consistency" in texts(svg)
        assert "50%" in texts(svg)
