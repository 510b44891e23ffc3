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

The results page's switch "exclude flagged annotators" applies to every export
(`exclude_flagged=True`): their rows and judgments are left out, every row of a CSV or JSON Lines
export says so in its last column, `flagged_excluded`, the study table and methods files in
their text, and the file name ends in "-flagged-excluded".
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, FilteredRelation, Q, TextField
from django.db.models.functions import Cast

from evaluation import checks
from evaluation.criteria import VERDICT_NAMES
from evaluation.models import Assignment, Batch, Comparison, Judgment, Summary
from scoring.metrics import FAMILY_OF_METRIC, metric_names

from . import analysis, methods, paper, pooling

ROW_FORMATS = ("csv", "jsonl")
# What can be exported, and in which formats (the first is the default): one entry per export.
FORMATS_OF = {
    "judgments": ROW_FORMATS,
    "comparisons": ROW_FORMATS,
    "scores": ROW_FORMATS,
    "table": (*ROW_FORMATS, "tex", "md"),
    "metrics": ROW_FORMATS,
    "position_bias": ROW_FORMATS,
    "skips": ROW_FORMATS,
    "methods": ("txt", "md"),
}
WHATS = tuple(FORMATS_OF)
FORMATS = ("csv", "jsonl", "tex", "md", "txt")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson; charset=utf-8",
    "tex": "application/x-tex; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "txt": "text/plain; charset=utf-8",
}
CHUNK = 2000
EXCLUSION_COLUMN = "flagged_excluded"
EXCLUDED_SUFFIX = "-flagged-excluded"  # the end of a file name without the flagged annotators


class _Line:
    """csv.writer's file: `write` hands the formatted line back instead of storing it."""

    def write(self, value: str) -> str:
        return value


# A spreadsheet reads a cell starting with one of these as a formula (OWASP, CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_FIRST = frozenset(FORMULA_STARTS)  # one set lookup of the first character


def csv_safe(values: Iterable) -> list:
    """The cells with a quote before any text a spreadsheet would run as a formula.

    Only text: a negative number stays a number. JSON Lines is never changed.
    """
    first = _FORMULA_FIRST
    return ["'" + v if isinstance(v, str) and v[:1] in first else v for v in values]


def _check_format(what: str, fmt: str) -> None:
    if fmt not in FORMATS_OF[what]:
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS_OF[what])}")


def _lines(fmt: str, columns: list[str], rows: Iterable[tuple]) -> Iterator[str]:
    """CSV with a header, or one JSON object per line with the columns as keys."""
    if fmt not in ROW_FORMATS:
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(ROW_FORMATS)}")
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


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def export_filename(batch: Batch, what: str, fmt: str, *, exclude_flagged: bool = False) -> str:
    """A safe download name, e.g. "xsum-pilot-judgments.csv", or
    "xsum-pilot-judgments-flagged-excluded.csv" without the flagged annotators."""
    name = slug(batch.name) or f"batch-{batch.pk}"
    return f"{name}-{what}{EXCLUDED_SUFFIX if exclude_flagged else ''}.{fmt}"


def excluded_annotators(batch: Batch, exclude_flagged: bool) -> list[int]:
    """The annotators an export leaves out: those flagged by attention checks, if asked."""
    return checks.flagged_annotator_ids(batch) if exclude_flagged else []


def export(batch: Batch, what: str, fmt: str, *, exclude_flagged: bool = False) -> Iterator[str]:
    """Dispatch by name: what in WHATS, fmt in FORMATS_OF[what]."""
    exporters: dict[str, Callable[..., Iterator[str]]] = {
        "judgments": export_judgments,
        "comparisons": export_comparisons,
        "scores": export_scores,
        "table": export_table,
        "metrics": export_metrics,
        "position_bias": export_position_bias,
        "skips": export_skips,
        "methods": export_methods,
    }
    if what not in exporters:
        raise ValueError(f"unknown export {what!r}: use one of {', '.join(WHATS)}")
    return exporters[what](batch, fmt, exclude_flagged=exclude_flagged)


# ---------------------------------------------------------------------------------------------
# Judgments, long form

JUDGMENT_COLUMNS = [
    "batch", "dataset", "comparison_id", "is_check", "document_id", "annotator",
    "annotator_flagged", "annotator_check_accuracy", "annotator_checks_skipped", "system_a",
    "system_b", "left_system", "criterion", "verdict", "better_system", "shown", "served_at",
    "submitted_at", "active_seconds", "revisions", "revised_at", EXCLUSION_COLUMN,
]  # fmt: skip


