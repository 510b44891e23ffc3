from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from evaluation.admin_base import ReadOnlyAdmin

from .metrics import FAMILIES
from .models import MetricScore, ScoringJob


@admin.register(MetricScore)
class MetricScoreAdmin(ReadOnlyAdmin):
    list_display = ["summary", "metric", "status", "value", "version", "computed_at"]
    list_filter = ["metric", "status", "summary__document__batch"]
    search_fields = ["summary__document__external_id", "summary__system", "reason"]
    list_select_related = ["summary__document"]
    raw_id_fields = ["summary", "job"]


@admin.register(ScoringJob)
class ScoringJobAdmin(ReadOnlyAdmin):
    list_display = ["id", "batch", "kind", "status", "progress", "created_at", "finished_at"]
    list_filter = ["kind", "status", "batch"]
    search_fields = ["batch__name"]
    list_select_related = ["batch"]
    readonly_fields = ["failures"]

    @admin.display(description="done / failed / total")
    def progress(self, obj: ScoringJob) -> str:
        return f"{obj.done} / {obj.failed} / {obj.total}"

    def changelist_view(
        self, request: HttpRequest, extra_context: dict | None = None
    ) -> HttpResponse:
        extra_context = extra_context or {}
        missing = [f"{f.label}: {f.unavailable()}" for f in FAMILIES if f.unavailable()]
        extra_context["title"] = "Scoring jobs" + (f" ({'; '.join(missing)})" if missing else "")
        return super().changelist_view(request, extra_context)
