"""The researchers' pages: the study's results table per batch and per dataset, and exports."""

from __future__ import annotations

import numpy as np
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from evaluation import checks
from evaluation.models import AuditEvent, Batch, Role, audit
from evaluation.roles import role_required

from . import analysis, exports, figures, methods, paper, pooling
from .views import batch_or_404


def criterion_rows(data: analysis.Judgments) -> list[dict]:
    """Per criterion: the table, the primary (comparison-level) test with Holm's adjustment
    across the criteria, effect sizes, the secondary judgment-level sign test, reliability."""
    rows = []
    levels = analysis.comparison_levels(data)
    for level, (criterion, r) in zip(levels, analysis.results_table(data).items(), strict=True):
        per_comparison = r.judgments / r.comparisons if r.comparisons else None
        rows.append(
            {
                "r": r,
                "level": level,
                "flagged_annotators": sum(
                    b.flagged for b in (level.position.annotators if level.position else ())
                ),
                "sign": analysis.sign_test(r.b_better, r.a_better, ties=r.equal),
                "ci": analysis.bootstrap_shares(data, criterion),
                "hint": analysis.sample_size_hint(
                    r.b_better, r.a_better, ties=r.equal, judgments_per_comparison=per_comparison
                ),
                "power": analysis.power_hint(data, criterion),
                "reliability": analysis.reliability(data, criterion),
                "alpha": analysis.krippendorff_alpha(data, criterion),
                "pairwise": analysis.pairwise_agreement(data, criterion),
            }
        )
    return rows


def pooled_rows(data: analysis.Judgments) -> list[dict]:
    """What the pooled page shows per criterion, and only that: the table, the primary test
    (Holm's adjustment comes later, across the page), net preference and win rate with their
    comparison-bootstrap intervals (no two-way interval: the page does not show one), the
    secondary sign test and alpha."""
    levels = analysis.comparison_levels(data, two_way=False)
    return [
        {
            "r": r,
            "level": level,
            "sign": analysis.sign_test(r.b_better, r.a_better, ties=r.equal),
            "alpha": analysis.krippendorff_alpha(data, criterion),
        }
        for level, (criterion, r) in zip(levels, analysis.results_table(data).items(), strict=True)
    ]


def flagged_positions(rows: list[dict], names: dict[int, str]) -> list[tuple]:
    """(criterion label, annotator name, PositionBias) for each annotator whose left share
    the binomial test flags, per criterion."""
    out = []
    for row in rows:
        position = row["level"].position
        for bias in position.annotators if position else ():
            if bias.flagged:
                name = names.get(bias.annotator, f"user {bias.annotator}")
                out.append((row["r"].label, name, bias))
    return out


def exclude_flagged_of(request: HttpRequest) -> bool:
    return request.GET.get("exclude_flagged") == "1"


def attachment(response: HttpResponse, filename: str) -> HttpResponse:
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def results_panel(dataset: str, system_a: str, system_b: str, data, note: str = ""):
    """The chart's panel of these judgments: the table and the shares' bootstrap intervals."""
    return figures.Panel(
        paper.section_title(dataset, system_a, system_b),
        system_a,
        system_b,
        analysis.results_table(data),
        {c: analysis.bootstrap_shares(data, c) for c in analysis.CRITERIA},
        note,
    )


def batch_panel(batch: Batch, data: analysis.Judgments) -> figures.Panel:
    return results_panel(batch.dataset, batch.system_a, batch.system_b, data)


def group_panel(group: pooling.PoolGroup, data: analysis.Judgments) -> figures.Panel:
    return results_panel(group.dataset, group.system_a, group.system_b, data, pooling.note(group))


