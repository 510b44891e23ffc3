"""QUALS factual-consistency score with one QA-pair generator (QAGen); see shared/QUALS.md.

Pure Python + torch + transformers (no Django), so that workers, scripts and tests share it.

Modes (`QualsConfig.mode`, recorded by `QualsConfig.version_string()` with every score):

- "reference" (the default): the reference implementation (amazon-science/fact-check-summarization
  with fairseq's DiverseBeamSearch) step for step. Inputs are BPE(text) + EOS without BOS, cut to
  `max_source_tokens - 2` tokens (1022 for the default 1024) before the EOS. Candidates come from
  fairseq's diverse beam search: groups in order, each proposing 2 x beams-per-group candidates
  with a Hamming penalty counting every candidate of the earlier groups, penalised scores
  accumulating, candidates interleaved across groups, EOS candidates among the first `num_beams`
  finalised for the whole input until `num_beams` are finished, the next beams the first
  `num_beams` other candidates (so lineages move between groups), EOS forbidden before
  `min_new_tokens` tokens and forced after `max_new_tokens`. lp_S is the hypothesis' normalised
  beam score (penalty included), so QUALS can be positive.
- "clean": as "reference", except that lp_S is teacher-forced (the mean log-prob of the pair's
  tokens given the summary, the same formula as lp_D).

Deviations kept in both modes: an empty (or whitespace-only) answer is rejected, where the
reference accepts it because "" is a substring of every summary; no selected pair gives no value
with a reason, where the reference stores -1e5; pad is never generated (as in fairseq) and NaN
log-probs are not guarded (they do not occur with finite weights).

Speed comes from encoding a source once: `encode_source` runs the encoder and computes the
cross-attention keys and values of every decoder layer a single time (batch size 1). Pair scoring
and beam search then feed those tensors, expanded as views (no copy) for one source, through
transformers' `EncoderDecoderCache` with the cross-attention part already filled, which makes
every decoder layer skip its key/value projections of the source. The beam search's bookkeeping
is tensor operations over all beams (and all summaries of a batch) per step; only the groups,
which depend on each other through the penalty, are a Python loop over small shortlists.
"""

from __future__ import annotations

import hashlib
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
MODES = ("reference", "clean")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".safetensors.index.json", ".bin.index.json")


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
    max_pairs: int = 10
    batch_size: int = 16  # pairs per teacher-forced forward pass
    generation_batch_size: int = 8  # summaries per beam search
    mode: str = "reference"

    def version_string(self) -> str:
        """Everything that changes a score, in one line to store with it."""
        return (
            f"QUALS {self.mode}; sep {self.separator!r}; prefix {self.input_prefix!r}; "
            f"source {self.max_source_tokens}; beams {self.num_beams}/{self.num_beam_groups} "
            f"groups, diversity {self.diversity_strength}, length {self.min_new_tokens}-"
            f"{self.max_new_tokens}, lenpen {self.length_penalty}; pairs {self.max_pairs}; "
            f"{self.dtype}"
        )


@dataclass
class QAGen:
    model: torch.nn.Module
    tokenizer: object
    config: QualsConfig
    fingerprint: str = ""  # first 12 hex digits of the weights' sha256 ("" if built in memory)

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

    def version_string(self) -> str:
        """The config's version plus which weights: directory name and weights hash."""
        name = Path(self.config.model_dir).name
        return f"{self.config.version_string()}; model {name} weights {self.fingerprint or '-'}"


