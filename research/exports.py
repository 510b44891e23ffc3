"""Streaming exports for researchers: CSV or JSON Lines, one line at a time, constant memory.

Every exporter is a generator of text lines (each ending in a newline), so a view can hand it to
`StreamingHttpResponse` and a command can write it to a file::

    lines = export(batch, "judgments", "csv")      # or export_judgments(batch, "csv")
    response = StreamingHttpResponse(lines, content_type=CONTENT_TYPES["csv"])
    name = export_filename(batch, "judgments", "csv")
    response["Content-Disposition"] = f'attachment; filename="{name}"'

Rows come from `values_list(...).iterator(chunk_size=2000)` (a server-side cursor on PostgreSQL),
never a list of all rows. Missing values are empty in CSV and null in JSON Lines. Exports are
unblinded (system names are in them): they are for researchers. Annotators appear as stable
pseudonyms, never usernames.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator

import numpy as np
from django.conf import settings
from django.db.models import Count, FilteredRelation, Q

from evaluation.criteria import VERDICT_NAMES
from evaluation.models import Assignment, Batch, Comparison, Judgment, Summary
from scoring.metrics import FAMILY_OF_METRIC, metric_names

from . import analysis

FORMATS = ("csv", "jsonl")
WHATS = ("judgments", "comparisons", "scores", "table", "position_bias")
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}
CHUNK = 2000


class _Line:
    """csv.writer's file: `write` hands the formatted line back instead of storing it."""

    def write(self, value: str) -> str:
        return value


# A spreadsheet reads a cell starting with one of these as a formula (OWASP, CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(values: Iterable) -> list:
    """The cells with a quote before any text a spreadsheet would run as a formula.

    Only text: a negative number stays a number. JSON Lines is never changed.
    """
    return ["'" + v if isinstance(v, str) and v.startswith(FORMULA_STARTS) else v for v in values]


def _lines(fmt: str, columns: list[str], rows: Iterable[tuple]) -> Iterator[str]:
    """CSV with a header, or one JSON object per line with the columns as keys."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if fmt == "csv":
        writer = csv.writer(_Line(), lineterminator="\n")
        yield writer.writerow(csv_safe(columns))
        for row in rows:
            yield writer.writerow(csv_safe(row))
    else:
        dumps = json.JSONEncoder(ensure_ascii=False).encode
        for row in rows:
            yield dumps(dict(zip(columns, row, strict=True))) + "\n"


def annotator_pseudonym(user_id: int) -> str:
    """Stable across exports and batches, not reversible without the secret key."""
    digest = hashlib.sha256(f"{settings.SECRET_KEY}{user_id}".encode()).hexdigest()
    return "ann-" + digest[:10]


def export_filename(batch: Batch, what: str, fmt: str) -> str:
    """A safe download name, e.g. "xsum-pilot-judgments.csv"."""
    slug = re.sub(r"[^a-z0-9]+", "-", batch.name.lower()).strip("-") or f"batch-{batch.pk}"
    return f"{slug}-{what}.{fmt}"


def export(batch: Batch, what: str, fmt: str) -> Iterator[str]:
    """Dispatch by name: what in WHATS, fmt in FORMATS."""
    exporters: dict[str, Callable[[Batch, str], Iterator[str]]] = {
        "judgments": export_judgments,
        "comparisons": export_comparisons,
        "scores": export_scores,
        "table": export_table,
        "position_bias": export_position_bias,
    }
    if what not in exporters:
        raise ValueError(f"unknown export {what!r}: use one of {', '.join(WHATS)}")
    return exporters[what](batch, fmt)


# ---------------------------------------------------------------------------------------------
# Judgments, long form

JUDGMENT_COLUMNS = [
    "batch", "dataset", "comparison_id", "is_check", "document_id", "annotator", "system_a",
    "system_b", "left_system", "criterion", "verdict", "better_system", "shown", "served_at",
    "submitted_at", "active_seconds",
]  # fmt: skip


def export_judgments(batch: Batch, fmt: str = "csv") -> Iterator[str]:
    """One row per submitted assignment and criterion, in the order they were stored.

    `verdict` is in system terms (A / B / equal), `better_system` names the better system (or
    "equal"), `shown` is what the annotator clicked (left / right / equal), `left_system`
    which system was on the left. Times are ISO 8601; `active_seconds` is empty when unknown.
    Attention checks are included, marked by `is_check` (they never count in the results).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    query = (
        Judgment.objects.filter(
            assignment__comparison__batch=batch, assignment__status=Assignment.Status.SUBMITTED
        )
        .order_by("id")
        .values_list(
            "assignment_id",
            "assignment__comparison_id",
            "assignment__comparison__is_check",
            "assignment__comparison__document__external_id",
            "assignment__annotator_id",
            "assignment__left_system",
            "criterion",
            "verdict",
            "shown",
            "assignment__served_at",
            "assignment__submitted_at",
            "assignment__active_seconds",
        )
    )
    parts = _judgment_parts(batch, query.iterator(chunk_size=CHUNK))
    return _judgment_csv(parts) if fmt == "csv" else _judgment_jsonl(parts)


