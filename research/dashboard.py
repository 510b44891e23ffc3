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
from django.urls import reverse
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

from . import planning
from .exports import csv_safe
from .forms import (
    AccountsForm,
    BatchSettingsForm,
    BatchUploadForm,
    CheckForm,
    CheckPoolForm,
    PowerForm,
)
from .views import batch_or_404, polled_partial, scoring_context

# A refused form is shown again with the reasons beside its fields: 422, not 400, because
# django-htmx's development-mode script replaces the whole page with the body of a 400 answer
# to an htmx request (base.html's htmx config swaps a 422 in like any answer).
REFUSED = 422

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
    status = REFUSED if request.method == "POST" else 200
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


def power_context(request: HttpRequest, batch: Batch) -> dict:
    """The underpowered warning of an open batch (from its stored settings) and the what-if
    power calculator, computed when its GET form is submitted (`plan` in the query)."""
    warning = planning.underpowered_warning(batch)
    initial = {
        "k": batch.annotators_per_item,
        "comparisons": batch.comparisons.filter(is_check=False).count() or None,
        "better": batch.planned_b_better,
        "equal": batch.planned_equal,
        "worse": batch.planned_a_better,
        "rho": batch.planned_rho,
    }
    asked = "plan" in request.GET
    form = PowerForm(request.GET if asked else None, initial=initial)
    result, problem = None, ""
    if asked and form.is_valid():
        result, problem = plan_from_form(form.cleaned_data)
    return {"power_warning": warning, "power_form": form, "power": result, "power_problem": problem}


def plan_from_form(data: dict) -> tuple[planning.PowerPlan | None, str]:
    shares, rho, source = (data["better"], data["equal"], data["worse"]), data["rho"], "entered"
    try:
        if data["pilot"]:
            pilot = planning.pilot_of(data["pilot"])
            shares, source = pilot.shares, f"pilot batch {data['pilot'].name}, factual"
            rho = planning.pilot_rho(pilot) if rho is None else rho
        rho = planning.DEFAULT_RHO if rho is None else rho
        return planning.plan(shares, data["k"], data["comparisons"], rho, source=source), ""
    except planning.PlanError as e:
        return None, str(e)


def autofocus_first_error(form) -> None:
    """The first field refused gets the focus, on a full page as in an htmx swap."""
    for name in form.errors:
        if name in form.fields:
            form.fields[name].widget.attrs["autofocus"] = True
            return