@dataclass
class EncodedSource:
    """A source encoded once: encoder output and per-layer cross-attention keys/values (batch 1)."""

    input_ids: torch.Tensor
    hidden: torch.Tensor
    cross_kv: list[tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class Hypothesis:
    """A finished beam, as the reference returns it."""

    token_ids: tuple[int, ...]  # generated tokens, decoder start excluded, EOS last
    score: float  # normalised: unnormalised / length ** length_penalty (EOS counted)
    unnormalised_score: float  # summed log-probs with the diversity penalty
    token_scores: tuple[float, ...]  # per token, penalty included (they sum to the above)
    logprob_sum: float  # summed model log-probs, penalty excluded
    group: int  # the group whose candidate ended it


@dataclass(frozen=True)
class QAPair:
    question: str
    answer: str
    target_ids: tuple[int, ...]  # question, separator, answer, EOS
    unnormalised_score: float = 0.0  # selection order: summed penalised beam score
    beam_score: float | None = None  # lp_S in reference mode
    token_scores: tuple[float, ...] | None = None


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
    mode: str = "reference"

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
    return make_qagen(model, tokenizer, config, model_fingerprint(directory))


def make_qagen(
    model: torch.nn.Module, tokenizer: object, config: QualsConfig, fingerprint: str = ""
) -> QAGen:
    """Put an already built model in inference mode on the configured device and precision."""
    if not config.separator:
        raise QualsConfigError("the QUALS separator must not be empty")
    if config.mode not in MODES:
        raise QualsConfigError(f"unknown QUALS mode {config.mode!r}; use one of {MODES}")
    if tokenizer.eos_token_id is None:
        raise QualsConfigError("the QUALS tokenizer has no EOS token")
    model = model.to(device=config.device, dtype=torch_dtype(config.dtype)).eval()
    model.requires_grad_(False)
    qagen = QAGen(model=model, tokenizer=tokenizer, config=config, fingerprint=fingerprint)
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


def model_fingerprint(model_dir: str | Path) -> str:
    """sha256 of the weight files (names and bytes, in name order), first 12 hex digits."""
    digest = hashlib.sha256()
    files = sorted(p for p in Path(model_dir).iterdir() if p.name.endswith(WEIGHT_SUFFIXES))
    for path in files:
        digest.update(path.name.encode())
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()[:12]


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
    """BPE(prefix + text) without BOS, cut to `source_limit - 2` tokens, then EOS.

    With the default 1024 that is the reference's 1022 tokens + EOS. A transformers BART
    tokenizer would add `<s>` by default; the reference has none.
    """
    tokens = qagen.tokenizer(
        qagen.config.input_prefix + text, add_special_tokens=False, verbose=False
    )["input_ids"]
    return tokens[: max(1, source_limit(qagen) - 2)] + [qagen.eos_id]


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
    return cache_with_cross(
        [(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)) for k, v in encoded.cross_kv]
    )


def cache_with_cross(cross_kv: list[tuple[torch.Tensor, torch.Tensor]]) -> EncoderDecoderCache:
    cross = DynamicCache()
    cross.layers = [filled_layer(keys, values) for keys, values in cross_kv]
    return EncoderDecoderCache(DynamicCache(), cross)


def filled_layer(keys: torch.Tensor, values: torch.Tensor) -> DynamicLayer:
    layer = DynamicLayer()
    layer.lazy_initialization(keys, values)
    layer.keys, layer.values = keys, values
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
    """What the beam search needs from a model: next-token log-probs for every row (input-major:
    row = input * num_beams + beam), and a way to keep rows (and drop finished inputs)."""

    def next_logprobs(self, last_tokens: torch.Tensor) -> torch.Tensor: ...

    def keep(self, rows: torch.Tensor, inputs: torch.Tensor | None) -> None: ...