def _judgment_parts(
    batch: Batch, rows: Iterable[tuple]
) -> Iterator[tuple[tuple, tuple, tuple, bool]]:
    """The judgments export's rows, defined once for both formats: per judgment, the values its
    assignment shares before it (batch .. left_system), its own (criterion .. shown), those
    shared after it (the times), and whether it starts a new assignment (its 3 rows share the
    rest, so formats can format that once)."""
    better = {"A": batch.system_a, "B": batch.system_b, "equal": "equal"}
    pseudonym = _pseudonyms()
    last_assignment, head, tail = None, (), ()
    for assignment_id, cid, check, doc, user_id, left, criterion, verdict, shown, *timing in rows:
        new = assignment_id != last_assignment
        if new:
            last_assignment, tail = assignment_id, _times(*timing)
            head = (
                batch.name, batch.dataset, cid, check, doc, pseudonym(user_id), batch.system_a,
                batch.system_b, left,
            )  # fmt: skip
        yield head, (criterion, verdict, better[verdict], shown), tail, new


def _judgment_jsonl(parts: Iterable[tuple[tuple, tuple, tuple, bool]]) -> Iterator[str]:
    rows = (head + own + tail for head, own, tail, _ in parts)
    return _lines("jsonl", JUDGMENT_COLUMNS, rows)


def _judgment_csv(parts: Iterable[tuple[tuple, tuple, tuple, bool]]) -> Iterator[str]:
    """The rows as csv.writer writes them, faster: what an assignment's rows share is formatted
    once per assignment, and a judgment's own cells (a handful of distinct tuples) once."""
    own_cells: dict[tuple, str] = {}
    yield _csv_cells(JUDGMENT_COLUMNS) + "\n"
    start, end = "", ""
    for head, own, tail, new in parts:
        if new:
            start, end = _csv_cells(head) + ",", "," + _csv_cells(tail) + "\n"
        cells = own_cells.get(own)
        if cells is None:
            cells = own_cells[own] = _csv_cells(own)
        yield start + cells + end


def _csv_cells(values: Iterable) -> str:
    """Values as csv.writer writes them on one line, without the line's end."""
    # The same line terminator as the full rows, so that values holding it are quoted too.
    return csv.writer(_Line(), lineterminator="\n").writerow(csv_safe(values))[:-1]


def _pseudonyms() -> Callable[[int], str]:
    cache: dict[int, str] = {}

    def pseudonym(user_id: int) -> str:
        if user_id not in cache:
            cache[user_id] = annotator_pseudonym(user_id)
        return cache[user_id]

    return pseudonym


def _times(served, submitted, active) -> tuple:
    return (
        served.isoformat() if served else None,
        submitted.isoformat() if submitted else None,
        active,
    )


# ---------------------------------------------------------------------------------------------
# Per comparison

VERDICT_COLUMNS = {"A": "a_better", "equal": "equal", "B": "b_better"}


def comparison_columns() -> list[str]:
    columns = ["batch", "dataset", "comparison_id", "is_check", "document_id", "system_a"]
    columns.append("system_b")
    columns.append("submitted")
    for criterion in analysis.CRITERIA:
        columns += [f"{criterion}_{name}" for name in VERDICT_COLUMNS.values()]
        columns.append(f"{criterion}_majority")
    return columns


