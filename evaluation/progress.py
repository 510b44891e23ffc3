"""How far a batch's annotation is, counted once for every page that shows it.

Attention checks never count in progress. A "judgment set" is one annotator's submitted
answers to one comparison; a comparison is complete once it has K of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, F, Q, QuerySet, Sum

from .models import Batch, Comparison

REAL = Q(comparisons__is_check=False)


def with_progress(batches: QuerySet[Batch]) -> QuerySet[Batch]:
    """Each batch with `n_comparisons`, `sets_done` and `sets_needed`, for lists of batches."""
    return batches.annotate(
        n_comparisons=Count("comparisons", filter=REAL),
        sets_done=Sum("comparisons__annotations_done", filter=REAL, default=0),
        sets_needed=Sum("comparisons__annotations_needed", filter=REAL, default=0),
    )


@dataclass(frozen=True)
class BatchProgress:
    comparisons: int
    complete: int  # comparisons with all K judgment sets
    in_progress: int  # comparisons not complete, with at least one live lease
    waiting: int  # the others
    sets_done: int
    sets_leased: int
    sets_needed: int


def progress_of(batch: Batch) -> BatchProgress:
    """The batch's progress in one aggregate query."""
    k = F("annotations_needed")
    counts = Comparison.objects.filter(batch=batch, is_check=False).aggregate(
        comparisons=Count("id"),
        complete=Count("id", filter=Q(annotations_done__gte=k)),
        in_progress=Count("id", filter=Q(annotations_done__lt=k, annotations_in_progress__gt=0)),
        sets_done=Sum("annotations_done", default=0),
        sets_leased=Sum("annotations_in_progress", default=0),
        sets_needed=Sum("annotations_needed", default=0),
    )
    waiting = counts["comparisons"] - counts["complete"] - counts["in_progress"]
    return BatchProgress(waiting=waiting, **counts)
