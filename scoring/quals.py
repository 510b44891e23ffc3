"""QUALS factual-consistency score with one QA-pair generator (QAGen); see shared/QUALS.md.

Pure Python + torch + transformers (no Django), so that workers, scripts and tests share it.

Speed comes from encoding a source once: `encode_source` runs the encoder and computes the
cross-attention keys and values of every decoder layer a single time (batch size 1). Pair scoring
and beam search then feed those tensors, expanded as views (no copy), through transformers'
`EncoderDecoderCache` with the cross-attention part already filled, which makes every decoder
layer skip its key/value projections of the source.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Protocol

import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
from transformers.cache_utils import DynamicCache, DynamicLayer, EncoderDecoderCache

NO_PAIR_REASON = "no question-answer pair whose answer occurs in the summary"
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
# transformers' own "impossible" score: keeps finished/running bookkeeping identical to its search.
NEG = -1.0e9


class QualsConfigError(ValueError):
    """The QUALS model or its settings cannot be used."""


@dataclass(frozen=True)
class QualsConfig:
    model_dir: str
    separator: str = "<sep>"
    input_prefix: str = ""
    max_source_tokens: int = 1024
    device: str = "cpu"
    dtype: str = "float32"
    num_beams: int = 60
    num_beam_groups: int = 60
    diversity_strength: float = 0.5
    length_penalty: float = 1.0
    min_new_tokens: int = 8
    max_new_tokens: int = 60
    # A group stops once it holds as many finished hypotheses as beams (the reference's behaviour).
    early_stopping: bool = True
    max_pairs: int = 10
    batch_size: int = 16
    # The reference's lp_S: the beam score (diversity penalty included) instead of teacher forcing.
    summary_logprob_from_beam: bool = False


@dataclass
class QAGen:
    model: torch.nn.Module
    tokenizer: object
    config: QualsConfig

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def eos_id(self) -> int:
        return self.tokenizer.eos_token_id

    @property
    def start_id(self) -> int:
        start = self.model.config.decoder_start_token_id
        return self.eos_id if start is None else start

    @property
    def pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return self.eos_id if pad is None else pad

    def special_ids(self) -> set[int]:
        ids = {self.tokenizer.pad_token_id, self.eos_id, self.tokenizer.bos_token_id}
        return {i for i in ids if i is not None}


@dataclass
class EncodedSource:
    """A source encoded once: encoder output and per-layer cross-attention keys/values (batch 1)."""

    input_ids: torch.Tensor
    hidden: torch.Tensor
    cross_kv: list[tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class Hypothesis:
    token_ids: tuple[int, ...]  # generated tokens, decoder start excluded, EOS included if emitted
    logprob_sum: float  # sum of the model's log-probs, without the diversity penalty
    score: float  # beam score: penalised sum / length ** length_penalty
    group: int


@dataclass(frozen=True)
class QAPair:
    question: str
    answer: str
    target_ids: tuple[int, ...]  # question, separator, answer, EOS
    logprob_sum: float = 0.0
    beam_score: float | None = None


@dataclass
class PairDetail:
    question: str
    answer: str
    tokens: list[str]
    logprobs_summary: list[float]
    logprobs_document: list[float]
    mean_summary: float
    mean_document: float
    contribution: float


@dataclass
class QualsResult:
    value: float | None
    reason: str = ""
    pairs: list[PairDetail] = field(default_factory=list)
    num_candidates: int = 0  # hypotheses with exactly one separator
    num_answerable: int = 0  # of those, answer found in the summary

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------- loading


def load_qagen(config: QualsConfig) -> QAGen:
    """Load tokenizer and seq2seq model from a local checkpoint directory (never the hub)."""
    directory = checked_model_dir(config.model_dir)
    config = replace(config, **read_model_settings(directory, config))
    dtype = torch_dtype(config.dtype)
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
        model = AutoModelForSeq2SeqLM.from_pretrained(directory, local_files_only=True, dtype=dtype)
    except (OSError, ValueError, KeyError) as exc:
        raise QualsConfigError(f"cannot load the QUALS model from {directory}: {exc}") from exc
    return make_qagen(model, tokenizer, config)


def make_qagen(model: torch.nn.Module, tokenizer: object, config: QualsConfig) -> QAGen:
    """Put an already built model in inference mode on the configured device and precision."""
    if not config.separator:
        raise QualsConfigError("the QUALS separator must not be empty")
    if tokenizer.eos_token_id is None:
        raise QualsConfigError("the QUALS tokenizer has no EOS token")
    model = model.to(device=config.device, dtype=torch_dtype(config.dtype)).eval()
    model.requires_grad_(False)
    qagen = QAGen(model=model, tokenizer=tokenizer, config=config)
    check_output_head(model, qagen.start_id)
    return qagen


def read_model_settings(model_dir: str | Path, config: QualsConfig) -> dict:
    """Settings stored with the model (`factpair_quals.json`, written by convert_qagen) for the
    fields `config` leaves at their defaults: a value the caller chose always wins."""
    path = Path(model_dir) / "factpair_quals.json"
    if not path.is_file():
        return {}
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))["quals"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise QualsConfigError(f"cannot read the QUALS settings in {path}: {exc}") from exc
    if not isinstance(stored, dict):
        raise QualsConfigError(f"the QUALS settings in {path} are not a JSON object")
    defaults = {f.name: f.default for f in fields(QualsConfig)}
    return {
        name: value
        for name, value in stored.items()
        if name in defaults and name != "model_dir" and getattr(config, name) == defaults[name]
    }


def checked_model_dir(model_dir: str | Path) -> Path:
    directory = Path(model_dir)
    if not directory.is_dir():
        raise QualsConfigError(f"QUALS model directory does not exist: {directory}")
    if not (directory / "config.json").is_file():
        raise QualsConfigError(f"QUALS model directory has no config.json: {directory}")
    if not any((directory / name).is_file() for name in WEIGHT_FILES):
        raise QualsConfigError(f"QUALS model directory has no model weights: {directory}")
    return directory


def torch_dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise QualsConfigError(f"unknown dtype {name!r}; use one of {', '.join(DTYPES)}")
    return DTYPES[name]


# ---------------------------------------------------------------- source encoding


def source_ids(qagen: QAGen, text: str) -> list[int]:
    """Token ids of prefix + text, cut to the source limit with the last position kept as EOS."""
    ids = qagen.tokenizer(qagen.config.input_prefix + text, verbose=False)["input_ids"]
    limit = source_limit(qagen)
    if len(ids) > limit:
        ids = ids[: limit - 1] + [qagen.eos_id]
    return ids


def source_limit(qagen: QAGen) -> int:
    """max_source_tokens, but never more positions than the model has."""
    positions = getattr(qagen.model.config, "max_position_embeddings", None)
    return min(qagen.config.max_source_tokens, positions or qagen.config.max_source_tokens)


@torch.inference_mode()
def encode_source(qagen: QAGen, text: str) -> EncodedSource:
    """Run the encoder once and compute every decoder layer's cross-attention keys/values once."""
    input_ids = torch.tensor([source_ids(qagen, text)], device=qagen.device)
    hidden = qagen.model.get_encoder()(input_ids=input_ids).last_hidden_state
    # One decoder step on the start token fills the cross-attention cache: the model's own
    # projections (and layout) for the keys/values, whatever the architecture.
    cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
    start = torch.tensor([[qagen.start_id]], device=qagen.device)
    qagen.model.get_decoder()(
        input_ids=start, encoder_hidden_states=hidden, past_key_values=cache, use_cache=True
    )
    cross_kv = [(layer.keys, layer.values) for layer in cache.cross_attention_cache.layers]
    return EncodedSource(input_ids=input_ids, hidden=hidden, cross_kv=cross_kv)