class ModelSteps:
    """Incremental decoding of several encoded sources at once, num_beams rows each.

    One source: its cross-attention keys/values are expanded views (no copy). Several: they are
    padded to the longest, copied once per row and masked; dropping a finished input copies
    the remaining rows once more. Reordering beams within an input never touches them.
    """

    def __init__(self, qagen: QAGen, encoded: Sequence[EncodedSource], beams: int):
        self.qagen, self.beams = qagen, beams
        if len(encoded) == 1:
            [source] = encoded
            self.cross = [
                (k.expand(beams, -1, -1, -1), v.expand(beams, -1, -1, -1))
                for k, v in source.cross_kv
            ]
            self.hidden, self.mask = source.hidden, None
        else:
            self.cross, self.mask = padded_cross(encoded, beams)
            # Every layer reads the filled cache; the decoder only takes shapes from this.
            self.hidden = encoded[0].hidden.new_zeros(1, 1, encoded[0].hidden.shape[-1])
        self.cache = cache_with_cross(self.cross)

    def next_logprobs(self, last_tokens: torch.Tensor) -> torch.Tensor:
        rows = last_tokens.shape[0]
        keys = self.cross[0][0]
        hidden = self.hidden.expand(rows, keys.shape[2], -1)
        out = self.qagen.model.get_decoder()(
            input_ids=last_tokens[:, None].to(self.qagen.device),
            encoder_hidden_states=hidden,
            encoder_attention_mask=self.mask,
            past_key_values=self.cache,
            use_cache=True,
        ).last_hidden_state[:, -1]
        return torch.log_softmax(vocab_logits(self.qagen.model, out).float(), dim=-1)

    def keep(self, rows: torch.Tensor, inputs: torch.Tensor | None) -> None:
        self.cache.self_attention_cache.reorder_cache(rows.to(self.qagen.device))
        if inputs is None:
            return
        inputs = inputs.to(self.qagen.device)
        beams = torch.arange(self.beams, device=inputs.device)
        kept = (inputs[:, None] * self.beams + beams).reshape(-1)
        self.cross = [(k.index_select(0, kept), v.index_select(0, kept)) for k, v in self.cross]
        if self.mask is not None:
            self.mask = self.mask.index_select(0, kept)
        self.cache.cross_attention_cache.layers = [filled_layer(k, v) for k, v in self.cross]


def padded_cross(
    encoded: Sequence[EncodedSource], beams: int
) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], torch.Tensor]:
    lengths = [source.input_ids.shape[1] for source in encoded]
    longest = max(lengths)
    device = encoded[0].hidden.device
    mask = torch.zeros(len(encoded), longest, dtype=torch.long, device=device)
    for row, length in enumerate(lengths):
        mask[row, :length] = 1

    def rows(tensors: list[torch.Tensor]) -> torch.Tensor:
        padded = [torch.nn.functional.pad(t, (0, 0, 0, longest - t.shape[2])) for t in tensors]
        return torch.cat(padded).repeat_interleave(beams, dim=0)

    layers = len(encoded[0].cross_kv)
    cross = [
        (rows([s.cross_kv[i][0] for s in encoded]), rows([s.cross_kv[i][1] for s in encoded]))
        for i in range(layers)
    ]
    return cross, mask.repeat_interleave(beams, dim=0)


@dataclass(frozen=True)
class BeamSettings:
    start_id: int
    eos_id: int
    pad_id: int | None = None  # never generated (fairseq's rule)
    num_beams: int = 60
    num_groups: int = 60
    diversity_strength: float = 0.5
    length_penalty: float = 1.0
    min_new_tokens: int = 8  # EOS forbidden while fewer tokens were generated
    max_new_tokens: int = 60  # then only EOS


@dataclass
class Candidates:
    """One step's 2 x num_beams candidates per input, interleaved across groups."""

    scores: torch.Tensor  # running penalised sums
    tokens: torch.Tensor
    beams: torch.Tensor  # the beam each one extends
    raw: torch.Tensor  # running sums without the penalty


