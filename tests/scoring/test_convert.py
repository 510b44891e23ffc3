"""convert_qagen: a tiny BART written in fairseq's layout, converted, loaded back by load_qagen."""

from __future__ import annotations

import json
import os
import random
import shutil
from argparse import Namespace
from pathlib import Path

import pytest
import regex
import torch
from django.core.management import CommandError, call_command
from safetensors import safe_open
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from scoring import convert
from scoring.quals import QualsConfig, load_qagen

from .qagen_fixture import SENTENCES, build_model

SAMPLE = "The mayor's bridge opened on Monday, 12 May: café </s> <s>  rain!\n3 schools"
GPT2_SPLIT = regex.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
)


class Meter:
    """A class the checkpoint names (like fairseq's meters) that the converter cannot import."""

    def __init__(self, value):
        self.value = value


class Payload:
    """Unpickling this would run `function(*args)`: the converter must never do it."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


# ---------------------------------------------------------------- a fairseq QAGen, in its layout


def train_bpe() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A small GPT-2-style byte-level BPE: encoder.json's tokens and vocab.bpe's merges."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tokenizer.train_from_iterator(SENTENCES, trainer)
    bpe = json.loads(tokenizer.to_str())["model"]
    encoder = dict(bpe["vocab"])
    encoder["<|endoftext|>"] = len(encoder)  # as in GPT-2; no text ever encodes to it
    return encoder, [tuple(pair) for pair in bpe["merges"]]


def write_bpe_dir(directory: Path) -> dict:
    """encoder.json, vocab.bpe and a dict.txt listing the BPE ids in a shuffled order."""
    encoder, merges = train_bpe()
    ids = [i for token, i in encoder.items() if token != "<|endoftext|>"]
    random.Random(0).shuffle(ids)
    lines = [f"{i} {1000 - n}" for n, i in enumerate(ids)]
    lines += [f"madeupword{n:04d} 0" for n in range(-(4 + len(lines)) % 8)]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "encoder.json").write_text(json.dumps(encoder))
    (directory / "vocab.bpe").write_text(
        "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges)
    )
    (directory / "dict.txt").write_text("\n".join(lines) + "\n")
    return {"encoder": encoder, "merges": merges, "dict_lines": lines}


def fairseq_state(model) -> dict[str, torch.Tensor]:
    """transformers' BART under fairseq's names, with the keys transformers drops."""
    state = {
        key.removeprefix("model."): value.clone()
        for key, value in model.state_dict().items()
        if key.startswith(("model.encoder.", "model.decoder."))
    }
    state["encoder.version"] = torch.tensor([3.0])
    state["decoder.version"] = torch.tensor([3.0])
    state["decoder.output_projection.weight"] = state["decoder.embed_tokens.weight"]
    return state


def model_args() -> Namespace:
    return Namespace(
        arch="bart_large",
        task="translation",
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        activation_fn="gelu",
        no_scale_embedding=True,
        encoder_normalize_before=False,
        decoder_normalize_before=False,
        dropout=0.1,
    )


def write_checkpoint(path: Path, model, fp16=False, entry="args", extra=None, legacy=False) -> Path:
    state = fairseq_state(model)
    if fp16:
        state = {key: value.half() for key, value in state.items()}
    checkpoint = {
        "model": state,
        "optimizer_history": [{"criterion_name": "LabelSmoothedCrossEntropy", "num_updates": 7}],
        "extra_state": {"train_meter": Meter(1.5), "val_loss": 2.0, **(extra or {})},
    }
    if entry == "args":
        checkpoint["args"] = model_args()
    else:
        checkpoint["cfg"] = {"model": vars(model_args()), "task": {"_name": "translation"}}
    # legacy: the pre-1.6 torch format, which older fairseq checkpoints may use
    torch.save(checkpoint, path, _use_new_zipfile_serialization=not legacy)
    return path


@pytest.fixture(scope="module")
def fairseq_qagen(tmp_path_factory):
    root = tmp_path_factory.mktemp("fairseq")
    bpe = write_bpe_dir(root / "bpe")
    rows = 4 + len(bpe["dict_lines"]) + 1  # BART's <mask> after the dictionary
    model = build_model(rows, seed=3)
    return {"root": root, "bpe_dir": root / "bpe", "model": model, **bpe}


def converted(fairseq_qagen, tmp_path, **options) -> Path:
    checkpoint = write_checkpoint(
        tmp_path / "checkpoint2.pt",
        fairseq_qagen["model"],
        fp16=options.pop("fp16", False),
        entry=options.pop("entry", "args"),
        legacy=options.pop("legacy", False),
    )
    output = tmp_path / "qagen"
    convert.convert_checkpoint(checkpoint, fairseq_qagen["bpe_dir"], output, **options)
    return output


def logits(model, ids: list[int]) -> torch.Tensor:
    tokens = torch.tensor([ids])
    with torch.inference_mode():
        return model(input_ids=tokens, decoder_input_ids=tokens[:, :-1]).logits


# ---------------------------------------------------------------- fairseq's encoding, independently


def byte_symbols() -> dict[int, str]:
    """GPT-2's printable stand-in for every byte."""
    kept = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    symbols, extra = {}, 0
    for byte in range(256):
        if byte in kept:
            symbols[byte] = chr(byte)
        else:
            symbols[byte] = chr(256 + extra)
            extra += 1
    return symbols


