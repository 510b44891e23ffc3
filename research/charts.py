"""Server-rendered SVG charts: no JavaScript, no CDN, just text a template can inline.

`stacked_bars_svg` draws the study's figure (as in the QUALS paper's human evaluation): one
horizontal bar per dataset and criterion, split into "B better", "equal" and "B worse" shares.
Inline it with `{{ svg|safe }}` (every label from user input is escaped here) or serve it as
`image/svg+xml`.
"""

from __future__ import annotations

from collections.abc import Mapping
from xml.sax.saxutils import escape, quoteattr

from evaluation.criteria import BY_KEY

# Okabe-Ito blue and orange, with a neutral grey: distinguishable with any colour vision
# deficiency, and the text colour on each keeps a contrast ratio of at least 4.5.
SEGMENTS = (
    ("b_better_share", "b_better", "#0072B2", "#FFFFFF"),
    ("equal_share", "equal", "#C8C8C8", "#000000"),
    ("a_better_share", "a_better", "#E69F00", "#000000"),
)
WIDTH = 760
LABEL_X = 16
BAR_X = 200
BAR_W = 460
ROW_H = 28
BAR_H = 20
MIN_TEXT_W = 36  # narrower segments get no percentage: it would not fit
FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" font-size="13"'


def _get(result, name: str):
    """Works for analysis.CriterionResult and for plain dicts with the same keys."""
    return result.get(name) if isinstance(result, Mapping) else getattr(result, name, None)


def _label(criterion: str, result) -> str:
    label = _get(result, "label")
    if label:
        return str(label)
    return BY_KEY[criterion].label if criterion in BY_KEY else criterion


def _short(text: str, limit: int = 70) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _percent(share: float) -> str:
    return f"{100 * share:.0f}%"


def stacked_bars_svg(
    table_by_dataset: Mapping[str, Mapping[str, object]],
    *,
    system_a: str = "A",
    system_b: str = "B",
    title: str = "Human evaluation",
) -> str:
    """Standalone SVG text of the results as stacked horizontal bars.

    table_by_dataset: dataset name -> the output of analysis.results_table (criterion ->
    CriterionResult) or dicts with `b_better_share`, `equal_share`, `a_better_share`,
    `judgments`, optional `b_better` / `equal` / `a_better` counts and `label`. Bars are drawn
    in mapping order; a criterion without judgments gets an empty, labelled bar.
    """
    legend = (f"{system_b} better", "Equal", f"{system_b} worse")
    body, y = [], 78
    for dataset, table in table_by_dataset.items():
        body.append(_text(LABEL_X, y + 14, _short(str(dataset)), 'font-weight="bold"'))
        y += ROW_H
        for criterion, result in table.items():
            body.extend(_bar_row(str(dataset), criterion, result, legend, y))
            y += ROW_H
        y += 8
    height = y + 8
    desc = f"Share of judgments where {system_b} is better than, equal to or worse than {system_a}"
    head = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-labelledby="chart-title chart-desc" '
        f"{FONT}>",
        f'<title id="chart-title">{escape(title)}</title>',
        f'<desc id="chart-desc">{escape(desc)}, per dataset and criterion.</desc>',
        f'<rect width="{WIDTH}" height="{height}" fill="#FFFFFF"/>',
        _text(LABEL_X, 24, _short(title, 90), 'font-size="16" font-weight="bold"'),
        _text(LABEL_X, 44, _short(f"{system_b} (B) vs {system_a} (A)", 90), 'fill="#333333"'),
        *_legend(legend, 56),
    ]
    return "\n".join([*head, *body, "</svg>"]) + "\n"


def _text(x: float, y: float, text: str, extra: str = "") -> str:
    return f'<text x="{x}" y="{y}" {extra}>{escape(text)}</text>'


def _legend(labels: tuple[str, str, str], y: int) -> list[str]:
    parts, x = [], BAR_X
    for (_, _, fill, _), label in zip(SEGMENTS, labels, strict=True):
        parts.append(f'<rect x="{x}" y="{y}" width="14" height="14" fill="{fill}"/>')
        parts.append(_text(x + 20, y + 12, _short(label, 30)))
        x += 30 + 8 * min(len(label), 30)
    return parts


def _bar_row(dataset: str, criterion: str, result, legend, y: int) -> list[str]:
    label = _label(criterion, result)
    parts = [_text(LABEL_X + 12, y + 15, label)]
    judgments = _get(result, "judgments") or 0
    shares = [_get(result, key) for key, *_ in SEGMENTS]
    if not judgments or any(s is None for s in shares):
        parts.append(
            f'<rect x="{BAR_X}" y="{y}" width="{BAR_W}" height="{BAR_H}" fill="none" '
            'stroke="#767676" stroke-dasharray="4 3"/>'
        )
        parts.append(_text(BAR_X + 8, y + 15, "no judgments yet", 'fill="#595959"'))
        return parts
    x = float(BAR_X)
    for (_, count_key, fill, ink), share, name in zip(SEGMENTS, shares, legend, strict=True):
        width = BAR_W * share
        count = _get(result, count_key)
        tip = f"{dataset}, {label}: {name} {100 * share:.1f}%"
        tip += f" ({count} of {judgments} judgments)" if count is not None else ""
        parts.append(
            f'<rect x="{x:.2f}" y="{y}" width="{width:.2f}" height="{BAR_H}" fill="{fill}">'
            f"<title>{escape(tip)}</title></rect>"
        )
        if width >= MIN_TEXT_W:
            centre = f'text-anchor="middle" fill={quoteattr(ink)}'
            parts.append(_text(round(x + width / 2, 2), y + 15, _percent(share), centre))
        x += width
    parts.append(_text(BAR_X + BAR_W + 10, y + 15, f"n = {judgments}", 'fill="#595959"'))
    return parts
