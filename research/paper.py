"""The study table for a paper: LaTeX (booktabs) or Markdown, with the methods paragraph.

Per criterion: the shares of judgments where B is better than, equal to and worse than A with
their 95% bootstrap intervals (resampling comparisons), the net preference with its interval,
the primary test's p (comparison-level sign-flip test) and its Holm-adjusted p. One section per
batch, or per pooled group on `/results/`. The formatting functions (`latex_table`,
`markdown_table`) take plain `Section`s and know nothing of the database.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from evaluation.criteria import BY_KEY
from evaluation.models import Batch

from . import analysis, methods


@dataclass
class TableRow:
    label: str
    judgments: int
    comparisons: int
    # (share, interval or None) of B better, equal, B worse
    shares: list[tuple[float | None, analysis.Interval | None]]
    net: float | None
    net_ci: object | None  # statistics.Interval
    p: float | None
    holm_p: float | None


@dataclass
class Section:
    title: str  # e.g. "XSUM: QUALS (B) vs MLE (A)"
    rows: list[TableRow]
    note: str = ""  # e.g. which batches were re-oriented


def table_rows(
    data: analysis.Judgments, levels: Sequence[analysis.ComparisonLevel]
) -> list[TableRow]:
    """Per criterion (CRITERIA order); `levels` carry the Holm-adjusted p of their family."""
    rows = []
    for level, (criterion, r) in zip(levels, analysis.results_table(data).items(), strict=True):
        ci = analysis.bootstrap_shares(data, criterion)
        rows.append(
            TableRow(
                label=BY_KEY[criterion].label,
                judgments=r.judgments,
                comparisons=r.comparisons,
                shares=[
                    (r.b_better_share, ci.b_better),
                    (r.equal_share, ci.equal),
                    (r.a_better_share, ci.a_better),
                ],
                net=level.net.estimate,
                net_ci=level.net.ci,
                p=level.test.p_value,
                holm_p=level.holm_p,
            )
        )
    return rows


def section_title(dataset: str, system_a: str, system_b: str) -> str:
    return f"{dataset}: {system_b} (B) vs {system_a} (A)"


# ---------------------------------------------------------------------------------------------
# Cells


def _percent(share: float | None) -> str:
    return "–" if share is None else f"{100 * share:.1f}"


def _share_cell(share, interval) -> tuple[str, str]:
    """(the share in percent, its interval "[low, high]" or "")."""
    if share is None:
        return "–", ""
    bounds = f"[{_percent(interval.low)}, {_percent(interval.high)}]" if interval else ""
    return _percent(share), bounds


def _net_cell(net, ci) -> tuple[str, str]:
    if net is None:
        return "–", ""
    return f"{net:+.2f}", f"[{ci.low:+.2f}, {ci.high:+.2f}]" if ci else ""


def _cells(row: TableRow) -> list[tuple[str, str]]:
    return [
        *(_share_cell(share, interval) for share, interval in row.shares),
        _net_cell(row.net, row.net_ci),
        (methods.p_text(row.p), ""),
        (methods.p_text(row.holm_p), ""),
    ]


HEADER = ["Criterion", "B better (%)", "Equal (%)", "B worse (%)", "Net preference", "p", "Holm p"]


def caption_text(sections: Sequence[Section], *, excluded: int) -> str:
    who = f" Annotators flagged by attention checks excluded ({excluded})." if excluded else ""
    return (
        "Share of judgments where B is better than, equal to and worse than A, with 95% "
        "cluster-bootstrap intervals (resampling comparisons); net preference = share(B "
        "better) - share(A better); p: two-sided sign-flip test of the comparisons' mean "
        "verdicts, Holm-adjusted across the rows of the table." + who
    )


# ---------------------------------------------------------------------------------------------
# LaTeX

LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "–": "--",
}  # fmt: skip


def latex_escape(text: str) -> str:
    return re.sub("|".join(re.escape(k) for k in LATEX_SPECIAL), _latex_char, str(text))


def _latex_char(match: re.Match) -> str:
    return LATEX_SPECIAL[match.group()]


def latex_table(sections: Sequence[Section], *, caption: str, comment: str = "") -> str:
    """A booktabs table (needs \\usepackage{booktabs}); `comment` goes above it as % lines."""
    lines = (
        ["% " + line for line in textwrap.wrap(comment, 95, break_on_hyphens=False)]
        if comment
        else []
    )
    lines += [
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        r"\begin{tabular}{lrrrrrr}",
        r"\toprule",
        "Criterion & B better (\\%) & Equal (\\%) & B worse (\\%) & Net preference & $p$ & "
        r"$p_\mathrm{Holm}$ \\",
    ]
    for section in sections:
        lines.append(r"\midrule")
        title = latex_escape(section.title)
        lines.append(rf"\multicolumn{{7}}{{l}}{{\textit{{{title}}}}} \\")
        if section.note:
            note = latex_escape(section.note)
            lines.append(rf"\multicolumn{{7}}{{l}}{{\footnotesize {note}}} \\")
        for row in section.rows:
            cells = [latex_escape(row.label)]
            for value, bounds in _cells(row):
                small = rf" {{\scriptsize {latex_escape(bounds)}}}" if bounds else ""
                cells.append(latex_escape(value) + small)
            lines.append(" & ".join(cells) + r" \\")
    lines += [
        r"\bottomrule",
        r"\end{tabular}",
        rf"\caption{{{latex_escape(caption)}}}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Markdown


def markdown_escape(text: str) -> str:
    return re.sub(r"([\\|*_`<>])", r"\\\1", str(text))


def markdown_table(sections: Sequence[Section], *, caption: str, after: str = "") -> str:
    """One pipe table per section, the caption, then `after` (e.g. the methods paragraph)."""
    out = []
    for section in sections:
        out.append(f"**{markdown_escape(section.title)}**")
        if section.note:
            out.append(f"\n_{markdown_escape(section.note)}_")
        out.append("")
        out.append("| " + " | ".join(HEADER) + " |")
        out.append("|:--" + "|--:" * (len(HEADER) - 1) + "|")
        for row in section.rows:
            cells = [markdown_escape(row.label)]
            cells += [markdown_escape(f"{v} {b}".strip()) for v, b in _cells(row)]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    out.append(markdown_escape(caption))
    if after:
        out += ["", markdown_escape(after)]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# One batch


def batch_section(batch: Batch, data: analysis.Judgments, levels) -> Section:
    return Section(section_title(batch.dataset, batch.system_a, batch.system_b),
                   table_rows(data, levels))  # fmt: skip


def batch_table_text(
    batch: Batch, data: analysis.Judgments, fmt: str, *, excluded: Sequence[int] = ()
) -> str:
    """The batch's study table as "tex" or "md", with its methods paragraph."""
    levels = analysis.comparison_levels(data)
    sections = [batch_section(batch, data, levels)]
    caption = caption_text(sections, excluded=len(excluded))
    paragraph = methods.methods_paragraph(
        methods.batch_facts(batch, data, levels, excluded=excluded)
    )
    if fmt == "tex":
        return latex_table(sections, caption=caption, comment="Methods: " + paragraph)
    return markdown_table(sections, caption=caption, after="Methods. " + paragraph)


def batch_methods_text(
    batch: Batch, data: analysis.Judgments, fmt: str, *, excluded: Sequence[int] = ()
) -> str:
    """The methods paragraph as plain text ("txt") or Markdown ("md")."""
    paragraph = methods.methods_paragraph(methods.batch_facts(batch, data, excluded=excluded))
    if fmt == "md":
        title = markdown_escape(section_title(batch.dataset, batch.system_a, batch.system_b))
        return f"## Methods ({title})\n\n{markdown_escape(paragraph)}\n"
    return wrapped(paragraph)


def wrapped(text: str) -> str:
    """Lines of at most 100 characters, broken at spaces only ("per-batch" stays whole)."""
    return textwrap.fill(text, 100, break_on_hyphens=False) + "\n"
