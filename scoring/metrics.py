"""The automatic metrics, defined once.

A metric family is what one scoring task computes for one summary (ROUGE gives three metrics,
QUALS one). Everything that enumerates metrics reads `FAMILIES`: the score and job models'
choices, the Celery routing, the scoring services, the batch and results pages, the exports, the
dashboard and the commands. Whether a family can score here, and why not, is decided by its
`unavailable` alone. Adding a family is one entry here, its scorer in `scorers.py`, its task in
`tasks.py` and a migration for the new choices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import scorers


@dataclass(frozen=True)
class MetricFamily:
    key: str  # the scoring job's kind
    label: str
    metrics: tuple[tuple[str, str], ...]  # (metric name, label), the headline metric first
    description: str
    task: str  # the Celery task scoring one summary
    queue: str  # the Celery queue of that task
    score: Callable[[scorers.ScoredText], scorers.Scored]
    version: Callable[[], str]
    # Why it cannot score here ("" when it can); never a silent skip.
    unavailable: Callable[[], str] = lambda: ""
    explain_url: str = ""  # URL name of the page explaining one summary's score, if any

    @property
    def metric_names(self) -> list[str]:
        return [name for name, _ in self.metrics]

    @property
    def headline(self) -> str:
        return self.metrics[0][0]


FAMILIES: tuple[MetricFamily, ...] = (
    MetricFamily(
        key="quals",
        label="QUALS",
        metrics=(("quals", "QUALS"),),
        description="Factual consistency from one question-answer generator (Nan et al., 2021).",
        task="scoring.tasks.score_quals",
        queue="quals",
        score=scorers.score_quals,
        version=scorers.quals_version,
        unavailable=scorers.quals_unavailable,
        explain_url="summary_quals",
    ),
    MetricFamily(
        key="rouge",
        label="ROUGE",
        metrics=(("rougeL", "ROUGE-L F"), ("rouge1", "ROUGE-1 F"), ("rouge2", "ROUGE-2 F")),
        description="Overlap with the reference summary (F-measure, stemmed, rouge-score).",
        task="scoring.tasks.score_rouge",
        queue="default",
        score=scorers.score_rouge,
        version=scorers.rouge_version,
    ),
    MetricFamily(
        key="fragments",
        label="Extractive fragments",
        metrics=(("coverage", "Fragment coverage"), ("density", "Fragment density")),
        description="How much of the summary is copied from the source (Grusky et al., 2018).",
        task="scoring.tasks.score_fragments",
        queue="default",
        score=scorers.score_fragments,
        version=scorers.fragments_version,
    ),
)
BY_KEY: dict[str, MetricFamily] = {f.key: f for f in FAMILIES}
METRIC_LABELS: dict[str, str] = {name: label for f in FAMILIES for name, label in f.metrics}
FAMILY_OF_METRIC: dict[str, MetricFamily] = {m: f for f in FAMILIES for m in f.metric_names}
_BY_TASK: dict[str, MetricFamily] = {f.task: f for f in FAMILIES}


def family(key: str) -> MetricFamily:
    """The family by key; ValueError naming the known ones otherwise."""
    if key not in BY_KEY:
        raise ValueError(f"unknown metric family {key!r}: use one of {', '.join(BY_KEY)}")
    return BY_KEY[key]


def metric_names() -> list[str]:
    """Every metric, family by family, headline first."""
    return [name for f in FAMILIES for name in f.metric_names]


def route_task(
    name: str, args: tuple, kwargs: dict, options: dict, task: object = None, **kw
) -> dict | None:
    """Celery router (settings.CELERY_TASK_ROUTES): a family's task goes to its queue."""
    found = _BY_TASK.get(name)
    return {"queue": found.queue} if found else None