@torch.inference_mode()
def diverse_beam_search(
    steps: DecoderSteps, settings: BeamSettings, inputs: int = 1
) -> list[list[Hypothesis]]:
    """fairseq's SequenceGenerator with DiverseBeamSearch, for `inputs` sources at once.

    Returns, per input, its num_beams finished hypotheses, best normalised score first.
    """
    beams, longest = settings.num_beams, settings.max_new_tokens
    if beams % settings.num_groups:
        raise QualsConfigError("num_beams must be a multiple of num_beam_groups")
    finished: list[list[Hypothesis]] = [[] for _ in range(inputs)]
    alive = torch.arange(inputs)  # original index of each input still searching
    last = torch.full((inputs * beams,), settings.start_id, dtype=torch.long)
    count = cum = raw = tokens = history = None
    for step in range(longest + 1):
        logprobs = steps.next_logprobs(last).float().view(alive.shape[0], beams, -1)
        if count is None:  # buffers on the decoder's device
            device = logprobs.device
            count = torch.zeros(inputs, dtype=torch.long, device=device)
            cum = torch.zeros(inputs, beams, device=device)
            raw = torch.zeros(inputs, beams, device=device)
            tokens = torch.zeros(inputs, beams, longest + 1, dtype=torch.long, device=device)
            history = torch.zeros(inputs, beams, longest + 1, device=device)
            last = last.to(device)
        constrain(logprobs, step, settings)
        candidates = diverse_candidates(logprobs, cum, raw, step, settings)
        count += finalise(candidates, tokens, history, count, step, settings, alive, finished)
        done = count >= beams
        if bool(done.all()) or step == longest:
            break
        cum, raw, beam_rows, last_tokens = next_beams(candidates, settings)
        tokens = tokens.gather(1, beam_rows[..., None].expand_as(tokens))
        history = history.gather(1, beam_rows[..., None].expand_as(history))
        tokens[:, :, step], history[:, :, step] = last_tokens, cum
        rows = beam_rows + torch.arange(alive.shape[0], device=device)[:, None] * beams
        kept = None
        if bool(done.any()):
            kept = (~done).nonzero()[:, 0]
            rows, last_tokens, cum, raw = rows[kept], last_tokens[kept], cum[kept], raw[kept]
            tokens, history, count = tokens[kept], history[kept], count[kept]
            alive = alive[kept.cpu()]
        steps.keep(rows.reshape(-1), kept)
        last = last_tokens.reshape(-1)
    # fairseq's final order: normalised score, best first (a stable sort).
    return [sorted(hyps, key=lambda h: -h.score) for hyps in finished]


def constrain(logprobs: torch.Tensor, step: int, settings: BeamSettings) -> None:
    """Never pad; EOS only after min_new_tokens tokens; only EOS after max_new_tokens."""
    eos = settings.eos_id
    if settings.pad_id is not None:
        logprobs[..., settings.pad_id] = -math.inf
    if step >= settings.max_new_tokens:
        kept = logprobs[..., eos].clone()
        logprobs.fill_(-math.inf)
        logprobs[..., eos] = kept
    elif step < settings.min_new_tokens:
        logprobs[..., eos] = -math.inf


def diverse_candidates(
    logprobs: torch.Tensor, cum: torch.Tensor, raw: torch.Tensor, step: int, s: BeamSettings
) -> Candidates:
    """DiverseBeamSearch.step for every input at once.

    Group g holds beams g, g + G, g + 2G, ... Groups go in order; group g's log-probs are
    lowered by strength x (times each token was a candidate of groups 0..g-1 at this step), and
    it proposes the top 2 x its beams of (running score + penalised log-prob); at step 0 only
    its first beam. Every candidate of a group counts in the penalty of the later ones.

    Only a shortlist per beam is ranked: the top 2 x beams-per-group x groups tokens. At most
    2 x beams-per-group x (groups - 1) tokens carry a penalty, so at least 2 x beams-per-group
    unpenalised ones remain, and a token outside the shortlist can never beat them.
    """
    inputs, beams, vocab = logprobs.shape
    groups, size = s.num_groups, beams // s.num_groups
    short = shortlist_size(vocab, size, groups)
    values, tokens = logprobs.topk(short, dim=-1)
    # (inputs, groups, beams of the group, shortlist)
    values = values.view(inputs, size, groups, short).transpose(1, 2)
    tokens = tokens.view(inputs, size, groups, short).transpose(1, 2)
    base = cum.view(inputs, size, groups).transpose(1, 2)
    base_raw = raw.view(inputs, size, groups).transpose(1, 2)
    if step == 0:
        values, tokens, base, base_raw = (x[:, :, :1] for x in (values, tokens, base, base_raw))
    width = values.shape[2] * short
    take = min(2 * size, values.shape[2] * vocab - 1)
    values = values.reshape(inputs, groups, width)
    tokens = tokens.reshape(inputs, groups, width)
    base = base[..., None].expand(-1, -1, -1, short).reshape(inputs, groups, width)
    counts = logprobs.new_zeros(inputs, vocab)
    ones = logprobs.new_ones(inputs, take)
    # The groups depend on each other through the penalty, so they go one by one; each does a
    # few whole-batch operations, and the results are stacked once at the end.
    found: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    for g, (group_values, group_tokens, group_base) in enumerate(
        zip(values.unbind(1), tokens.unbind(1), base.unbind(1), strict=True)
    ):
        if g and s.diversity_strength:
            penalty = counts.gather(1, group_tokens).mul_(s.diversity_strength)
            group_values = group_values - penalty
        top_values, top_places = (group_values + group_base).topk(take, dim=1)
        chosen = group_tokens.gather(1, top_places)
        counts.scatter_add_(1, chosen, ones)
        found.append((top_values, top_places, chosen))
    top_scores, top_index, top_tokens = (
        torch.stack(parts, dim=1) for parts in zip(*found, strict=True)
    )
    within = top_index // short
    group_ids = torch.arange(groups, device=logprobs.device)[None, :, None]
    raw_scores = values.gather(2, top_index) + base_raw.gather(2, within)

    def interleaved(x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2).reshape(inputs, take * groups)

    return Candidates(
        scores=interleaved(top_scores),
        tokens=interleaved(top_tokens),
        beams=interleaved(within * groups + group_ids),
        raw=interleaved(raw_scores),
    )