def gpt2_bpe(word: str, ranks: dict[tuple[str, str], int]) -> list[str]:
    symbols = byte_symbols()
    parts = [symbols[b] for b in word.encode("utf-8")]
    while len(parts) > 1:
        pairs = {(a, b) for a, b in zip(parts, parts[1:], strict=False)}
        best = min(pairs, key=lambda pair: ranks.get(pair, float("inf")))
        if best not in ranks:
            break
        merged, i = [], 0
        while i < len(parts):
            if i + 1 < len(parts) and (parts[i], parts[i + 1]) == best:
                merged.append(parts[i] + parts[i + 1])
                i += 2
            else:
                merged.append(parts[i])
                i += 1
        parts = merged
    return parts


def fairseq_indices(text: str, fairseq_qagen) -> list[int]:
    """GPT2BPE writes BPE ids as decimal strings; Dictionary.encode_line indexes them, + EOS."""
    ranks = {tuple(pair): rank for rank, pair in enumerate(fairseq_qagen["merges"])}
    encoder = fairseq_qagen["encoder"]
    bpe_ids = [
        encoder[token] for word in GPT2_SPLIT.findall(text) for token in gpt2_bpe(word, ranks)
    ]
    symbols = ["<s>", "<pad>", "</s>", "<unk>"] + [
        x.split(" ")[0] for x in fairseq_qagen["dict_lines"]
    ]
    index = {symbol: i for i, symbol in enumerate(symbols)}
    return [index.get(str(i), 3) for i in bpe_ids] + [2]


# ---------------------------------------------------------------- tests


