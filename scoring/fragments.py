"""Extractive fragment coverage and density (Grusky et al., NAACL 2018, "Newsroom").

How abstractive is a summary? Its extractive fragments are the shared token sequences found by
the greedy match of the Newsroom paper (its Algorithm 1): walking the summary from the left, each
position takes the longest run of tokens that also stands in the source, found by one left-to-right
scan of the source that resumes after each run it matched, and the walk continues after it (a
token found nowhere in the source is skipped). Over the fragments F of summary S:

- coverage = sum |f| / |S|: the share of summary tokens that belong to a copied fragment;
- density = sum |f|^2 / |S|: the mean length of the fragment each summary token sits in, so a
  summary copied whole from the source has density |S|.

Tokens are lowercased words and punctuation marks (Newsroom compares tokens case-insensitively
by default). Pure Python, no Django.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TOKEN = re.compile(r"\w+|[^\w\s]")


def tokens(text: str) -> list[str]:
    return [t.lower() for t in TOKEN.findall(text)]


@dataclass(frozen=True)
class Fragments:
    fragments: tuple[tuple[str, ...], ...]
    summary_tokens: int

    @property
    def coverage(self) -> float:
        return sum(len(f) for f in self.fragments) / self.summary_tokens

    @property
    def density(self) -> float:
        return sum(len(f) ** 2 for f in self.fragments) / self.summary_tokens


def _positions(source: list[str]) -> dict[str, list[int]]:
    where: dict[str, list[int]] = {}
    for j, token in enumerate(source):
        where.setdefault(token, []).append(j)
    return where


def _longest_match(summary: list[str], i: int, source: list[str], starts: list[int]) -> int:
    """The paper's inner loop: scan the source left to right; at each j where summary[i]
    stands, extend the run, keep the longest, and resume the scan after the run (so a start
    inside a run just matched is not tried, exactly as in the paper's Algorithm 1)."""
    best, resume = 0, 0
    for j in starts:  # the positions of summary[i] in the source, ascending
        if j < resume:
            continue
        n = 0
        while i + n < len(summary) and j + n < len(source) and summary[i + n] == source[j + n]:
            n += 1
        best, resume = max(best, n), j + n
    return best


def extractive_fragments(source: str, summary: str) -> Fragments:
    """The greedy fragments of `summary` in `source` (see the module docstring).

    Raises ValueError for a summary with no token, whose coverage would be undefined.
    """
    s, a = tokens(summary), tokens(source)
    if not s:
        raise ValueError("the summary has no words")
    where = _positions(a)
    found, i = [], 0
    while i < len(s):
        n = _longest_match(s, i, a, where.get(s[i], []))
        if n:
            found.append(tuple(s[i : i + n]))
        i += max(n, 1)
    return Fragments(tuple(found), len(s))
