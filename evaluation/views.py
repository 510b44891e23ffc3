from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q, Sum
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from .models import Assignment, Batch, Role, user_role


def batches_for_annotator(user) -> list[Batch]:
    """Open or paused batches this annotator may work on, with their own progress."""
    allowed = Q(annotators=user) | Q(annotator_groups__in=user.groups.all())
    batches = list(
        Batch.objects.filter(allowed, status__in=[Batch.Status.OPEN, Batch.Status.PAUSED])
        .distinct()
        .order_by("name")
    )
    for batch in batches:
        mine = Assignment.objects.filter(annotator=user, comparison__batch=batch)
        batch.done_by_me = mine.filter(status=Assignment.Status.SUBMITTED).count()
        batch.available_to_me = (
            batch.comparisons.exclude(assignments__annotator=user)
            .filter(annotations_done__lt=batch.annotators_per_item)
            .count()
        )
    return batches


def batches_overview() -> list[Batch]:
    return list(
        Batch.objects.annotate(
            n_comparisons=Count("comparisons"),
            n_done=Sum("comparisons__annotations_done"),
            n_needed=Sum("comparisons__annotations_needed"),
        ).order_by("-created_at")
    )


@require_GET
@login_required
def home(request):
    role = user_role(request.user)
    if role == Role.ADMIN:
        return redirect("admin:index")
    if role == Role.RESEARCHER:
        return render(request, "evaluation/home_researcher.html", {"batches": batches_overview()})
    if role == Role.ANNOTATOR:
        batches = batches_for_annotator(request.user)
        return render(request, "evaluation/home_annotator.html", {"batches": batches})
    return render(request, "evaluation/home_no_role.html", status=403)
