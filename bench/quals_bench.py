"""Benchmark QUALS on a BART-base-sized model with random weights (nothing is downloaded).

Times scoring N question-answer pairs against one document with the fast path (document encoded
once, cross-attention keys/values shared) and with the slow reference (one full forward pass per
pair), checks that both give the same scores, and times the whole QUALS of one summary.

    .venv/bin/python bench/quals_bench.py --device cpu --dtype float32 --pairs 10 --doc-tokens 1024
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scoring import quals
from tests.scoring.qagen_fixture import SENTENCES, build_model, build_tokenizer

BART_BASE = {
    "d_model": 768,
    "encoder_layers": 6,
    "decoder_layers": 6,
    "encoder_attention_heads": 12,
    "decoder_attention_heads": 12,
    "encoder_ffn_dim": 3072,
    "decoder_ffn_dim": 3072,
    "max_position_embeddings": 1024,
    "init_std": 0.02,
}
BART_BASE_VOCAB = 50265
SUMMARY = "The mayor of Springfield opened a new bridge over the river on Monday."


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=sorted(quals.DTYPES))
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--doc-tokens", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--beams", type=int, default=60, help="beams (= groups) for generation")
    parser.add_argument("--max-new-tokens", type=int, default=60)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--skip-quals", action="store_true", help="only time pair scoring")
    return parser.parse_args()


def build_qagen(args: argparse.Namespace) -> quals.QAGen:
    tokenizer = build_tokenizer()
    model = build_model(BART_BASE_VOCAB, seed=0, **BART_BASE)
    config = quals.QualsConfig(
        model_dir="(built in memory)",
        device=args.device,
        dtype=args.dtype,
        max_source_tokens=args.doc_tokens,
        num_beams=args.beams,
        num_beam_groups=args.beams,
        max_new_tokens=args.max_new_tokens,
        max_pairs=args.pairs,
    )
    return quals.make_qagen(model, tokenizer, config)


def long_document(qagen: quals.QAGen, tokens: int) -> str:
    """News-like text at least `tokens` long; the source limit cuts it to exactly that."""
    text = " ".join(SENTENCES)
    while len(quals.source_ids(qagen, text)) < tokens:
        text = f"{text} {' '.join(SENTENCES)}"
    return text


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


def bench_pairs(qagen: quals.QAGen, count: int) -> list[quals.QAPair]:
    return [
        quals.make_pair(qagen, *QA_PAIRS[i % len(QA_PAIRS)], logprob_sum=-float(i))
        for i in range(count)
    ]


def timed(function, repeats: int) -> tuple[float, object]:
    """Best of `repeats` runs after one untimed warm-up run."""
    best, result = float("inf"), function()
    for _ in range(repeats):
        sync()
        started = time.perf_counter()
        result = function()
        sync()
        best = min(best, time.perf_counter() - started)
    return best, result


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def max_mean_difference(fast: list[torch.Tensor], slow: list[torch.Tensor]) -> float:
    return max(abs(float(a.mean()) - float(b.mean())) for a, b in zip(fast, slow, strict=True))


def max_token_difference(fast: list[torch.Tensor], slow: list[torch.Tensor]) -> float:
    return max(float((a - b).abs().max()) for a, b in zip(fast, slow, strict=True))


def report_pair_scoring(qagen: quals.QAGen, document: str, args: argparse.Namespace) -> None:
    pairs = bench_pairs(qagen, args.pairs)
    targets = [pair.target_ids for pair in pairs]
    lengths = [len(t) for t in targets]

    def fast() -> list[torch.Tensor]:
        return quals.pair_logprobs(qagen, quals.encode_source(qagen, document), targets)

    encoded = quals.encode_source(qagen, document)
    fast_s, fast_scores = timed(fast, args.repeats)
    encode_s, _ = timed(lambda: quals.encode_source(qagen, document), args.repeats)
    shared_s, _ = timed(lambda: quals.pair_logprobs(qagen, encoded, targets), args.repeats)
    slow_s, slow_scores = timed(
        lambda: quals.pair_logprobs_slow(qagen, document, targets), args.repeats
    )
    print(f"pairs: {len(pairs)}, target tokens {min(lengths)}-{max(lengths)}")
    print(f"fast, document encoded once (encode + score): {fast_s:8.3f} s")
    print(f"  of which encode_source:                     {encode_s:8.3f} s")
    print(f"  pair_logprobs on an encoded document:       {shared_s:8.3f} s")
    print(f"slow reference (one full pass per pair):      {slow_s:8.3f} s")
    print(f"speed-up slow / fast:                         {slow_s / fast_s:8.1f}x")
    print(f"speed-up slow / fast, document shared:        {slow_s / shared_s:8.1f}x")
    two = encode_s + 2 * shared_s
    print(f"two summaries of one document (2 x {len(pairs)} pairs): fast {two:.3f} s, ")
    print(f"  slow {2 * slow_s:.3f} s, speed-up {2 * slow_s / two:.1f}x")
    mean_gap = max_mean_difference(fast_scores, slow_scores)
    token_gap = max_token_difference(fast_scores, slow_scores)
    print(f"max |mean log-prob fast - slow| per pair:     {mean_gap:.2e}")
    print(f"max |log-prob fast - slow| per token:         {token_gap:.2e}")


def report_whole_quals(qagen: quals.QAGen, document: str, args: argparse.Namespace) -> None:
    """A random model almost never emits a separator: keep its real generation (timed), then
    hand the selection and scoring steps synthetic pairs so that they run too."""
    real_generate = quals.generate_candidates
    timings = {}

    def generate_then_substitute(qagen, summary, encoded=None):
        started = time.perf_counter()
        generated = real_generate(qagen, summary, encoded)
        timings["generation"] = time.perf_counter() - started
        timings["generated pairs"] = len(generated)
        return generated or bench_pairs(qagen, args.pairs)

    quals.generate_candidates = generate_then_substitute
    try:
        started = time.perf_counter()
        result = quals.quals_score(qagen, document, SUMMARY)
        total = time.perf_counter() - started
    finally:
        quals.generate_candidates = real_generate
    print(
        f"whole QUALS of one summary ({args.beams} beams in {args.beams} groups, "
        f"{qagen.config.min_new_tokens}-{args.max_new_tokens} new tokens, {args.pairs} pairs):"
    )
    print(f"  generation (diverse beam search):           {timings['generation']:8.3f} s")
    print(f"  total quals_score:                          {total:8.3f} s")
    print(f"  separators generated by the random model:   {timings['generated pairs']}")
    print(f"  score: {result.value:.4f} over {len(result.pairs)} pairs")


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    qagen = build_qagen(args)
    document = long_document(qagen, args.doc_tokens)
    params = sum(p.numel() for p in qagen.model.parameters()) / 1e6
    print(
        f"model: BART-base-sized, random weights, {params:.0f}M parameters; device {args.device}, "
        f"{args.dtype}, torch threads {torch.get_num_threads()}"
    )
    print(
        f"document: {len(quals.source_ids(qagen, document))} tokens; repeats {args.repeats} (best)"
    )
    report_pair_scoring(qagen, document, args)
    if not args.skip_quals:
        report_whole_quals(qagen, document, args)


if __name__ == "__main__":
    main()
