"""The study's figure, drawn by matplotlib (Agg backend, no display): SVG, PDF or PNG.

One panel per batch (or pooled group), one horizontal stacked bar per criterion split into the
shares of judgments where B is better than, equal to and worse than A (as in the QUALS paper's
human evaluation). Whiskers give the 95% bootstrap intervals (resampling comparisons) of the
two outer shares: at the right end of "B better" the interval of share(B better), at the left
end of "B worse" the interval of share(B worse), so each whisker sits on the edge it moves.

    panel = Panel("XSUM", "MLE", "QUALS", analysis.results_table(data),
                  {c: analysis.bootstrap_shares(data, c) for c in analysis.CRITERIA})
    svg_bytes = results_figure([panel], "svg")

The files are reproducible: no creation date, fixed SVG ids. Text from users (dataset and system
names) is never read as mathtext.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from io import BytesIO
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FIGURE_FORMATS = ("svg", "pdf", "png")
CONTENT_TYPES = {"svg": "image/svg+xml", "pdf": "application/pdf", "png": "image/png"}
# Okabe-Ito blue and orange with a neutral grey: distinguishable with any colour vision
# deficiency; the text on each keeps a contrast ratio of at least 4.5.
SEGMENTS = (
    ("b_better_share", "b_better", "#0072B2", "white"),
    ("equal_share", "equal", "#C8C8C8", "black"),
    ("a_better_share", "a_better", "#E69F00", "black"),
)
MIN_LABEL_SHARE = 0.08  # narrower segments get no percentage: it would not fit
DPI = 200
# Within a bar (height 0.6): the percentages above the middle, the whiskers below it.
TEXT_RISE = 0.12
WHISKER_DROP = 0.15
# Deterministic output: no dates, and SVG ids from a fixed salt.
SAVE_METADATA = {
    "svg": {"Date": None},
    "pdf": {"CreationDate": None, "ModDate": None},
    "png": {"Software": None},
}
RC = {"svg.fonttype": "none", "svg.hashsalt": "factpair", "font.size": 9}


@dataclass
class Panel:
    """One panel: a title, its systems, the results table (criterion -> CriterionResult) and
    the bootstrap intervals of its shares (criterion -> BootstrapShares); `note` is a line
    under the title (e.g. which batches were re-oriented)."""

    title: str
    system_a: str
    system_b: str
    table: Mapping[str, object]
    intervals: Mapping[str, object] = field(default_factory=dict)
    note: str = ""


def _matplotlib():
    """matplotlib with the Agg backend, imported when a figure is first drawn: not with this
    module, which the URLconf imports, so that no worker's first request of any page pays
    for it (about 0.6 s on this machine)."""
    import matplotlib

    matplotlib.use("Agg")
    return matplotlib


def results_figure(panels: Sequence[Panel], fmt: str) -> bytes:
    """The figure as the bytes of an SVG, PDF or PNG file."""
    if fmt not in FIGURE_FORMATS:
        raise ValueError(f"unknown figure format {fmt!r}: use one of {', '.join(FIGURE_FORMATS)}")
    with _matplotlib().rc_context(RC):
        figure = draw(panels)
        out = BytesIO()
        figure.savefig(out, format=fmt, dpi=DPI, metadata=SAVE_METADATA[fmt])
    return out.getvalue()


def inline_svg(panels: Sequence[Panel]) -> str:
    """The SVG without its XML prologue, to put inside an HTML page."""
    text = results_figure(panels, "svg").decode()
    return text[text.index("<svg") :]


def draw(panels: Sequence[Panel]) -> Figure:
    _matplotlib()
    from matplotlib.figure import Figure

    rows = [max(1, len(p.table)) for p in panels] or [1]
    figure = Figure(figsize=(7.5, 0.9 + sum(0.42 * r + 0.75 for r in rows)), layout="constrained")
    axes = figure.subplots(len(rows), 1, squeeze=False, height_ratios=[r + 1.6 for r in rows])
    if not panels:
        axes[0][0].set_axis_off()
        axes[0][0].text(0.5, 0.5, "No judgments yet", ha="center", va="center")
    for ax, panel in zip(axes[:, 0], panels, strict=False):
        _draw_panel(ax, panel)
    return figure


def _get(result, name: str):
    """analysis.CriterionResult, BootstrapShares, or a dict with the same keys."""
    return result.get(name) if isinstance(result, Mapping) else getattr(result, name, None)


def _draw_panel(ax, panel: Panel) -> None:
    from matplotlib.patches import Patch  # drawn under draw(), which chose the backend
    from matplotlib.ticker import PercentFormatter

    names = (f"{panel.system_b} better", "Equal", f"{panel.system_b} worse")
    criteria = list(panel.table)
    labels = []
    for y, criterion in enumerate(criteria):
        result = panel.table[criterion]
        labels.append(str(_get(result, "label") or criterion))
        _draw_bar(ax, y, result, panel.intervals.get(criterion), names)
    ax.set_yticks(range(len(criteria)), labels)
    for tick in ax.get_yticklabels():
        tick.set_parse_math(False)
    ax.set_ylim(len(criteria) - 0.4, -0.8)
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(PercentFormatter(xmax=1))
    ax.set_xlabel(f"Share of judgments: is {panel.system_b} (B) better than {panel.system_a} (A)?")
    ax.xaxis.label.set_parse_math(False)
    title = panel.title + (f"\n{panel.note}" if panel.note else "")
    ax.set_title(title, loc="left", fontsize=10, parse_math=False, pad=18)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    legend = ax.legend(
        handles=[Patch(color=fill, label=n) for (_, _, fill, _), n in
                 zip(SEGMENTS, names, strict=True)],
        loc="lower left", bbox_to_anchor=(0, 1.0), ncol=3, frameon=False, fontsize=8,
        borderaxespad=0.2,
    )  # fmt: skip
    for text in legend.get_texts():
        text.set_parse_math(False)


def _draw_bar(ax, y: int, result, intervals, names) -> None:
    judgments = _get(result, "judgments") or 0
    shares = [_get(result, key) for key, *_ in SEGMENTS]
    if not judgments or any(s is None for s in shares):
        ax.barh(y, 1, left=0, height=0.6, fill=False, edgecolor="#767676", linestyle="--")
        ax.text(0.02, y, "no judgments yet", va="center", color="#595959")
        return
    left = 0.0
    for (_, _, fill, ink), share, name in zip(SEGMENTS, shares, names, strict=True):
        ax.barh(y, share, left=left, height=0.6, color=fill, label=name)
        if share >= MIN_LABEL_SHARE:
            label = f"{100 * share:.0f}%"
            ax.text(left + share / 2, y - TEXT_RISE, label, ha="center", va="center", color=ink,
                    fontsize=8)  # fmt: skip
        left += share
    ax.text(1.01, y, f"n = {judgments}", va="center", color="#595959", fontsize=8,
            transform=ax.get_yaxis_transform())  # fmt: skip
    _draw_whiskers(ax, y, shares, intervals)


def _draw_whiskers(ax, y: int, shares, intervals) -> None:
    if intervals is None:
        return
    b_ci, a_ci = _get(intervals, "b_better"), _get(intervals, "a_better")
    b_share, _, a_share = shares
    if b_ci is not None:
        _whisker(ax, y, b_share, _get(b_ci, "low"), _get(b_ci, "high"))
    if a_ci is not None:  # the edge at 1 - share(B worse) moves the other way
        _whisker(ax, y, 1 - a_share, 1 - _get(a_ci, "high"), 1 - _get(a_ci, "low"))


def _whisker(ax, y: int, at: float, low: float, high: float) -> None:
    error = [[max(0.0, at - low)], [max(0.0, high - at)]]
    ax.errorbar(
        at, y + WHISKER_DROP, xerr=error, fmt="none", ecolor="black", elinewidth=1, capsize=3
    )


def whisker_ends(panel: Panel) -> dict[str, tuple[tuple[float, float], tuple[float, float]]]:
    """Per criterion with intervals, where the two whiskers are drawn (x from, x to): what the
    figure shows, for tests and for anyone reading the figure's numbers."""
    out = {}
    for criterion in panel.table:
        ci = panel.intervals.get(criterion)
        b_ci = _get(ci, "b_better") if ci is not None else None
        a_ci = _get(ci, "a_better") if ci is not None else None
        if b_ci is None or a_ci is None:
            continue
        out[criterion] = (
            (_get(b_ci, "low"), _get(b_ci, "high")),
            (1 - _get(a_ci, "high"), 1 - _get(a_ci, "low")),
        )
    return out
