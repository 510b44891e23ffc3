"""The admins' batch dashboard: create, configure, open/pause/close, watch, re-score, accounts."""

from __future__ import annotations

import csv
import io

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from evaluation import checks
from evaluation.importing import BatchFileError
from evaluation.models import Assignment, AuditEvent, Batch, Comparison, Role, audit
from evaluation.progress import progress_of, stuck_comparisons, with_progress
from evaluation.roles import role_required
from evaluation.services import (
    BatchSettings,
    InvalidUsernames,
    add_annotators,
    allowed_annotator_ids,
    create_annotator_accounts,
    import_batch,
    release_leases,
)
from scoring.metrics import BY_KEY
from scoring.scorers import MetricUnavailable
from scoring.services import start_batch_scoring

from .exports import csv_safe
from .forms import AccountsForm, BatchSettingsForm, BatchUploadForm, CheckForm
from .views import batch_or_404, polled_partial, scoring_context

STATUS_ACTIONS = {
    "open": Batch.Status.OPEN,
    "pause": Batch.Status.PAUSED,
    "close": Batch.Status.CLOSED,
}


@require_GET
@role_required(Role.ADMIN)
def dashboard(request: HttpRequest) -> HttpResponse:
    batches = with_progress(Batch.objects.order_by("-created_at"))
    return render(request, "research/dashboard.html", {"batches": batches})