def export_comparisons(batch: Batch, fmt: str = "csv") -> Iterator[str]:
    """Per comparison: submitted assignments, then for each criterion the number of A better /
    equal / B better judgments and the majority (A, B, equal, or "none" when verdicts tie;
    see analysis.MajorityCounts), counted in one grouped query. Attention checks are included,
    marked by `is_check`."""
    submitted = Q(assignments__status=Assignment.Status.SUBMITTED)
    counts = {
        f"{criterion}_{column}": Count(
            "assignments__judgments",
            filter=submitted
            & Q(assignments__judgments__criterion=criterion)
            & Q(assignments__judgments__verdict=verdict),
        )
        for criterion in analysis.CRITERIA
        for verdict, column in VERDICT_COLUMNS.items()
    }
    query = (
        Comparison.objects.filter(batch=batch)
        .order_by("id")
        .values("id", "is_check", "document__external_id", "annotations_done")
        .annotate(**counts)
        .values_list("id", "is_check", "document__external_id", "annotations_done", *counts)
    )
    rows = (_comparison_row(batch, row) for row in query.iterator(chunk_size=CHUNK))
    return _lines(fmt, comparison_columns(), rows)


def _comparison_row(batch: Batch, row: tuple) -> tuple:
    cid, check, doc, done, *counts = row
    out = [batch.name, batch.dataset, cid, check, doc, batch.system_a, batch.system_b, done]
    for i in range(len(analysis.CRITERIA)):
        a, e, b = counts[3 * i : 3 * i + 3]
        out += [a, e, b, majority_name(a, e, b)]
    return tuple(out)


def majority_name(a_better: int, equal: int, b_better: int) -> str:
    """The strict plurality verdict (analysis.majority_codes), "none" when the top is shared."""
    code = int(analysis.majority_codes(np.array([[a_better, equal, b_better]]))[0])
    return VERDICT_NAMES.get(code, "none")


# ---------------------------------------------------------------------------------------------
# Scores

SCORE_COLUMNS = [
    "batch", "dataset", "document_id", "summary_id", "system", "role", "metric", "status",
    "value", "reason", "version",
]  # fmt: skip


def export_scores(batch: Batch, fmt: str = "csv") -> Iterator[str]:
    """One row per summary and metric: status "ok" with a value, "no_score" with the reason
    (value empty / null, never zero), "not_scored" when no score was stored yet, or, for a
    family that cannot score here (QUALS with no model set), "not_configured" with the reason."""
    metrics = metric_names()
    relations = {
        f"s_{m}": FilteredRelation("scores", condition=Q(scores__metric=m)) for m in metrics
    }
    fields = [f"s_{m}__{f}" for m in metrics for f in ("status", "value", "reason", "version")]
    query = (
        Summary.objects.filter(document__batch=batch)
        .annotate(**relations)
        .order_by("document_id", "id")
        .values_list("document__external_id", "id", "system", *fields)
    )
    rows = _score_rows(batch, metrics, query.iterator(chunk_size=CHUNK))
    return _lines(fmt, SCORE_COLUMNS, rows)


def _score_rows(batch: Batch, metrics: list[str], rows: Iterable[tuple]) -> Iterator[tuple]:
    role = {batch.system_a: "A", batch.system_b: "B"}
    # A score never computed because its family cannot run here is "not_configured", with the
    # reason, not pending.
    unscored = {}
    for metric in metrics:
        why = FAMILY_OF_METRIC[metric].unavailable()
        unscored[metric] = ("not_configured", why) if why else ("not_scored", "")
    for doc, summary_id, system, *scores in rows:
        for i, metric in enumerate(metrics):
            status, value, reason, version = scores[4 * i : 4 * i + 4]
            if status is None:
                status, reason = unscored[metric]
            yield (
                batch.name, batch.dataset, doc, summary_id, system, role.get(system, ""), metric,
                status, value, reason or "", version or "",
            )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# The results table

