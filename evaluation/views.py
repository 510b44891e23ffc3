from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Q, Sum
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import assignments as engine
from .models import Assignment, Batch, Criterion, Role, Summary, user_role

KEYS = {
    Criterion.FACTUAL: ("q", "w", "e"),
    Criterion.INFORMATIVE: ("a", "s", "d"),
    Criterion.GRAMMATICAL: ("z", "x", "c"),
}


def role_required(*roles: str):
    """Log in first; then only these roles may pass (403 for the others)."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(request, *args, **kwargs):
            if user_role(request.user) not in roles:
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def batches_for_annotator(user):
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


# Attention checks never count in progress or results.
REAL = Q(comparisons__is_check=False)


def batches_overview() -> list[Batch]:
    return list(
        Batch.objects.annotate(
            n_comparisons=Count("comparisons", filter=REAL),
            n_done=Sum("comparisons__annotations_done", filter=REAL),
            n_needed=Sum("comparisons__annotations_needed", filter=REAL),
        ).order_by("-created_at")
    )


@require_GET
@login_required
def home(request):
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
            batch.done_by_me, batch.available_to_me = engine.progress_for(request.user, batch)
        return render(request, "evaluation/home_annotator.html", {"batches": batches})
    return render(request, "evaluation/home_no_role.html", status=403)


@require_GET
@role_required(Role.ANNOTATOR)
def guidelines(request, batch_id: int):
    batch = _annotator_batch(request.user, batch_id)
    return render(request, "evaluation/guidelines.html", {"batch": batch})


@require_GET
@role_required(Role.ANNOTATOR)
def annotate(request, batch_id: int):
    """Continue the batch: the annotator's current comparison, or the next one."""
    batch = _annotator_batch(request.user, batch_id)
    first_visit = not Assignment.objects.filter(
        annotator=request.user, comparison__batch=batch
    ).exists()
    if first_visit and batch.guidelines.strip() and "start" not in request.GET:
        return render(request, "evaluation/guidelines.html", {"batch": batch, "first": True})
    try:
        assignment = engine.lease_next(request.user, batch)
    except engine.BatchNotOpen as e:
        return _stopped(request, batch, str(e))
    if assignment is None:
        return _stopped(request, batch, None)
    return redirect("assignment", assignment.pk)


def _stopped(request, batch: Batch, message: str | None) -> HttpResponse:
    done, available = engine.progress_for(request.user, batch)
    context = {"batch": batch, "message": message, "done": done}
    return render(request, "evaluation/finished.html", context)


def comparison_context(assignment: Assignment, **extra) -> dict:
    comparison = assignment.comparison
    a, b = comparison.summary_a.text, comparison.summary_b.text
    left, right = (a, b) if assignment.left_system == "A" else (b, a)
    # Only the count of what they did: "still available" is a whole-batch query, kept for the
    # home page rather than paid on every comparison.
    done = Assignment.objects.filter(
        annotator_id=assignment.annotator_id,
        comparison__batch_id=comparison.batch_id,
        status=Assignment.Status.SUBMITTED,
    ).count()
    answers = extra.get("answers", {})
    criteria = [
        {
            "name": c.value,
            "label": c.label,
            "choices": list(zip(("left", "equal", "right"), KEYS[c], strict=True)),
            "chosen": answers.get(c.value),
        }
        for c in Criterion
    ]
    return {
        "assignment": assignment,
        "batch": comparison.batch,
        "source": comparison.document.source,
        "left": left,
        "right": right,
        "criteria": criteria,
        "done": done,
        **extra,
    }


@require_GET
@role_required(Role.ANNOTATOR)
def assignment(request, assignment_id: int):
    item = _own_assignment(request.user, assignment_id)
    if item.status != Assignment.Status.LEASED:
        # Finished or given back: going back to it shows the next one, never re-submits.
        return redirect("annotate", item.comparison.batch_id)
    return render(request, "evaluation/annotate.html", comparison_context(item))


def _render_next(request, batch: Batch) -> HttpResponse:
    """After a submit or skip: the next comparison swapped in for htmx, a redirect otherwise."""
    if not request.htmx:
        return redirect("annotate", batch.pk)
    try:
        item, message = engine.lease_next(request.user, batch), None
    except engine.BatchNotOpen as e:
        item, message = None, str(e)
    return _next_fragment(request, batch, item, message)