@require_GET
@role_required(Role.RESEARCHER, Role.ADMIN)
def batch_results(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch = batch_or_404(batch_id)
    exclude_flagged = exclude_flagged_of(request)
    flagged = checks.flagged_annotator_ids(batch)
    excluded = flagged if exclude_flagged else []
    data, timing = analysis.load_batch_data([batch.pk], excluded)
    everyone, _ = analysis.load_batch_data([batch.pk], timing=False) if excluded else (data, None)
    rows = criterion_rows(data)
    names = analysis.load_annotator_names(np.unique(timing.annotator).tolist())
    levels = [row["level"] for row in rows]
    facts = methods.batch_facts(batch, data, levels, excluded=excluded, flagged=len(flagged))
    context = {
        "batch": batch,
        "rows": rows,
        "design": analysis.design_of(data),
        "biased": flagged_positions(rows, names),
        "metrics": analysis.metric_rows([batch.pk], data),
        "annotators": analysis.annotator_report(data, timing, names),
        "methods_paragraph": methods.methods_paragraph(facts),
        "figure_formats": figures.FIGURE_FORMATS,
        "flagged": len(flagged),
        "exclude_flagged": exclude_flagged,
        "excluded_judgments": len(everyone.criterion) - len(data.criterion),
        "seed": analysis.BOOTSTRAP_SEED,
        "exports": exports.FORMATS_OF.items(),
        "tie_aware_resamples": analysis.TIE_AWARE_RESAMPLES,
    }
    return render(request, "research/results.html", context)


@require_GET
@role_required(Role.RESEARCHER, Role.ADMIN)
def batch_chart(request: HttpRequest, batch_id: int, fmt: str) -> HttpResponse:
    """The chart with its interval whiskers as SVG, PDF or PNG; `?download=1` as a file."""
    batch = batch_or_404(batch_id)
    if fmt not in figures.FIGURE_FORMATS:
        raise Http404("No such chart format.")
    exclude_flagged = exclude_flagged_of(request)
    excluded = exports.excluded_annotators(batch, exclude_flagged)
    data = analysis.load_judgments([batch.pk], excluded)
    panel = batch_panel(batch, data)
    if exclude_flagged:
        panel.note = f"Annotators flagged by attention checks excluded ({len(excluded)})"
    image = figures.results_figure([panel], fmt)
    response = HttpResponse(image, content_type=figures.CONTENT_TYPES[fmt])
    if request.GET.get("download") == "1":
        name = exports.export_filename(batch, "chart", fmt, exclude_flagged=exclude_flagged)
        attachment(response, name)
    return response


@require_GET
@role_required(Role.RESEARCHER, Role.ADMIN)
def batch_export(request: HttpRequest, batch_id: int, what: str, fmt: str) -> HttpResponse:
    """Stream an export with constant memory; the download is written to the audit log."""
    batch = batch_or_404(batch_id)
    if fmt not in exports.FORMATS_OF.get(what, ()):
        raise Http404("No such export.")
    exclude_flagged = exclude_flagged_of(request)
    target = f"{what}.{fmt}" + (" without flagged annotators" if exclude_flagged else "")
    audit(request.user, AuditEvent.Action.EXPORT, batch, target)
    lines = exports.export(batch, what, fmt, exclude_flagged=exclude_flagged)
    response = StreamingHttpResponse(lines, content_type=exports.CONTENT_TYPES[fmt])
    return attachment(
        response, exports.export_filename(batch, what, fmt, exclude_flagged=exclude_flagged)
    )


@require_GET
@role_required(Role.RESEARCHER, Role.ADMIN)
def overview(request: HttpRequest) -> HttpResponse:
    """Across batches, grouped by dataset and system pair (see `pooling`): the study's table
    and figure. Batches with A and B swapped are re-oriented and the page says so; different
    pairs of systems are separate groups, never summed."""
    exclude_flagged = exclude_flagged_of(request)
    datasets, pooled = [], pooling.pooled(exclude_flagged)
    for group, data in pooled:
        datasets.append(
            {
                "name": group.dataset,
                "label": paper.section_title(group.dataset, group.system_a, group.system_b),
                "group": group,
                "batches": group.batches,
                "swapped": group.swapped,
                "note": pooling.note(group),
                "rows": pooled_rows(data),
            }
        )
    # One family for Holm's adjustment: every criterion of every group on this page.
    analysis.with_holm([row["level"] for d in datasets for row in d["rows"]])
    levels = [[row["level"] for row in d["rows"]] for d in datasets]
    paragraphs = exports.pooled_paragraphs(
        [(g, data, lv) for (g, data), lv in zip(pooled, levels, strict=True)], exclude_flagged
    )
    for d, (_, paragraph) in zip(datasets, paragraphs, strict=True):
        d["methods_paragraph"] = paragraph
    pairs = {frozenset((d["group"].system_a, d["group"].system_b)) for d in datasets}
    context = {
        "datasets": datasets,
        "mixed_systems": len(pairs) > 1,
        "exclude_flagged": exclude_flagged,
        "seed": analysis.BOOTSTRAP_SEED,
        "pooled_exports": exports.POOLED_FORMATS_OF.items(),
        "figure_formats": figures.FIGURE_FORMATS,
    }
    return render(request, "research/overview.html", context)


@require_GET
@role_required(Role.RESEARCHER, Role.ADMIN)
def overview_chart(request: HttpRequest, fmt: str) -> HttpResponse:
    """The pooled page's chart, one panel per group, as SVG, PDF or PNG."""
    if fmt not in figures.FIGURE_FORMATS:
        raise Http404("No such chart format.")
    exclude_flagged = exclude_flagged_of(request)
    panels = []
    for group, data in pooling.pooled(exclude_flagged):
        panel = group_panel(group, data)
        if exclude_flagged:
            excluded = len(pooling.excluded_for(group.batches, True))
            said = f"Annotators flagged by attention checks excluded ({excluded})"
            panel.note = f"{panel.note}\n{said}" if panel.note else said
        panels.append(panel)
    response = HttpResponse(
        figures.results_figure(panels, fmt), content_type=figures.CONTENT_TYPES[fmt]
    )
    if request.GET.get("download") == "1":
        attachment(response, exports.pooled_filename("chart", fmt, exclude_flagged))
    return response


@require_GET
@role_required(Role.RESEARCHER, Role.ADMIN)
def overview_export(request: HttpRequest, what: str, fmt: str) -> HttpResponse:
    """The pooled page's table as CSV, JSON Lines, LaTeX or Markdown; audited."""
    if fmt not in exports.POOLED_FORMATS_OF.get(what, ()):
        raise Http404("No such export.")
    exclude_flagged = exclude_flagged_of(request)
    target = f"pooled {what}.{fmt}" + (" without flagged annotators" if exclude_flagged else "")
    audit(request.user, AuditEvent.Action.EXPORT, None, target)
    lines = exports.export_pooled(what, fmt, exclude_flagged=exclude_flagged)
    response = StreamingHttpResponse(lines, content_type=exports.CONTENT_TYPES[fmt])
    return attachment(response, exports.pooled_filename(what, fmt, exclude_flagged))
