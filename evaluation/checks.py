"""Attention checks: comparisons with a known answer, served like any other.

A generated check is a faithful text against a copy of it with one fact changed for another of
its type (`evaluation.swaps`). The faithful text is drawn at random per check among system A's
summary, system B's and the reference, so that matching texts tells nothing about the systems.
An admin previews each generated check and approves or discards it; only approved ones are
served.

Which documents a check may come from (the rule that keeps checks blind and every comparison
able to reach K):

- a document of the batch's check pool (uploaded for checks only, never a real comparison), for
  any annotator who was not served it yet; these are preferred;
- a document of the batch itself only when every real comparison of it is complete (as many
  submitted judgments as it needs) and the annotator was never served it: a complete
  comparison is never leased again, so the annotator cannot meet the document as a real item
  afterwards, and no annotator is kept from a comparison that still needs them. Raising K
  would reopen such documents, so K cannot be raised once one of them was served as a check.

Checks are served at random places: item n of an annotator is a check slot when a draw from
the batch's secret for (annotator, n) falls under the rate and none of the `check_min_gap`
items before it was a slot; among the checks available to them, an annotator gets them in an
order drawn for them. A slot with no check available is served a real comparison, and a slot
after the annotator's last real comparison is not filled (the "n of N" total never counts it).
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from functools import lru_cache

from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef

from .importing import BatchFileError, ImportSpec, Problem, parse_batch_file
from .models import (
    HAS_ROOM,
    Assignment,
    Batch,
    CheckState,
    Comparison,
    Criterion,
    Document,
    Judgment,
    Summary,
    Verdict,
)
from .swaps import Swap, find_facts, find_swap

CHECK_SYSTEM = "attention-check"
# The reference as a summary a check can show: a name no system is given by an import.
REFERENCE_SYSTEM = "reference (for checks)"
# Checks are answered by every annotator who is served one: their capacity is not K.
CHECK_CAPACITY = 10000
# Candidate replacements come from the facts of at most this many of the batch's sources.
POOL_SOURCES = 300
_SCALE = 2**64


@lru_cache(maxsize=256)
def slot_rate(every: int, gap: int) -> float:
    """The draw's threshold p such that a slot (draw < p, none in the `gap` items before) comes
    about once in `every` items: p (1 - p)^gap = 1 / every, solved by bisection. Capped at the
    most the gap allows."""
    target = 1 / every
    lo, hi = 0.0, 1 / (gap + 1)
    if hi * (1 - hi) ** gap <= target:
        return hi
    for _ in range(60):
        mid = (lo + hi) / 2
        if mid * (1 - mid) ** gap < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _slot_low(batch: Batch, user_id: int, n: int) -> bool:
    """The annotator's n-th item draws under the slot threshold (a slot unless one of the
    `check_min_gap` items before it drew under it too)."""
    p = slot_rate(batch.check_every, batch.check_min_gap)
    return batch.draw("check-slot", user_id, n) < p * _SCALE


def check_due(batch: Batch, user_id: int, served_items: int) -> bool:
    """Is the annotator's next item (their `served_items`-th, from 0) a check slot? No query."""
    if not batch.check_every:
        return False
    n, gap = served_items, batch.check_min_gap
    return _slot_low(batch, user_id, n) and not any(
        _slot_low(batch, user_id, j) for j in range(max(0, n - gap), n)
    )


def items_to_come(batch: Batch, user_id: int, position: int, real_left: int) -> int:
    """How many items the annotator is served from their `position`-th (from 0) until
    `real_left` more real comparisons have been served, following their check slots (each
    slot filled by a check). Counters built on it change by the same amount whichever kind of
    item an annotator is given, so they never tell a check from a real item. No query; one
    draw an item to come."""
    if real_left <= 0:
        return 0
    if not batch.check_every:
        return real_left
    gap = batch.check_min_gap
    recent = deque(
        (_slot_low(batch, user_id, j) for j in range(max(0, position - gap), position)), maxlen=gap
    )
    slots = real = 0
    n = position
    while real < real_left:
        low = _slot_low(batch, user_id, n)
        if low and not any(recent):
            slots += 1
        else:
            real += 1
        recent.append(low)
        n += 1
    return slots + real


