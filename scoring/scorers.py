"""One scorer per metric family: a summary in, its scores and the version that computed them out.

A scorer reads settings but writes nothing: `services.score_summary` stores what it returns.
A missing score is `Score(None, reason)`, never a number. torch and transformers are imported
only when QUALS is first used (about 2 s, and the web process never needs them); that import
inside functions is for start-up time, not for a cycle.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol

from django.conf import settings

from .fragments import extractive_fragments
from .rouge import ROUGE_TYPES, rouge_f, rouge_version

if TYPE_CHECKING:
    from .quals import EncodedSource, QAGen, QualsConfig


class SourceDocument(Protocol):
    """What a scorer reads of a document (an `evaluation.Document`)."""

    pk: int
    source: str
    reference: str


class ScoredText(Protocol):
    """What a scorer reads of a summary (an `evaluation.Summary` with its document)."""

    pk: int
    text: str
    document: SourceDocument


@dataclass(frozen=True)
class Score:
    value: float | None
    reason: str = ""  # why there is no value
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Scored:
    scores: dict[str, Score]
    version: str


class MetricUnavailable(Exception):
    """The family cannot score here (e.g. QUALS without a model); the message says why."""


# ---------------------------------------------------------------------------------------------
# ROUGE


def score_rouge(summary: ScoredText) -> Scored:
    reference = summary.document.reference
    if not reference.strip():
        missing = Score(None, "the document has no reference summary")
        return Scored(dict.fromkeys(ROUGE_TYPES, missing), rouge_version())
    values = rouge_f(summary.text, reference)
    return Scored({m: Score(v) for m, v in values.items()}, rouge_version())


# ---------------------------------------------------------------------------------------------
# Extractive fragments


def fragments_version() -> str:
    return f"fragments (Grusky et al. 2018), factpair {settings.FACTPAIR_VERSION}"


def score_fragments(summary: ScoredText) -> Scored:
    try:
        found = extractive_fragments(summary.document.source, summary.text)
    except ValueError as e:
        missing = Score(None, str(e))
        return Scored({"coverage": missing, "density": missing}, fragments_version())
    details = {"fragments": [" ".join(f) for f in found.fragments]}
    return Scored(
        {"coverage": Score(found.coverage, details=details), "density": Score(found.density)},
        fragments_version(),
    )


# ---------------------------------------------------------------------------------------------
# QUALS

QUALS_NOT_CONFIGURED = "QUALS is not configured: set QUALS_MODEL to a local checkpoint directory"


def quals_unavailable() -> str:
    """Why QUALS cannot score here, or "" when it can."""
    return "" if settings.QUALS_MODEL else QUALS_NOT_CONFIGURED


def quals_config() -> QualsConfig:
    from .quals import QualsConfig

    if quals_unavailable():
        raise MetricUnavailable(quals_unavailable())
    return QualsConfig(
        model_dir=settings.QUALS_MODEL,
        separator=settings.QUALS_SEPARATOR,
        input_prefix=settings.QUALS_INPUT_PREFIX,
        max_source_tokens=settings.QUALS_MAX_SOURCE_TOKENS,
        device=settings.QUALS_DEVICE,
        dtype=settings.QUALS_DTYPE,
        mode=settings.QUALS_MODE,
    )


def quals_version(qagen: QAGen | None = None) -> str:
    """What a stored QUALS records: the mode and every setting that changes a score, the
    model (directory and weights hash, once it is loaded) and factpair's version. Scores of
    another version are never mixed with these: re-score to change the mode or the model."""
    described = qagen.version_string() if qagen else quals_config().version_string()
    return f"{described}; factpair {settings.FACTPAIR_VERSION}"


@lru_cache(maxsize=1)
def _loaded(config: QualsConfig) -> QAGen:
    from .quals import load_qagen

    return load_qagen(config)


def worker_qagen() -> QAGen:
    """The QUALS model, loaded once per worker process (and again only if settings change)."""
    return _loaded(quals_config())


# The two summaries of a comparison share a document: keep its encoding (encoder output and
# cross-attention keys/values) for the next task, which is usually the other summary.
_ENCODED: OrderedDict[tuple, EncodedSource] = OrderedDict()
_ENCODED_MAX = 4


def encoded_document(qagen: QAGen, document: SourceDocument) -> EncodedSource:
    from .quals import encode_source

    key = (document.pk, hash(document.source), qagen.config)
    if key in _ENCODED:
        _ENCODED.move_to_end(key)
        return _ENCODED[key]
    encoded = encode_source(qagen, document.source)
    _ENCODED[key] = encoded
    while len(_ENCODED) > _ENCODED_MAX:
        _ENCODED.popitem(last=False)
    return encoded


def score_quals(summary: ScoredText) -> Scored:
    """QUALS with its explanation (the selected pairs and their per-token log-probabilities)."""
    from .quals import quals_score

    qagen = worker_qagen()
    encoded = encoded_document(qagen, summary.document)
    result = quals_score(qagen, summary.document.source, summary.text, encoded)
    details = result.to_dict()
    del details["value"], details["reason"]
    score = Score(result.value, result.reason, details)
    return Scored({"quals": score}, quals_version(qagen))