# Columns other apps add per annotator (crowd studies: the survey's answers), each a function
# of the batch giving column names and, per annotator id, their values (missing: empty). They
# come after the fixed columns; reporting never imports those apps.
AnnotatorColumns = Callable[[Batch], tuple[list[str], dict[int, tuple]]]
ANNOTATOR_COLUMNS: list[AnnotatorColumns] = []


def _annotator_columns(batch: Batch) -> tuple[list[str], Callable[[int], tuple]]:
    names: list[str] = []
    tables: list[tuple[int, dict[int, tuple]]] = []
    for provider in ANNOTATOR_COLUMNS:
        columns, values = provider(batch)
        names += columns
        tables.append((len(columns), values))

    def values_of(user_id: int) -> tuple:
        return tuple(v for n, table in tables for v in table.get(user_id, (None,) * n))

    return names, values_of


def export_judgments(
    batch: Batch, fmt: str = "csv", *, exclude_flagged: bool = False
) -> Iterator[str]:
    """One row per submitted assignment and criterion, in the order they were stored.

    `verdict` is in system terms (A / B / equal), `better_system` names the better system (or
    "equal"), `shown` is what the annotator clicked (left / right / equal), `left_system`
    which system was on the left. Times are ISO 8601; `active_seconds` is empty when unknown.
    Attention checks are included, marked by `is_check` (they never count in the results).
    `revisions` says how often the annotator changed the set within the batch's undo window
    (0: as first submitted), `revised_at` when last. Each row carries its annotator's
    attention-check record: flagged (accuracy below the
    batch's threshold), the accuracy (empty when they answered no check) and how many checks
    they skipped.
    """
    _check_format("judgments", fmt)
    excluded = excluded_annotators(batch, exclude_flagged)
    query = (
        _with_text_times(Judgment.objects)
        .filter(assignment__comparison__batch=batch, assignment__status=Assignment.Status.SUBMITTED)
        .exclude(assignment__annotator_id__in=excluded)
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
            *_time_fields(),
            "assignment__active_seconds",
            "assignment__revisions",
            "assignment__revised_at",
        )
    )

    def lines() -> Iterator[str]:  # lazy: no query before the first line is asked for
        extra, extra_of = _annotator_columns(batch)
        with whole_result_plan():
            rows = query.iterator(chunk_size=CHUNK)
            parts = _judgment_parts(batch, rows, exclude_flagged, extra_of)
            columns = JUDGMENT_COLUMNS + extra
            try:
                yield from (_judgment_csv if fmt == "csv" else _judgment_jsonl)(parts, columns)
            finally:  # a download cut short: its cursor closes inside the transaction
                rows.close()

    return lines()


SERVED, SUBMITTED = "assignment__served_at", "assignment__submitted_at"


def _with_text_times(judgments):
    """On PostgreSQL the assignment's times come as PostgreSQL writes them, text, not as
    datetimes: parsing two per judgment row was a third of the export's Python time (2 s at a
    million rows); `_iso` writes each assignment's once."""
    if connection.vendor != "postgresql":
        return judgments
    return judgments.annotate(
        served_text=Cast(SERVED, TextField()), submitted_text=Cast(SUBMITTED, TextField())
    )


def _time_fields() -> tuple[str, str]:
    if connection.vendor != "postgresql":
        return SERVED, SUBMITTED
    return "served_text", "submitted_text"


def _iso(value) -> str | None:
    """ISO 8601 as datetime.isoformat() writes it, from a datetime or from PostgreSQL's text
    of a timestamptz in UTC (Django's connections are in UTC): "2026-01-01 00:00:50.74+00"
    is "2026-01-01T00:00:50.740000+00:00"."""
    if value is None or not isinstance(value, str):
        return value.isoformat() if value is not None else None
    if len(value) < 22 or value[10] != " " or not value.endswith("+00"):
        return datetime.fromisoformat(value).isoformat()  # not the usual shape: parse it
    clock = value[11:-3]
    if "." in clock:
        whole, fraction = clock.split(".")
        clock = f"{whole}.{fraction:0<6}"
    return f"{value[:10]}T{clock}+00:00"