def _eligible(batch: Batch, user_id: int):
    """Approved checks this annotator may be served now (see the module's rule)."""
    open_docs = Comparison.objects.filter(
        batch=batch, is_check=False, annotations_done__lt=F("annotations_needed")
    ).values("document_id")
    seen_docs = Assignment.objects.filter(batch=batch, annotator_id=user_id).values(
        "comparison__document_id"
    )
    return (
        Comparison.objects.filter(
            HAS_ROOM, batch=batch, is_check=True, check_state=CheckState.APPROVED
        )
        .exclude(document_id__in=open_docs)
        .exclude(document_id__in=seen_docs)
    )


def _real_to_come(batch: Batch, user_id: int):
    """Real comparisons with room that this annotator was never served."""
    seen = Assignment.objects.filter(annotator_id=user_id, comparison=OuterRef("pk"))
    return Comparison.objects.filter(HAS_ROOM, batch=batch, is_check=False).filter(~Exists(seen))


def next_check(batch: Batch, user) -> Comparison | None:
    """The check to serve this annotator now, its row locked; None when none is available.

    A slot is filled only while a real comparison is still to come for the annotator: the
    "n of N" total (`items_to_come`) counts the slots before real items, so a check after
    the last one would add an item the total never promised, and tell it for a check.

    One query for the eligible ids, one to lock the chosen row; only on a check slot."""
    ids = list(
        _eligible(batch, user.pk)
        .filter(Exists(_real_to_come(batch, user.pk)))
        .values_list("pk", flat=True)
    )
    ids.sort(key=lambda pk: batch.draw("check-order", user.pk, pk))
    for pk in ids[:3]:  # another annotator may hold the row's lock for a moment
        locked = Comparison.objects.select_for_update(skip_locked=True).filter(pk=pk).first()
        if locked is not None:
            return locked
    return None


def annotators_without_checks(batch: Batch, user_ids: set[int]) -> list[int]:
    """Of these annotators, those no approved check can be served to now (the dashboard)."""
    if not batch.check_every:
        return []
    return sorted(u for u in user_ids if not _eligible(batch, u).exists())


# -- generating -------------------------------------------------------------------------------


def _judged_less_factual(document: Document) -> set[str]:
    """Systems ("A", "B") a majority of the document's submitted factual verdicts found worse:
    a check never takes a summary already judged wrong as its faithful side."""
    counts = dict(
        Judgment.objects.filter(
            assignment__comparison__document=document,
            assignment__comparison__is_check=False,
            assignment__status=Assignment.Status.SUBMITTED,
            criterion=Criterion.FACTUAL,
        )
        .values_list("verdict")
        .annotate(n=Count("id"))
    )
    a, b = counts.get(Verdict.A, 0), counts.get(Verdict.B, 0)
    return {"B"} if a > b else {"A"} if b > a else set()


def _faithful_candidates(batch: Batch, document: Document) -> list[tuple[str, Summary | None]]:
    by_system = {s.system: s for s in document.summaries.all()}
    out: list[tuple[str, Summary | None]] = []
    worse = _judged_less_factual(document)
    for label, system in (("A", batch.system_a), ("B", batch.system_b)):
        if system in by_system and label not in worse:
            out.append((label, by_system[system]))
    if document.reference.strip():
        out.append(("reference", by_system.get(REFERENCE_SYSTEM)))
    return out


def _candidate_documents(batch: Batch) -> list[Document]:
    """Documents without a check yet: the check pool first, then the batch's own."""
    has_check = Comparison.objects.filter(batch=batch, is_check=True).values("document_id")
    docs = (
        Document.objects.filter(batch=batch)
        .exclude(pk__in=has_check)
        .prefetch_related("summaries")
        .order_by("-check_pool", "id")
    )
    return list(docs)