def shortlist_size(vocab: int, size: int, groups: int) -> int:
    return min(vocab, 2 * size * groups)


def finalise(
    candidates: Candidates,
    tokens: torch.Tensor,
    history: torch.Tensor,
    count: torch.Tensor,
    step: int,
    settings: BeamSettings,
    alive: torch.Tensor,
    finished: list[list[Hypothesis]],
) -> torch.Tensor:
    """EOS candidates among the first num_beams finish, in candidate order, until an input has
    num_beams finished hypotheses. Returns how many finished per input."""
    beams = settings.num_beams
    scores, ends = candidates.scores[:, :beams], candidates.tokens[:, :beams]
    eos = (ends == settings.eos_id) & (scores != -math.inf)
    accept = eos & (eos.long().cumsum(1) + count[:, None] <= beams)
    rows, places = accept.nonzero(as_tuple=True)
    if rows.numel():
        of = candidates.beams[rows, places]
        final = scores[rows, places]
        running = torch.cat((history[rows, of, :step], final[:, None]), dim=1)
        per_token = torch.cat((running[:, :1], running[:, 1:] - running[:, :-1]), dim=1)
        length = step + 1
        normalised = final / length**settings.length_penalty
        raw = candidates.raw[rows, places]
        records = zip(
            rows.tolist(),
            tokens[rows, of, :step].tolist(),
            normalised.tolist(),
            per_token.tolist(),
            raw.tolist(),
            (places % settings.num_groups).tolist(),
            strict=True,
        )
        for row, ids, score, token_scores, logprob_sum, group in records:
            finished[int(alive[row])].append(
                Hypothesis(
                    token_ids=(*ids, settings.eos_id),
                    score=score,
                    # The reference recomputes it from the normalised score.
                    unnormalised_score=score * length**settings.length_penalty,
                    token_scores=tuple(token_scores),
                    logprob_sum=logprob_sum,
                    group=group,
                )
            )
    return accept.sum(1)


