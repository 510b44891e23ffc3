"""The researchers' pages: the study's results table per batch and per dataset, and exports."""

from __future__ import annotations

import numpy as np
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from evaluation import checks
from evaluation.models import AuditEvent, Batch, Role, audit
from evaluation.roles import role_required
from scoring.metrics import FAMILIES

from . import analysis, exports
from .charts import stacked_bars_svg
from .views import batch_or_404


def metric_rows(batch_ids: list[int], data: analysis.Judgments) -> list[tuple]:
    """(label, agreement, why unavailable) per metric of every family: each metric against the
    human factual majority of the judgments in hand, so that excluded annotators are excluded
    here too; a family that cannot score here has no agreement, and says why."""
    majorities = analysis.majorities_of(data, "factual")
    rows = []
    for family in FAMILIES:
        unavailable = family.unavailable()
        for metric, label in family.metrics:
            agreement = (
                None if unavailable else analysis.metric_agreement(batch_ids, metric, majorities)
            )
            rows.append((label, agreement, unavailable))
    return rows


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


def excluded_for(batches: list[Batch], exclude_flagged: bool) -> list[int]:
    if not exclude_flagged:
        return []
    return sorted({a for b in batches for a in checks.flagged_annotator_ids(b)})


@require_GET
@role_required(Role.RESEARCHER, Role.ADMIN)
def batch_results(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch = batch_or_404(batch_id)
    exclude_flagged = request.GET.get("exclude_flagged") == "1"
    flagged = checks.flagged_annotator_ids(batch)
    excluded = flagged if exclude_flagged else []
    data, timing = analysis.load_batch_data([batch.pk], excluded)
    everyone, _ = analysis.load_batch_data([batch.pk], timing=False) if excluded else (data, None)
    table = analysis.results_table(data)
    rows = criterion_rows(data)
    names = analysis.load_annotator_names(np.unique(timing.annotator).tolist())
    context = {
        "batch": batch,
        "rows": rows,
        "design": analysis.design_of(data),
        "biased": flagged_positions(rows, names),
        "metrics": metric_rows([batch.pk], data),
        "annotators": analysis.annotator_report(data, timing, names),
        "chart": stacked_bars_svg(
            {batch.dataset: table}, system_a=batch.system_a, system_b=batch.system_b
        ),
        "flagged": len(flagged),
        "exclude_flagged": exclude_flagged,
        "excluded_judgments": len(everyone.criterion) - len(data.criterion),
        "seed": analysis.BOOTSTRAP_SEED,
        "tie_aware_resamples": analysis.TIE_AWARE_RESAMPLES,
        "whats": exports.WHATS,
        "formats": exports.FORMATS,
    }
    return render(request, "research/results.html", context)


@require_GET
@role_required(Role.RESEARCHER, Role.ADMIN)
def batch_chart(request: HttpRequest, batch_id: int) -> HttpResponse:
    """The stacked-bar chart as a downloadable SVG file."""
    batch = batch_or_404(batch_id)
    data, _ = analysis.load_batch_data([batch.pk], timing=False)
    svg = stacked_bars_svg(
        {batch.dataset: analysis.results_table(data)},
        system_a=batch.system_a,
        system_b=batch.system_b,
    )
    response = HttpResponse(svg, content_type="image/svg+xml")
    filename = exports.export_filename(batch, "chart", "svg")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_GET
@role_required(Role.RESEARCHER, Role.ADMIN)
def batch_export(request: HttpRequest, batch_id: int, what: str, fmt: str) -> HttpResponse:
    """Stream an export with constant memory; the download is written to the audit log."""
    batch = batch_or_404(batch_id)
    if what not in exports.WHATS or fmt not in exports.FORMATS:
        raise Http404("No such export.")
    audit(request.user, AuditEvent.Action.EXPORT, batch, f"{what}.{fmt}")
    response = StreamingHttpResponse(
        exports.export(batch, what, fmt), content_type=exports.CONTENT_TYPES[fmt]
    )
    filename = exports.export_filename(batch, what, fmt)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_GET
@role_required(Role.RESEARCHER, Role.ADMIN)
def overview(request: HttpRequest) -> HttpResponse:
    """Across batches, grouped by dataset label: the study's table and figure."""
    exclude_flagged = request.GET.get("exclude_flagged") == "1"
    by_dataset: dict[str, list[Batch]] = {}
    for batch in Batch.objects.order_by("dataset", "name"):
        by_dataset.setdefault(batch.dataset, []).append(batch)
    datasets, tables = [], {}
    for dataset, batches in by_dataset.items():
        ids = [b.pk for b in batches]
        data = analysis.load_judgments(ids, excluded_for(batches, exclude_flagged))
        tables[dataset] = analysis.results_table(data)
        systems = sorted({(b.system_a, b.system_b) for b in batches})
        datasets.append(
            {"name": dataset, "batches": batches, "systems": systems, "rows": criterion_rows(data)}
        )
    # One family for Holm's adjustment: every criterion of every dataset on this page.
    analysis.with_holm([row["level"] for d in datasets for row in d["rows"]])
    pairs = {(b.system_a, b.system_b) for bs in by_dataset.values() for b in bs}
    system_a, system_b = next(iter(pairs)) if len(pairs) == 1 else ("system A", "system B")
    context = {
        "datasets": datasets,
        "chart": stacked_bars_svg(tables, system_a=system_a, system_b=system_b) if tables else "",
        "mixed_systems": len(pairs) > 1,
        "exclude_flagged": exclude_flagged,
        "seed": analysis.BOOTSTRAP_SEED,
    }
    return render(request, "research/overview.html", context)
