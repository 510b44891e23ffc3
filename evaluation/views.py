from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import assignments as engine
from .aids import reading_aids
from .criteria import CRITERIA, SHOWN_CHOICES, keyboard_map, page_keys
from .models import Assignment, Batch, Role, user_role
from .progress import annotator_progress, with_progress
from .roles import role_required
from .signals import after_work_url


def batches_for_annotator(user: User) -> QuerySet[Batch]:
    allowed = Q(annotators=user) | Q(annotator_groups__in=user.groups.all())
    return Batch.objects.filter(allowed).distinct()


def _annotator_batch(user, batch_id: int) -> Batch:
    """The batch if this annotator may work on it; 404 otherwise, so ids reveal nothing."""
    batch = batches_for_annotator(user).filter(pk=batch_id).first()
    if batch is None or batch.status == Batch.Status.DRAFT:
        raise Http404("No such batch.")
    return batch


def _own_assignment(user, assignment_id: int, batch: Batch | None = None) -> Assignment:
    """The annotator's assignment with the texts its page shows; 404 for anybody else's.

    Pass the batch when it is already in hand: one join less on the judging hot path.
    """
    related = ["comparison__document", "comparison__summary_a", "comparison__summary_b"]
    assignment = (
        Assignment.objects.select_related(*related, *([] if batch else ["comparison__batch"]))
        .filter(pk=assignment_id, annotator=user)
        .first()
    )
    if assignment is None:
        raise Http404("No such comparison.")
    if batch is not None:
        assignment.comparison.batch = batch
    return assignment


def batches_overview() -> list[Batch]:
    return list(with_progress(Batch.objects.order_by("-created_at")))


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    role = user_role(request.user)
    if role == Role.ADMIN:
        return redirect("dashboard")
    if role == Role.RESEARCHER:
        return render(request, "evaluation/home_researcher.html", {"batches": batches_overview()})
    if role == Role.ANNOTATOR:
        batches = list(
            batches_for_annotator(request.user)
            .filter(status__in=[Batch.Status.OPEN, Batch.Status.PAUSED])
            .order_by("name")
        )
        for batch in batches:
            batch.mine = annotator_progress(request.user.pk, batch)
        return render(request, "evaluation/home_annotator.html", {"batches": batches})
    return render(request, "evaluation/home_no_role.html", status=403)