def _make_check(batch: Batch, document: Document, rng: random.Random, pool) -> Comparison | None:
    candidates = _faithful_candidates(batch, document)
    rng.shuffle(candidates)
    for label, summary in candidates:
        text = summary.text if summary else document.reference
        swap = find_swap(document.source, text, pool, rng)
        if swap is None:
            continue
        if summary is None:
            summary = Summary.objects.create(
                document=document, system=REFERENCE_SYSTEM, text=document.reference
            )
        corrupted = Summary.objects.create(document=document, system=CHECK_SYSTEM, text=swap.text)
        return Comparison.objects.create(
            batch=batch,
            document=document,
            summary_a=summary,
            summary_b=corrupted,
            annotations_needed=CHECK_CAPACITY,
            position=batch.draw("order", "check", corrupted.pk) >> 1,
            is_check=True,
            check_state=CheckState.PENDING,
            expected={Criterion.FACTUAL: Verdict.A, "faithful": label, "swap": _swap_record(swap)},
        )
    return None


def _swap_record(swap: Swap) -> dict:
    return {
        "kind": swap.kind,
        "shape": swap.shape,
        "original": swap.original,
        "replacement": swap.replacement,
        "start": swap.start,
        "end": swap.end,
    }


def create_attention_checks(batch: Batch, count: int, seed: int = 0) -> list[Comparison]:
    """Make up to `count` checks, waiting for an admin's approval, one per document."""
    rng = random.Random(f"{batch.secret}:{seed}:{Comparison.objects.count()}")
    documents = _candidate_documents(batch)
    sources = [d.source for d in documents]
    rng.shuffle(sources)
    pool = [f for text in sources[:POOL_SOURCES] for f in find_facts(text)]
    pool_docs = [d for d in documents if d.check_pool]
    own_docs = [d for d in documents if not d.check_pool]
    rng.shuffle(pool_docs)
    rng.shuffle(own_docs)
    made = []
    with transaction.atomic():
        for document in pool_docs + own_docs:
            if len(made) == count:
                break
            check = _make_check(batch, document, rng, pool)
            if check is not None:
                made.append(check)
    return made


def approve_check(comparison: Comparison) -> bool:
    """A pending check becomes servable; False when it was not pending."""
    return bool(
        Comparison.objects.filter(
            pk=comparison.pk, is_check=True, check_state=CheckState.PENDING
        ).update(check_state=CheckState.APPROVED)
    )


def discard_check(comparison: Comparison) -> bool:
    """A pending check (never served) is deleted with its corrupted text; False otherwise."""
    with transaction.atomic():
        deleted, _ = Comparison.objects.filter(
            pk=comparison.pk, is_check=True, check_state=CheckState.PENDING, assignments=None
        ).delete()
        if deleted:
            Summary.objects.filter(pk=comparison.summary_b_id, system=CHECK_SYSTEM).delete()
    return bool(deleted)


def served_own_document_checks(batch: Batch) -> bool:
    """Was a check made from one of the batch's own documents served? Then K cannot rise."""
    return Assignment.objects.filter(
        batch=batch, comparison__is_check=True, comparison__document__check_pool=False
    ).exists()


def add_check_pool(batch: Batch, data: bytes, filename: str, fmt: str | None = None) -> int:
    """Documents for checks only, in the import format; BatchFileError, and nothing written,
    for a bad file or an id the batch already has."""
    docs = parse_batch_file(data, filename, ImportSpec(batch.system_a, batch.system_b, fmt))
    taken = set(
        Document.objects.filter(
            batch=batch, external_id__in=[d.external_id for d in docs]
        ).values_list("external_id", flat=True)
    )
    if taken:
        raise BatchFileError(
            [
                Problem(d.line, f"id {d.external_id!r} is already in the batch")
                for d in docs
                if d.external_id in taken
            ]  # fmt: skip
        )
    with transaction.atomic():
        documents = Document.objects.bulk_create(
            Document(
                batch=batch,
                external_id=d.external_id,
                source=d.source,
                reference=d.reference,
                meta=d.meta,
                check_pool=True,
            )
            for d in docs
        )
        Summary.objects.bulk_create(
            Summary(document=doc, system=system, text=text)
            for doc, d in zip(documents, docs, strict=True)
            for system, text in ((batch.system_a, d.summary_a), (batch.system_b, d.summary_b))
        )
    return len(documents)


