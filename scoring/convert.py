"""Convert a fairseq BART checkpoint (the paper's QAGen `checkpoint2.pt`) into a transformers
BART directory that `scoring.quals.load_qagen` loads with no further settings.

Pure Python + torch + transformers + tokenizers (no Django, no fairseq). The checkpoint is read
with torch's weights-only unpickler: classes it names that are not plain data (fairseq's meters,
numpy scalars, anything else) are read as inert `Placeholder`s, so no code from the file runs.

The tokenizer is GPT-2's byte-level BPE (encoder.json + vocab.bpe) whose ids are remapped
through fairseq's dict.txt, so that its ids ARE the model's embedding rows, as fairseq's
GPT2BPE + Dictionary.encode_line give them. It appends EOS and never adds BOS (QUALS.md).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import BartConfig, BartForConditionalGeneration, PreTrainedTokenizerFast

SETTINGS_FILE = "factpair_quals.json"
SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")  # fairseq Dictionary's indices 0..3
SEPARATOR = " strutConnector"  # GPT-2 BPE id 50009, the paper's question/answer separator
# The reference cuts a source to 1022 BPE tokens and appends EOS.
MAX_SOURCE_TOKENS = 1023
DTYPES = {"float32": torch.float32, "float16": torch.float16}
# fairseq keys transformers' BART has no place for; the tied ones are checked before dropping.
DROPPED = ("encoder.version", "decoder.version", "decoder.output_projection.weight")
REQUIRED = (
    "encoder.embed_tokens.weight",
    "encoder.embed_positions.weight",
    "decoder.embed_positions.weight",
    "encoder.layernorm_embedding.weight",
    "decoder.layernorm_embedding.weight",
    "encoder.layers.0.self_attn.q_proj.weight",
    "encoder.layers.0.fc1.weight",
    "decoder.layers.0.encoder_attn.q_proj.weight",
)
ACTIVATIONS = {
    "gelu": "gelu",
    "relu": "relu",
    "tanh": "tanh",
    "linear": "linear",
    "gelu_accurate": "gelu_new",
    "gelu_fast": "gelu_new",
}
ARCH_HEADS = {"bart_large": 16, "bart_base": 12}
UNSAFE_GLOBAL = re.compile(r"GLOBAL (\S+) was not an allowed global")
MAX_PLACEHOLDERS = 200


class ConversionError(ValueError):
    """The checkpoint, dictionary, BPE files or output directory cannot be used."""


class Placeholder:
    """Stands in for a class or function the checkpoint names and conversion never needs: it
    keeps the arguments and state it is given, and runs nothing."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state):
        self.state = state


@dataclass
class Converted:
    output: Path
    config: BartConfig
    dictionary_size: int
    embedding_rows: int


# ---------------------------------------------------------------- reading the inputs


def load_checkpoint(path: Path) -> dict:
    """torch.load with weights_only=True; unknown globals become Placeholders, one at a time."""
    if not path.is_file():
        raise ConversionError(f"checkpoint not found: {path}")
    names: list[str] = []
    while True:
        allowed = [argparse.Namespace] + [(Placeholder, name) for name in names]
        try:
            with torch.serialization.safe_globals(allowed):
                checkpoint = torch.load(
                    path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path)
                )
            break
        except Exception as exc:  # torch raises many types for a file that is not a checkpoint
            name = unsafe_global(exc)
            if name is None or name in names or len(names) >= MAX_PLACEHOLDERS:
                raise ConversionError(f"{path} is not a readable torch checkpoint: {exc}") from exc
            names.append(name)
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model"), dict):
        raise ConversionError(f"{path} is not a fairseq checkpoint: it has no 'model' state dict")
    return checkpoint


def unsafe_global(exc: Exception) -> str | None:
    match = UNSAFE_GLOBAL.search(str(exc))
    return match.group(1) if match else None


def checkpoint_args(checkpoint: dict) -> dict:
    """The model's hyper-parameters: fairseq's `args` Namespace, or `cfg["model"]` (newer)."""
    for value in (checkpoint.get("args"), (checkpoint.get("cfg") or {}).get("model")):
        if isinstance(value, argparse.Namespace):
            return vars(value)
        if isinstance(value, dict):
            return value
    return {}


