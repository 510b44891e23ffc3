from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from evaluation import views as evaluation_views
from research import dashboard, results
from research import views as research_views
from scoring import views as scoring_views

admin.site.site_header = "factpair administration"
admin.site.site_title = "factpair"

urlpatterns = [
    path("", evaluation_views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("annotate/<int:batch_id>/", evaluation_views.annotate, name="annotate"),
    path("annotate/<int:batch_id>/guidelines/", evaluation_views.guidelines, name="guidelines"),
    path("judge/<int:assignment_id>/", evaluation_views.assignment, name="assignment"),
    path("judge/<int:assignment_id>/submit/", evaluation_views.submit, name="submit"),
    path("judge/<int:assignment_id>/skip/", evaluation_views.skip, name="skip"),
    path("judge/<int:assignment_id>/revise/", evaluation_views.revise, name="revise"),
    path("batches/<int:batch_id>/", research_views.batch_detail, name="batch_detail"),
    path("batches/<int:batch_id>/scoring/", research_views.batch_scoring, name="batch_scoring"),
    path("results/", results.overview, name="results_overview"),
    path("results/chart.<str:fmt>", results.overview_chart, name="results_chart"),
    path("results/export/<str:what>.<str:fmt>", results.overview_export, name="results_export"),
    path("batches/<int:batch_id>/results/", results.batch_results, name="batch_results"),
    path("batches/<int:batch_id>/results/chart.<str:fmt>", results.batch_chart, name="batch_chart"),
    path(
        "batches/<int:batch_id>/export/<str:what>.<str:fmt>",
        results.batch_export,
        name="batch_export",
    ),
    path("summaries/<int:summary_id>/quals/", scoring_views.summary_quals, name="summary_quals"),
    path("manage/", dashboard.dashboard, name="dashboard"),
    path("manage/batches/new/", dashboard.batch_new, name="batch_new"),
    path("manage/batches/<int:batch_id>/", dashboard.batch_manage, name="batch_manage"),
    path(
        "manage/batches/<int:batch_id>/progress/", dashboard.batch_progress, name="batch_progress"
    ),
    path("manage/batches/<int:batch_id>/status/", dashboard.batch_status, name="batch_status"),
    path("manage/batches/<int:batch_id>/rescore/", dashboard.batch_rescore, name="batch_rescore"),
    path("manage/batches/<int:batch_id>/checks/", dashboard.batch_checks, name="batch_checks"),
    path(
        "manage/batches/<int:batch_id>/checks/review/",
        dashboard.batch_check_review,
        name="batch_check_review",
    ),
    path(
        "manage/batches/<int:batch_id>/checks/<int:comparison_id>/decide/",
        dashboard.batch_check_decide,
        name="batch_check_decide",
    ),
    path(
        "manage/batches/<int:batch_id>/checks/pool/",
        dashboard.batch_check_pool,
        name="batch_check_pool",
    ),
    path("manage/accounts/", dashboard.accounts, name="accounts"),
    path("manage/accounts/passwords.csv", dashboard.accounts_csv, name="accounts_csv"),
    path("manage/accounts/<int:user_id>/active/", dashboard.account_active, name="account_active"),
    path("", include("crowd.urls")),
    path("admin/", admin.site.urls),
]