@contextmanager
def whole_result_plan() -> Iterator[None]:
    """PostgreSQL plans a server-side cursor for its first tenth of rows (nested loops over a
    million index lookups) and, with the plan's cost that high, JIT-compiles it with full
    optimisation, and outside a transaction Django's cursor is WITH HOLD, which copies every
    row aside before the first one comes. An export reads every row: one transaction (a
    consistent snapshot, and a cursor that streams), planned for all rows without JIT."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL cursor_tuple_fraction = 1.0")
                cursor.execute("SET LOCAL jit = off")
        yield


def check_records(batch: Batch) -> dict[int, tuple[bool, float | None, int]]:
    """annotator id -> (flagged, check accuracy or None, checks skipped), for every annotator
    who answered or skipped a check of this batch (others: not flagged, None, 0)."""
    records = {e.annotator_id: (e.flagged, e.accuracy, 0) for e in checks.check_accuracy(batch)}
    skipped = (
        Assignment.objects.filter(
            batch=batch, comparison__is_check=True, status=Assignment.Status.SKIPPED
        )
        .order_by()
        .values_list("annotator_id")
        .annotate(n=Count("id"))
    )
    for annotator_id, n in skipped:
        flagged, accuracy, _ = records.get(annotator_id, (False, None, 0))
        records[annotator_id] = (flagged, accuracy, n)
    return records


NO_CHECKS = (False, None, 0)


def _judgment_parts(
    batch: Batch,
    rows: Iterable[tuple],
    exclude_flagged: bool = False,
    extra_of: Callable[[int], tuple] = lambda user_id: (),
) -> Iterator[tuple[tuple, tuple, tuple, bool]]:
    """The judgments export's rows, defined once for both formats: per judgment, the values its
    assignment shares before it (batch .. left_system), its own (criterion .. shown), those
    shared after it (the times, the exclusion), and whether it starts a new assignment (its 3
    rows share the rest, so formats can format that once)."""
    better = {"A": batch.system_a, "B": batch.system_b, "equal": "equal"}
    pseudonym = _pseudonyms()
    records = check_records(batch)
    last_assignment, head, tail = None, (), ()
    for assignment_id, cid, check, doc, user_id, left, criterion, verdict, shown, *timing in rows:
        new = assignment_id != last_assignment
        if new:
            tail = (*_times(*timing), exclude_flagged, *extra_of(user_id))
            last_assignment = assignment_id
            head = (
                batch.name, batch.dataset, cid, check, doc, pseudonym(user_id),
                *records.get(user_id, NO_CHECKS), batch.system_a, batch.system_b, left,
            )  # fmt: skip
        yield head, (criterion, verdict, better[verdict], shown), tail, new


def _judgment_jsonl(
    parts: Iterable[tuple[tuple, tuple, tuple, bool]], columns: list[str] = JUDGMENT_COLUMNS
) -> Iterator[str]:
    rows = (head + own + tail for head, own, tail, _ in parts)
    return _lines("jsonl", columns, rows)


def _judgment_csv(
    parts: Iterable[tuple[tuple, tuple, tuple, bool]], columns: list[str] = JUDGMENT_COLUMNS
) -> Iterator[str]:
    """The rows as csv.writer writes them, faster: what an assignment's rows share is formatted
    once per assignment, and a judgment's own cells (a handful of distinct tuples) once."""
    # One writer for the export (the same line terminator as full rows, so that values holding
    # it are quoted too); the own cells of a judgment keyed by the tuple, a handful in all.
    write = csv.writer(_Line(), lineterminator="\n").writerow
    own_cells: dict[tuple, str] = {}
    yield write(csv_safe(columns))
    start, end = "", ""
    for head, own, tail, new in parts:
        if new:
            start, end = write(csv_safe(head))[:-1] + ",", "," + write(csv_safe(tail))
        cells = own_cells.get(own)
        if cells is None:
            cells = own_cells[own] = write(csv_safe(own))[:-1]
        yield start + cells + end


def _pseudonyms() -> Callable[[int], str]:
    cache: dict[int, str] = {}

    def pseudonym(user_id: int) -> str:
        if user_id not in cache:
            cache[user_id] = annotator_pseudonym(user_id)
        return cache[user_id]

    return pseudonym


