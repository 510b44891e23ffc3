"""A tiny QAGen checkpoint built on the fly: random BART weights and a freshly trained tokenizer.

No pretrained QAGen can be downloaded here, so tests (and the benchmark) save this model with
`save_pretrained` and load it back through `load_qagen`, the same path production uses.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import BartConfig, BartForConditionalGeneration, PreTrainedTokenizerFast

# BART's own ids for the first four, so that the model config can keep BART's conventions.
SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>", "<sep>"]

SENTENCES = [
    "The mayor of Springfield opened a new bridge over the river on Monday.",
    "Who opened the bridge? The mayor opened the bridge.",
    "The council voted to close the old library in March after a long debate.",
    "Heavy rain flooded the main road and three schools stayed closed.",
    "What did the council vote for? It voted to close the library.",
    "The team won the cup final two goals to one in front of forty thousand fans.",
    "When did the bridge open? It opened on Monday morning.",
    "Scientists found water on a distant planet, the space agency said.",
]

TINY_MODEL = {
    "d_model": 32,
    "encoder_layers": 2,
    "decoder_layers": 2,
    "encoder_attention_heads": 4,
    "decoder_attention_heads": 4,
    "encoder_ffn_dim": 64,
    "decoder_ffn_dim": 64,
    "max_position_embeddings": 256,
    # Larger than BART's 0.02 so that the random model has peaked, tie-free distributions.
    "init_std": 0.1,
}


def build_tokenizer(
    vocab_size: int = 400, corpus: list[str] | None = None
) -> PreTrainedTokenizerFast:
    """Byte-level BPE like BART's, with `<sep>` as a dedicated special token."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus or SENTENCES, trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
    )


def build_model(vocab_size: int, seed: int = 0, **overrides) -> BartForConditionalGeneration:
    settings = {**TINY_MODEL, **overrides}
    config = BartConfig(
        vocab_size=vocab_size,
        bos_token_id=0,
        pad_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=2,
        # No forced EOS: the beam search comparison runs transformers' search without extras.
        forced_eos_token_id=None,
        **settings,
    )
    torch.manual_seed(seed)
    return BartForConditionalGeneration(config).eval()


def build_qagen_dir(directory: Path, seed: int = 0) -> Path:
    """Save a tiny random QAGen (model + tokenizer) into `directory` and return it."""
    tokenizer = build_tokenizer()
    model = build_model(len(tokenizer), seed=seed)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