@require_http_methods(["GET", "POST"])
@role_required(Role.ADMIN)
def batch_manage(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch = batch_or_404(batch_id)
    power = power_context(request, batch)  # before the form: an invalid form edits `batch`
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
        if request.htmx:  # the whole page again, with the new settings everywhere on it
            url = reverse("batch_manage", args=[batch.pk])
            return HttpResponse(status=204, headers={"HX-Redirect": url})
        return redirect("batch_manage", batch.pk)
    if request.method != "POST":
        return manage_page(request, batch, power, form)
    autofocus_first_error(form)
    if request.htmx:  # only the form, in place: the rest of the page stays as it is
        context = {"batch": batch, "form": form}
        return render(request, "research/batch_manage.html#settings", context, status=REFUSED)
    return manage_page(request, batch, power, form, status=REFUSED)


def manage_page(
    request: HttpRequest,
    batch: Batch,
    power: dict | None = None,
    form: BatchSettingsForm | None = None,
    *,
    status: int = 200,
    **extra,
) -> HttpResponse:
    """The batch page; a refused form of it (settings, checks, re-scoring) is passed in, with
    its reasons, to be shown where it stands."""
    context = {
        **progress_context(batch),
        **(power if power is not None else power_context(request, batch)),
        "form": form or BatchSettingsForm(instance=batch),
        "check_form": CheckForm(),
        "accuracy": checks.check_accuracy(batch),
        "n_checks": Comparison.objects.filter(batch=batch, is_check=True).count(),
        "n_approved": checks.approved_count(batch),
        "n_pending": checks.pending_checks(batch).count(),
        "n_pool": checks.pool_size(batch),
        "without_checks": len(
            checks.annotators_without_checks(batch, allowed_annotator_ids(batch))
        ),
        "n_allowed": len(allowed_annotator_ids(batch)),
        "problems": Assignment.objects.filter(comparison__batch=batch)
        .exclude(problem_report="")
        .select_related("annotator", "comparison__document")[:50],
        **extra,
    }
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
        return manage_page(request, batch, status=REFUSED, rescore_error=str(e), metric=metric)
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
            message = "The number of checks must be a whole number."
            return manage_page(
                request, batch, status=REFUSED, count_error=message, count=request.POST["count"]
            )
        made = checks.create_attention_checks(batch, count)
        audit(request.user, AuditEvent.Action.BATCH_CHANGE, batch, "checks", created=len(made))
        return redirect("batch_check_review", batch.pk)
    form = CheckForm(request.POST)
    comparison = None
    if form.is_valid():
        comparison = Comparison.objects.filter(
            batch=batch, pk=form.cleaned_data["comparison"]
        ).first()
        if comparison is None:
            form.add_error("comparison", "No such comparison in this batch.")
    if comparison is not None:
        try:
            checks.mark_as_check(comparison, form.expected())
        except ValueError as e:
            form.add_error(None, str(e))
    if not form.is_valid():
        autofocus_first_error(form)
        return manage_page(request, batch, status=REFUSED, check_form=form)
    audit(
        request.user,
        AuditEvent.Action.BATCH_CHANGE,
        batch,
        f"comparison {comparison.pk} marked as check",
        expected=form.expected(),
    )
    return redirect("batch_manage", batch.pk)


def _highlighted(text: str, start: int, length: int) -> tuple[str, str, str]:
    return text[:start], text[start : start + length], text[start + length :]


def check_preview(check: Comparison) -> dict:
    """A pending check as the admin reviews it: both texts, the swapped fact marked in each."""
    swap = check.expected.get("swap") or {}
    start = swap.get("start", 0)
    return {
        "check": check,
        "swap": swap,
        "faithful": _highlighted(check.summary_a.text, start, len(swap.get("original", ""))),
        "corrupted": _highlighted(check.summary_b.text, start, len(swap.get("replacement", ""))),
    }


@require_GET
@role_required(Role.ADMIN)
def batch_check_review(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch = batch_or_404(batch_id)
    return render(request, "research/check_review.html", _review_context(batch, CheckPoolForm()))


def _review_context(batch: Batch, pool_form, problems=()) -> dict:
    return {
        "batch": batch,
        "previews": [check_preview(c) for c in checks.pending_checks(batch)[:100]],
        "n_approved": checks.approved_count(batch),
        "n_pool": checks.pool_size(batch),
        "pool_form": pool_form,
        "problems": list(problems),
    }


@require_POST
@role_required(Role.ADMIN)
def batch_check_decide(request: HttpRequest, batch_id: int, comparison_id: int) -> HttpResponse:
    batch = batch_or_404(batch_id)
    check = Comparison.objects.filter(batch=batch, pk=comparison_id, is_check=True).first()
    if check is None:
        raise Http404("No such check in this batch.")
    action = request.POST.get("action")
    if action == "approve":
        done = checks.approve_check(check)
    elif action == "discard":
        done = checks.discard_check(check)
    else:
        return HttpResponse("Unknown action.", status=400)
    if not done:
        return HttpResponse("This check is no longer waiting for a decision.", status=409)
    audit(request.user, AuditEvent.Action.BATCH_CHANGE, batch, f"check {check.pk} {action}d")
    return redirect("batch_check_review", batch.pk)


@require_POST
@role_required(Role.ADMIN)
def batch_check_pool(request: HttpRequest, batch_id: int) -> HttpResponse:
    """Upload documents for checks only (the import format), then make checks from them."""
    batch = batch_or_404(batch_id)
    if upload_too_large(request):
        return HttpResponse("The file is too large.", status=413)
    form = CheckPoolForm(request.POST, request.FILES)
    if not form.is_valid():
        return render(
            request, "research/check_review.html", _review_context(batch, form), status=REFUSED
        )
    upload = form.cleaned_data["file"]
    try:
        added = checks.add_check_pool(
            batch, upload.read(), upload.name, form.cleaned_data["format"] or None
        )
    except BatchFileError as e:
        context = _review_context(batch, form, e.lines())
        return render(request, "research/check_review.html", context, status=REFUSED)
    made = checks.create_attention_checks(batch, added)
    audit(
        request.user,
        AuditEvent.Action.BATCH_CHANGE,
        batch,
        "check pool",
        documents=added,
        created=len(made),
    )
    return redirect("batch_check_review", batch.pk)


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
        status = REFUSED
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