def _times(served, submitted, active, revisions=0, revised=None) -> tuple:
    """The assignment's times; `revisions` counts changes made within the undo window, the
    last at `revised_at` (empty when never changed)."""
    return _iso(served), _iso(submitted), active, revisions, _iso(revised)


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
    return [*columns, EXCLUSION_COLUMN]


def export_comparisons(
    batch: Batch, fmt: str = "csv", *, exclude_flagged: bool = False
) -> Iterator[str]:
    """Per comparison: submitted assignments, then for each criterion the number of A better /
    equal / B better judgments and the majority (A, B, equal, or "none" when verdicts tie;
    see analysis.MajorityCounts), counted in one grouped query. Attention checks are included,
    marked by `is_check`. Without the flagged annotators, `submitted` and the counts leave
    their assignments out."""
    _check_format("comparisons", fmt)
    excluded = excluded_annotators(batch, exclude_flagged)
    submitted = Q(assignments__status=Assignment.Status.SUBMITTED)
    if excluded:
        submitted &= ~Q(assignments__annotator_id__in=excluded)
    done = (
        Count("assignments", filter=submitted, distinct=True) if excluded else F("annotations_done")
    )
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
        .annotate(done=done, **counts)
        .values_list("id", "is_check", "document__external_id", "done", *counts)
    )
    rows = (
        _comparison_row(batch, row, exclude_flagged) for row in query.iterator(chunk_size=CHUNK)
    )
    return _lines(fmt, comparison_columns(), rows)


def _comparison_row(batch: Batch, row: tuple, exclude_flagged: bool = False) -> tuple:
    cid, check, doc, done, *counts = row
    out = [batch.name, batch.dataset, cid, check, doc, batch.system_a, batch.system_b, done]
    for i in range(len(analysis.CRITERIA)):
        a, e, b = counts[3 * i : 3 * i + 3]
        out += [a, e, b, majority_name(a, e, b)]
    return (*out, exclude_flagged)


def majority_name(a_better: int, equal: int, b_better: int) -> str:
    """The strict plurality verdict (analysis.majority_codes), "none" when the top is shared."""
    code = int(analysis.majority_codes(np.array([[a_better, equal, b_better]]))[0])
    return VERDICT_NAMES.get(code, "none")


# ---------------------------------------------------------------------------------------------
# Scores

SCORE_COLUMNS = [
    "batch", "dataset", "document_id", "summary_id", "system", "role", "metric", "status",
    "value", "reason", "version", EXCLUSION_COLUMN,
]  # fmt: skip


def export_scores(
    batch: Batch, fmt: str = "csv", *, exclude_flagged: bool = False
) -> Iterator[str]:
    """One row per summary and metric: status "ok" with a value, "no_score" with the reason
    (value empty / null, never zero), "not_scored" when no score was stored yet, or, for a
    family that cannot score here (QUALS with no model set), "not_configured" with the reason.
    Scores do not depend on annotators: the exclusion changes only its column."""
    _check_format("scores", fmt)
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
    return _lines(fmt, SCORE_COLUMNS, ((*row, exclude_flagged) for row in rows))


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
    "krippendorff_alpha_ci_low", "krippendorff_alpha_ci_high", "pairwise_agreement_ci_low",
    "pairwise_agreement_ci_high", "reliability_seed", "reliability_resamples",
    "net_preference_two_way_ci_low", "net_preference_two_way_ci_high",
    "win_rate_two_way_ci_low", "win_rate_two_way_ci_high", "two_way_method", "two_way_reason",
    EXCLUSION_COLUMN,
]  # fmt: skip


def export_table(batch: Batch, fmt: str = "csv", *, exclude_flagged: bool = False) -> Iterator[str]:
    """The results table, one row per criterion, with its bootstrap intervals (seed and
    resamples reported) and agreement; the primary test (`comparison_test_*`: sign-flip test
    of the comparisons' mean verdicts, Holm-adjusted across the criteria), net preference and
    win rate with comparison-bootstrap intervals, and the share of non-tied verdicts for the
    left side with its binomial p. `sign_test_*` is the secondary judgment-level sign test,
    which ignores that judgments of one comparison are correlated. Shares are unrounded;
    empty (null) when undefined. As "tex" (booktabs) or "md", the study table for a paper,
    with the methods paragraph (see `paper`)."""
    _check_format("table", fmt)
    excluded = excluded_annotators(batch, exclude_flagged)
    data = analysis.load_judgments([batch.pk], excluded)
    if fmt in ("tex", "md"):
        return iter([paper.batch_table_text(batch, data, fmt, excluded=excluded)])
    table = analysis.results_table(data)
    levels = analysis.comparison_levels(data)
    rows = (
        _table_row(batch, data, result)
        + _level_cells(level)
        + _interval_cells(data, level)
        + (exclude_flagged,)
        for result, level in zip(table.values(), levels, strict=True)
    )
    return _lines(fmt, TABLE_COLUMNS, rows)


