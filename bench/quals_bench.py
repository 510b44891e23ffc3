"""Benchmark QUALS generation and scoring on a BART-like model built from a config (random weights,
nothing is downloaded), and print the figures as ratios.

On the same model and input, in one run:
1. factpair's reference-mode diverse beam search (60 beams in 60 groups) against transformers'
   own `generate(num_beams=60, num_return_sequences=60)` (one group, same length limits) for one
   summary: the model work is the same, the difference is bookkeeping;
2. summaries per second, generating one summary at a time against batched generation
   (`QualsConfig.generation_batch_size`), and the largest difference between their hypotheses;
3. where one summary's QUALS spends its time: generation, document encoding, pair scoring;
4. pair scoring with the shared document encoding against one full forward pass per pair.

    .venv/bin/python bench/quals_bench.py                      # tiny model, CPU, ~2 minutes
    .venv/bin/python bench/quals_bench.py --size base --summaries 64
    .venv/bin/python bench/quals_bench.py --device cuda --dtype float16 --size large --summaries 64

A random model almost never emits a separator, so parts 3 and 4 score 10 synthetic
question-answer pairs of the usual length (and say so); generation itself is real.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scoring import quals
from tests.scoring.qagen_fixture import SENTENCES, build_model, build_tokenizer

BART_VOCAB = 50265
SIZES = {
    # Small enough that the default run fits in about two minutes on two busy cores.
    "tiny": {"d_model": 64, "layers": 2, "heads": 4, "ffn": 256, "vocab": 8192},
    "small": {"d_model": 256, "layers": 3, "heads": 4, "ffn": 1024, "vocab": BART_VOCAB},
    "base": {"d_model": 768, "layers": 6, "heads": 12, "ffn": 3072, "vocab": BART_VOCAB},
    "large": {"d_model": 1024, "layers": 12, "heads": 16, "ffn": 4096, "vocab": BART_VOCAB},
}
SUMMARY = "The mayor of Springfield opened a new bridge over the river on Monday."

# Question-answer pairs of the kind a QAGen writes for SUMMARY (SQuAD-like lengths).
QA_PAIRS = [
    ("Who opened a new bridge over the river?", "The mayor of Springfield"),
    ("When did the mayor open the bridge?", "on Monday"),
    ("What did the mayor of Springfield open?", "a new bridge"),
    ("What did the mayor open on Monday?", "a new bridge over the river"),
    ("Where did the mayor open a new bridge?", "over the river"),
    ("Who opened the bridge on Monday?", "The mayor"),
    ("What is the new bridge over?", "the river"),
    ("Which town has a new bridge?", "Springfield"),
    ("What was opened over the river on Monday?", "a new bridge"),
    ("Who is the mayor of?", "Springfield"),
]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="tiny", choices=sorted(SIZES))
    parser.add_argument("--vocab", type=int, default=0, help="vocabulary size (0: the size's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=sorted(quals.DTYPES))
    parser.add_argument("--summaries", type=int, default=16, help="for summaries per second")
    parser.add_argument("--batch-sizes", default="8,16", help="generation batch sizes to time")
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--doc-tokens", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=2, help="best of, for single timings")
    parser.add_argument("--beams", type=int, default=60, help="beams (= groups) for generation")
    parser.add_argument("--max-new-tokens", type=int, default=60)
    # One thread by default: on a shared two-core machine a second one mostly waits.
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's)")
    return parser.parse_args()


def build_qagen(args: argparse.Namespace) -> quals.QAGen:
    size = SIZES[args.size]
    tokenizer = build_tokenizer()
    model = build_model(
        args.vocab or size["vocab"],
        seed=0,
        d_model=size["d_model"],
        encoder_layers=size["layers"],
        decoder_layers=size["layers"],
        encoder_attention_heads=size["heads"],
        decoder_attention_heads=size["heads"],
        encoder_ffn_dim=size["ffn"],
        decoder_ffn_dim=size["ffn"],
        max_position_embeddings=1024,
        init_std=0.02,
    )
    config = quals.QualsConfig(
        model_dir="(built in memory)",
        device=args.device,
        dtype=args.dtype,
        max_source_tokens=args.doc_tokens,
        num_beams=args.beams,
        num_beam_groups=args.beams,
        max_new_tokens=args.max_new_tokens,
        max_pairs=args.pairs,
        generation_batch_size=1,
    )
    return quals.make_qagen(model, tokenizer, config)


def with_config(qagen: quals.QAGen, **changes) -> quals.QAGen:
    return replace(qagen, config=replace(qagen.config, **changes))


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def seconds(function) -> tuple[float, object]:
    sync()
    started = time.perf_counter()
    result = function()
    sync()
    return time.perf_counter() - started, result


def best_of(functions: dict, repeats: int) -> dict[str, float]:
    """Best time of each function over `repeats` rounds after a warm-up, the functions taking
    turns in each round so that a busy machine slows them alike."""
    for function in functions.values():
        function()
    best = dict.fromkeys(functions, float("inf"))
    for _ in range(repeats):
        for name, function in functions.items():
            best[name] = min(best[name], seconds(function)[0])
    return best


# ---------------------------------------------------------------- 1. search vs generate


def library_generate(qagen: quals.QAGen, summary: str) -> torch.Tensor:
    """transformers' beam search over the same beams, same input (no BOS) and length limits:
    EOS allowed from the 9th token on, at most max_new_tokens tokens before it."""
    config = qagen.config
    ids = torch.tensor([quals.source_ids(qagen, summary)], device=qagen.device)
    with torch.inference_mode():
        return qagen.model.generate(
            input_ids=ids,
            num_beams=config.num_beams,
            num_return_sequences=config.num_beams,
            min_new_tokens=config.min_new_tokens,
            max_new_tokens=config.max_new_tokens + 1,
            length_penalty=config.length_penalty,
            do_sample=False,
            early_stopping=False,
            no_repeat_ngram_size=0,
            forced_bos_token_id=None,
            forced_eos_token_id=None,
            decoder_start_token_id=qagen.start_id,
            eos_token_id=qagen.eos_id,
            pad_token_id=qagen.pad_id,
        )


def report_search(qagen: quals.QAGen, args: argparse.Namespace) -> None:
    beams = qagen.config.num_beams
    times = best_of(
        {
            "factpair": lambda: quals.generate_hypotheses(qagen, [SUMMARY]),
            "transformers": lambda: library_generate(qagen, SUMMARY),
        },
        args.repeats,
    )
    ours = quals.generate_hypotheses(qagen, [SUMMARY])[0]
    theirs = library_generate(qagen, SUMMARY)
    print(f"\n1. one summary, {beams} beams, best of {args.repeats}:")
    print(
        f"  factpair diverse beam search ({beams} groups):  {times['factpair']:8.3f} s"
        f"  (longest hypothesis {max(len(h.token_ids) for h in ours)} tokens)"
    )
    print(
        f"  transformers generate (1 group):             {times['transformers']:8.3f} s"
        f"  (longest {theirs.shape[1] - 1} tokens)"
    )
    print(f"  ratio factpair / transformers:               {ratio(times):8.2f}x  (goal <= 1.25x)")


def ratio(times: dict[str, float]) -> float:
    return times["factpair"] / times["transformers"]


# ---------------------------------------------------------------- 2. batched generation


def bench_summaries(count: int) -> list[str]:
    """Distinct news-like summaries of one to three sentences."""
    return [
        f"Report {i}: " + " ".join(SENTENCES[(i + j) % len(SENTENCES)] for j in range(1 + i % 3))
        for i in range(count)
    ]


def max_difference(
    alone: list[list[quals.Hypothesis]], batched: list[list[quals.Hypothesis]]
) -> tuple[int, float, float]:
    """Summaries whose hypotheses differ in tokens, the largest absolute difference in the
    normalised scores (lp_S), and the largest relative one in the summed scores."""
    differing, normalised, summed = 0, 0.0, 0.0
    for one, other in zip(alone, batched, strict=True):
        if [h.token_ids for h in one] != [h.token_ids for h in other]:
            differing += 1
            continue
        for a, b in zip(one, other, strict=True):
            normalised = max(normalised, abs(a.score - b.score))
            gap = abs(a.unnormalised_score - b.unnormalised_score)
            summed = max(summed, gap / max(abs(a.unnormalised_score), 1e-12))
    return differing, normalised, summed


def report_batches(qagen: quals.QAGen, args: argparse.Namespace) -> dict[int, float]:
    summaries = bench_summaries(args.summaries)
    print(f"\n2. {len(summaries)} summaries, generation only (diverse beam search):")
    alone_s, alone = seconds(lambda: [quals.generate_hypotheses(qagen, [s])[0] for s in summaries])
    per_summary = {1: alone_s / len(summaries)}
    print(f"  one at a time:       {len(summaries) / alone_s:7.2f} summaries/s")
    for size in [int(b) for b in args.batch_sizes.split(",") if b.strip()]:
        batched_qagen = with_config(qagen, generation_batch_size=size)
        batched_s, batched = seconds(
            lambda q=batched_qagen: quals.generate_hypotheses(q, summaries)
        )
        differing, normalised, summed = max_difference(alone, batched)
        per_summary[size] = batched_s / len(summaries)
        print(
            f"  batch {size:3d}:           {len(summaries) / batched_s:7.2f} summaries/s, "
            f"{alone_s / batched_s:5.2f}x one at a time; max difference: lp_S {normalised:.1e}, "
            f"summed (relative) {summed:.1e}; summaries with other tokens: {differing}"
        )
    return per_summary


# ---------------------------------------------------------------- 3. where the time goes


def long_document(qagen: quals.QAGen, tokens: int) -> str:
    """News-like text longer than the source limit, which cuts it to `tokens` - 2 + EOS."""
    text = " ".join(SENTENCES)
    while len(qagen.tokenizer(text, add_special_tokens=False)["input_ids"]) < tokens:
        text = f"{text} {' '.join(SENTENCES)}"
    return text


def bench_pairs(qagen: quals.QAGen, count: int) -> list[quals.QAPair]:
    return [
        quals.make_pair(qagen, *QA_PAIRS[i % len(QA_PAIRS)], unnormalised_score=-float(i))
        for i in range(count)
    ]


def report_shares(
    qagen: quals.QAGen, document: str, per_summary: dict[int, float], args: argparse.Namespace
) -> None:
    pairs = bench_pairs(qagen, args.pairs)
    targets = [pair.target_ids for pair in pairs]
    encoded = quals.encode_source(qagen, document)
    times = best_of(
        {
            "encode": lambda: quals.encode_source(qagen, document),
            "pairs": lambda: quals.pair_logprobs(qagen, encoded, targets),
            "whole": lambda: quals.score_candidates(qagen, document, SUMMARY, pairs, encoded),
        },
        args.repeats,
    )
    rest = max(0.0, times["whole"] - times["pairs"])
    print(
        f"\n3. where one summary's QUALS spends its time ({len(pairs)} synthetic pairs, "
        f"document {len(encoded.input_ids[0])} tokens, reference mode):"
    )
    for size, generation in per_summary.items():
        parts = {
            "generation": generation,
            "document encoding": times["encode"],
            "pair scoring": times["pairs"],
            "selection and details": rest,
        }
        total = sum(parts.values())
        shares = ", ".join(f"{name} {100 * t / total:4.1f}%" for name, t in parts.items())
        label = "one at a time" if size == 1 else f"batch {size}"
        print(f"  generation {label:>13}: {total:7.3f} s per summary: {shares}")
    print("  (a comparison's two summaries share the document encoding: it is paid once)")


# ---------------------------------------------------------------- 4. pair scoring paths


def report_pair_scoring(qagen: quals.QAGen, document: str, args: argparse.Namespace) -> None:
    targets = [pair.target_ids for pair in bench_pairs(qagen, args.pairs)]
    times = best_of(
        {
            "fast": lambda: quals.pair_logprobs(
                qagen, quals.encode_source(qagen, document), targets
            ),
            "slow": lambda: quals.pair_logprobs_slow(qagen, document, targets),
        },
        args.repeats,
    )
    fast = quals.pair_logprobs(qagen, quals.encode_source(qagen, document), targets)
    slow = quals.pair_logprobs_slow(qagen, document, targets)
    gap = max(float((a - b).abs().max()) for a, b in zip(fast, slow, strict=True))
    print(f"\n4. scoring {len(targets)} pairs against the document, best of {args.repeats}:")
    print(f"  encoded once, keys/values shared: {times['fast']:8.3f} s")
    print(f"  one full forward pass per pair:   {times['slow']:8.3f} s")
    print(f"  speed-up:                         {times['slow'] / times['fast']:8.1f}x")
    print(f"  max |log-prob difference| per token: {gap:.1e}")


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    started = time.perf_counter()
    qagen = build_qagen(args)
    document = long_document(qagen, args.doc_tokens)
    params = sum(p.numel() for p in qagen.model.parameters()) / 1e6
    print(
        f"model: {args.size} BART ({SIZES[args.size]['d_model']} wide, "
        f"{SIZES[args.size]['layers']}+{SIZES[args.size]['layers']} layers, vocabulary "
        f"{qagen.model.config.vocab_size}), random weights, {params:.1f}M parameters; "
        f"device {args.device}, {args.dtype}, torch threads {torch.get_num_threads()}"
    )
    report_search(qagen, args)
    per_summary = report_batches(qagen, args)
    report_shares(qagen, document, per_summary, args)
    report_pair_scoring(qagen, document, args)
    print(f"\nbench ran {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
