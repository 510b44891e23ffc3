"""Reading aids of the judging page, as data: no Django here.

`reading_aids(source, left, right)` returns the texts cut into segments that the template
renders with autoescaping (a source is untrusted text, never HTML):

- the source split into paragraphs (blank lines; a long source with no line break at all, as
  FRANK's CNN/DM articles, is cut at sentence ends, a few sentences a paragraph);
- the numbers (digits, amounts, years) and names (capitalised runs, less a sentence-initial
  function word) of both summaries, one term list for the two sides so the marks say nothing
  about which system wrote what; each term's occurrences in both summaries and in the source,
  found case-insensitively at word boundaries by one compiled pattern;
- a word-level difference of the two summaries (difflib), each side's differing words marked
  alike.

A lowercased summary (FRANK's CNN/DM outputs) has no capitals to find names by: its names are
the source's names that it contains.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

NUMBER = re.compile(
    r"(?<!\w)(?<!\d[.,])[£$€]?\s?\d+(?:[.,]\d+)*"
    r"(?:\s?(?:%|per cent|percent|bn|m|k|million|billion|trillion|thousand)(?!\w))?"
)
CAPITALISED = r"[A-Z][\w'’-]*"
NAME = re.compile(rf"(?<![\w'’-]){CAPITALISED}(?:[ ](?:of |de |van |von |al-)?{CAPITALISED})*")
# Words that are capitalised only because they start a sentence (or a name's "The").
_FUNCTION_WORDS = """
    a an the this that these those there here he she it its they them their his her we our you
    your i me my in on at by for from to of with without as and but or nor so yet if when while
    after before since until because although though once where what which who whom whose why
    how all some any each every no not one many most more much several both either neither
    is are was were be been has have had do does did will would can could should may might must
    also however meanwhile now then still even just only yesterday today tonight mr mrs ms dr
"""
FUNCTION_WORDS = frozenset(_FUNCTION_WORDS.split())
SENTENCE_END = re.compile(r"(?:[.!?:;]['\"’”)]?\s+|\n\s*)$")
# Where a long unbroken source is cut: after . ! ? (and a closing quote), before a capital or a
# quote, unless the word before is a short abbreviation ("Mr.", "U.S.").
SENTENCE_BREAK = re.compile(
    r"(?<=[.!?])(?<!\b[A-Z]\.)(?<!\bMr\.)(?<!\bMrs\.)(?<!\bMs\.)(?<!\bDr\.)(?<!\bSt\.)(?<!\bNo\.)"
    r"(['\"’”]?)\s+(?=['\"‘“]?[A-Z0-9])"
)
UNBROKEN_CHARS = 1200  # a source longer than this without a line break is cut into paragraphs
SENTENCES_PER_PARAGRAPH = 3
WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Segment:
    """A run of text; `mark` is the term's id ("t0") when it is a number or name, else ""."""

    text: str
    mark: str = ""
    kind: str = ""  # "number" or "name" for a mark, "differs" in the word-diff view
    absent: bool = False  # a term the source never states


@dataclass
class Term:
    id: str
    text: str  # as first written in a summary
    kind: str
    in_source: int = 0  # occurrences in the source


@dataclass
class Aids:
    paragraphs: list[list[Segment]]
    left: list[list[Segment]]
    right: list[list[Segment]]
    diff_left: list[Segment] = field(default_factory=list)
    diff_right: list[Segment] = field(default_factory=list)
    terms: list[Term] = field(default_factory=list)


def split_paragraphs(text: str) -> list[str]:
    """Paragraphs at blank lines (single line breaks when there is no blank line); a long text
    with no line break at all in runs of a few sentences."""
    text = text.strip()
    parts = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    if len(parts) == 1 and "\n" in text:
        parts = [p.strip() for p in text.split("\n") if p.strip()]
    if len(parts) == 1 and len(text) > UNBROKEN_CHARS:
        parts = _sentence_groups(text)
    return parts


def _sentence_groups(text: str) -> list[str]:
    sentences, start = [], 0
    for m in SENTENCE_BREAK.finditer(text):
        sentences.append(text[start : m.start() + len(m.group(1))])
        start = m.end()
    sentences.append(text[start:])
    n = SENTENCES_PER_PARAGRAPH
    return [" ".join(sentences[i : i + n]) for i in range(0, len(sentences), n)]


def _key(text: str) -> str:
    return " ".join(text.lower().split())


def _numbers(summary: str) -> list[str]:
    # "$ 5" and "43 %" (tokenised CNN/DM output) are the terms "$5" and "43%".
    found = [re.sub(r"([£$€])\s+", r"\1", m.group().strip()) for m in NUMBER.finditer(summary)]
    return [re.sub(r"\s+%$", "%", t) for t in found]


def _names(text: str) -> list[str]:
    """Capitalised runs; a function word opening a run is dropped ("The BBC" -> "BBC",
    "He" -> nothing), and a lone capitalised word opening a sentence is kept only when it is
    not a function word."""
    found = []
    for m in NAME.finditer(text):
        words = re.sub(r"['’]s?$", "", m.group()).split(" ")  # "Obama's" -> "Obama"
        while words and words[0].lower() in FUNCTION_WORDS:
            words = words[1:]
        if words and not words[0].isdigit():
            found.append(" ".join(words))
    return found


