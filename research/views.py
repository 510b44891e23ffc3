"""The researchers' batch page (progress, scoring, summaries with their scores) and the helpers
that the results and dashboard pages share."""

from __future__ import annotations

from django.core.paginator import Page, Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from evaluation.models import Batch, Role, Summary
from evaluation.progress import progress_of
from evaluation.roles import role_required
from scoring.metrics import FAMILIES
from scoring.models import MetricScore
from scoring.services import batch_scoring_status


def batch_or_404(batch_id: int) -> Batch:
    batch = Batch.objects.filter(pk=batch_id).first()
    if batch is None:
        raise Http404("No such batch.")
    return batch


def scoring_context(batch: Batch) -> dict:
    families = batch_scoring_status(batch.pk)
    return {
        "batch": batch,
        "families": families,
        "scoring_running": any(f.running for f in families),
    }


def polled_partial(
    request: HttpRequest, template: str, context: dict, *, moving: bool
) -> HttpResponse:
    """A partial that htmx polls; status 286 tells htmx to stop once nothing can change."""
    response = render(request, template, context)
    if not moving:
        response.status_code = 286
    return response


@require_GET
@role_required(Role.RESEARCHER, Role.ADMIN)
def batch_detail(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch = batch_or_404(batch_id)
    context = {
        **scoring_context(batch),
        "progress": progress_of(batch),
        "scores": score_page(request, batch),
    }
    return render(request, "research/batch_detail.html", context)


@require_GET
@role_required(Role.RESEARCHER, Role.ADMIN)
def batch_scoring(request: HttpRequest, batch_id: int) -> HttpResponse:
    """The scoring progress partial, polled until nothing runs."""
    batch = batch_or_404(batch_id)
    context = scoring_context(batch)
    return polled_partial(
        request, "research/batch_detail.html#scoring", context, moving=context["scoring_running"]
    )


def score_page(request: HttpRequest, batch: Batch) -> Page:
    """One page of the batch's summaries, each with `headlines`: per family (registry order),
    (family, its headline metric's score or None)."""
    summaries = Summary.objects.filter(document__batch=batch).select_related("document")
    page = Paginator(summaries.order_by("document_id", "system"), 50).get_page(
        request.GET.get("page")
    )
    headlines = [f.headline for f in FAMILIES]
    scores = MetricScore.objects.filter(summary__in=[s.pk for s in page], metric__in=headlines)
    by_summary: dict[int, dict] = {}
    for score in scores:
        by_summary.setdefault(score.summary_id, {})[score.metric] = score
    for summary in page:
        found = by_summary.get(summary.pk, {})
        summary.headlines = [(f, found.get(f.headline)) for f in FAMILIES]
    return page