def shared_source_cache(encoded: EncodedSource, batch: int) -> EncoderDecoderCache:
    """A cache whose cross-attention part holds the source's keys/values as batch-sized views.

    A filled cross-attention cache marks every layer as updated, so the decoder reuses the
    tensors instead of projecting the (expanded) encoder output again for every row.
    """
    cross = DynamicCache()
    cross.layers = [expanded_layer(keys, values, batch) for keys, values in encoded.cross_kv]
    return EncoderDecoderCache(DynamicCache(), cross)


def expanded_layer(keys: torch.Tensor, values: torch.Tensor, batch: int) -> DynamicLayer:
    layer = DynamicLayer()
    layer.lazy_initialization(keys, values)
    layer.keys = keys.expand(batch, -1, -1, -1)
    layer.values = values.expand(batch, -1, -1, -1)
    return layer


def decoder_hidden(
    qagen: QAGen,
    encoded: EncodedSource,
    decoder_input_ids: torch.Tensor,
    cache: EncoderDecoderCache,
    attention_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """The decoder's last hidden states against a shared source (its keys/values in `cache`)."""
    batch = decoder_input_ids.shape[0]
    return qagen.model.get_decoder()(
        input_ids=decoder_input_ids,
        attention_mask=attention_mask,
        encoder_hidden_states=encoded.hidden.expand(batch, -1, -1),
        past_key_values=cache,
        use_cache=True,
    ).last_hidden_state


def vocab_logits(model: torch.nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """The LM head on chosen positions only: padding never pays for the vocabulary projection."""
    logits = model.get_output_embeddings()(hidden)
    bias = getattr(model, "final_logits_bias", None)
    return logits if bias is None else logits + bias.to(logits.dtype)


def check_output_head(model: torch.nn.Module, start_id: int) -> None:
    """Refuse models whose head is more than projection (+ BART's final_logits_bias), e.g. T5's
    rescaling: the fast paths apply the head themselves and must equal the model's forward."""
    device = next(model.parameters()).device
    tokens = torch.tensor([[start_id, start_id]], device=device)
    with torch.inference_mode():
        expected = model(input_ids=tokens, decoder_input_ids=tokens, use_cache=False).logits
        hidden = model.get_decoder()(
            input_ids=tokens, encoder_hidden_states=model.get_encoder()(input_ids=tokens)[0]
        ).last_hidden_state
        ours = vocab_logits(model, hidden)
    tolerance = 1e-4 if expected.dtype == torch.float32 else 5e-2
    if not torch.allclose(ours.float(), expected.float(), atol=tolerance, rtol=tolerance):
        raise QualsConfigError(
            f"unsupported QAGen architecture {type(model).__name__}: its output head is not a "
            "plain projection of the decoder states"
        )


# ---------------------------------------------------------------- pair scoring


@torch.inference_mode()
def pair_logprobs(
    qagen: QAGen, encoded: EncodedSource, targets: Sequence[Sequence[int]]
) -> list[torch.Tensor]:
    """Per-token log-probs of each target (teacher forcing) against an encoded source.

    Targets are batched by length (right padding, which causal attention never sees from
    earlier positions); results come back in the order given, as float32 CPU tensors.
    """
    order = sorted(range(len(targets)), key=lambda i: -len(targets[i]))
    results: dict[int, torch.Tensor] = {}
    size = max(1, qagen.config.batch_size)
    for start in range(0, len(order), size):
        chunk = order[start : start + size]
        scored = score_batch(qagen, encoded, [targets[i] for i in chunk])
        results.update(zip(chunk, scored, strict=True))
    return [results[i] for i in range(len(targets))]


def score_batch(
    qagen: QAGen, encoded: EncodedSource, targets: list[Sequence[int]]
) -> list[torch.Tensor]:
    longest = max(len(t) for t in targets)
    labels = torch.full((len(targets), longest), qagen.pad_id, dtype=torch.long)
    mask = torch.zeros((len(targets), longest), dtype=torch.long)
    for row, target in enumerate(targets):
        labels[row, : len(target)] = torch.tensor(target)
        mask[row, : len(target)] = 1
    inputs = shift_right(labels, qagen.start_id).to(qagen.device)
    cache = shared_source_cache(encoded, len(targets))
    hidden = decoder_hidden(qagen, encoded, inputs, cache, mask.to(qagen.device))
    real = mask.bool().to(qagen.device)
    logits = vocab_logits(qagen.model, hidden[real]).float()
    # log p(label) = logit(label) - logsumexp(logits): no full log-softmax tensor is written.
    labels = labels.to(qagen.device)[real]
    picked = logits.gather(-1, labels[:, None])[:, 0] - torch.logsumexp(logits, dim=-1)
    return list(picked.cpu().split([len(target) for target in targets]))


def shift_right(labels: torch.Tensor, start_id: int) -> torch.Tensor:
    inputs = labels.new_full(labels.shape, start_id)
    inputs[:, 1:] = labels[:, :-1]
    return inputs


@torch.inference_mode()
def pair_logprobs_slow(
    qagen: QAGen, text: str, targets: Sequence[Sequence[int]]
) -> list[torch.Tensor]:
    """Reference: one full forward pass (encoder included, no cache) per target."""
    input_ids = torch.tensor([source_ids(qagen, text)], device=qagen.device)
    results = []
    for target in targets:
        labels = torch.tensor([list(target)], device=qagen.device)
        logits = qagen.model(
            input_ids=input_ids,
            decoder_input_ids=shift_right(labels, qagen.start_id),
            use_cache=False,
        ).logits
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        results.append(logprobs.gather(-1, labels[..., None])[0, :, 0].cpu())
    return results


# ---------------------------------------------------------------- diverse beam search


class DecoderSteps(Protocol):
    """What the beam search needs from a model: next-token log-probs, and a way to keep rows."""

    def next_logprobs(self, last_tokens: torch.Tensor) -> torch.Tensor: ...

    def keep(self, rows: torch.Tensor) -> None: ...


class ModelSteps:
    """Incremental decoding against an encoded source, with a self-attention KV cache."""

    def __init__(self, qagen: QAGen, encoded: EncodedSource):
        self.qagen = qagen
        self.encoded = encoded
        self.self_cache = DynamicCache()

    def next_logprobs(self, last_tokens: torch.Tensor) -> torch.Tensor:
        cache = shared_source_cache(self.encoded, last_tokens.shape[0])
        cache.self_attention_cache = self.self_cache
        inputs = last_tokens[:, None].to(self.qagen.device)
        hidden = decoder_hidden(self.qagen, self.encoded, inputs, cache)[:, -1]
        logits = vocab_logits(self.qagen.model, hidden).float()
        return torch.log_softmax(logits, dim=-1).cpu()

    def keep(self, rows: torch.Tensor) -> None:
        self.self_cache.reorder_cache(rows.to(self.qagen.device))


@dataclass
class BeamGroup:
    """One group's running beams and finished hypotheses (transformers' bookkeeping, per group)."""

    index: int
    rows: torch.Tensor  # this group's rows in the decoder batch
    sequences: list[tuple[int, ...]]
    scores: torch.Tensor  # running sums with diversity penalty
    sums: torch.Tensor  # running sums without it
    finished: list[Hypothesis | None]
    finished_scores: torch.Tensor
    improvable: bool = True
    done: bool = False


@dataclass(frozen=True)
class BeamSettings:
    start_id: int
    eos_id: int
    num_beams: int = 60
    num_groups: int = 60
    diversity_strength: float = 0.5
    length_penalty: float = 1.0
    min_new_tokens: int = 8
    max_new_tokens: int = 60
    early_stopping: bool = True


@torch.inference_mode()
def diverse_beam_search(steps: DecoderSteps, settings: BeamSettings) -> list[Hypothesis]:
    """Group beam search with Hamming diversity; returns every group's finished hypotheses.

    Each group is an ordinary beam search of num_beams / num_groups beams, run in lockstep.
    Before a group picks its candidates at a step, each token's log-prob is lowered by
    diversity_strength x the number of times earlier groups chose that token at this same step
    (a group's choices: its top group-size candidates, finishing or not). With one group this is
    exactly transformers' beam search (same candidates, finishing rules, scores and stopping).
    """
    if settings.num_beams % settings.num_groups:
        raise QualsConfigError("num_beams must be a multiple of num_beam_groups")
    groups = initial_groups(settings)
    last_tokens = torch.full((settings.num_beams,), settings.start_id, dtype=torch.long)
    for length in range(settings.max_new_tokens):
        logprobs = steps.next_logprobs(last_tokens).float()
        if length < settings.min_new_tokens:
            logprobs[:, settings.eos_id] = -math.inf
        active = [group for group in groups if not group.done]
        step = step_scores(logprobs, len(active), settings.num_beams // settings.num_groups)
        stepped = [(group, *advance_group(group, step, length, settings)) for group in active]
        if all(group.done for group in groups):
            break
        last_tokens = compact(stepped, steps)
    return [hyp for group in groups for hyp in group.finished if hyp is not None]


def initial_groups(settings: BeamSettings) -> list[BeamGroup]:
    size = settings.num_beams // settings.num_groups
    groups = []
    for index in range(settings.num_groups):
        scores = torch.full((size,), NEG)
        # Only the first beam of a group may expand at the first step, as in transformers.
        scores[0] = 0.0
        groups.append(
            BeamGroup(
                index=index,
                rows=torch.arange(index * size, (index + 1) * size),
                sequences=[()] * size,
                scores=scores,
                sums=torch.zeros(size),
                finished=[None] * size,
                finished_scores=torch.full((size,), NEG),
            )
        )
    return groups


@dataclass
class StepScores:
    """One decoder step's log-probs, each row's best tokens found once for all groups, and the
    tokens earlier groups chose at this step (with counts)."""

    logprobs: torch.Tensor
    top_values: torch.Tensor
    top_tokens: torch.Tensor
    counts: torch.Tensor
    chosen: list[int] = field(default_factory=list)


def step_scores(logprobs: torch.Tensor, active_groups: int, size: int) -> StepScores:
    """Per row, the best size x (active_groups + 1) tokens are enough: a group picks 2 x size
    candidates, and penalties only lower the at most size x (active_groups - 1) chosen tokens,
    which `group_candidates` adds back explicitly. So no group scans the whole vocabulary."""
    k = min(logprobs.shape[-1], size * (active_groups + 1))
    values, tokens = logprobs.topk(k, dim=-1)
    return StepScores(logprobs, values, tokens, torch.zeros(logprobs.shape[-1]))


def group_candidates(
    step: StepScores, rows: torch.Tensor, strength: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Candidate tokens of a group's rows: log-probs, penalised log-probs, token ids."""
    values, tokens = step.top_values[rows], step.top_tokens[rows]
    if step.chosen:
        chosen = torch.tensor(step.chosen)
        # Chosen tokens come from the full rows; their copies among the best are dropped.
        values = values.masked_fill(torch.isin(tokens, chosen), -math.inf)
        tokens = torch.cat((tokens, chosen.expand(rows.shape[0], -1)), dim=1)
        values = torch.cat((values, step.logprobs[rows[:, None], chosen[None, :]]), dim=1)
    return values, values - strength * step.counts[tokens], tokens


def record_choices(step: StepScores, tokens: torch.Tensor) -> None:
    step.counts.index_add_(0, tokens, torch.ones(tokens.shape[0]))
    step.chosen.extend(t for t in dict.fromkeys(tokens.tolist()) if t not in step.chosen)


def advance_group(
    group: BeamGroup, step: StepScores, length: int, settings: BeamSettings
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of one group; returns the rows and tokens its running beams continue with."""
    size = group.rows.shape[0]
    values, penalised, candidates = group_candidates(step, group.rows, settings.diversity_strength)
    accumulated = (penalised + group.scores[:, None]).reshape(-1)
    top_scores, top_index = torch.topk(accumulated, k=2 * size)
    beams, tokens = top_index // candidates.shape[1], candidates.reshape(-1)[top_index]
    sums = group.sums[beams] + values.reshape(-1)[top_index]
    stops = (tokens == settings.eos_id) | (length + 1 >= settings.max_new_tokens)
    if settings.diversity_strength:
        record_choices(step, tokens[:size])

    running = top_scores + stops.float() * NEG
    keep = torch.topk(running, k=size).indices
    update_finished(group, top_scores, sums, beams, tokens, stops, length, settings)
    group.sequences = [group.sequences[beams[i]] + (int(tokens[i]),) for i in keep]
    group.scores, group.sums = running[keep], sums[keep]
    update_stopping(group, stops, length + 1, settings)
    return group.rows[beams[keep]], tokens[keep]


def update_finished(
    group: BeamGroup,
    top_scores: torch.Tensor,
    sums: torch.Tensor,
    beams: torch.Tensor,
    tokens: torch.Tensor,
    stops: torch.Tensor,
    length: int,
    settings: BeamSettings,
) -> None:
    """Merge newly finished candidates into the group's best `size` finished hypotheses.

    Only the top `size` candidates may finish; the rest exist so that enough beams keep running.
    """
    size = group.rows.shape[0]
    normalised = top_scores / ((length + 1) ** settings.length_penalty)
    full = all(hyp is not None for hyp in group.finished) and settings.early_stopping
    normalised = normalised + float(full) * NEG + float(not group.improvable) * NEG
    finishing = stops.clone()
    finishing[size:] = False
    normalised = normalised + (~finishing) * NEG
    candidates = [
        Hypothesis(
            token_ids=group.sequences[beams[i]] + (int(tokens[i]),),
            logprob_sum=float(sums[i]),
            score=float(normalised[i]),
            group=group.index,
        )
        for i in range(len(tokens))
    ]
    merged_scores = torch.cat((group.finished_scores, normalised))
    merged = group.finished + candidates
    flags = [hyp is not None for hyp in group.finished] + finishing.tolist()
    best = torch.topk(merged_scores, k=size).indices.tolist()
    group.finished = [merged[i] if flags[i] else None for i in best]
    group.finished_scores = merged_scores[best]


def update_stopping(
    group: BeamGroup, stops: torch.Tensor, generated: int, settings: BeamSettings
) -> None:
    """transformers' stopping rule, per group: nothing better can finish, or the group is full."""
    all_finished = all(hyp is not None for hyp in group.finished)
    best_running = group.scores[0] / (generated**settings.length_penalty)
    worst = group.finished_scores.min() if all_finished else torch.tensor(NEG)
    group.improvable = group.improvable and bool(best_running > worst)
    group.done = (
        not group.improvable
        or (all_finished and settings.early_stopping)
        or bool(stops.all())
        or generated >= settings.max_new_tokens
    )


def compact(
    stepped: list[tuple[BeamGroup, torch.Tensor, torch.Tensor]], steps: DecoderSteps
) -> torch.Tensor:
    """Reorder the decoder's cache to the surviving beams; finished groups drop out of the batch."""
    rows, tokens, offset = [], [], 0
    for group, group_rows, group_tokens in stepped:
        if group.done:
            continue
        rows.append(group_rows)
        tokens.append(group_tokens)
        group.rows = torch.arange(offset, offset + group_rows.shape[0])
        offset += group_rows.shape[0]
    steps.keep(torch.cat(rows))
    return torch.cat(tokens)


# ---------------------------------------------------------------- pairs


def split_pair(text: str, separator: str) -> tuple[str, str] | None:
    """Question and answer around exactly one separator, stripped; None otherwise."""
    parts = text.split(separator)
    if len(parts) != 2:
        return None
    return parts[0].strip(), parts[1].strip()


def answer_in_summary(answer: str, summary: str) -> bool:
    """The reference's test (case-insensitive substring), minus its acceptance of empty answers."""
    return bool(answer.strip()) and answer.lower() in summary.lower()


def select_pairs(candidates: Sequence[QAPair], summary: str, max_pairs: int = 10) -> list[QAPair]:
    """QUALS.md steps 3-4: answerable pairs, best first, one question per answer per round."""
    answerable = [pair for pair in candidates if answer_in_summary(pair.answer, summary)]
    ranked = sorted(answerable, key=lambda pair: -pair.logprob_sum)
    by_answer: dict[str, list[QAPair]] = {}
    seen: set[tuple[str, str]] = set()
    for pair in ranked:
        if (pair.answer, pair.question) in seen:
            continue
        seen.add((pair.answer, pair.question))
        by_answer.setdefault(pair.answer.lower(), []).append(pair)
    return round_robin(list(by_answer.values()), max_pairs)


def round_robin(queues: list[list[QAPair]], limit: int) -> list[QAPair]:
    taken: list[QAPair] = []
    for depth in range(max((len(queue) for queue in queues), default=0)):
        for queue in queues:
            if len(taken) == limit:
                return taken
            if depth < len(queue):
                taken.append(queue[depth])
    return taken


def make_pair(qagen: QAGen, question: str, answer: str, logprob_sum: float = 0.0) -> QAPair:
    """A pair given as text (imports, tests): target ids from question + separator + answer."""
    text = f"{question}{qagen.config.separator} {answer}"
    ids = qagen.tokenizer(text, add_special_tokens=False)["input_ids"]
    return QAPair(question, answer, tuple(ids) + (qagen.eos_id,), logprob_sum)


def pair_from_hypothesis(qagen: QAGen, hypothesis: Hypothesis) -> QAPair | None:
    """Split a generated hypothesis; its own token ids (EOS ensured) become the pair's target."""
    special = qagen.special_ids()
    visible = [i for i in hypothesis.token_ids if i not in special]
    text = qagen.tokenizer.decode(
        visible, skip_special_tokens=False, clean_up_tokenization_spaces=False
    )
    split = split_pair(text, qagen.config.separator)
    if split is None:
        return None
    target = tuple(hypothesis.token_ids)
    if not target or target[-1] != qagen.eos_id:
        target += (qagen.eos_id,)
    return QAPair(split[0], split[1], target, hypothesis.logprob_sum, hypothesis.score)


def beam_settings(qagen: QAGen) -> BeamSettings:
    config = qagen.config
    return BeamSettings(
        start_id=qagen.start_id,
        eos_id=qagen.eos_id,
        num_beams=config.num_beams,
        num_groups=config.num_beam_groups,
        diversity_strength=config.diversity_strength,
        length_penalty=config.length_penalty,
        min_new_tokens=config.min_new_tokens,
        max_new_tokens=config.max_new_tokens,
        early_stopping=config.early_stopping,
    )


def generate_candidates(
    qagen: QAGen, summary: str, encoded: EncodedSource | None = None
) -> list[QAPair]:
    """QUALS.md steps 1-2: diverse beam search on the summary, hypotheses split at the separator."""
    encoded = encoded or encode_source(qagen, summary)
    hypotheses = diverse_beam_search(ModelSteps(qagen, encoded), beam_settings(qagen))
    pairs = (pair_from_hypothesis(qagen, hypothesis) for hypothesis in hypotheses)
    return [pair for pair in pairs if pair is not None]


# ---------------------------------------------------------------- the score


@torch.inference_mode()
def quals_score(
    qagen: QAGen,
    document: str,
    summary: str,
    encoded_document: EncodedSource | None = None,
) -> QualsResult:
    """QUALS(D, S) = mean over selected pairs of (lp_D - lp_S); value None if no pair is usable."""
    encoded_summary = encode_source(qagen, summary)
    candidates = generate_candidates(qagen, summary, encoded_summary)
    answerable = sum(answer_in_summary(pair.answer, summary) for pair in candidates)
    selected = select_pairs(candidates, summary, qagen.config.max_pairs)
    if not selected:
        return QualsResult(None, NO_PAIR_REASON, [], len(candidates), answerable)
    encoded_document = encoded_document or encode_source(qagen, document)
    targets = [pair.target_ids for pair in selected]
    under_summary = pair_logprobs(qagen, encoded_summary, targets)
    under_document = pair_logprobs(qagen, encoded_document, targets)
    details = [
        pair_detail(qagen, pair, lp_s, lp_d)
        for pair, lp_s, lp_d in zip(selected, under_summary, under_document, strict=True)
    ]
    value = sum(detail.contribution for detail in details) / len(details)
    return QualsResult(value, "", details, len(candidates), answerable)


def pair_detail(
    qagen: QAGen, pair: QAPair, under_summary: torch.Tensor, under_document: torch.Tensor
) -> PairDetail:
    mean_summary = float(under_summary.mean())
    if qagen.config.summary_logprob_from_beam:
        if pair.beam_score is None:
            raise QualsConfigError("summary_logprob_from_beam needs pairs from the beam search")
        mean_summary = pair.beam_score
    mean_document = float(under_document.mean())
    return PairDetail(
        question=pair.question,
        answer=pair.answer,
        tokens=[qagen.tokenizer.decode([i]) for i in pair.target_ids],
        logprobs_summary=under_summary.tolist(),
        logprobs_document=under_document.tolist(),
        mean_summary=mean_summary,
        mean_document=mean_document,
        contribution=mean_document - mean_summary,
    )


@torch.inference_mode()
def score_summaries(qagen: QAGen, document: str, summaries: Sequence[str]) -> list[QualsResult]:
    """Score summaries of one document (e.g. both sides of a comparison), encoding it once."""
    encoded_document = encode_source(qagen, document)
    return [quals_score(qagen, document, summary, encoded_document) for summary in summaries]