def _source_names(source: str) -> dict[str, str]:
    """The source's names that do not open a sentence, by their key."""
    found: dict[str, str] = {}
    for m in NAME.finditer(source):
        opening = m.start() == 0 or SENTENCE_END.search(source[max(0, m.start() - 4) : m.start()])
        if opening and " " not in m.group():
            continue
        for name in _names(m.group()):
            found.setdefault(_key(name), name)
    return found


def _names_from(names: dict[str, str], summary: str) -> list[str]:
    """For a lowercased summary: the source's names it contains, looked up among its runs of
    up to four words (no pattern to compile)."""
    words = [w for w in (_word(t) for t in summary.split()) if w and w[0].isalnum()]
    runs = {" ".join(words[i : i + n]) for n in range(1, 5) for i in range(len(words))}
    return [name for key, name in names.items() if key in runs]


def _terms(left: str, right: str, source: str) -> list[Term]:
    terms: dict[str, Term] = {}
    source_names = None
    for summary in (left, right):
        if re.search(r"\b[A-Z][a-z]", summary):
            names = _names(summary)
        else:  # lowercased
            source_names = _source_names(source) if source_names is None else source_names
            names = _names_from(source_names, summary)
        for kind, texts in (("number", _numbers(summary)), ("name", names)):
            for text in texts:
                key = _key(text)
                if key and key not in terms:
                    terms[key] = Term(f"t{len(terms)}", text, kind)
    return list(terms.values())


def _pattern(texts: list[str]) -> re.Pattern:
    """One pattern for every term, longest first so "New York City" beats "New York"; word
    boundaries that also keep "1" out of "1.5" and "21"; any run of spaces matches a space."""
    alternatives = [
        re.sub(r"^(\\?[£$€])", r"\1\\s?", r"\s+".join(re.escape(w) for w in t.split()))
        for t in sorted({_key(t) for t in texts}, key=len, reverse=True)
    ]
    return re.compile(
        r"(?<![\w])(?<!\d[.,])(?:" + "|".join(alternatives) + r")(?![\w])(?![.,]\d)",
        re.IGNORECASE,
    )


def _segments(
    text: str, pattern: re.Pattern | None, by_key: dict[str, Term], counted: bool = True
) -> list[Segment]:
    if pattern is None:
        return [Segment(text)]
    out, at = [], 0
    for m in pattern.finditer(text):
        term = by_key.get(_key(m.group()))
        if term is None:
            continue
        if m.start() > at:
            out.append(Segment(text[at : m.start()]))
        out.append(Segment(m.group(), term.id, term.kind, absent=counted and not term.in_source))
        at = m.end()
    if at < len(text):
        out.append(Segment(text[at:]))
    return out


def word_diff(left: str, right: str) -> tuple[list[Segment], list[Segment]]:
    """Each summary as runs of words, those the other summary lacks marked "differs"
    (words compared without case and surrounding punctuation; the spacing kept as written)."""
    lw, rw = list(WORD.finditer(left)), list(WORD.finditer(right))
    matcher = difflib.SequenceMatcher(
        None, [_word(m.group()) for m in lw], [_word(m.group()) for m in rw], autojunk=False
    )
    same_l, same_r = set(), set()
    for block in matcher.get_matching_blocks():
        same_l.update(range(block.a, block.a + block.size))
        same_r.update(range(block.b, block.b + block.size))
    return _diff_runs(left, lw, same_l), _diff_runs(right, rw, same_r)


def _word(text: str) -> str:
    return text.lower().strip(".,;:!?\"'()“”‘’") or text


def _diff_runs(text: str, words: list[re.Match], same: set[int]) -> list[Segment]:
    out: list[Segment] = []
    for i, m in enumerate(words):
        kind = "" if i in same else "differs"
        gap = text[words[i - 1].end() : m.start()] if i else text[: m.start()]
        if out and out[-1].kind == kind:
            out[-1] = Segment(out[-1].text + gap + m.group(), kind=kind)
        elif out and not out[-1].kind:  # the space before a differing run stays unmarked
            out[-1] = Segment(out[-1].text + gap)
            out.append(Segment(m.group(), kind=kind))
        else:
            out += [Segment(gap)] if gap else []
            out.append(Segment(m.group(), kind=kind))
    return out


def reading_aids(
    source: str, left: str, right: str, *, highlights: bool = True, diff: bool = False
) -> Aids:
    """The segments of the judging page; without `highlights` nothing is marked, without
    `diff` no difference view is computed."""
    paragraphs = split_paragraphs(source)
    summaries = [split_paragraphs(left) or [""], split_paragraphs(right) or [""]]
    terms = _terms(left, right, source) if highlights else []
    by_key = {_key(t.text): t for t in terms}
    pattern = _pattern(list(by_key)) if terms else None
    source_segments = [_segments(p, pattern, by_key, counted=False) for p in paragraphs]
    by_id = {t.id: t for t in terms}
    for segment in (s for p in source_segments for s in p if s.mark):
        by_id[segment.mark].in_source += 1
    aids = Aids(
        paragraphs=source_segments,
        left=[_segments(p, pattern, by_key) for p in summaries[0]],
        right=[_segments(p, pattern, by_key) for p in summaries[1]],
        terms=terms,
    )
    if diff:
        aids.diff_left, aids.diff_right = word_diff(left, right)
    return aids