def read_dictionary(path: Path) -> list[str]:
    """fairseq's Dictionary.load: <s> <pad> </s> <unk>, then one `symbol count` per line."""
    if not path.is_file():
        raise ConversionError(f"dictionary not found: {path}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConversionError(f"cannot read the dictionary {path}: {exc}") from exc
    symbols, seen = list(SPECIALS), set(SPECIALS)
    for number, line in enumerate(lines, start=1):
        symbol, overwrite = dictionary_entry(line.rstrip(), path, number)
        if symbol in seen and not overwrite:
            raise ConversionError(f"{path} line {number}: duplicate symbol {symbol!r}")
        symbols.append(symbol)
        seen.add(symbol)
    return symbols


def dictionary_entry(line: str, path: Path, number: int) -> tuple[str, bool]:
    parts = line.rsplit(" ", 1)
    overwrite = len(parts) == 2 and parts[1] == "#fairseq:overwrite"
    if overwrite:
        parts = parts[0].rsplit(" ", 1)
    if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
        raise ConversionError(f"{path} line {number}: expected '<symbol> <count>', got {line!r}")
    return parts[0], overwrite


def read_bpe(bpe_dir: Path) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """GPT-2's encoder.json (token -> BPE id) and vocab.bpe (merges, best first)."""
    encoder_path, merges_path = bpe_dir / "encoder.json", bpe_dir / "vocab.bpe"
    for required in (encoder_path, merges_path):
        if not required.is_file():
            raise ConversionError(f"BPE file not found: {required}")
    try:
        encoder = json.loads(encoder_path.read_text(encoding="utf-8"))
        lines = merges_path.read_text(encoding="utf-8").splitlines()
    except (OSError, ValueError) as exc:
        raise ConversionError(f"cannot read the BPE files in {bpe_dir}: {exc}") from exc
    if not isinstance(encoder, dict) or not all(isinstance(i, int) for i in encoder.values()):
        raise ConversionError(f"{encoder_path} is not a token -> id JSON object")
    merges = []
    for number, line in enumerate(lines, start=1):
        if not line or (number == 1 and line.startswith("#version")):
            continue
        pair = line.split(" ")
        if len(pair) != 2:
            raise ConversionError(f"{merges_path} line {number}: expected two tokens: {line!r}")
        merges.append((pair[0], pair[1]))
    return encoder, merges


# ---------------------------------------------------------------- the model


def fairseq_weights(checkpoint: dict) -> dict[str, torch.Tensor]:
    """The model's tensors under transformers' names, checked to be a BART transformers holds."""
    state = {k: v for k, v in checkpoint["model"].items() if not k.endswith("_float_tensor")}
    missing = [key for key in REQUIRED if key not in state]
    if missing:
        raise ConversionError(f"not a BART checkpoint: missing {', '.join(missing)}")
    if "encoder.layer_norm.weight" in state or "decoder.layer_norm.weight" in state:
        raise ConversionError("pre-norm (mBART-style) checkpoints are not supported")
    embed = state["encoder.embed_tokens.weight"]
    for tied in ("decoder.embed_tokens.weight", "decoder.output_projection.weight"):
        if tied in state and not torch.equal(state[tied], embed):
            raise ConversionError(f"{tied} differs from the encoder's embeddings; BART ties them")
    weights = {
        f"model.{key}": value
        for key, value in state.items()
        if key not in DROPPED and not key.startswith("classification_heads.")
    }
    weights["model.shared.weight"] = embed
    return weights


def bart_config(checkpoint: dict, weights: dict[str, torch.Tensor]) -> BartConfig:
    """Sizes from the tensors; what tensors cannot tell (heads, activation) from args/cfg."""
    args = checkpoint_args(checkpoint)
    rows, d_model = weights["model.shared.weight"].shape
    positions = weights["model.encoder.embed_positions.weight"].shape[0]
    activation = args.get("activation_fn", "gelu")
    if activation not in ACTIVATIONS:
        raise ConversionError(f"unsupported activation function {activation!r}")
    if args.get("encoder_normalize_before") or args.get("decoder_normalize_before"):
        raise ConversionError("pre-norm (normalize_before) checkpoints are not supported")
    return BartConfig(
        vocab_size=rows,
        d_model=d_model,
        encoder_layers=layer_count(weights, "encoder"),
        decoder_layers=layer_count(weights, "decoder"),
        encoder_attention_heads=attention_heads(args, "encoder"),
        decoder_attention_heads=attention_heads(args, "decoder"),
        encoder_ffn_dim=weights["model.encoder.layers.0.fc1.weight"].shape[0],
        decoder_ffn_dim=weights["model.decoder.layers.0.fc1.weight"].shape[0],
        # fairseq and transformers both keep positions 0-1 unused (padding_idx + 1 offset).
        max_position_embeddings=positions - 2,
        activation_function=ACTIVATIONS[activation],
        scale_embedding=not args.get("no_scale_embedding", True),
        dropout=args.get("dropout", 0.1),
        attention_dropout=args.get("attention_dropout", 0.0),
        activation_dropout=args.get("activation_dropout", 0.0),
        bos_token_id=0,
        pad_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=2,
        forced_bos_token_id=None,
        forced_eos_token_id=2,
    )


def layer_count(weights: dict[str, torch.Tensor], side: str) -> int:
    prefix = f"model.{side}.layers."
    numbers = {int(key[len(prefix) :].split(".")[0]) for key in weights if key.startswith(prefix)}
    return 1 + max(numbers)


def attention_heads(args: dict, side: str) -> int:
    heads = args.get(f"{side}_attention_heads") or ARCH_HEADS.get(args.get("arch", ""))
    if not heads:
        raise ConversionError(
            f"the checkpoint's args/cfg do not say how many {side} attention heads it has"
        )
    return int(heads)


def build_model(
    config: BartConfig, weights: dict[str, torch.Tensor]
) -> BartForConditionalGeneration:
    model = BartForConditionalGeneration(config)
    result = model.load_state_dict({k: v.float() for k, v in weights.items()}, strict=False)
    # transformers ties lm_head (and the embeddings) to model.shared; the bias is BART's zeros.
    missing = set(result.missing_keys) - {
        "lm_head.weight",
        "final_logits_bias",
        "model.encoder.embed_tokens.weight",
        "model.decoder.embed_tokens.weight",
    }
    if missing or result.unexpected_keys:
        names = sorted(missing) + [k.removeprefix("model.") for k in result.unexpected_keys]
        raise ConversionError(f"not a BART checkpoint transformers can hold: {', '.join(names)}")
    model.tie_weights()
    return model.eval()


# ---------------------------------------------------------------- the tokenizer


def model_symbols(symbols: list[str], rows: int) -> list[str]:
    """The name of every embedding row: the dictionary, then BART's <mask>, then fillers.

    fairseq's BART task appends <mask> to the dictionary; fine-tuning with the translation task
    drops that row again (bart.large.cnn has 50264 rows, bart.large 50265). Rows past <mask> are
    only allowed to pad the size to a multiple of 8, as fairseq's pad_to_multiple_(8) does.
    """
    size = len(symbols)
    padded = 8 * math.ceil((size + 1) / 8)
    if rows not in (size, size + 1) and not size + 1 < rows == padded:
        raise ConversionError(
            f"the dictionary has {size} symbols ({len(SPECIALS)} special + {size - 4} lines) but "
            f"the model's embedding has {rows} rows; expected {size}, {size + 1} (with BART's "
            f"<mask>) or {padded} (padded to a multiple of 8)"
        )
    extra = ["<mask>"] + [f"madeupword{i:04d}" for i in range(rows - size - 1)]
    return symbols + extra[: rows - size]


def bpe_vocab(
    encoder: dict[str, int], merges: list[tuple[str, str]], symbols: list[str]
) -> dict[str, int]:
    """BPE token -> model index, via its BPE id's decimal string in the dictionary.

    fairseq maps a BPE token missing from the dictionary to <unk>; a BPE model needs a distinct
    id for every token it can produce, so such tokens are refused (unreachable ones are dropped).
    """
    index = {symbol: i for i, symbol in enumerate(symbols)}
    reachable = set(pre_tokenizers.ByteLevel.alphabet())
    for left, right in merges:
        reachable.update((left, right, left + right))
    absent = sorted(reachable - set(encoder))
    if absent:
        raise ConversionError(f"vocab.bpe uses tokens that encoder.json lacks: {absent[:5]}")
    vocab = {token: index[str(i)] for token, i in encoder.items() if str(i) in index}
    unmapped = sorted(reachable - set(vocab))
    if unmapped:
        raise ConversionError(
            f"the dictionary lacks {len(unmapped)} BPE tokens the BPE can produce (e.g. "
            f"{unmapped[:5]}); fairseq would read them as <unk>, which this converter cannot do"
        )
    return vocab


def build_tokenizer(
    encoder: dict[str, int], merges: list[tuple[str, str]], symbols: list[str]
) -> PreTrainedTokenizerFast:
    vocab = bpe_vocab(encoder, merges, symbols)
    used = set(vocab.values())
    others = [(i, s) for i, s in enumerate(symbols) if i not in used]
    for i, symbol in others:
        if vocab.setdefault(symbol, i) != i:
            raise ConversionError(f"dictionary symbol {symbol!r} is also a BPE token")
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    # Every non-BPE symbol is special: never produced from text, skipped when decoding.
    tokenizer.add_special_tokens([AddedToken(s, special=True, normalized=False) for _, s in others])
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 2)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>" if "<mask>" in symbols else None,
        # fairseq BPE-encodes "<s>" or "</s>" met in text like any other text.
        split_special_tokens=True,
        model_max_length=MAX_SOURCE_TOKENS,
    )


