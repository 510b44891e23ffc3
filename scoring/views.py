from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from evaluation.models import Role, Summary
from evaluation.roles import role_required

from .metrics import family
from .models import Metric, MetricScore

BAR_WIDTH = 14
CHART_HEIGHT = 90
MAX_SURPRISE = 12.0  # nats; a token less likely than e^-12 draws a full bar


def token_bars(detail: dict) -> dict:
    """Per-token bars for one pair: how surprising each token is under summary and document."""
    bars = []
    for i, (token, lp_s, lp_d) in enumerate(
        zip(
            detail["tokens"],
            detail["logprobs_summary"],
            detail["logprobs_document"],
            strict=True,
        )
    ):
        x = i * (2 * BAR_WIDTH + 8)
        h_s = CHART_HEIGHT * min(-lp_s, MAX_SURPRISE) / MAX_SURPRISE
        h_d = CHART_HEIGHT * min(-lp_d, MAX_SURPRISE) / MAX_SURPRISE
        bars.append(
            {
                "token": token,
                "x": x,
                "x_doc": x + BAR_WIDTH,
                "lp_s": lp_s,
                "lp_d": lp_d,
                "h_s": h_s,
                "y_s": CHART_HEIGHT - h_s,
                "h_d": h_d,
                "y_d": CHART_HEIGHT - h_d,
                "label_x": x + BAR_WIDTH,
                "worse": lp_d < lp_s - 1.0,
            }
        )
    width = max(len(bars) * (2 * BAR_WIDTH + 8), 200)
    return {**detail, "bars": bars, "width": width}


@require_GET
@role_required(Role.RESEARCHER, Role.ADMIN)
def summary_quals(request: HttpRequest, summary_id: int) -> HttpResponse:
    """Why a summary got its QUALS: the selected pairs, the ones that pull it down first."""
    summary = Summary.objects.select_related("document__batch").filter(pk=summary_id).first()
    if summary is None:
        raise Http404("No such summary.")
    score = MetricScore.objects.filter(summary=summary, metric=Metric.QUALS).first()
    pairs = []
    if score is not None:
        ranked = sorted(score.details.get("pairs", []), key=lambda p: p["contribution"])
        pairs = [token_bars(p) for p in ranked]
    context = {
        "summary": summary,
        "score": score,
        "pairs": pairs,
        "unavailable": family("quals").unavailable(),
        "chart_height": CHART_HEIGHT,
        "bar_width": BAR_WIDTH,
    }
    return render(request, "scoring/summary_quals.html", context)