TABLE_COLUMNS = [
    "batch", "dataset", "system_a", "system_b", "criterion", "judgments", "comparisons",
    "b_better", "equal", "b_worse", "b_better_share", "equal_share", "b_worse_share",
    "b_better_ci_low", "b_better_ci_high", "equal_ci_low", "equal_ci_high", "b_worse_ci_low",
    "b_worse_ci_high", "bootstrap_seed", "bootstrap_resamples", "sign_test_p", "sign_test_n",
    "majority_b_better", "majority_equal", "majority_b_worse", "majority_none",
    "krippendorff_alpha", "alpha_reason", "pairwise_agreement", "comparison_test_p",
    "comparison_test_method", "comparison_test_resamples", "comparison_test_seed",
    "comparison_test_holm_p", "net_preference", "net_preference_ci_low", "net_preference_ci_high",
    "win_rate", "win_rate_ci_low", "win_rate_ci_high", "left_share", "left_share_p",
]  # fmt: skip


def export_table(batch: Batch, fmt: str = "csv") -> Iterator[str]:
    """The results table, one row per criterion, with its bootstrap intervals (seed and
    resamples reported) and agreement; the primary test (`comparison_test_*`: sign-flip test
    of the comparisons' mean verdicts, Holm-adjusted across the criteria), net preference and
    win rate with comparison-bootstrap intervals, and the share of non-tied verdicts for the
    left side with its binomial p. `sign_test_*` is the secondary judgment-level sign test,
    which ignores that judgments of one comparison are correlated. Shares are unrounded;
    empty (null) when undefined."""
    data = analysis.load_judgments([batch.pk])
    table = analysis.results_table(data)
    levels = analysis.comparison_levels(data)
    rows = (
        _table_row(batch, data, result) + _level_cells(level)
        for result, level in zip(table.values(), levels, strict=True)
    )
    return _lines(fmt, TABLE_COLUMNS, rows)


def _bounds(interval) -> list:
    return [interval.low, interval.high] if interval else [None, None]


def _level_cells(level: analysis.ComparisonLevel) -> tuple:
    t, net, win = level.test, level.net, level.win
    overall = level.position.overall if level.position else None
    return (
        t.p_value, t.method or None, t.n_resamples, t.seed, level.holm_p, net.estimate,
        *_bounds(net.ci), win.estimate, *_bounds(win.ci),
        overall.left_share if overall else None, overall.p_value if overall else None,
    )  # fmt: skip


def _table_row(batch: Batch, data: analysis.Judgments, r: analysis.CriterionResult) -> tuple:
    ci = analysis.bootstrap_shares(data, r.criterion)
    test = analysis.sign_test(r.b_better, r.a_better, ties=r.equal)
    alpha = analysis.krippendorff_alpha(data, r.criterion)
    pairwise = analysis.pairwise_agreement(data, r.criterion)
    intervals = []
    for interval in (ci.b_better, ci.equal, ci.a_better):
        intervals += [interval.low, interval.high] if interval else [None, None]
    m = r.majority
    return (
        batch.name, batch.dataset, batch.system_a, batch.system_b, r.criterion, r.judgments,
        r.comparisons, r.b_better, r.equal, r.a_better, r.b_better_share, r.equal_share,
        r.a_better_share, *intervals, ci.seed, ci.n_resamples, test.p_value, test.n,
        m.b_better, m.equal, m.a_better, m.no_majority, alpha.value, alpha.reason,
        pairwise.share,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Position bias

POSITION_COLUMNS = [
    "batch", "dataset", "criterion", "annotator", "non_tied", "left", "left_share", "p_value",
    "holm_p", "flagged", "reason",
]  # fmt: skip


def export_position_bias(batch: Batch, fmt: str = "csv") -> Iterator[str]:
    """Per criterion, everyone together (annotator "all") then each annotator: non-tied
    verdicts, how many chose the summary shown on the left, the share, the exact binomial p
    against 1/2, Holm's adjustment across the annotators (empty for "all") and the flag
    (p < 0.05, uncorrected)."""
    data = analysis.load_judgments([batch.pk])
    levels = analysis.comparison_levels(data)
    pseudonym = _pseudonyms()
    rows = (
        (
            batch.name,
            batch.dataset,
            level.criterion,
            "all" if bias.annotator is None else pseudonym(bias.annotator),
            bias.non_tied,
            bias.left,
            bias.left_share,
            bias.p_value,
            bias.holm_p,
            bias.flagged,
            bias.reason,
        )  # fmt: skip
        for level in levels
        if level.position
        for bias in (level.position.overall, *level.position.annotators)
    )
    return _lines(fmt, POSITION_COLUMNS, rows)
