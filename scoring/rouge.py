"""ROUGE-1/2/L F-measure with stemming, through Google's `rouge-score` package."""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import version

from rouge_score import rouge_scorer

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


@lru_cache(maxsize=1)
def rouge_version() -> str:
    return f"rouge-score {version('rouge-score')} (F, stemmed)"


@lru_cache(maxsize=1)
def _scorer() -> rouge_scorer.RougeScorer:
    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)


def rouge_f(summary: str, reference: str) -> dict[str, float]:
    """F-measure of each ROUGE type of `summary` against `reference`."""
    scores = _scorer().score(target=reference, prediction=summary)
    return {name: scores[name].fmeasure for name in ROUGE_TYPES}