def _interval_cells(data: analysis.Judgments, level: analysis.ComparisonLevel) -> tuple:
    """The page's newer intervals: alpha's and raw agreement's (resampling comparisons), and
    the two-way intervals of the net preference and the win rate, with how they were drawn
    or why there are none."""
    reliability = analysis.reliability(data, level.criterion)
    net, win = level.net, level.win
    return (
        *_bounds(reliability.alpha_ci), *_bounds(reliability.agreement_ci), reliability.seed,
        reliability.n_resamples, *_bounds(net.two_way_ci), *_bounds(win.two_way_ci),
        net.two_way_method or None, net.two_way_reason or None,
    )  # fmt: skip


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
# Automatic metrics against the humans

METRIC_COLUMNS = [
    "batch", "dataset", "metric", "label", "unavailable", "metric_version", "other_versions",
    "comparisons", "agree", "disagree", "metric_ties", "human_ties", "human_no_majority",
    "unjudged", "missing_scores", "agreement_share", "kendall_tau", "kendall_p",
    "tau_comparisons", "tau_reason", "tie_aware_accuracy", "tie_aware_ci_low",
    "tie_aware_ci_high", "tie_aware_epsilon", "tie_aware_accuracy_without_calibration",
    "tie_aware_comparisons", "tie_aware_human_ties", "tie_aware_no_majority",
    "tie_aware_ci_method", "tie_aware_seed", "tie_aware_resamples", EXCLUSION_COLUMN,
]  # fmt: skip


def export_metrics(
    batch: Batch, fmt: str = "csv", *, exclude_flagged: bool = False
) -> Iterator[str]:
    """The page's table of automatic metrics against the human factual majority, one row per
    metric of every family: the agreement buckets, Kendall's tau-b, tie-aware pairwise
    accuracy with its bootstrap interval (seed, resamples and how epsilon was searched), and
    the metric version the figures use (`other_versions`: scores of other versions left out,
    "version: count; ..."). A family that cannot score here has only `unavailable`."""
    _check_format("metrics", fmt)
    data = analysis.load_judgments([batch.pk], excluded_annotators(batch, exclude_flagged))
    rows = (
        (batch.name, batch.dataset, metric, label, unavailable or None)
        + _metric_cells(agreement)
        + (exclude_flagged,)
        for label, agreement, unavailable, metric in analysis.metric_rows([batch.pk], data)
    )
    return _lines(fmt, METRIC_COLUMNS, rows)


def _metric_cells(m: analysis.MetricAgreement | None) -> tuple:
    if m is None:
        return (None,) * (len(METRIC_COLUMNS) - 6)
    t = m.tie_aware
    others = "; ".join(f"{v}: {n}" for v, n in m.other_versions.items())
    return (
        m.version or None, others or None, m.comparisons, m.agree, m.disagree, m.metric_ties,
        m.human_ties, m.human_no_majority, m.unjudged, m.missing_scores, m.agreement_share,
        m.kendall_tau, m.kendall_p, m.tau_comparisons, m.tau_reason or None, t.accuracy,
        *_bounds(t.ci), t.epsilon, t.accuracy_without_calibration, t.comparisons,
        t.human_ties, t.no_majority, t.ci_method or None, t.seed, t.n_resamples,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Position bias

POSITION_COLUMNS = [
    "batch", "dataset", "criterion", "annotator", "non_tied", "left", "left_share", "p_value",
    "holm_p", "flagged", "reason", EXCLUSION_COLUMN,
]  # fmt: skip


def export_position_bias(
    batch: Batch, fmt: str = "csv", *, exclude_flagged: bool = False
) -> Iterator[str]:
    """Per criterion, everyone together (annotator "all") then each annotator: non-tied
    verdicts, how many chose the summary shown on the left, the share, the exact binomial p
    against 1/2, Holm's adjustment across the annotators (empty for "all") and the flag
    (p < 0.05, uncorrected)."""
    _check_format("position_bias", fmt)
    data = analysis.load_judgments([batch.pk], excluded_annotators(batch, exclude_flagged))
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
            exclude_flagged,
        )  # fmt: skip
        for level in levels
        if level.position
        for bias in (level.position.overall, *level.position.annotators)
    )
    return _lines(fmt, POSITION_COLUMNS, rows)


