"""Time research.statistics on one criterion of a large simulated study.

N judgments = N / K comparisons x K annotators drawn from a pool (crossed design), verdicts
from the latent-copy generator. Goal: the comparison bootstrap (net preference and win rate,
2,000 resamples) well under a second at 1,000,000 judgments. Prints seconds per call.

    /work/main/.venv/bin/python bench/statistics_bench.py --judgments 1000000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from research import statistics as st


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judgments", type=int, default=1_000_000)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--annotators", type=int, default=300)
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--tie-resamples", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    return parser.parse_args()


def timed(label: str, repeats: int, call) -> None:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    print(f"{label:<52} best {min(times):7.3f} s   median {np.median(times):7.3f} s")


def main() -> None:
    args = parse_args()
    n = args.judgments // args.k
    verdicts = st.simulate_verdicts((0.42, 0.28, 0.3), args.k, n, 0.5, seed=1)[0]
    rng = np.random.default_rng(2)
    comparison = np.repeat(np.arange(n), args.k)
    # k distinct annotators per comparison from the pool: a random offset and a stride.
    first = rng.integers(0, args.annotators, n)[:, None]
    annotator = ((first + np.arange(args.k) * 7) % args.annotators).reshape(-1)
    verdict = verdicts.reshape(-1).astype(np.int64)
    left = rng.choice(np.array(["A", "B"]), len(verdict))
    _, means = st.comparison_means(comparison, verdict)
    _, human = st.human_majority(comparison, verdict)
    deltas = np.round(rng.normal(0.05 * human, 0.1), 3)
    r = args.resamples
    print(f"{len(verdict):,} judgments, {n:,} comparisons, {args.annotators} annotators")
    timed("comparison_means", args.repeats, lambda: st.comparison_means(comparison, verdict))
    timed(
        "sign_flip_test (10,000 Monte Carlo flips)", args.repeats, lambda: st.sign_flip_test(means)
    )
    timed(
        f"net_preference, comparison bootstrap ({r})",
        args.repeats,
        lambda: st.net_preference(comparison, annotator, verdict, n_resamples=r, two_way=False),
    )
    timed(
        f"win_rate, comparison bootstrap ({r})",
        args.repeats,
        lambda: st.win_rate(comparison, verdict, n_resamples=r),
    )
    timed(
        f"net_preference, + two-way pigeonhole bootstrap ({r})",
        1,
        lambda: st.net_preference(comparison, annotator, verdict, n_resamples=r),
    )
    timed("design_effect", args.repeats, lambda: st.design_effect(comparison, verdict))
    timed(
        "position_bias",
        args.repeats,
        lambda: st.position_bias(annotator, verdict, left),
    )
    timed(
        f"alpha_bootstrap ({r} resamples)",
        args.repeats,
        lambda: st.alpha_bootstrap(comparison, annotator, verdict, n_resamples=r),
    )
    a = args.tie_resamples
    timed(
        f"tie_aware_accuracy ({a} resamples)",
        1,
        lambda: st.tie_aware_accuracy(deltas, human, n_resamples=a),
    )
    timed(
        "comparisons_for_power (2,000 studies per step)",
        1,
        lambda: st.comparisons_for_power((0.42, 0.28, 0.3), args.k, 0.5),
    )


if __name__ == "__main__":
    main()
