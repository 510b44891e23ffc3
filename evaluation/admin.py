from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse

from .admin_base import ReadOnlyAdmin
from .models import Assignment, AuditEvent, Batch, Comparison, Document, Judgment, Summary


@admin.register(Batch)
class BatchAdmin(ReadOnlyAdmin):
    list_display = [
        "name",
        "dataset",
        "system_a",
        "system_b",
        "annotators_per_item",
        "status",
        "created_at",
    ]
    list_filter = ["status", "dataset"]
    search_fields = ["name", "dataset", "system_a", "system_b"]
    filter_horizontal = ["annotators", "annotator_groups"]
    readonly_fields = ["created_by", "created_at", "updated_at", "source_filename"]

    def view_on_site(self, obj: Batch) -> str:
        # "View on site" opens the batch page with its live scoring progress.
        return reverse("batch_detail", args=[obj.pk])


@admin.register(Document)
class DocumentAdmin(ReadOnlyAdmin):
    list_display = ["external_id", "batch", "has_reference"]
    list_filter = ["batch"]
    search_fields = ["external_id", "source", "reference"]
    list_select_related = ["batch"]

    @admin.display(boolean=True)
    def has_reference(self, obj: Document) -> bool:
        return bool(obj.reference)


@admin.register(Summary)
class SummaryAdmin(ReadOnlyAdmin):
    list_display = ["id", "document", "system", "batch"]
    list_filter = ["system", "document__batch"]
    search_fields = ["text", "document__external_id", "system"]
    list_select_related = ["document__batch"]
    raw_id_fields = ["document"]

    @admin.display(ordering="document__batch__name")
    def batch(self, obj: Summary) -> str:
        return obj.document.batch.name


@admin.register(Comparison)
class ComparisonAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "batch",
        "document",
        "is_check",
        "check_state",
        "annotations_done",
        "annotations_needed",
    ]
    list_filter = ["batch", "is_check", "check_state"]
    search_fields = ["document__external_id"]
    list_select_related = ["batch", "document"]
    raw_id_fields = ["document", "summary_a", "summary_b"]


class JudgmentInline(admin.TabularInline):
    model = Judgment
    extra = 0

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "annotator",
        "comparison",
        "status",
        "left_system",
        "served_at",
        "submitted_at",
        "active_seconds",
    ]
    list_filter = ["status", "comparison__batch", "left_system"]
    search_fields = ["annotator__username", "comparison__document__external_id"]
    list_select_related = ["annotator", "comparison__batch", "comparison__document"]
    raw_id_fields = ["comparison", "annotator"]
    inlines = [JudgmentInline]


@admin.register(Judgment)
class JudgmentAdmin(ReadOnlyAdmin):
    list_display = ["id", "assignment", "criterion", "verdict", "shown"]
    list_filter = ["criterion", "verdict", "shown", "assignment__comparison__batch"]
    search_fields = ["assignment__annotator__username"]
    list_select_related = ["assignment__annotator"]
    raw_id_fields = ["assignment"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """The log is written by the app, never edited."""

    list_display = ["at", "actor", "action", "batch", "target"]
    list_filter = ["action", "batch", ("at", admin.DateFieldListFilter)]
    search_fields = ["actor__username", "target"]
    date_hierarchy = "at"
    list_select_related = ["actor", "batch"]
