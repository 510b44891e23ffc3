from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("crowd/<int:study_id>/join/<str:platform>/", views.join, name="crowd_join"),
    path("crowd/<int:study_id>/consent/", views.consent, name="crowd_consent"),
    path("crowd/<int:study_id>/guidelines/", views.guidelines, name="crowd_guidelines"),
    path("crowd/<int:study_id>/training/", views.training, name="crowd_training"),
    path("crowd/<int:study_id>/survey/", views.survey, name="crowd_survey"),
    path("crowd/<int:study_id>/complete/", views.complete, name="crowd_complete"),
    path("crowd/<int:study_id>/ended/", views.ended, name="crowd_ended"),
    path("crowd/<int:study_id>/withdraw/", views.withdraw, name="crowd_withdraw"),
    path("manage/batches/<int:batch_id>/crowd/", views.study_manage, name="crowd_study"),
    path(
        "manage/batches/<int:batch_id>/crowd/training/",
        views.training_upload,
        name="crowd_training_upload",
    ),
    path(
        "manage/batches/<int:batch_id>/crowd/participants/",
        views.participants,
        name="crowd_participants",
    ),
    path(
        "manage/batches/<int:batch_id>/crowd/participants/<int:participant_id>/flag/",
        views.flag,
        name="crowd_flag",
    ),
    path(
        "batches/<int:batch_id>/crowd/participants.<str:fmt>",
        views.participants_export,
        name="crowd_export",
    ),
]