# ---------------------------------------------------------------------------------------------
# Skips and problem reports

SKIP_COLUMNS = [
    "batch", "dataset", "comparison_id", "is_check", "document_id", "annotator",
    "annotator_flagged", "system_a", "system_b", "left_system", "kind", "reason", "served_at",
    EXCLUSION_COLUMN,
]  # fmt: skip


def export_skips(batch: Batch, fmt: str = "csv", *, exclude_flagged: bool = False) -> Iterator[str]:
    """One row per skipped assignment, in the order they were served: `kind` is "skip" (the
    annotator gave a reason to pass it on) or "problem" (they reported a problem with the
    comparison), `reason` their words (quoted in CSV where a spreadsheet would run them)."""
    _check_format("skips", fmt)
    excluded = excluded_annotators(batch, exclude_flagged)
    query = (
        Assignment.objects.filter(batch=batch, status=Assignment.Status.SKIPPED)
        .exclude(annotator_id__in=excluded)
        .order_by("served_at", "id")
        .values_list(
            "comparison_id", "comparison__is_check", "comparison__document__external_id",
            "annotator_id", "left_system", "skip_reason", "problem_report", "served_at",
        )
    )  # fmt: skip
    flagged = set(checks.flagged_annotator_ids(batch))
    pseudonym = _pseudonyms()
    rows = (
        (
            batch.name,
            batch.dataset,
            cid,
            check,
            doc,
            pseudonym(user_id),
            user_id in flagged,
            batch.system_a,
            batch.system_b,
            left,
            "problem" if problem else "skip",
            problem or skip,
            served.isoformat() if served else None,
            exclude_flagged,
        )  # fmt: skip
        for cid, check, doc, user_id, left, skip, problem, served in query.iterator(
            chunk_size=CHUNK
        )
    )
    return _lines(fmt, SKIP_COLUMNS, rows)


# ---------------------------------------------------------------------------------------------
# The methods paragraph


def export_methods(
    batch: Batch, fmt: str = "txt", *, exclude_flagged: bool = False
) -> Iterator[str]:
    """The results page's methods paragraph, as plain text or Markdown (see `methods`)."""
    _check_format("methods", fmt)
    excluded = excluded_annotators(batch, exclude_flagged)
    data = analysis.load_judgments([batch.pk], excluded)
    return iter([paper.batch_methods_text(batch, data, fmt, excluded=excluded)])


# ---------------------------------------------------------------------------------------------
# The pooled page (/results/): batches grouped by dataset and system pair

POOLED_FORMATS_OF = {"table": (*ROW_FORMATS, "tex", "md"), "methods": ("txt", "md")}
POOLED_TABLE_COLUMNS = [
    "dataset", "system_a", "system_b", "batches", "reoriented_batches", "criterion",
    "judgments", "comparisons", "b_better", "equal", "b_worse", "b_better_share", "equal_share",
    "b_worse_share", "b_better_ci_low", "b_better_ci_high", "equal_ci_low", "equal_ci_high",
    "b_worse_ci_low", "b_worse_ci_high", "bootstrap_seed", "bootstrap_resamples",
    "comparison_test_p", "comparison_test_method", "comparison_test_resamples",
    "comparison_test_seed", "comparison_test_holm_p", "net_preference", "net_preference_ci_low",
    "net_preference_ci_high", "win_rate", "win_rate_ci_low", "win_rate_ci_high", "sign_test_p",
    "krippendorff_alpha", EXCLUSION_COLUMN,
]  # fmt: skip


def pooled_filename(what: str, fmt: str, exclude_flagged: bool = False) -> str:
    return f"results-by-dataset-{what}{EXCLUDED_SUFFIX if exclude_flagged else ''}.{fmt}"


def pooled_levels(exclude_flagged: bool = False) -> list[tuple]:
    """Per group: (group, judgments, levels), Holm-adjusted across every criterion of every
    group, as on the page."""
    groups = [
        (group, data, analysis.comparison_levels(data, two_way=False))
        for group, data in pooling.pooled(exclude_flagged)
    ]
    analysis.with_holm([level for _, _, levels in groups for level in levels])
    return groups


