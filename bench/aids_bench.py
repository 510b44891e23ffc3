"""The reading aids of one comparison, timed on real long sources: prints figures only.

Every CNN/DM article of FRANK (../shared/data/frank/frank_seed_articles.jsonl) with two of its
systems' summaries (pgn against bart, as bench/judging_latency.py serves), all aids on; and the
longest article alone, repeated. Figures are milliseconds per comparison (evaluation.aids
only, no template), printed beside the machine's load average. Goal: well under 5 ms.

    /work/main/.venv/bin/python bench/aids_bench.py
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evaluation.aids import reading_aids  # noqa: E402

FRANK = ROOT.parent / "shared" / "data" / "frank" / "frank_seed_articles.jsonl"


def timed(source: str, left: str, right: str) -> float:
    start = time.perf_counter()
    reading_aids(source, left, right, highlights=True, diff=True)
    return (time.perf_counter() - start) * 1000


def main() -> None:
    if not FRANK.exists():
        sys.exit(f"{FRANK} is absent: nothing to measure")
    rows = [json.loads(line) for line in FRANK.open(encoding="utf-8")]
    pairs = [
        (r["article"], r["summaries"]["pgn"], r["summaries"]["bart"])
        for r in rows
        if r["dataset"] == "cnndm" and {"pgn", "bart"} <= set(r["summaries"])
    ]
    for pair in pairs[:20]:
        timed(*pair)  # warm the regex cache and the interpreter
    each = sorted(timed(*pair) for pair in pairs)
    longest = max(pairs, key=lambda p: len(p[0]))
    again = sorted(timed(*longest) for _ in range(200))
    aids = reading_aids(*longest, diff=True)
    load = os.getloadavg()[0]

    def q(values, share):
        return values[min(len(values) - 1, int(share * len(values)))]

    print(f"load average (1 min): {load:.2f}")
    print(
        f"{len(pairs)} CNN/DM comparisons: p50 {q(each, 0.5):.2f} ms, p95 {q(each, 0.95):.2f} ms,"
        f" max {each[-1]:.2f} ms"
    )
    print(
        f"longest article ({len(longest[0]):,} chars, {len(aids.paragraphs)} paragraphs, "
        f"{len(aids.terms)} terms): median {statistics.median(again):.2f} ms, "
        f"p95 {q(again, 0.95):.2f} ms over 200 runs"
    )


if __name__ == "__main__":
    main()