class TestConvertCheckpoint:
    @pytest.mark.parametrize("legacy", [False, True])
    def test_it_gives_the_original_models_logits(self, fairseq_qagen, tmp_path, legacy):
        output = converted(fairseq_qagen, tmp_path, legacy=legacy)
        qagen = load_qagen(QualsConfig(model_dir=str(output)))
        ids = fairseq_indices(SAMPLE, fairseq_qagen)
        expected = logits(fairseq_qagen["model"], ids)
        assert torch.allclose(logits(qagen.model, ids), expected, atol=1e-5, rtol=0)

    def test_its_tokenizer_ids_are_the_fairseq_dictionary_indices(self, fairseq_qagen, tmp_path):
        qagen = load_qagen(QualsConfig(model_dir=str(converted(fairseq_qagen, tmp_path))))
        for text in (SAMPLE, SENTENCES[1], " leading space", "naïve 😀 émigré"):
            ids = qagen.tokenizer(text)["input_ids"]
            assert ids == fairseq_indices(text, fairseq_qagen)
        assert len(set(fairseq_indices(SAMPLE, fairseq_qagen))) > 20
        assert qagen.tokenizer.decode(ids[:-1]) == "naïve 😀 émigré"

    def test_it_reads_a_cfg_entry_and_fp16_weights(self, fairseq_qagen, tmp_path):
        output = converted(fairseq_qagen, tmp_path, fp16=True, entry="cfg")
        qagen = load_qagen(QualsConfig(model_dir=str(output)))
        rounded = build_model(qagen.model.config.vocab_size)
        rounded.load_state_dict(
            {k: v.half().float() for k, v in fairseq_qagen["model"].state_dict().items()}
        )
        ids = fairseq_indices(SAMPLE, fairseq_qagen)
        assert torch.allclose(logits(qagen.model, ids), logits(rounded, ids), atol=1e-5, rtol=0)
        assert not torch.allclose(logits(qagen.model, ids), logits(fairseq_qagen["model"], ids))

    def test_it_keeps_fp16_weights_when_asked(self, fairseq_qagen, tmp_path):
        output = converted(fairseq_qagen, tmp_path, fp16=True, dtype="float16")
        with safe_open(output / "model.safetensors", "pt") as weights:
            assert weights.get_tensor("model.shared.weight").dtype == torch.float16
        assert load_qagen(QualsConfig(model_dir=str(output), dtype="float16"))

    def test_it_stores_the_settings_load_qagen_uses(self, fairseq_qagen, tmp_path):
        output = converted(fairseq_qagen, tmp_path)
        qagen = load_qagen(QualsConfig(model_dir=str(output)))
        assert qagen.config.separator == " strutConnector"
        assert qagen.config.max_source_tokens == 1023
        ids = qagen.tokenizer("The mayor")["input_ids"]
        assert ids[0] != qagen.tokenizer.bos_token_id and ids[-1] == 2
        assert qagen.tokenizer.mask_token_id == qagen.model.config.vocab_size - 1
        stored = json.loads((output / convert.SETTINGS_FILE).read_text())
        assert stored["tokenizer"] == {"adds_bos": False, "adds_eos": True}

    def test_a_setting_the_caller_chose_wins(self, fairseq_qagen, tmp_path):
        output = converted(fairseq_qagen, tmp_path)
        qagen = load_qagen(QualsConfig(model_dir=str(output), separator=" SEP"))
        assert (qagen.config.separator, qagen.config.max_source_tokens) == (" SEP", 1023)

    def test_it_never_runs_code_from_the_checkpoint(self, fairseq_qagen, tmp_path):
        target = tmp_path / "created-by-the-pickle"
        payload = Payload(shutil.copyfile, __file__, str(target))
        checkpoint = write_checkpoint(
            tmp_path / "c.pt", fairseq_qagen["model"], extra={"x": payload}
        )
        loaded = convert.load_checkpoint(checkpoint)
        assert not target.exists()
        assert isinstance(loaded["extra_state"]["x"], convert.Placeholder)
        assert isinstance(loaded["extra_state"]["train_meter"], convert.Placeholder)
        assert loaded["args"].encoder_attention_heads == 4

    def test_it_refuses_a_checkpoint_calling_os_or_sys(self, fairseq_qagen, tmp_path):
        target = tmp_path / "created-by-the-pickle"
        payload = Payload(os.makedirs, str(target))
        checkpoint = write_checkpoint(
            tmp_path / "c.pt", fairseq_qagen["model"], extra={"x": payload}
        )
        with pytest.raises(convert.ConversionError, match="os.makedirs"):
            convert.load_checkpoint(checkpoint)
        assert not target.exists()


def assert_nothing_written(tmp_path: Path, output: Path) -> None:
    assert not output.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