def export_pooled(what: str, fmt: str, *, exclude_flagged: bool = False) -> Iterator[str]:
    """The pooled page's table: one row per group and criterion, in the group's orientation
    (`reoriented_batches`: those whose A and B were swapped to match, verdicts flipped), the
    primary test Holm-adjusted across every row. "tex" / "md": the study table, one section
    per group."""
    if fmt not in POOLED_FORMATS_OF.get(what, ()):
        raise ValueError(f"unknown pooled export {what}.{fmt}")
    groups = pooled_levels(exclude_flagged)
    if what == "methods":
        return iter([_pooled_methods(groups, fmt, exclude_flagged)])
    if fmt in ("tex", "md"):
        return iter([_pooled_text(groups, fmt, exclude_flagged)])
    rows = (
        _pooled_row(group, data, result, level, exclude_flagged)
        for group, data, levels in groups
        for result, level in zip(analysis.results_table(data).values(), levels, strict=True)
    )
    return _lines(fmt, POOLED_TABLE_COLUMNS, rows)


def _pooled_row(group, data, r, level, exclude_flagged) -> tuple:
    ci = analysis.bootstrap_shares(data, r.criterion)
    sign = analysis.sign_test(r.b_better, r.a_better, ties=r.equal)
    t, net, win = level.test, level.net, level.win
    return (
        group.dataset, group.system_a, group.system_b, "; ".join(b.name for b in group.batches),
        "; ".join(b.name for b in group.swapped), r.criterion, r.judgments, r.comparisons,
        r.b_better, r.equal, r.a_better, r.b_better_share, r.equal_share, r.a_better_share,
        *_bounds(ci.b_better), *_bounds(ci.equal), *_bounds(ci.a_better), ci.seed,
        ci.n_resamples, t.p_value, t.method or None, t.n_resamples, t.seed, level.holm_p,
        net.estimate, *_bounds(net.ci), win.estimate, *_bounds(win.ci), sign.p_value,
        analysis.krippendorff_alpha(data, r.criterion).value, exclude_flagged,
    )  # fmt: skip


def pooled_paragraphs(groups: list[tuple], exclude_flagged: bool) -> list[tuple[str, str]]:
    """(section title, methods paragraph) per group; Holm's family is every row."""
    family = (
        f"all {len(analysis.CRITERIA) * len(groups)} tests of the pooled table "
        f"({len(analysis.CRITERIA)} criteria x {len(groups)} groups)"
    )
    out = []
    for group, data, levels in groups:
        excluded = pooling.excluded_for(group.batches, exclude_flagged)
        facts = methods.facts_of(
            group.batches, data, levels, excluded=excluded, reoriented=group.swapped,
            holm_family=family,
        )  # fmt: skip
        title = paper.section_title(group.dataset, group.system_a, group.system_b)
        out.append((title, methods.methods_paragraph(facts)))
    return out


def _pooled_methods(groups: list[tuple], fmt: str, exclude_flagged: bool) -> str:
    paragraphs = pooled_paragraphs(groups, exclude_flagged)
    if fmt == "md":
        return "".join(
            f"## Methods ({paper.markdown_escape(t)})\n\n{paper.markdown_escape(p)}\n\n"
            for t, p in paragraphs
        )
    return "".join(f"{t}\n\n{paper.wrapped(p)}\n" for t, p in paragraphs)


def _pooled_text(groups: list[tuple], fmt: str, exclude_flagged: bool) -> str:
    sections = [
        paper.Section(
            paper.section_title(group.dataset, group.system_a, group.system_b),
            paper.table_rows(data, levels),
            pooling.note(group),
        )
        for group, data, levels in groups
    ]
    excluded = len({a for g, _, _ in groups for a in pooling.excluded_for(g.batches, True)})
    caption = paper.caption_text(sections, excluded=excluded if exclude_flagged else 0)
    paragraphs = pooled_paragraphs(groups, exclude_flagged)
    if fmt == "tex":
        comment = " ".join(f"Methods ({t}): {p}" for t, p in paragraphs)
        return paper.latex_table(sections, caption=caption, comment=comment)
    after = "\n\n".join(f"Methods ({t}). {p}" for t, p in paragraphs)
    return paper.markdown_table(sections, caption=caption, after=after)
