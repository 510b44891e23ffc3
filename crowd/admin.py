from __future__ import annotations

from django.contrib import admin

from evaluation.admin_base import ReadOnlyAdmin

from .models import CrowdStudy, Participant, TrainingItem


@admin.register(CrowdStudy)
class CrowdStudyAdmin(admin.ModelAdmin):
    list_display = ["batch", "enabled", "created_at"]
    exclude = ["token"]


@admin.register(TrainingItem)
class TrainingItemAdmin(admin.ModelAdmin):
    list_display = ["study", "position"]


@admin.register(Participant)
class ParticipantAdmin(ReadOnlyAdmin):
    list_display = ["pk", "study", "platform", "phase", "flagged", "created_at"]
    list_filter = ["platform", "phase", "flagged"]
