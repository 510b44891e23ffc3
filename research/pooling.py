"""Which batches the pooled results page (`/results/`) may put together, and how.

Batches pool only when they share the dataset label AND the pair of systems. Within a group
the first batch (by name) sets the orientation: its system A and B are the group's. A batch
that compares the same two systems the other way round (its A is the group's B) is
re-oriented: every verdict is negated (-1 <-> +1, "equal" stays) and the side shown on the
left is read the other way, so that "+1" means "the group's B better" throughout. Batches with
different systems are different groups, listed separately and never summed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from evaluation import checks
from evaluation.models import Batch

from . import analysis


@dataclass
class PoolGroup:
    """Batches of one dataset and one system pair, in the orientation of the first."""

    dataset: str
    system_a: str
    system_b: str
    batches: list[Batch] = field(default_factory=list)
    swapped: list[Batch] = field(default_factory=list)  # re-oriented: A and B the other way

    @property
    def label(self) -> str:
        return f"{self.dataset}: {self.system_b} vs {self.system_a}"

    def is_swapped(self, batch: Batch) -> bool:
        return any(b.pk == batch.pk for b in self.swapped)


def group_batches(batches: Iterable[Batch]) -> list[PoolGroup]:
    """Groups by (dataset, unordered system pair), in order of first appearance; pass the
    batches in the order that should decide each group's orientation (e.g. by name)."""
    groups: dict[tuple, PoolGroup] = {}
    for batch in batches:
        key = (batch.dataset, frozenset((batch.system_a, batch.system_b)))
        group = groups.get(key)
        if group is None:
            group = groups[key] = PoolGroup(batch.dataset, batch.system_a, batch.system_b)
        group.batches.append(batch)
        if batch.system_a != group.system_a:
            group.swapped.append(batch)
    return list(groups.values())


def reoriented(data: analysis.Judgments) -> analysis.Judgments:
    """The same judgments with A and B exchanged: verdicts negated, the left side read the
    other way (A on the left becomes B on the left)."""
    return analysis.Judgments(
        comparison=data.comparison,
        annotator=data.annotator,
        criterion=data.criterion,
        verdict=(-data.verdict).astype(data.verdict.dtype),
        left_a=None if data.left_a is None else ~data.left_a,
    )


def concatenated(parts: Sequence[analysis.Judgments]) -> analysis.Judgments:
    """One Judgments of several, at least one (comparison ids are database ids: distinct
    across batches)."""
    sided = all(p.left_a is not None for p in parts)
    return analysis.Judgments(
        comparison=np.concatenate([p.comparison for p in parts]),
        annotator=np.concatenate([p.annotator for p in parts]),
        criterion=np.concatenate([p.criterion for p in parts]),
        verdict=np.concatenate([p.verdict for p in parts]),
        left_a=np.concatenate([p.left_a for p in parts]) if sided else None,
    )


def load_group(group: PoolGroup, exclude_annotator_ids: Iterable[int] = ()) -> analysis.Judgments:
    """The group's judgments in its orientation: straight batches in one query, re-oriented
    ones in another, then flipped."""
    excluded = list(exclude_annotator_ids)
    straight = [b.pk for b in group.batches if not group.is_swapped(b)]
    flipped = [b.pk for b in group.swapped]
    parts = [analysis.load_judgments(straight, excluded)]
    if flipped:
        parts.append(reoriented(analysis.load_judgments(flipped, excluded)))
    return concatenated(parts)


def excluded_for(batches: Iterable[Batch], exclude_flagged: bool) -> list[int]:
    """Annotators flagged in any of these batches, when the switch asks to leave them out."""
    if not exclude_flagged:
        return []
    return sorted({a for b in batches for a in checks.flagged_annotator_ids(b)})


def note(group: PoolGroup) -> str:
    """What the page and the exports say about a group's re-oriented batches."""
    if not group.swapped:
        return ""
    names = ", ".join(b.name for b in group.swapped)
    return f"Re-oriented (their A and B swapped to match, verdicts flipped): {names}"


def pooled(exclude_flagged: bool = False) -> list[tuple[PoolGroup, analysis.Judgments]]:
    """Every group of every batch (ordered by dataset, then name) with its judgments."""
    batches = Batch.objects.order_by("dataset", "name")
    return [
        (group, load_group(group, excluded_for(group.batches, exclude_flagged)))
        for group in group_batches(batches)
    ]
