"""How far a batch's annotation is, counted once for every page that shows it.

Attention checks never count in progress. A "judgment set" is one annotator's submitted
answers to one comparison; a comparison is complete once it has K of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db.models import Count, Exists, F, Func, OuterRef, Q, QuerySet, Subquery, Sum

from .checks import items_to_come
from .models import HAS_ROOM, Assignment, Batch, Comparison

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


@dataclass(frozen=True)
class AnnotatorProgress:
    done: int  # items this annotator submitted in the batch (checks included, unmarked)
    available: int  # items still to come for them, their current one included

    @property
    def reachable(self) -> int:
        """The "40" of "12 of 40": what they did plus what is still open to them."""
        return self.done + self.available


def annotator_progress(user_id: int, batch: Batch) -> AnnotatorProgress:
    """One annotator's progress in one batch, in one query (it is paid on every comparison).

    Still to come: their current item, plus the items they will be served until every real
    comparison with room that they have no assignment on is theirs (the engine never gives
    anybody the same comparison twice), check slots included (`checks.items_to_come`). Both
    figures move by one a submission whether the item was a check or a real comparison, so
    neither tells one from the other.
    """
    mine = Assignment.objects.filter(annotator_id=user_id, batch_id=batch.pk)
    seen = Assignment.objects.filter(annotator_id=user_id, comparison=OuterRef("pk"))
    unseen = Comparison.objects.filter(HAS_ROOM, batch_id=batch.pk, is_check=False).filter(
        ~Exists(seen)
    )
    counts = (
        Batch.objects.filter(pk=batch.pk)
        .annotate(
            done=_count(mine.filter(status=Assignment.Status.SUBMITTED)),
            leased=_count(mine.filter(status=Assignment.Status.LEASED)),
            served=_count(mine),
            unseen=_count(unseen),
        )
        .values("done", "leased", "served", "unseen")
        .first()
    ) or {}
    served, unseen = counts.get("served") or 0, counts.get("unseen") or 0
    to_come = items_to_come(batch, user_id, served, unseen)
    return AnnotatorProgress(
        done=counts.get("done") or 0, available=(counts.get("leased") or 0) + to_come
    )


def _count(queryset: QuerySet) -> Subquery:
    """COUNT(*) of a queryset as a scalar subquery (no GROUP BY: one row, always)."""
    return Subquery(queryset.order_by().annotate(n=Func("pk", function="COUNT")).values("n"))


def stuck_comparisons(batch: Batch) -> QuerySet[Comparison]:
    """Real comparisons still short of judgment sets that no eligible annotator can take:
    every one of them has judged it, skipped it or held it already. A batch with any never
    finishes without more annotators (or an admin's decision)."""
    taken = Assignment.objects.filter(comparison=OuterRef(OuterRef("pk")), annotator=OuterRef("pk"))
    eligible = (
        User.objects.filter(Q(annotation_batches=batch) | Q(groups__annotation_batches=batch))
        .filter(is_active=True)
        .filter(~Exists(taken))
    )
    return (
        Comparison.objects.filter(HAS_ROOM, batch=batch, is_check=False)
        .filter(~Exists(eligible))
        .select_related("document")
        .order_by("id")
    )