# ---------------------------------------------------------------- the conversion


def convert_checkpoint(
    checkpoint_path: Path,
    bpe_dir: Path,
    output: Path,
    dict_path: Path | None = None,
    dtype: str = "float32",
    separator: str = SEPARATOR,
    force: bool = False,
) -> Converted:
    """Check everything, build the directory in a temporary place, then move it into `output`."""
    if dtype not in DTYPES:
        raise ConversionError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}")
    check_output(output, force)
    encoder, merges = read_bpe(bpe_dir)
    symbols = read_dictionary(dict_path or bpe_dir / "dict.txt")
    checkpoint = load_checkpoint(checkpoint_path)
    weights = fairseq_weights(checkpoint)
    config = bart_config(checkpoint, weights)
    names = model_symbols(symbols, config.vocab_size)
    tokenizer = build_tokenizer(encoder, merges, names)
    model = build_model(config, weights).to(DTYPES[dtype])
    settings = quals_settings(checkpoint_path, tokenizer, separator, len(symbols), dtype)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}-", dir=output.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n")
        if output.exists():
            shutil.rmtree(output)
        staging.rename(output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Converted(output, config, len(symbols), config.vocab_size)


def check_output(output: Path, force: bool) -> None:
    if output.exists() and not output.is_dir():
        raise ConversionError(f"output {output} exists and is not a directory")
    if output.is_dir() and any(output.iterdir()) and not force:
        raise ConversionError(f"output directory {output} is not empty (use --force to replace)")


def quals_settings(
    checkpoint_path: Path,
    tokenizer: PreTrainedTokenizerFast,
    separator: str,
    dictionary_size: int,
    dtype: str,
) -> dict:
    """What load_qagen reads back (`quals`), and where the directory came from."""
    return {
        "quals": {
            "separator": separator,
            "input_prefix": "",
            "max_source_tokens": MAX_SOURCE_TOKENS,
        },
        "tokenizer": {"adds_bos": False, "adds_eos": True},
        "converted_from": {
            "checkpoint": checkpoint_path.name,
            "dictionary_size": dictionary_size,
            "separator_ids": tokenizer(separator, add_special_tokens=False)["input_ids"],
            "dtype": dtype,
        },
    }
