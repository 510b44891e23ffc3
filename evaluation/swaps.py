"""Typed fact swaps for attention checks: one fact of a summary replaced by another of its type.

No Django here, and no statistical recogniser: every usable named-entity model (spaCy, stanza,
flair) needs weights downloaded from a model hub, which a deployment cannot count on. Facts are
found by typed rules instead, and a rule that is not sure finds nothing:

- person: a title and a name ("Mr Wren", "Dr Ana Lopes") or a known first name and a surname
  ("Tomasz Wren"); replaced by another person found in the batch's sources, title kept;
- place: a country or city of the lists below; replaced by another of the same list;
- organisation: capitalised words ending in an organisation word ("Dunmarrow Town Council",
  "Hull City Football Club") or a name of the list below; replaced by one with the same ending;
- year (1900-2099, not money): replaced by another year from the sources or a near one, within
  `YEAR_SPREAD` and never later than the latest year the source names;
- month and weekday: replaced by another month or weekday;
- amount: a number with a currency or a unit ("£240,000", "11 votes", "£2.5m", "43 per cent");
  replaced by a number with the same currency, unit and scale, and the same number of digits.

Bare numbers, capitalised words at the start of a sentence and anything else are never swapped.
Persons and organisations are also found in the source, where capitalisation is reliable, and
matched in the summary whatever its case; a replacement takes the summary's case.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

YEAR_SPREAD = 10


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _names_list(text: str) -> list[str]:
    return text.split()


MONTHS = _names_list(
    """
    January February March April May June July August September October November December
    """
)
WEEKDAYS = _names_list(
    """
    Monday Tuesday Wednesday Thursday Friday Saturday Sunday
    """
)
TITLES = (
    "Mr|Mrs|Ms|Miss|Dr|Prof|Professor|Sir|Dame|Lord|Lady|Councillor|Judge|Inspector|Sgt|"
    "Sergeant|Captain|President|Senator|Bishop|Rev"
)
FIRST_NAMES = _names(
    """
    Adam Alan Alex Alice Amy Andrew Angela Ann Anna Anne Anthony Ben Brian Carl Caroline
    Catherine Charles Charlotte Chris Christopher Claire Colin Daniel David Deborah Donald
    Edward Edith Elizabeth Emily Emma Eric Frank Gary George Graham Hannah Harry Helen Henry
    Ian Jack Jacob James Jane Jason Jennifer Jessica John Jonathan Joseph Julia Karen Kate
    Katherine Kevin Laura Lewis Linda Lisa Louise Lucy Margaret Maria Mark Martin Mary Matthew
    Michael Michelle Nicola Nicholas Oliver Patrick Paul Peter Philip Priya Rachel Richard
    Robert Ruth Ryan Samuel Sarah Scott Simon Sophie Stephen Steven Susan Thomas Tim Tom
    Tomasz Tony Victoria William Barack Donald Hillary Theresa Boris Angela Vladimir Emmanuel
    Nicola Jeremy Gordon Tony Nigel Lionel Cristiano Wayne Andy Serena Roger Rafael
    """
)
COUNTRIES = _names(
    """
    Afghanistan Albania Algeria Argentina Australia Austria Bangladesh Belgium Bolivia Brazil
    Bulgaria Cambodia Canada Chile China Colombia Croatia Cuba Cyprus Denmark Egypt England
    Estonia Ethiopia Finland France Germany Ghana Greece Hungary Iceland India Indonesia Iran
    Iraq Ireland Israel Italy Jamaica Japan Jordan Kenya Kuwait Latvia Lebanon Libya Lithuania
    Malaysia Mali Malta Mexico Morocco Nepal Netherlands Nigeria Norway Pakistan Peru Poland
    Portugal Qatar Romania Russia Scotland Serbia Singapore Slovakia Slovenia Somalia Spain
    Sudan Sweden Switzerland Syria Taiwan Thailand Tunisia Turkey Uganda Ukraine Uruguay
    Venezuela Vietnam Wales Yemen Zambia Zimbabwe
    """
)
CITIES = _names(
    """
    Aberdeen Amsterdam Athens Baghdad Bangkok Barcelona Beijing Belfast Berlin Birmingham
    Boston Brighton Bristol Brussels Cairo Cardiff Chicago Copenhagen Coventry Dallas Delhi
    Dublin Dundee Edinburgh Exeter Florida Geneva Glasgow Hamburg Houston Inverness Istanbul
    Jerusalem Kabul Lagos Leeds Leicester Lisbon Liverpool London Madrid Manchester Melbourne
    Miami Milan Moscow Mumbai Munich Nairobi Newcastle Norwich Nottingham Oslo Oxford Paris
    Perth Plymouth Prague Rome Sheffield Shanghai Southampton Stockholm Swansea Sydney Texas
    Tokyo Toronto Vienna Warsaw Washington York California
    """
)
ORGANISATIONS = _names(
    """
    BBC NHS Nato UN EU FBI CIA Fifa Uefa Google Apple Microsoft Amazon Facebook Twitter Tesco
    Barclays HSBC Unicef Reuters Ofsted Ofcom Labour Conservatives Interpol Nasa Boeing Airbus
    Toyota Samsung
    """
)
ORG_ENDINGS = (
    "Council|University|College|School|Party|Club|FC|United|Rovers|Athletic|Police|Ltd|Company|"
    "Corporation|Group|Association|Commission|Agency|Bank|Trust|Foundation|Institute|Ministry|"
    "Department|Hospital|Society|Union|Airlines|Committee|Court|Service|Board|Authority"
)
CURRENCIES = "£$€"
SCALES = r"bn|m|k|million|billion|thousand|trillion"
UNITS = (
    r"per cent|percent|%|votes|runs|goals|points|wickets|people|children|students|patients|"
    r"homes|houses|jobs|staff|workers|miles|km|kilometres|metres|meters|feet|tonnes|kg|years|"
    r"months|weeks|days|hours|minutes|seconds|seats|members|pupils|cars|sites|times|cases|deaths"
)

WORD = r"[A-Z][a-z]+(?:-[A-Z][a-z]+)?"
PERSON = re.compile(
    rf"\b(?:(?P<title>{TITLES})\.? )(?P<name>{WORD}(?: {WORD})?)\b|\b(?P<full>{WORD} {WORD})\b"
)
# Lists are matched whatever the case (FRANK's summaries are lowercased), except for words that
# mean something else in lower case ("turkey", "china", "may").
PLACE = re.compile(r"\b[A-Za-z][a-z]+\b")
CASED_ONLY = {"Turkey", "China", "Jordan", "Chile", "Mali", "Nice", "Reading", "Bath"}
ORG = re.compile(
    rf"\b(?P<name>(?:{WORD} ){{1,3}})(?P<end>{ORG_ENDINGS})\b|\b(?P<known>[A-Z][A-Za-z]+)\b"
)
YEAR = re.compile(
    r"(?<![£$€\d,.])\b(?P<year>19\d\d|20\d\d)\b(?![,.]?\d)(?!\s?(?:" + SCALES + r")\b)"
)
# "May" is a month only next to a day or a year ("12 May", "May 2019"): else a verb or a name.
MONTH = re.compile(
    r"(?i:\b(?:" + "|".join(m for m in MONTHS if m != "May") + r")\b)"
    r"|\b\d{1,2} May\b|\bMay(?= \d{1,4}\b)",
)
WEEKDAY = re.compile(r"(?i:\b(?:" + "|".join(WEEKDAYS) + r")\b)")
AMOUNT = re.compile(
    rf"(?<![\w.,])(?P<cur>[{CURRENCIES}])?(?P<num>\d{{1,3}}(?:,\d{{3}})+|\d+)(?P<dec>\.\d+)?"
    rf"(?:(?P<scale>\s?(?:{SCALES}))\b)?(?:(?P<unit>\s(?:{UNITS}))(?!\w)|(?P<pct>%))?"
)


@dataclass(frozen=True)
class Fact:
    """One typed fact found in a text: `kind` is person, place, organisation, year, month,
    weekday or amount; `shape` is what a replacement must share (a title, a place list, an
    organisation ending, a currency with its scale and unit)."""

    kind: str
    shape: str
    text: str
    start: int
    end: int
    value: str  # what is replaced: the name without its title, the number without its unit


@dataclass(frozen=True)
class Swap:
    kind: str
    shape: str
    original: str
    replacement: str
    start: int  # where the replacement stands in `text`
    end: int
    text: str


def _persons(text: str) -> list[Fact]:
    out = []
    for m in PERSON.finditer(text):
        if m.group("title"):
            name = m.group("name")
            if name.split()[0] in MONTHS + WEEKDAYS or name in COUNTRIES | CITIES:
                continue
            start = m.start("name")
            out.append(Fact("person", "titled", m.group(), start, m.end("name"), name))
        elif m.group("full").split()[0] in FIRST_NAMES:
            full = m.group("full")
            if full.split()[1] in MONTHS + WEEKDAYS or full.split()[1] in COUNTRIES | CITIES:
                continue
            out.append(Fact("person", "full", full, m.start(), m.end(), full))
    return out


def _places(text: str) -> list[Fact]:
    out = []
    for m in PLACE.finditer(text):
        word = m.group()
        # "Manchester United": the place word inside an organisation's name is not a place.
        after = text[m.end() : m.end() + 30]
        if re.match(rf"(?i) (?:[a-z]+ )?(?:{ORG_ENDINGS}|City|Rhinos|Wolves)\b", after):
            continue
        name = word.capitalize()
        if word != name and name in CASED_ONLY:
            continue
        for shape, names in (("country", COUNTRIES), ("city", CITIES)):
            if name in names:
                out.append(Fact("place", shape, word, m.start(), m.end(), word))
    return out


def _organisations(text: str) -> list[Fact]:
    out = []
    for m in ORG.finditer(text):
        if m.group("end"):
            name = m.group("name").strip()
            words = name.split()
            # Skip a leading sentence word ("The", "A") and a leading month or title.
            while words and words[0] in {"The", "A", "An", "In", "At", "By", *MONTHS, *WEEKDAYS}:
                words = words[1:]
            if not words:
                continue
            full = " ".join(words) + " " + m.group("end")
            start = m.end() - len(full)
            value = " ".join(words)
            out.append(Fact("organisation", m.group("end"), full, start, start + len(value), value))
        elif m.group("known") in ORGANISATIONS:
            word = m.group("known")
            out.append(Fact("organisation", "known", word, m.start(), m.end(), word))
    return out


def _years(text: str) -> list[Fact]:
    return [
        Fact("year", "year", m.group(), m.start(), m.end(), m.group()) for m in YEAR.finditer(text)
    ]


def _calendar(text: str) -> list[Fact]:
    months = [
        Fact("month", "month", m.group(), m.start(), m.end(), m.group())
        for m in MONTH.finditer(text)
    ]
    days = [
        Fact("weekday", "weekday", m.group(), m.start(), m.end(), m.group())
        for m in WEEKDAY.finditer(text)
    ]
    return months + days


def amount_shape(m: re.Match) -> str | None:
    """Currency, scale and unit of an amount match, or None when it is not an amount."""
    unit = (m.group("unit") or m.group("pct") or "").strip()
    cur, scale = m.group("cur") or "", (m.group("scale") or "").strip()
    if not cur and not unit:
        return None
    if (
        not cur
        and not m.group("dec")
        and re.fullmatch(r"(?:19|20)\d\d", m.group("num"))
        and unit in {"", "years"}
    ):
        return None  # "in 2019 years" is no amount worth swapping
    unit = "%" if unit in {"%", "per cent", "percent"} else unit
    return f"{cur}|{scale}|{unit}|{'.' if m.group('dec') else ''}"


def _amounts(text: str) -> list[Fact]:
    out = []
    for m in AMOUNT.finditer(text):
        shape = amount_shape(m)
        if shape is None:
            continue
        number = m.group("num") + (m.group("dec") or "")
        out.append(
            Fact(
                "amount",
                shape,
                m.group().strip(),
                m.start("num"),
                m.start("num") + len(number),
                number,
            )
        )
    return out


def find_facts(text: str) -> list[Fact]:
    """Every typed fact of `text`; overlapping finds are dropped (a sure fact beats a guess)."""
    found = _amounts(text) + _years(text) + _calendar(text) + _organisations(text)
    found += _persons(text) + _places(text)
    kept: list[Fact] = []
    for fact in found:
        if all(fact.end <= k.start or fact.start >= k.end for k in kept):
            kept.append(fact)
    return sorted(kept, key=lambda f: f.start)


def _new_number(value: str, rng: random.Random) -> str | None:
    """A different number with the same digits count, separators and decimals."""
    digits = value.replace(",", "")
    whole, _, decimals = digits.partition(".")
    if len(whole) == 1 and whole in "01" and not decimals:
        return None  # "1 person" has no plausible neighbour of the same magnitude
    low = 10 ** (len(whole) - 1) if len(whole) > 1 else 2
    high = 10 ** len(whole) - 1
    n = int(whole)
    lo, hi = max(low, n // 2), min(high, n * 2)
    choices = [x for x in range(lo, hi + 1) if x != n] if hi - lo < 400 else None
    new = rng.choice(choices) if choices else None
    if choices is None:
        for _ in range(20):
            new = rng.randint(lo, hi)
            if new != n:
                break
    if new is None or new == n:
        return None
    text = f"{new:,}" if "," in value else str(new)
    if decimals:
        text += "." + "".join(rng.choice("0123456789") for _ in decimals)
    return text


def _replacement(fact: Fact, pool: list[Fact], source: str, rng: random.Random) -> str | None:
    new = _candidate(fact, pool, source, rng)
    if new and fact.value.islower():
        return new.lower()  # a lowercased summary stays lowercased
    return new


def _known(value: str) -> str:
    return value.capitalize() if value.islower() else value


def _candidate(fact: Fact, pool: list[Fact], source: str, rng: random.Random) -> str | None:
    lowered = fact.value.islower()
    if fact.kind in ("month", "weekday", "place"):
        fact = Fact(fact.kind, fact.shape, fact.text, fact.start, fact.end, _known(fact.value))
        pool = [Fact(f.kind, f.shape, f.text, f.start, f.end, _known(f.value)) for f in pool]
    same = sorted(
        {f.value for f in pool if f.kind == fact.kind and f.shape == fact.shape} - {fact.value}
    )
    # a summary's lowercased "gary locke" is the source's "Gary Locke": never its replacement
    same = [v for v in same if v.lower() != fact.value.lower()]
    if fact.kind == "person":
        surname = fact.value.split()[-1].lower()
        same = [v for v in same if v.split()[-1].lower() != surname and surname not in v.lower()]
        if fact.shape == "titled":
            same = [v for v in same if len(v.split()) == len(fact.value.split())]
    if fact.kind == "year":
        latest = max(int(y) for y in YEAR.findall(source) or [fact.value])
        year = int(fact.value)
        same = [v for v in same if abs(int(v) - year) <= YEAR_SPREAD and int(v) <= latest]
        if not same:
            same = [str(y) for y in range(year - 3, year + 4) if y != year and 1900 <= y <= latest]
    if fact.kind == "month":
        # a lowercased "may" reads as the verb: no month of a lowercased text becomes it
        same = [m for m in MONTHS if m != fact.value and not (lowered and m == "May")]
    if fact.kind == "weekday":
        same = [d for d in WEEKDAYS if d != fact.value]
    if fact.kind == "place" and not same:
        same = sorted((COUNTRIES if fact.shape == "country" else CITIES) - {fact.value})
    if fact.kind == "amount":
        same = [v for v in same if _magnitude(v) == _magnitude(fact.value)]
        if not same:
            new = _new_number(fact.value, rng)
            return new
    return rng.choice(same) if same else None


def _magnitude(number: str) -> tuple[int, bool, bool]:
    whole, _, decimals = number.replace(",", "").partition(".")
    return len(whole), bool(decimals), "," in number


def source_entities(source: str, summary: str) -> list[Fact]:
    """Persons and organisations found in the source, where capitalisation is reliable, at the
    places the summary names them whatever its case (FRANK's summaries are lowercased): each a
    fact of the summary, in the summary's own letters."""
    lowered, out = summary.lower(), []
    for f in find_facts(source):
        if f.kind not in ("person", "organisation"):
            continue
        offset = f.text.find(f.value)  # the title before a name, the ending after a body
        pattern = r"(?<!\w)" + re.escape(f.text.lower()) + r"(?!\w)"
        for m in re.finditer(pattern, lowered):
            start = m.start() + offset
            value = summary[start : start + len(f.value)]
            out.append(
                Fact(
                    f.kind, f.shape, summary[m.start() : m.end()], start, start + len(value), value
                )
            )
    return out


def _in_case_of(value: str, new: str) -> str:
    return new.lower() if value.islower() else new.upper() if value.isupper() else new


def find_swap(source: str, summary: str, pool: list[Fact], rng: random.Random) -> Swap | None:
    """Replace one fact of `summary` that the source states by another of its type.

    Candidates come from the source first, then from `pool` (the facts of the batch's other
    sources, `find_facts` of each); None when no fact of the summary has a type-correct
    replacement.
    """
    facts = [
        f
        for f in find_facts(summary)
        if f.text in source
        or (f.kind == "person" and f.value in source)
        or (f.kind in ("month", "weekday", "place") and f.text.lower() in source.lower())
    ]
    for extra in source_entities(source, summary):
        if all(extra.end <= f.start or extra.start >= f.end for f in facts):
            facts.append(extra)
    facts.sort(key=lambda f: f.start)
    rng.shuffle(facts)
    local = find_facts(source)
    for fact in facts:
        replacement = _replacement(fact, local, source, rng) or _replacement(
            fact, pool, source, rng
        )
        if not replacement or replacement.lower() in summary.lower():
            continue
        replacement = _in_case_of(fact.value, replacement)
        text = summary[: fact.start] + replacement + summary[fact.end :]
        end = fact.start + len(replacement)
        return Swap(fact.kind, fact.shape, fact.value, replacement, fact.start, end, text)
    return None