def mark_as_check(comparison: Comparison, expected: dict[str, str]) -> None:
    """An admin's own check: the verdicts (system terms) a careful annotator must give."""
    expected = {c: v for c, v in expected.items() if c in Criterion.values and v}
    if not expected or any(v not in Verdict.values for v in expected.values()):
        raise ValueError("give the expected verdict (A, B or equal) of at least one criterion")
    needed = max(comparison.annotations_needed, CHECK_CAPACITY)
    Comparison.objects.filter(pk=comparison.pk).update(
        is_check=True,
        expected=expected,
        annotations_needed=needed,
        check_state=CheckState.APPROVED,
    )


# -- accuracy ---------------------------------------------------------------------------------


@dataclass
class CheckAccuracy:
    annotator_id: int
    username: str
    checks: int  # answered (submitted)
    answers: int
    correct: int
    flagged: bool
    skipped: int = 0  # skipped or reported as a problem: served, not answered

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.answers if self.answers else None


def check_accuracy(batch: Batch) -> list[CheckAccuracy]:
    """Per annotator: expected verdicts given on checks, and checks skipped; flagged below the
    threshold once they answered `checks_before_flag` checks."""
    expected = {
        c.pk: c.expected
        for c in Comparison.objects.filter(batch=batch, is_check=True).only("expected")
    }
    rows = Judgment.objects.filter(
        assignment__comparison_id__in=list(expected),
        assignment__status=Assignment.Status.SUBMITTED,
    ).values_list(
        "assignment__annotator_id",
        "assignment__annotator__username",
        "assignment_id",
        "assignment__comparison_id",
        "criterion",
        "verdict",
    )
    stats: dict[int, CheckAccuracy] = {}
    seen: dict[int, set] = {}
    for annotator_id, username, assignment_id, comparison_id, criterion, verdict in rows:
        want = expected[comparison_id].get(criterion)
        if want is None:
            continue
        entry = stats.setdefault(
            annotator_id, CheckAccuracy(annotator_id, username, 0, 0, 0, False)
        )
        seen.setdefault(annotator_id, set()).add(assignment_id)
        entry.answers += 1
        entry.correct += verdict == want
    skipped = (
        Assignment.objects.filter(
            comparison_id__in=list(expected), status=Assignment.Status.SKIPPED
        )
        .values_list("annotator_id", "annotator__username")
        .annotate(n=Count("id"))
    )
    for annotator_id, username, n in skipped:
        entry = stats.setdefault(
            annotator_id, CheckAccuracy(annotator_id, username, 0, 0, 0, False)
        )
        entry.skipped = n
    for annotator_id, entry in stats.items():
        entry.checks = len(seen.get(annotator_id, ()))
        entry.flagged = (
            entry.checks >= batch.checks_before_flag
            and entry.accuracy is not None
            and entry.accuracy < batch.check_threshold
        )
    return sorted(stats.values(), key=lambda e: e.username)


def flagged_annotator_ids(batch: Batch) -> list[int]:
    return [e.annotator_id for e in check_accuracy(batch) if e.flagged]


def pending_checks(batch: Batch):
    return Comparison.objects.filter(
        batch=batch, is_check=True, check_state=CheckState.PENDING
    ).select_related("document", "summary_a", "summary_b")


def approved_count(batch: Batch) -> int:
    return Comparison.objects.filter(
        batch=batch, is_check=True, check_state=CheckState.APPROVED
    ).count()


def pool_size(batch: Batch) -> int:
    return Document.objects.filter(batch=batch, check_pool=True).count()