def _next_fragment(request, batch: Batch, item: Assignment | None, message: str | None):
    """The next comparison as the htmx fragment, or the finished notice (with the reason)."""
    if item is None:
        done, _ = engine.progress_for(request.user, batch)
        context = {"batch": batch, "message": message, "done": done}
        response = render(request, "evaluation/finished.html#work", context)
        response["HX-Push-Url"] = reverse("annotate", args=[batch.pk]) + "?start"
        return response
    item = _own_assignment(request.user, item.pk, batch)
    response = render(request, "evaluation/annotate.html#work", comparison_context(item))
    response["HX-Push-Url"] = reverse("assignment", args=[item.pk])
    return response


def _refused(request, assignment_id: int, message: str, status: int, answers=None):
    """The comparison again with the reason; 404 when it is not this annotator's."""
    item = _own_assignment(request.user, assignment_id)
    template = "evaluation/annotate.html#work" if request.htmx else "evaluation/annotate.html"
    context = comparison_context(item, error=message, answers=answers or {})
    return render(request, template, context, status=status)


def _active_seconds(raw: str | None) -> float | None:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if 0 <= value < 7 * 24 * 3600 else None


@require_POST
@role_required(Role.ANNOTATOR)
def submit(request, assignment_id: int):
    answers = {c: request.POST.get(c, "") for c in Criterion.values}
    seconds = _active_seconds(request.POST.get("active_seconds"))
    try:
        if request.htmx:  # the next comparison is leased in the same transaction
            stored, item, message = engine.submit_and_lease_next(
                request.user, assignment_id, answers, seconds
            )
        else:
            stored = engine.submit_judgments(request.user, assignment_id, answers, seconds)
    except engine.IncompleteSubmission as e:
        return _refused(request, assignment_id, str(e), 400, answers)
    except engine.SubmissionRefused as e:
        return _refused(request, assignment_id, str(e), 409, answers)
    if not request.htmx:
        return redirect("annotate", stored.comparison.batch_id)
    return _next_fragment(request, stored.comparison.batch, item, message)


@require_http_methods(["POST"])
@role_required(Role.ANNOTATOR)
def skip(request, assignment_id: int):
    problem = request.POST.get("kind") == "problem"
    reason = request.POST.get("reason", "")
    try:
        skipped = engine.skip_assignment(request.user, assignment_id, reason, problem=problem)
    except engine.SubmissionRefused as e:
        return _refused(request, assignment_id, str(e), 400)
    return _render_next(request, skipped.comparison.batch)


def batch_or_404(batch_id: int) -> Batch:
    batch = Batch.objects.filter(pk=batch_id).first()
    if batch is None:
        raise Http404("No such batch.")
    return batch


def scoring_context(batch: Batch) -> dict:
    from scoring.services import batch_scoring_status

    status = batch_scoring_status(batch.pk)
    jobs = [j for j in (status["rouge"], status["quals"]) if j is not None]
    return {**status, "batch": batch, "scoring_running": any(not j.finished for j in jobs)}


@require_GET
@role_required(Role.RESEARCHER, Role.ADMIN)
def batch_detail(request, batch_id: int):
    batch = batch_or_404(batch_id)
    counts = batch.comparisons.filter(is_check=False).aggregate(
        n=Count("id"),
        done=Sum("annotations_done"),
        in_progress=Sum("annotations_in_progress"),
        needed=Sum("annotations_needed"),
    )
    context = {**scoring_context(batch), "counts": counts, "scores": score_page(request, batch)}
    return render(request, "evaluation/batch_detail.html", context)


@require_GET
@role_required(Role.RESEARCHER, Role.ADMIN)
def batch_scoring(request, batch_id: int):
    """The scoring progress partial, polled until nothing runs."""
    batch = batch_or_404(batch_id)
    context = scoring_context(batch)
    return polled_partial(
        request, "evaluation/batch_detail.html#scoring", context, moving=context["scoring_running"]
    )


def polled_partial(request, template: str, context: dict, *, moving: bool) -> HttpResponse:
    """A partial that htmx polls; status 286 tells htmx to stop once nothing can change."""
    response = render(request, template, context)
    if not moving:
        response.status_code = 286
    return response


def score_page(request, batch: Batch):
    """One page of the batch's summaries with their ROUGE-L and QUALS scores."""
    from scoring.models import MetricScore

    summaries = Summary.objects.filter(document__batch=batch).select_related("document")
    page = Paginator(summaries.order_by("document_id", "system"), 50).get_page(
        request.GET.get("page")
    )
    scores = MetricScore.objects.filter(
        summary__in=[s.pk for s in page], metric__in=["rougeL", "quals"]
    )
    by_summary: dict[int, dict] = {}
    for score in scores:
        by_summary.setdefault(score.summary_id, {})[score.metric] = score
    for summary in page:
        summary.rouge_l = by_summary.get(summary.pk, {}).get("rougeL")
        summary.quals = by_summary.get(summary.pk, {}).get("quals")
    return page
