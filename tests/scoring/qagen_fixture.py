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


# A toy QAGen task: passage -> "question<sep>answer", answers spans of the passage and written
# without a leading space after the separator, as the reference's targets are.
QA_TASK = {
    "The mayor of Springfield opened a new bridge on Monday.": [
        ("Who opened a new bridge on Monday?", "The mayor of Springfield"),
        ("When did the mayor open the new bridge?", "Monday"),
        ("What did the mayor of Springfield open?", "a new bridge"),
    ],
    "The council voted to close the old library in March.": [
        ("Who voted to close the old library?", "The council"),
        ("When did the council vote to close it?", "March"),
        ("What did the council vote to close?", "the old library"),
    ],
    "Heavy rain flooded the main road and three schools stayed closed.": [
        ("What flooded the main road?", "Heavy rain"),
        ("How many schools stayed closed?", "three"),
        ("What did the heavy rain flood?", "the main road"),
    ],
    "The team won the cup final in front of forty thousand fans.": [
        ("Who won the cup final?", "The team"),
        ("How many fans watched the cup final?", "forty thousand"),
        ("What did the team win?", "the cup final"),
    ],
}

TRAINED_MODEL = {
    "d_model": 64,
    "encoder_layers": 2,
    "decoder_layers": 2,
    "encoder_attention_heads": 4,
    "decoder_attention_heads": 4,
    "encoder_ffn_dim": 128,
    "decoder_ffn_dim": 128,
    "max_position_embeddings": 128,
    "dropout": 0.0,
    "attention_dropout": 0.0,
}


def qa_examples(separator: str = "<sep>") -> list[tuple[str, str]]:
    return [(p, f"{q}{separator}{a}") for p, pairs in QA_TASK.items() for q, a in pairs]


def build_trained_qagen_dir(directory: Path, steps: int = 300, seed: int = 0) -> Path:
    """Train a tiny BART on QA_TASK (seconds on two cores) and save it with its tokenizer.

    Inputs and targets follow the reference: BPE + EOS, no BOS; the decoder starts with EOS.
    """
    examples = qa_examples()
    corpus = [text for example in examples for text in example] + SENTENCES
    tokenizer = build_tokenizer(vocab_size=400, corpus=corpus)
    model = build_model(len(tokenizer), seed=seed, **TRAINED_MODEL)
    sources, targets = (batch_ids(tokenizer, texts) for texts in zip(*examples, strict=True))
    labels = targets.masked_fill(targets == tokenizer.pad_token_id, -100)
    decoder_inputs = torch.full_like(targets, model.config.decoder_start_token_id)
    decoder_inputs[:, 1:] = targets[:, :-1]
    mask = (sources != tokenizer.pad_token_id).long()
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    # One thread: on two shared cores a second one mostly waits (about 2x slower here).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(model, optimiser, steps, sources, mask, decoder_inputs, labels)
    finally:
        torch.set_num_threads(threads)
    model.eval()
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def train(model, optimiser, steps, sources, mask, decoder_inputs, labels) -> None:
    for _ in range(steps):
        loss = model(
            input_ids=sources,
            attention_mask=mask,
            decoder_input_ids=decoder_inputs,
            labels=labels,
        ).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()


def batch_ids(tokenizer: PreTrainedTokenizerFast, texts: tuple[str, ...]) -> torch.Tensor:
    """Right-padded BPE(text) + EOS rows (no BOS, as the reference)."""
    rows = [tokenizer(t, add_special_tokens=False)["input_ids"] + [2] for t in texts]
    longest = max(len(row) for row in rows)
    return torch.tensor([row + [tokenizer.pad_token_id] * (longest - len(row)) for row in rows])
