"""Attention checks: comparisons with a known answer, served like any other.

factpair makes them itself from the batch's own data: a summary against a copy of it in which one
number or named entity is replaced by another one of the same kind taken from the source. The
unchanged summary must win on factual consistency.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from django.db import transaction

from .models import Assignment, Batch, Comparison, Criterion, Judgment, Summary, Verdict

CHECK_SYSTEM = "attention-check"
# Checks are answered by every annotator who is served one: their capacity is not K.
CHECK_CAPACITY = 10000
NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?![\w])")
# One to three capitalised words, not at the start of a sentence.
ENTITY = re.compile(r"(?<=[a-z,;:] )[A-Z][a-z]+(?: [A-Z][a-z]+){0,2}")


@dataclass(frozen=True)
class Swap:
    original: str
    replacement: str
    text: str


def find_swap(source: str, summary: str, rng: random.Random) -> Swap | None:
    """Replace one number or entity of the summary by a different one of the source."""
    for pattern in rng.sample([NUMBER, ENTITY], 2):
        in_summary = [m for m in pattern.finditer(summary) if m.group() in source]
        others = sorted(
            {m.group() for m in pattern.finditer(source)} - set(pattern.findall(summary))
        )
        if in_summary and others:
            target = rng.choice(in_summary)
            replacement = rng.choice(others)
            text = summary[: target.start()] + replacement + summary[target.end() :]
            return Swap(target.group(), replacement, text)
    return None


def create_attention_checks(batch: Batch, count: int, seed: int = 0) -> list[Comparison]:
    """Make up to `count` checks from documents that do not have one yet."""
    rng = random.Random(f"{batch.pk}:{seed}")
    used = Comparison.objects.filter(batch=batch, is_check=True).values("document_id")
    comparisons = list(
        Comparison.objects.filter(batch=batch, is_check=False)
        .exclude(document_id__in=used)
        .select_related("document", "summary_b")
        .order_by("id")
    )
    rng.shuffle(comparisons)
    made = []
    with transaction.atomic():
        for comparison in comparisons:
            if len(made) == count:
                break
            swap = find_swap(comparison.document.source, comparison.summary_b.text, rng)
            if swap is None:
                continue
            corrupted = Summary.objects.create(
                document=comparison.document, system=CHECK_SYSTEM, text=swap.text
            )
            made.append(
                Comparison.objects.create(
                    batch=batch,
                    document=comparison.document,
                    summary_a=comparison.summary_b,
                    summary_b=corrupted,
                    annotations_needed=CHECK_CAPACITY,
                    position=batch.draw("order", "check", corrupted.pk) >> 1,
                    is_check=True,
                    expected={
                        Criterion.FACTUAL: Verdict.A,
                        "swap": [swap.original, swap.replacement],
                    },
                )
            )
    return made


def mark_as_check(comparison: Comparison, expected: dict[str, str]) -> None:
    """An admin's own check: the verdicts (system terms) a careful annotator must give."""
    expected = {c: v for c, v in expected.items() if c in Criterion.values and v}
    if not expected or any(v not in Verdict.values for v in expected.values()):
        raise ValueError("give the expected verdict (A, B or equal) of at least one criterion")
    needed = max(comparison.annotations_needed, CHECK_CAPACITY)
    Comparison.objects.filter(pk=comparison.pk).update(
        is_check=True, expected=expected, annotations_needed=needed
    )


@dataclass
class CheckAccuracy:
    annotator_id: int
    username: str
    checks: int
    answers: int
    correct: int
    flagged: bool

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.answers if self.answers else None


def check_accuracy(batch: Batch) -> list[CheckAccuracy]:
    """Per annotator: how many expected verdicts on checks they gave; flagged below threshold."""
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
    for annotator_id, entry in stats.items():
        entry.checks = len(seen[annotator_id])
        entry.flagged = entry.accuracy is not None and entry.accuracy < batch.check_threshold
    return sorted(stats.values(), key=lambda e: e.username)


def flagged_annotator_ids(batch: Batch) -> list[int]:
    return [e.annotator_id for e in check_accuracy(batch) if e.flagged]
