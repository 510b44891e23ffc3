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
    comparisons_in_batch: int
    annotators: int
    k: int  # annotators asked per comparison
    judgments: int  # counted judgments, all criteria
    criteria: list[str]
    check_every: int
    check_comparisons: int
    check_answers: int  # submitted assignments of attention checks
    check_threshold: float
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


def batch_facts(
    batch: Batch,
    data: analysis.Judgments,
    levels: Sequence[analysis.ComparisonLevel] | None = None,
    *,
    excluded: Sequence[int] = (),
) -> MethodsFacts:
    """The facts of one batch; `levels` (Holm-adjusted across the criteria) are computed from
    `data` when not given."""
    levels = analysis.comparison_levels(data) if levels is None else levels
    check_ids = Comparison.objects.filter(batch=batch, is_check=True).values_list("pk", flat=True)
    methods = sorted({lv.test.method for lv in levels if lv.test.method})
    monte = next((lv.test for lv in levels if lv.test.method == "monte carlo"), None)
    return MethodsFacts(
        dataset=batch.dataset,
        system_a=batch.system_a,
        system_b=batch.system_b,
        comparisons=len(np.unique(data.comparison)),
        comparisons_in_batch=Comparison.objects.filter(batch=batch, is_check=False).count(),
        annotators=len(np.unique(data.annotator)),
        k=batch.annotators_per_item,
        judgments=len(data),
        criteria=[criteria.BY_KEY[c].label for c in analysis.CRITERIA],
        check_every=batch.check_every,
        check_comparisons=len(check_ids),
        check_answers=Assignment.objects.filter(
            comparison_id__in=list(check_ids), status=Assignment.Status.SUBMITTED
        ).count(),
        check_threshold=batch.check_threshold,
        flagged=len(checks.flagged_annotator_ids(batch)),
        excluded_annotators=len(excluded),
        excluded=bool(excluded),
        test_methods=methods,
        test_resamples=monte.n_resamples if monte else None,
        test_seed=monte.seed if monte else None,
        bootstrap_resamples=levels[0].net.n_resamples if levels else 0,
        bootstrap_seed=levels[0].net.seed if levels else analysis.BOOTSTRAP_SEED,
        version=settings.FACTPAIR_VERSION,
        results=[_criterion_facts(level) for level in levels],
    )


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


def design(f: MethodsFacts) -> str:
    return (
        f"Annotators compared summaries of {f.system_b} (B) and {f.system_a} (A) on the "
        f"{f.dataset} data: {_plural(f.comparisons, 'comparison')} (a source document with "
        f"both summaries; {f.comparisons_in_batch:,} in the batch) were each to be judged by "
        f"K = {f.k} annotators, and {_plural(f.annotators, 'annotator')} gave "
        f"{_plural(f.judgments, 'counted judgment')} on {len(f.criteria)} criteria "
        f"({_listed(f.criteria)}), each answered as left better, equal, or right better."
    )


def randomisation(f: MethodsFacts) -> str:
    return (
        "Which summary was shown on the left was balanced within each comparison (at most "
        f"{(f.k + 1) // 2} of its {f.k} annotators saw either system on the left) and within "
        "each annotator (within one item of half), with remaining choices drawn from a "
        "per-batch secret; comparisons were served least-judged first, in an order drawn from "
        "the same secret. Verdicts were analysed in system terms, whatever the side shown."
    )


def attention_checks(f: MethodsFacts) -> str:
    if not f.check_comparisons:
        return "No attention checks were used."
    schedule = f" (served one every {f.check_every} comparisons)" if f.check_every else ""
    text = (
        f"Attention checks{schedule} paired a summary with a copy in which one number or name "
        f"was replaced by another from the source ({_plural(f.check_comparisons, 'check')}, "
        f"{_plural(f.check_answers, 'answer')}); annotators below {f.check_threshold:.0%} "
        f"accuracy on them were flagged ({f.flagged}). Checks never count in the results"
    )
    if f.excluded:
        return text + f"; flagged annotators were excluded ({f.excluded_annotators})."
    return text + "; flagged annotators were not excluded."


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
        f"adjusted across the {len(f.criteria)} criteria with Holm's method."
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
    randomisation,
    attention_checks,
    primary_test,
    intervals,
    results,
    software,
]


def methods_paragraph(facts: MethodsFacts) -> str:
    """The sentences of SENTENCES that have something to say, as one paragraph."""
    return " ".join(s for sentence in SENTENCES if (s := sentence(facts)))