class TestConvertRefusesBadInput:
    def convert_fails(self, fairseq_qagen, tmp_path, checkpoint, match, bpe_dir=None, **options):
        output = tmp_path / "qagen"
        with pytest.raises(convert.ConversionError, match=match):
            convert.convert_checkpoint(
                checkpoint, bpe_dir or fairseq_qagen["bpe_dir"], output, **options
            )
        assert_nothing_written(tmp_path, output)

    def test_it_refuses_a_file_that_is_not_a_checkpoint(self, fairseq_qagen, tmp_path):
        bogus = tmp_path / "checkpoint2.pt"
        bogus.write_bytes(b"not a torch file at all")
        self.convert_fails(fairseq_qagen, tmp_path, bogus, "not a readable torch checkpoint")

    def test_it_refuses_a_missing_checkpoint(self, fairseq_qagen, tmp_path):
        self.convert_fails(fairseq_qagen, tmp_path, tmp_path / "none.pt", "checkpoint not found")

    def test_it_refuses_a_checkpoint_without_a_model(self, fairseq_qagen, tmp_path):
        path = tmp_path / "c.pt"
        torch.save({"weights": torch.zeros(2)}, path)
        self.convert_fails(fairseq_qagen, tmp_path, path, "no 'model' state dict")

    def test_it_refuses_a_model_that_is_not_bart(self, fairseq_qagen, tmp_path):
        path = tmp_path / "c.pt"
        state = fairseq_state(fairseq_qagen["model"])
        del state["encoder.layernorm_embedding.weight"]
        torch.save({"model": state, "args": model_args()}, path)
        self.convert_fails(fairseq_qagen, tmp_path, path, "not a BART checkpoint: missing encoder")

    def test_it_refuses_a_dictionary_of_another_size(self, fairseq_qagen, tmp_path):
        checkpoint = write_checkpoint(tmp_path / "c.pt", fairseq_qagen["model"])
        short = tmp_path / "dict.txt"
        short.write_text("\n".join(fairseq_qagen["dict_lines"][:-2]) + "\n")
        self.convert_fails(
            fairseq_qagen, tmp_path, checkpoint, "embedding has .* rows", dict_path=short
        )

    def test_it_refuses_a_dictionary_without_a_bpe_token(self, fairseq_qagen, tmp_path):
        checkpoint = write_checkpoint(tmp_path / "c.pt", fairseq_qagen["model"])
        lines = list(fairseq_qagen["dict_lines"])
        lines[5] = "99999 1"  # same size, but one BPE id the BPE can produce is gone
        holed = tmp_path / "dict.txt"
        holed.write_text("\n".join(lines) + "\n")
        self.convert_fails(
            fairseq_qagen, tmp_path, checkpoint, "lacks 1 BPE tokens", dict_path=holed
        )

    def test_it_refuses_missing_bpe_files(self, fairseq_qagen, tmp_path):
        checkpoint = write_checkpoint(tmp_path / "c.pt", fairseq_qagen["model"])
        empty = tmp_path / "empty"
        empty.mkdir()
        self.convert_fails(fairseq_qagen, tmp_path, checkpoint, "BPE file not found", bpe_dir=empty)
        empty.rmdir()

    def test_it_refuses_a_non_empty_output_unless_forced(self, fairseq_qagen, tmp_path):
        checkpoint = write_checkpoint(tmp_path / "c.pt", fairseq_qagen["model"])
        output = tmp_path / "qagen"
        output.mkdir()
        (output / "keep.txt").write_text("mine")
        with pytest.raises(convert.ConversionError, match="not empty"):
            convert.convert_checkpoint(checkpoint, fairseq_qagen["bpe_dir"], output)
        assert [p.name for p in output.iterdir()] == ["keep.txt"]
        convert.convert_checkpoint(checkpoint, fairseq_qagen["bpe_dir"], output, force=True)
        assert (output / "model.safetensors").is_file() and not (output / "keep.txt").exists()


class TestModelSymbols:
    DICT = [f"s{i}" for i in range(13)]  # 13 symbols, specials included

    @pytest.mark.parametrize("rows", [13, 14, 16])
    def test_it_accepts_bart_conventions(self, rows):
        names = convert.model_symbols(self.DICT, rows)
        assert len(names) == rows and names[:13] == self.DICT
        assert rows == 13 or names[13] == "<mask>"

    @pytest.mark.parametrize("rows", [12, 15, 17, 24])
    def test_it_refuses_other_sizes(self, rows):
        with pytest.raises(convert.ConversionError, match="13 symbols"):
            convert.model_symbols(self.DICT, rows)


class TestConvertQagenCommand:
    def test_it_converts_and_reports(self, fairseq_qagen, tmp_path, capsys):
        checkpoint = write_checkpoint(tmp_path / "checkpoint2.pt", fairseq_qagen["model"])
        output = tmp_path / "qagen"
        call_command(
            "convert_qagen", str(checkpoint), "--bpe-dir", str(fairseq_qagen["bpe_dir"]),
            "--output", str(output),
        )  # fmt: skip
        assert "wrote" in capsys.readouterr().out
        assert load_qagen(QualsConfig(model_dir=str(output))).config.separator == " strutConnector"

    def test_quals_score_runs_the_converted_model_with_no_settings(self, fairseq_qagen, tmp_path):
        output = converted(fairseq_qagen, tmp_path)
        source = tmp_path / "test.source"
        source.write_text(f"{SENTENCES[0]}\n{SENTENCES[2]}\n")
        hypo = tmp_path / "test.target.hypo"
        hypo.write_text("The mayor opened a bridge.\nThe council closed the library.\n")
        call_command(
            "quals_score", "--model", str(output), "--source", str(source), "--summaries",
            str(hypo), "--output", str(tmp_path / "scores.txt"), "--output-format", "lines",
            "--num-beams", "4",
        )  # fmt: skip
        # A random model hardly ever emits exactly one separator: "nan" lines, still aligned.
        assert len((tmp_path / "scores.txt").read_text().splitlines()) == 2

    def test_it_turns_bad_input_into_a_command_error(self, fairseq_qagen, tmp_path):
        with pytest.raises(CommandError, match="checkpoint not found"):
            call_command(
                "convert_qagen", str(tmp_path / "none.pt"),
                "--bpe-dir", str(fairseq_qagen["bpe_dir"]), "--output", str(tmp_path / "out"),
            )  # fmt: skip
        assert not (tmp_path / "out").exists()
