"""The methods paragraph: the design and the analysis of a batch, in words, with its numbers.

`methods_paragraph(facts)` joins the sentences of `SENTENCES` in order; each is a function of
`MethodsFacts` that returns a sentence, or None to say nothing. To say more (a reading aid, a
new statistic), add a function to `SENTENCES`: nothing else changes. `batch_facts` gathers the
facts of one batch from the judgments in hand (flagged annotators already left out where the
switch asks), so the paragraph says what the page and the exports say.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings

from evaluation import checks, criteria
from evaluation.models import Assignment, Batch, Comparison

from . import analysis


@dataclass
class CriterionFacts:
    label: str
    net: float | None
    net_low: float | None
    net_high: float | None
    p: float | None
    holm_p: float | None


@dataclass
class MethodsFacts:
    dataset: str
    system_a: str
    system_b: str
    comparisons: int  # comparisons with at least one counted judgment
    comparisons_in_batch: int  # of the batch, or of every batch pooled
    annotators: int
    ks: list[int]  # annotators asked per comparison (one value per batch, distinct)
    judgments: int  # counted judgments, all criteria
    criteria: list[str]
    check_every: list[int]  # distinct schedules (0: checks are not scheduled)
    check_comparisons: int
    check_answers: int  # submitted assignments of attention checks
    check_thresholds: list[float]
    flagged: int
    excluded_annotators: int
    excluded: bool
    test_methods: list[str]  # "exact", "monte carlo" (with resamples and seed below)
    test_resamples: int | None
    test_seed: int | None
    bootstrap_resamples: int
    bootstrap_seed: int
    version: str
    results: list[CriterionFacts] = field(default_factory=list)
    batches: list[str] = field(default_factory=list)  # pooled: the batches' names
    reoriented: list[str] = field(default_factory=list)  # pooled: those flipped to match
    holm_family: str = ""  # what Holm's adjustment ran across, when not the criteria
    batch_ids: list[int] = field(default_factory=list)  # for sentences other apps add
    undo_minutes: list[int] = field(default_factory=list)  # distinct undo windows (0: none)
    # The reading aids annotators had: one tuple of aid names per distinct batch setting.
    aids: list[tuple[str, ...]] = field(default_factory=list)


def batch_facts(
    batch: Batch,
    data: analysis.Judgments,
    levels: Sequence[analysis.ComparisonLevel] | None = None,
    *,
    excluded: Sequence[int] = (),
    flagged: int | None = None,
) -> MethodsFacts:
    """The facts of one batch; `levels` (Holm-adjusted across the criteria) are computed from
    `data` when not given; `flagged` (how many annotators checks flag) when not given."""
    return facts_of([batch], data, levels, excluded=excluded, flagged=flagged)


def facts_of(
    batches: Sequence[Batch],
    data: analysis.Judgments,
    levels: Sequence[analysis.ComparisonLevel] | None = None,
    *,
    excluded: Sequence[int] = (),
    flagged: int | None = None,
    reoriented: Sequence[Batch] = (),
    holm_family: str = "",
) -> MethodsFacts:
    """The facts of batches analysed together (one batch, or a pooled group in the first
    batch's orientation: `reoriented` are those flipped to match)."""
    levels = analysis.comparison_levels(data) if levels is None else levels
    ids = [b.pk for b in batches]
    check_ids = list(
        Comparison.objects.filter(batch_id__in=ids, is_check=True).values_list("pk", flat=True)
    )
    if flagged is None:
        flagged = len({a for b in batches for a in checks.flagged_annotator_ids(b)})
    methods = sorted({lv.test.method for lv in levels if lv.test.method})
    monte = next((lv.test for lv in levels if lv.test.method == "monte carlo"), None)
    first = batches[0]
    return MethodsFacts(
        dataset=first.dataset,
        system_a=first.system_a,
        system_b=first.system_b,
        comparisons=len(np.unique(data.comparison)),
        comparisons_in_batch=Comparison.objects.filter(batch_id__in=ids, is_check=False).count(),
        annotators=len(np.unique(data.annotator)),
        ks=sorted({b.annotators_per_item for b in batches}),
        judgments=len(data),
        criteria=[criteria.BY_KEY[c].label for c in analysis.CRITERIA],
        check_every=sorted({b.check_every for b in batches}),
        check_comparisons=len(check_ids),
        check_answers=Assignment.objects.filter(
            comparison_id__in=check_ids, status=Assignment.Status.SUBMITTED
        ).count(),
        check_thresholds=sorted({b.check_threshold for b in batches}),
        flagged=flagged,
        excluded_annotators=len(excluded),
        excluded=bool(excluded),
        test_methods=methods,
        test_resamples=monte.n_resamples if monte else None,
        test_seed=monte.seed if monte else None,
        bootstrap_resamples=levels[0].net.n_resamples if levels else 0,
        bootstrap_seed=levels[0].net.seed if levels else analysis.BOOTSTRAP_SEED,
        version=settings.FACTPAIR_VERSION,
        results=[_criterion_facts(level) for level in levels],
        batches=[b.name for b in batches] if len(batches) > 1 else [],
        reoriented=[b.name for b in reoriented],
        holm_family=holm_family,
        batch_ids=ids,
        undo_minutes=sorted({b.undo_minutes for b in batches}),
        aids=sorted({batch_aids(b) for b in batches}),
    )


# The reading aids of a batch, as the methods paragraph names them (the page's order).
AIDS = {
    "aid_paragraph_numbers": "paragraph numbers in the source",
    "aid_highlights": (
        "the numbers and names of both summaries highlighted alike in the summaries and in "
        "the source, those the source never states marked distinctly, with keys to step "
        "through their occurrences"
    ),
    "aid_word_diff": "a word-level difference view of the two summaries, shown on request",
}


def batch_aids(batch: Batch) -> tuple[str, ...]:
    return tuple(name for field_name, name in AIDS.items() if getattr(batch, field_name))


def _criterion_facts(level: analysis.ComparisonLevel) -> CriterionFacts:
    ci = level.net.ci
    return CriterionFacts(
        label=criteria.BY_KEY[level.criterion].label,
        net=level.net.estimate,
        net_low=ci.low if ci else None,
        net_high=ci.high if ci else None,
        p=level.test.p_value,
        holm_p=level.holm_p,
    )


# ---------------------------------------------------------------------------------------------
# The sentences, in order


def _listed(items: Sequence[str]) -> str:
    items = [i.lower() for i in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def p_text(p: float | None) -> str:
    """p as a paper prints it: three significant digits, "< 0.001" below that."""
    if p is None or math.isnan(p):
        return "undefined"
    return "< 0.001" if p < 0.001 else f"{p:.3g}"


def _either(values: Sequence) -> str:
    return str(values[0]) if len(values) == 1 else f"{values[0]} to {values[-1]}"


def design(f: MethodsFacts) -> str:
    where = f"{len(f.batches)} batches" if f.batches else "the batch"
    return (
        f"Annotators compared summaries of {f.system_b} (B) and {f.system_a} (A) on the "
        f"{f.dataset} data: {_plural(f.comparisons, 'comparison')} (a source document with "
        f"both summaries; {f.comparisons_in_batch:,} in {where}) were each to be judged by "
        f"K = {_either(f.ks)} annotators, and {_plural(f.annotators, 'annotator')} gave "
        f"{_plural(f.judgments, 'counted judgment')} on {len(f.criteria)} criteria "
        f"({_listed(f.criteria)}), each answered as left better, equal, or right better"
        f"{_undo_clause(f.undo_minutes)}."
    )


def _undo_clause(minutes: list[int]) -> str:
    """How long a submission could still be changed by its annotator (the undo window)."""
    allowed = [m for m in minutes if m]
    if not allowed:
        return ""
    where = " where the batch allowed it" if len(allowed) < len(minutes) else ""
    return (
        f"; annotators could change their latest submission within {_either(allowed)} min of "
        f"submitting it{where}"
    )


def pooled_batches(f: MethodsFacts) -> str | None:
    if not f.batches:
        return None
    text = f"The results pool {len(f.batches)} batches ({', '.join(f.batches)})"
    if f.reoriented:
        return text + (
            f"; {', '.join(f.reoriented)} compared the systems the other way round and "
            "were re-oriented, their verdicts flipped to match."
        )
    return text + "."


def randomisation(f: MethodsFacts) -> str:
    if len(f.ks) == 1:
        k = f.ks[0]
        at_most = f"at most {(k + 1) // 2} of its {k} annotators"
    else:
        at_most = "at most half, rounded up, of its K annotators"
    return (
        "Which summary was shown on the left was balanced within each comparison "
        f"({at_most} saw either system on the left) and within "
        "each annotator (within one item of half), with remaining choices drawn from a "
        "per-batch secret; comparisons were served least-judged first and, among equally "
        "needed ones, in an order drawn from the same secret for each annotator. Verdicts were "
        "analysed in system terms, whatever the side shown."
    )


def attention_checks(f: MethodsFacts) -> str:
    if not f.check_comparisons:
        return "No attention checks were used."
    every = [n for n in f.check_every if n]
    schedule = f" (served one every {_either(every)} comparisons)" if every else ""
    threshold = _either([f"{t:.0%}" for t in f.check_thresholds])
    text = (
        f"Attention checks{schedule} paired a summary with a copy in which one number or name "
        f"was replaced by another from the source ({_plural(f.check_comparisons, 'check')}, "
        f"{_plural(f.check_answers, 'answer')}); annotators below {threshold} "
        f"accuracy on them were flagged ({f.flagged}). Checks never count in the results"
    )
    if f.excluded:
        return text + f"; flagged annotators were excluded ({f.excluded_annotators})."
    return text + "; flagged annotators were not excluded."


def reading_aids(f: MethodsFacts) -> str | None:
    """Which reading aids annotators had: aids can change what annotators notice."""
    if not f.aids:
        return None

    def said(aids: tuple[str, ...]) -> str:
        return "; ".join(aids) if aids else "no reading aids"

    if len(f.aids) == 1:
        aids = f.aids[0]
        if not aids:
            return "Annotators had no reading aids (plain source and summaries)."
        return f"Annotators had these reading aids: {said(aids)}."
    settings = " / ".join(f"({said(a)})" for a in f.aids)
    return f"The reading aids differed between the pooled batches: {settings}."


def primary_test(f: MethodsFacts) -> str:
    if f.test_methods == ["exact"]:
        how = "exactly, over all sign patterns"
    elif f.test_methods:
        how = (
            f"by Monte Carlo with {f.test_resamples:,} random sign patterns (seed {f.test_seed})"
            + (" or exactly where the comparisons were few" if "exact" in f.test_methods else "")
        )
    else:
        how = "when defined"
    return (
        "The unit of analysis is the comparison: for each criterion, each comparison's mean "
        "verdict over its annotators (A better = -1, equal = 0, B better = +1) was tested "
        f"against 0 with a two-sided sign-flip permutation test, computed {how}; p-values were "
        f"adjusted across {f.holm_family or f'the {len(f.criteria)} criteria'} with Holm's "
        "method."
    )


def intervals(f: MethodsFacts) -> str:
    return (
        "Effect sizes are the net preference, share(B better) - share(A better), and the win "
        "rate of B among non-tied judgments, with 95% percentile intervals from a cluster "
        f"bootstrap that resamples comparisons with all their judgments "
        f"({f.bootstrap_resamples:,} resamples, seed {f.bootstrap_seed})."
    )


def results(f: MethodsFacts) -> str | None:
    parts = []
    for r in f.results:
        if r.net is None:
            continue
        ci = f" (95% CI {r.net_low:+.2f} to {r.net_high:+.2f})" if r.net_low is not None else ""
        parts.append(
            f"{r.label.lower()} {r.net:+.2f}{ci}, p = {p_text(r.p)}, "
            f"Holm-adjusted p = {p_text(r.holm_p)}"
        )
    if not parts:
        return None
    return "Net preference for B: " + "; ".join(parts) + "."


def software(f: MethodsFacts) -> str:
    return f"The study was run and analysed with factpair {f.version}."


SENTENCES: list[Callable[[MethodsFacts], str | None]] = [
    design,
    pooled_batches,
    randomisation,
    attention_checks,
    reading_aids,
    primary_test,
    intervals,
    results,
    software,
]


def methods_paragraph(facts: MethodsFacts) -> str:
    """The sentences of SENTENCES that have something to say, as one paragraph."""
    return " ".join(s for sentence in SENTENCES if (s := sentence(facts)))