def next_beams(
    candidates: Candidates, settings: BeamSettings
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The first num_beams candidates that are not (finite-score) EOS, in interleaved order.

    Each beam contributes at most one EOS candidate, so at least num_beams others exist among
    the 2 x num_beams (fairseq's blacklist of finished slots therefore never triggers).
    """
    width = candidates.tokens.shape[1]
    eos = (candidates.tokens == settings.eos_id) & (candidates.scores != -math.inf)
    order = eos.long() * width + torch.arange(width, device=eos.device)
    chosen = order.topk(settings.num_beams, dim=1, largest=False).indices
    return (
        candidates.scores.gather(1, chosen),
        candidates.raw.gather(1, chosen),
        candidates.beams.gather(1, chosen),
        candidates.tokens.gather(1, chosen),
    )


def beam_settings(qagen: QAGen) -> BeamSettings:
    config = qagen.config
    return BeamSettings(
        start_id=qagen.start_id,
        eos_id=qagen.eos_id,
        pad_id=qagen.tokenizer.pad_token_id,
        num_beams=config.num_beams,
        num_groups=config.num_beam_groups,
        diversity_strength=config.diversity_strength,
        length_penalty=config.length_penalty,
        min_new_tokens=config.min_new_tokens,
        max_new_tokens=config.max_new_tokens,
    )


# ---------------------------------------------------------------- pairs


def split_pair(text: str, separator: str) -> tuple[str, str] | None:
    """Question and answer around exactly one separator, raw (nothing stripped); None otherwise."""
    parts = text.split(separator)
    if len(parts) != 2:
        return None
    return parts[0], parts[1]


def answer_in_summary(answer: str, summary: str) -> bool:
    """The reference's test (case-insensitive substring of the raw text), minus its acceptance
    of empty answers, which every summary contains."""
    return bool(answer.strip()) and answer.lower() in summary.lower()


def select_pairs(candidates: Sequence[QAPair], summary: str, max_pairs: int = 10) -> list[QAPair]:
    """QUALS.md step 3: answerable pairs by unnormalised score, in rounds over their answers.

    Each round gives every answer (case-insensitive) a turn: its next pair is taken if its
    question is new for that answer (case-insensitive); a duplicate still spends the turn. The
    cap is checked between rounds only, and a round that adds nothing ends the selection.
    """
    answerable = [pair for pair in candidates if answer_in_summary(pair.answer, summary)]
    queues: dict[str, list[QAPair]] = {}
    for pair in sorted(answerable, key=lambda pair: -pair.unnormalised_score):
        queues.setdefault(pair.answer.lower(), []).append(pair)
    taken: list[QAPair] = []
    asked: dict[str, set[str]] = {}
    added = True
    while added and len(taken) < max_pairs:
        added = False
        for answer, queue in queues.items():
            if not queue:
                continue
            pair = queue.pop(0)
            questions = asked.setdefault(answer, set())
            if pair.question.lower() not in questions:
                questions.add(pair.question.lower())
                taken.append(pair)
                added = True
    return taken


def make_pair(qagen: QAGen, question: str, answer: str, unnormalised_score: float = 0.0) -> QAPair:
    """A pair given as text (imports, tests), in the reference's target format: BPE(question),
    BPE(separator), BPE(answer) (no leading space), EOS, each part encoded on its own as the
    reference builds its targets, so that no BPE token spans the separator (with " strutConnector"
    as plain BPE, the text "? strutConnectorThe" is one pre-token). Its beam score is taken as
    `unnormalised_score` spread evenly over its tokens, as if the beam search had found it."""

    def encode(text: str) -> list[int]:
        return qagen.tokenizer(text, add_special_tokens=False)["input_ids"]

    target = (*encode(question), *encode(qagen.config.separator), *encode(answer), qagen.eos_id)
    mean = unnormalised_score / len(target)
    return QAPair(question, answer, target, unnormalised_score, mean, (mean,) * len(target))


def pair_from_hypothesis(qagen: QAGen, hypothesis: Hypothesis) -> QAPair | None:
    """Decode a hypothesis (EOS and pad dropped) and split it at the separator's text."""
    hidden = {qagen.eos_id, qagen.tokenizer.pad_token_id}
    visible = [i for i in hypothesis.token_ids if i not in hidden]
    text = qagen.tokenizer.decode(
        visible, skip_special_tokens=False, clean_up_tokenization_spaces=False
    )
    split = split_pair(text, qagen.config.separator)
    if split is None:
        return None
    return QAPair(
        question=split[0],
        answer=split[1],
        target_ids=tuple(hypothesis.token_ids),
        unnormalised_score=hypothesis.unnormalised_score,
        beam_score=hypothesis.score,
        token_scores=hypothesis.token_scores,
    )


@torch.inference_mode()
def generate_hypotheses(qagen: QAGen, summaries: Sequence[str]) -> list[list[Hypothesis]]:
    """QUALS.md step 1 for several summaries: sorted by length, generation_batch_size at a time."""
    order = sorted(range(len(summaries)), key=lambda i: len(summaries[i]))
    settings = beam_settings(qagen)
    size = max(1, qagen.config.generation_batch_size)
    results: dict[int, list[Hypothesis]] = {}
    for start in range(0, len(order), size):
        chunk = order[start : start + size]
        encoded = [encode_source(qagen, summaries[i]) for i in chunk]
        steps = ModelSteps(qagen, encoded, settings.num_beams)
        found = diverse_beam_search(steps, settings, inputs=len(chunk))
        results.update(zip(chunk, found, strict=True))
    return [results[i] for i in range(len(summaries))]


def candidates_from(qagen: QAGen, hypotheses: Sequence[Hypothesis]) -> list[QAPair]:
    """QUALS.md step 2, first half: hypotheses with exactly one separator, in their order."""
    pairs = (pair_from_hypothesis(qagen, hypothesis) for hypothesis in hypotheses)
    return [pair for pair in pairs if pair is not None]


def generate_candidates(
    qagen: QAGen, summary: str, encoded: EncodedSource | None = None
) -> list[QAPair]:
    """QUALS.md steps 1-2 for one summary (`encoded` is unused: kept for callers)."""
    return candidates_from(qagen, generate_hypotheses(qagen, [summary])[0])


def generate_candidates_batch(qagen: QAGen, summaries: Sequence[str]) -> list[list[QAPair]]:
    """generate_candidates for several summaries, batched in the beam search."""
    return [candidates_from(qagen, found) for found in generate_hypotheses(qagen, summaries)]


# ---------------------------------------------------------------- the score


@torch.inference_mode()
def quals_score(
    qagen: QAGen,
    document: str,
    summary: str,
    encoded_document: EncodedSource | None = None,
) -> QualsResult:
    """QUALS(D, S) = mean over selected pairs of (lp_D - lp_S); value None if no pair is usable."""
    candidates = generate_candidates(qagen, summary)
    return score_candidates(qagen, document, summary, candidates, encoded_document)


@torch.inference_mode()
def score_candidates(
    qagen: QAGen,
    document: str,
    summary: str,
    candidates: Sequence[QAPair],
    encoded_document: EncodedSource | None = None,
) -> QualsResult:
    """QUALS.md steps 2-4 on generated candidates."""
    mode = qagen.config.mode
    answerable = sum(answer_in_summary(pair.answer, summary) for pair in candidates)
    selected = select_pairs(candidates, summary, qagen.config.max_pairs)
    if not selected:
        return QualsResult(None, NO_PAIR_REASON, [], len(candidates), answerable, mode)
    encoded_document = encoded_document or encode_source(qagen, document)
    targets = [pair.target_ids for pair in selected]
    under_document = pair_logprobs(qagen, encoded_document, targets)
    under_summary = summary_logprobs(qagen, summary, selected)
    details = [
        pair_detail(qagen, pair, lp_s, lp_d)
        for pair, lp_s, lp_d in zip(selected, under_summary, under_document, strict=True)
    ]
    value = sum(detail.contribution for detail in details) / len(details)
    return QualsResult(value, "", details, len(candidates), answerable, mode)


def summary_logprobs(qagen: QAGen, summary: str, pairs: Sequence[QAPair]) -> list[torch.Tensor]:
    """lp_S per token: the beam's penalised scores (reference) or teacher-forced (clean)."""
    if qagen.config.mode == "clean":
        encoded = encode_source(qagen, summary)
        return pair_logprobs(qagen, encoded, [pair.target_ids for pair in pairs])
    if any(pair.token_scores is None for pair in pairs):
        raise QualsConfigError("reference mode needs the pairs' beam scores")
    return [torch.tensor(pair.token_scores, dtype=torch.float64) for pair in pairs]


def pair_detail(
    qagen: QAGen, pair: QAPair, under_summary: torch.Tensor, under_document: torch.Tensor
) -> PairDetail:
    mean_summary = float(under_summary.mean())
    if qagen.config.mode == "reference":
        mean_summary = pair.beam_score  # the reference's number, not a re-derived mean
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
    """Score summaries of one document (e.g. both sides of a comparison): their beam searches
    batched, the document encoded once."""
    encoded_document = encode_source(qagen, document)
    found = generate_candidates_batch(qagen, summaries)
    return [
        score_candidates(qagen, document, summary, candidates, encoded_document)
        for summary, candidates in zip(summaries, found, strict=True)
    ]