@require_GET
@role_required(Role.ANNOTATOR)
def guidelines(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch = _annotator_batch(request.user, batch_id)
    return render(request, "evaluation/guidelines.html", {"batch": batch})


@require_GET
@role_required(Role.ANNOTATOR)
def annotate(request: HttpRequest, batch_id: int) -> HttpResponse:
    """Continue the batch: the annotator's current comparison, or the next one."""
    batch = _annotator_batch(request.user, batch_id)
    first_visit = not Assignment.objects.filter(annotator=request.user, batch=batch).exists()
    if first_visit and batch.guidelines.strip() and "start" not in request.GET:
        return render(request, "evaluation/guidelines.html", {"batch": batch, "first": True})
    try:
        assignment = engine.lease_next(request.user, batch)
    except engine.BatchNotOpen as e:
        return _stopped(request, batch, str(e))
    if assignment is None:
        return _stopped(request, batch, None)
    return redirect("assignment", assignment.pk)


def _stopped(request: HttpRequest, batch: Batch, message: str | None) -> HttpResponse:
    onward = None if message else after_work_url(request.user, batch)
    if onward:
        return redirect(onward)
    progress = annotator_progress(request.user.pk, batch)
    context = {"batch": batch, "message": message, "done": progress.done}
    context |= {"undo": _undo_on_load(request.user, batch), "page_keys": page_keys()}
    return render(request, "evaluation/finished.html", context)


def comparison_context(assignment: Assignment, **extra) -> dict:
    comparison = assignment.comparison
    a, b = comparison.summary_a.text, comparison.summary_b.text
    left, right = (a, b) if assignment.left_system == "A" else (b, a)
    # "12 of 40": one query, paid on every comparison (evaluation.progress).
    progress = annotator_progress(assignment.annotator_id, comparison.batch)
    answers = extra.get("answers", {})
    criteria = [
        {
            "name": c.key,
            "label": c.label,
            "definition": c.definition,
            "choices": list(zip(SHOWN_CHOICES, c.keys, strict=True)),
            "chosen": answers.get(c.key),
        }
        for c in CRITERIA
    ]
    batch = comparison.batch
    source = comparison.document.source
    return {
        "assignment": assignment,
        "batch": batch,
        "source": source,
        # Paragraphs, marks and the word diff as segments the template escapes; from the texts
        # in hand, no query. Marks are the same for either side: they reveal no system.
        "aids": reading_aids(
            source, left, right, highlights=batch.aid_highlights, diff=batch.aid_word_diff
        ),
        "left": left,
        "right": right,
        "criteria": criteria,
        # The keyboard map as data for annotate.js: key -> [criterion, shown answer].
        "keymap": keyboard_map(),
        # The page's other keys (skip, report, guidelines, ...): action -> key.
        "page_keys": page_keys(),
        "progress": progress,
        **extra,
    }


def undo_offer(stored: Assignment | None, batch: Batch, now=None) -> dict | None:
    """The "Undo last" control's data for a submission the annotator may still change: its id
    and the seconds left (the page hides the control then; the server decides on saving)."""
    if stored is None:
        return None
    deadline = engine.undo_deadline(stored, batch)
    left = deadline and (deadline - (now or timezone.now())).total_seconds()
    return {"pk": stored.pk, "seconds": int(left)} if left and left > 0 else None


def _undo_on_load(user, batch: Batch) -> dict | None:
    """The undo control on a plain page load: one query (never on the submit path)."""
    now = timezone.now()
    return undo_offer(engine.undoable(user, batch, now), batch, now)


# Judging pages are never stored by the browser (no-store): Back must ask the server again,
# which then says what became of the comparison instead of showing a stale copy.
@require_GET
@role_required(Role.ANNOTATOR)
@never_cache
def assignment(request: HttpRequest, assignment_id: int) -> HttpResponse:
    item = _own_assignment(request.user, assignment_id)
    batch = item.comparison.batch
    if item.status == Assignment.Status.SUBMITTED:
        # Back to a submitted comparison: say so, never show it as if it could be submitted.
        return _submitted_page(request, item)
    if item.status != Assignment.Status.LEASED:
        # Given back: going back to it shows the next one.
        return redirect("annotate", batch.pk)
    undo = _undo_on_load(request.user, batch)
    return render(request, "evaluation/annotate.html", comparison_context(item, undo=undo))


def _submitted_page(
    request: HttpRequest, item: Assignment, error: str | None = None, status: int = 200
) -> HttpResponse:
    batch = item.comparison.batch
    undo = _undo_on_load(request.user, batch)
    context = {
        "batch": batch,
        "assignment": item,
        "undo": undo,
        "error": error,
        "page_keys": page_keys(),
    }
    return render(request, "evaluation/submitted.html", context, status=status)


def _render_next(request: HttpRequest, batch: Batch) -> HttpResponse:
    """After a skip or a revision: the next comparison (the held one, if any) swapped in for
    htmx, a redirect otherwise."""
    if not request.htmx:
        return redirect("annotate", batch.pk)
    try:
        item, message = engine.lease_next(request.user, batch), None
    except engine.BatchNotOpen as e:
        item, message = None, str(e)
    return _next_fragment(request, batch, item, message, _undo_on_load(request.user, batch))


def _next_fragment(
    request: HttpRequest,
    batch: Batch,
    item: Assignment | None,
    message: str | None,
    undo: dict | None = None,
) -> HttpResponse:
    """The next comparison as the htmx fragment, or the finished notice (with the reason)."""
    if item is None:
        onward = None if message else after_work_url(request.user, batch)
        if onward:  # a full page elsewhere, not a fragment
            return HttpResponse(status=204, headers={"HX-Redirect": onward})
        progress = annotator_progress(request.user.pk, batch)
        context = {"batch": batch, "message": message, "done": progress.done}
        context |= {"undo": undo, "page_keys": page_keys()}  # the last one may still change
        response = render(request, "evaluation/finished.html#work", context)
        response["HX-Push-Url"] = reverse("annotate", args=[batch.pk]) + "?start"
        return response
    item = _own_assignment(request.user, item.pk, batch)
    context = comparison_context(item, undo=undo)
    response = render(request, "evaluation/annotate.html#work", context)
    response["HX-Push-Url"] = reverse("assignment", args=[item.pk])
    return response


def _refused(
    request: HttpRequest,
    assignment_id: int,
    message: str,
    status: int,
    answers: dict[str, str] | None = None,
    *,
    move_on: bool = False,
) -> HttpResponse:
    """The comparison again with the reason (and, when it is gone for them, a link to their
    next comparison); 404 when it is not this annotator's."""
    item = _own_assignment(request.user, assignment_id)
    template = "evaluation/annotate.html#work" if request.htmx else "evaluation/annotate.html"
    context = comparison_context(item, error=message, answers=answers or {}, move_on=move_on)
    return render(request, template, context, status=status)


def _active_seconds(raw: str | None) -> float | None:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if 0 <= value < 7 * 24 * 3600 else None


@require_POST
@role_required(Role.ANNOTATOR)
@never_cache
def submit(request: HttpRequest, assignment_id: int) -> HttpResponse:
    answers = {c.key: request.POST.get(c.key, "") for c in CRITERIA}
    seconds = _active_seconds(request.POST.get("active_seconds"))
    try:
        if request.htmx:  # the next comparison is leased in the same transaction
            stored, item, message = engine.submit_and_lease_next(
                request.user, assignment_id, answers, seconds
            )
        else:
            stored = engine.submit_judgments(request.user, assignment_id, answers, seconds)
    except engine.IncompleteSubmission as e:
        return _refused(request, assignment_id, str(e), 422, answers)
    except engine.SubmissionRefused as e:
        return _refused(request, assignment_id, str(e), 409, answers, move_on=e.move_on)
    if not request.htmx:
        return redirect("annotate", stored.comparison.batch_id)
    # The undo control from what is in hand: the stored assignment and its time, no query.
    undo = undo_offer(stored, stored.comparison.batch)
    return _next_fragment(request, stored.comparison.batch, item, message, undo)


@require_http_methods(["GET", "POST"])
@role_required(Role.ANNOTATOR)
@never_cache
def revise(request: HttpRequest, assignment_id: int) -> HttpResponse:
    """Undo: the annotator's last submission reopened (GET) and changed (POST) within the
    batch's undo window, same screen sides, its answers chosen; then back to the held one."""
    item = _own_assignment(request.user, assignment_id)
    answers = {c.key: request.POST.get(c.key, "") for c in CRITERIA}
    try:
        if request.method == "GET":
            engine.check_revisable(request.user, item, timezone.now())
            answers = engine.stored_answers(item)
        else:
            engine.revise_judgments(request.user, item.pk, answers)
    except engine.IncompleteSubmission as e:
        return _revise_page(request, item, answers, error=str(e), status=422)
    except engine.SubmissionRefused as e:
        return _revise_refused(request, item, str(e))
    if request.method == "GET":
        return _revise_page(request, item, answers)
    return _render_next(request, item.comparison.batch)


def _revise_page(
    request: HttpRequest, item: Assignment, answers: dict, error: str = "", status: int = 200
) -> HttpResponse:
    template = "evaluation/annotate.html#work" if request.htmx else "evaluation/annotate.html"
    context = comparison_context(item, answers=answers, revising=True, error=error)
    return render(request, template, context, status=status)


def _revise_refused(request: HttpRequest, item: Assignment, message: str) -> HttpResponse:
    """422 and the reason, changing nothing; for htmx in place of the page's error line, with
    a link to the current comparison (as the skip refusals answer in their panel)."""
    if not request.htmx:
        return _submitted_page(request, item, error=message, status=422)
    context = {"batch": item.comparison.batch, "error": message, "move_on": True, "current": True}
    response = render(request, "evaluation/annotate.html#form-error", context, status=422)
    response["HX-Retarget"] = "#form-error"
    response["HX-Reswap"] = "outerHTML"
    return response


@require_http_methods(["POST"])
@role_required(Role.ANNOTATOR)
def skip(request: HttpRequest, assignment_id: int) -> HttpResponse:
    problem = request.POST.get("kind") == "problem"
    reason = request.POST.get("reason", "")
    try:
        skipped = engine.skip_assignment(request.user, assignment_id, reason, problem=problem)
    except engine.SubmissionRefused as e:
        return _skip_refused(request, assignment_id, str(e), reason, problem)
    return _render_next(request, skipped.comparison.batch)


def _skip_refused(
    request: HttpRequest, assignment_id: int, message: str, reason: str, problem: bool
) -> HttpResponse:
    """422 with the reason beside the field and the panel still open; for htmx only the panel
    is swapped, so the answers already chosen and the time on task stay as they are. 422, not
    400: django-htmx's development-mode script replaces the whole page on a 400."""
    item = _own_assignment(request.user, assignment_id)
    skip = {
        "skip_error": message,
        "skip_reason": reason,
        "skip_kind": "problem" if problem else "skip",
    }
    if not request.htmx:
        return render(
            request, "evaluation/annotate.html", comparison_context(item, **skip), status=422
        )
    context = {"assignment": item, "batch": item.comparison.batch, **skip}
    response = render(request, "evaluation/annotate.html#skip", context, status=422)
    response["HX-Retarget"] = "#skip-panel"
    response["HX-Reswap"] = "outerHTML"
    return response