def upload_too_large(request: HttpRequest) -> bool:
    """Refuse by the declared length, before Django reads the body."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return True
    return length > settings.IMPORT_MAX_BYTES + 64 * 1024


@require_http_methods(["GET", "POST"])
@role_required(Role.ADMIN)
def batch_new(request: HttpRequest) -> HttpResponse:
    if request.method == "POST" and upload_too_large(request):
        limit = settings.IMPORT_MAX_BYTES
        form = BatchUploadForm()
        context = {"form": form, "problems": [f"The file is larger than {limit:,} bytes."]}
        return render(request, "research/batch_new.html", context, status=413)
    form = BatchUploadForm(request.POST or None, request.FILES or None)
    problems: list[str] = []
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        upload = data["file"]
        try:
            batch = import_batch(
                upload.read(),
                upload.name,
                BatchSettings(
                    name=data["name"],
                    dataset=data["dataset"],
                    system_a=data["system_a"],
                    system_b=data["system_b"],
                    annotators_per_item=data["annotators_per_item"],
                    guidelines=data["guidelines"],
                ),
                fmt=data["format"] or None,
                frank_dataset=data["frank_dataset"] or None,
                created_by=request.user,
            )
        except BatchFileError as e:
            problems = e.lines()
        else:
            return redirect("batch_manage", batch.pk)
    status = 400 if request.method == "POST" else 200
    context = {"form": form, "problems": problems}
    return render(request, "research/batch_new.html", context, status=status)


STUCK_SHOWN = 50


def progress_context(batch: Batch) -> dict:
    per_annotator = (
        Assignment.objects.filter(comparison__batch=batch, status=Assignment.Status.SUBMITTED)
        .values("annotator__username")
        .annotate(n=Count("id"))
        .order_by("annotator__username")
    )
    scoring = scoring_context(batch)
    moving = batch.status == Batch.Status.OPEN or scoring["scoring_running"]
    return {
        **scoring,
        "progress": progress_of(batch),
        # Shown by document id, at most STUCK_SHOWN of them; the count is of all.
        "stuck": list(stuck_comparisons(batch)[: STUCK_SHOWN + 1]),
        "stuck_shown": STUCK_SHOWN,
        "per_annotator": per_annotator,
        "moving": moving,
        "rescorable": [s.family for s in scoring["families"] if not s.unavailable],
    }


@require_http_methods(["GET", "POST"])
@role_required(Role.ADMIN)
def batch_manage(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch = batch_or_404(batch_id)
    form = BatchSettingsForm(request.POST or None, instance=batch)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            allowed_before = allowed_annotator_ids(batch)
            form.save()
            release_leases(batch, allowed_before - allowed_annotator_ids(batch), request.user)
            Comparison.objects.filter(batch=batch, is_check=False).update(
                annotations_needed=batch.annotators_per_item
            )
            audit(
                request.user,
                AuditEvent.Action.BATCH_CHANGE,
                batch,
                "settings",
                changed=form.changed_data,
            )
        return redirect("batch_manage", batch.pk)
    context = {
        **progress_context(batch),
        "form": form,
        "check_form": CheckForm(),
        "accuracy": checks.check_accuracy(batch),
        "n_checks": Comparison.objects.filter(batch=batch, is_check=True).count(),
        "problems": Assignment.objects.filter(comparison__batch=batch)
        .exclude(problem_report="")
        .select_related("annotator", "comparison__document")[:50],
    }
    status = 400 if request.method == "POST" else 200
    return render(request, "research/batch_manage.html", context, status=status)


@require_GET
@role_required(Role.ADMIN)
def batch_progress(request: HttpRequest, batch_id: int) -> HttpResponse:
    """The live progress partial, polled until nothing can move."""
    batch = batch_or_404(batch_id)
    context = progress_context(batch)
    return polled_partial(
        request, "research/batch_manage.html#progress", context, moving=context["moving"]
    )


@require_POST
@role_required(Role.ADMIN)
def batch_status(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch = batch_or_404(batch_id)
    new = STATUS_ACTIONS.get(request.POST.get("action", ""))
    if new is None:
        return HttpResponse("Unknown action.", status=400)
    old = batch.status
    Batch.objects.filter(pk=batch.pk).update(status=new)
    audit(request.user, AuditEvent.Action.BATCH_CHANGE, batch, "status", old=old, new=new)
    return redirect("batch_manage", batch.pk)


@require_POST
@role_required(Role.ADMIN)
def batch_rescore(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch = batch_or_404(batch_id)
    metric = request.POST.get("metric", "")
    kinds = [metric] if metric in BY_KEY else None
    force = request.POST.get("force") == "1"
    try:
        jobs = start_batch_scoring(batch.pk, kinds, force=force, requested_by=request.user)
    except MetricUnavailable as e:
        return HttpResponse(str(e), status=400)
    audit(
        request.user,
        AuditEvent.Action.SCORING,
        batch,
        "re-score",
        jobs=[j.pk for j in jobs],
        force=force,
    )
    return redirect("batch_manage", batch.pk)


@require_POST
@role_required(Role.ADMIN)
def batch_checks(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch = batch_or_404(batch_id)
    if request.POST.get("action") == "create":
        try:
            count = max(0, min(int(request.POST.get("count", "0")), 500))
        except ValueError:
            return HttpResponse("The number of checks must be a whole number.", status=400)
        made = checks.create_attention_checks(batch, count)
        audit(request.user, AuditEvent.Action.BATCH_CHANGE, batch, "checks", created=len(made))
        return redirect("batch_manage", batch.pk)
    form = CheckForm(request.POST)
    comparison = None
    if form.is_valid():
        comparison = Comparison.objects.filter(
            batch=batch, pk=form.cleaned_data["comparison"]
        ).first()
    if comparison is None:
        return HttpResponse("No such comparison in this batch.", status=400)
    try:
        checks.mark_as_check(comparison, form.expected())
    except ValueError as e:
        return HttpResponse(str(e), status=400)
    audit(
        request.user,
        AuditEvent.Action.BATCH_CHANGE,
        batch,
        f"comparison {comparison.pk} marked as check",
        expected=form.expected(),
    )
    return redirect("batch_manage", batch.pk)


@require_http_methods(["GET", "POST"])
@role_required(Role.ADMIN)
def accounts(request: HttpRequest) -> HttpResponse:
    form = AccountsForm(request.POST or None)
    created: dict[str, str | None] = {}
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            created = create_accounts(request, form)
        except InvalidUsernames as e:
            form.add_error("usernames", str(e))
    if request.method == "POST" and not form.is_valid():
        status = 400
    annotators = (
        User.objects.filter(groups__name=Role.ANNOTATOR)
        .prefetch_related("annotation_batches")
        .order_by("username")
    )
    context = {
        "form": form,
        "created": {u: p for u, p in created.items() if p},
        "annotators": annotators,
    }
    response = render(request, "research/accounts.html", context, status=status)
    # The page shows new passwords: no browser or proxy may keep a copy.
    response["Cache-Control"] = "no-store"
    return response


def create_accounts(request: HttpRequest, form: AccountsForm) -> dict[str, str | None]:
    batch = form.cleaned_data["batch"]
    usernames = form.cleaned_data["usernames"]
    if batch is None:
        created = create_annotator_accounts(usernames)
    else:
        created = add_annotators(batch, usernames)
    new = {u: p for u, p in created.items() if p}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["username", "password"])
    writer.writerows(csv_safe(row) for row in new.items())
    # Shown once on this page and downloadable once: the session forgets it when downloaded.
    request.session["accounts_csv"] = out.getvalue()
    audit(
        request.user,
        AuditEvent.Action.ACCOUNT,
        batch,
        "bulk create",
        created=sorted(new),
        allowed=sorted(created) if batch else [],
    )
    return created


@require_GET
@role_required(Role.ADMIN)
def accounts_csv(request: HttpRequest) -> HttpResponse:
    content = request.session.pop("accounts_csv", None)
    if content is None:
        return HttpResponse(
            "These passwords were already downloaded or never created; they are not kept.",
            status=410,
            content_type="text/plain",
        )
    response = HttpResponse(content, content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="new-annotators.csv"'
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@role_required(Role.ADMIN)
def account_active(request: HttpRequest, user_id: int) -> HttpResponse:
    user = User.objects.filter(pk=user_id, groups__name=Role.ANNOTATOR).first()
    if user is None:
        raise Http404("No such annotator.")
    user.is_active = request.POST.get("active") == "1"
    user.save(update_fields=["is_active"])
    state = "activated" if user.is_active else "deactivated"
    audit(request.user, AuditEvent.Action.ACCOUNT, None, f"{user.username} {state}")
    return redirect("accounts")
