"""Parsing and validating batch files, before anything is written.

Three formats:
- ``jsonl``: one document per line, ``{"id", "source", "reference"?, "summaries": {SYSTEM: text}}``
  with an optional ``meta`` object.
- ``csv``: a header with ``id``, ``source``, ``reference`` (optional) and one column per system.
- ``frank``: the FRANK benchmark's seed-article file (``hash``, ``dataset``, ``article``,
  ``reference``, ``summaries``), both of its datasets mixed; one of them is chosen.

Every problem in a file is collected with its line number, so that a researcher fixes the whole file
in one go; the caller writes nothing unless the list is empty.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field

from django.conf import settings

MAX_PROBLEMS = 50
FORMATS = ("jsonl", "csv", "frank")
# FRANK calls XSum "xsum" in its files and "bbc" in its paper; both names are accepted.
FRANK_DATASETS = {"cnndm": "cnndm", "xsum": "xsum", "bbc": "xsum"}


@dataclass(frozen=True)
class Problem:
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


class BatchFileError(Exception):
    """The file cannot be imported; `problems` says every reason found, with line numbers."""

    def __init__(self, problems: list[Problem], truncated: int = 0):
        self.problems = problems
        self.truncated = truncated
        super().__init__("; ".join(str(p) for p in problems[:3]))

    def lines(self) -> list[str]:
        out = [str(p) for p in self.problems]
        if self.truncated:
            out.append(f"... and {self.truncated} more problems not shown")
        return out


@dataclass
class ParsedDocument:
    line: int
    external_id: str
    source: str
    reference: str
    summary_a: str
    summary_b: str
    meta: dict = field(default_factory=dict)


@dataclass
class ImportSpec:
    """What the researcher asked for: which systems, which format, which FRANK dataset."""

    system_a: str
    system_b: str
    fmt: str | None = None
    frank_dataset: str | None = None


class _Collector:
    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.dropped = 0

    def add(self, line: int | None, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(line, message))
        else:
            self.dropped += 1

    def raise_if_any(self) -> None:
        if self.problems:
            raise BatchFileError(self.problems, self.dropped)


def parse_batch_file(data: bytes, filename: str, spec: ImportSpec) -> list[ParsedDocument]:
    """Parse and validate a whole batch file; raise BatchFileError listing every problem."""
    problems = _Collector()
    if len(data) > settings.IMPORT_MAX_BYTES:
        problems.add(
            None, f"file is {len(data):,} bytes; the limit is {settings.IMPORT_MAX_BYTES:,}"
        )
        problems.raise_if_any()
    text = decode_utf8(data, problems)
    problems.raise_if_any()
    if not text.strip():
        problems.add(None, "file is empty")
        problems.raise_if_any()
    fmt = detect_format(text, filename, spec.fmt, problems)
    problems.raise_if_any()
    if fmt == "csv":
        docs = _parse_csv(text, spec, problems)
    else:
        docs = _parse_json_lines(text, spec, fmt, problems)
    problems.raise_if_any()
    _check_collection(docs, problems)
    problems.raise_if_any()
    return docs


def decode_utf8(data: bytes, problems: _Collector) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        problems.add(line, f"not UTF-8 (byte 0x{data[e.start]:02x}); save the file as UTF-8")
        return ""


def detect_format(text: str, filename: str, requested: str | None, problems: _Collector) -> str:
    if requested:
        if requested not in FORMATS:
            problems.add(None, f"unknown format {requested!r}; choose one of {', '.join(FORMATS)}")
        return requested
    name = filename.lower()
    if name.endswith(".csv") or (
        not name.endswith((".jsonl", ".json", ".ndjson")) and text.lstrip()[:1] not in "{["
    ):
        return "csv"
    try:
        head = json.loads(text.lstrip().split("\n", 1)[0])
    except (ValueError, RecursionError):
        return "jsonl"
    if isinstance(head, dict) and "article" in head and "hash" in head:
        return "frank"
    return "jsonl"


def _parse_json_lines(
    text: str, spec: ImportSpec, fmt: str, problems: _Collector
) -> list[ParsedDocument]:
    frank = fmt == "frank"
    if frank:
        if spec.frank_dataset not in FRANK_DATASETS:
            problems.add(None, "a FRANK file needs --frank-dataset cnndm or bbc (XSum)")
            return []
        wanted = FRANK_DATASETS[spec.frank_dataset]
    docs = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as e:
            problems.add(number, f"not valid JSON: {e}")
            continue
        if not isinstance(row, dict):
            problems.add(number, f"expected a JSON object, got {type(row).__name__}")
            continue
        if frank:
            if row.get("dataset") != wanted:
                continue
            row = _frank_row(row, spec)
        doc = _document_from_row(number, row, spec, problems)
        if doc:
            docs.append(doc)
    if frank and not docs and not problems.problems:
        problems.add(None, f"no article of dataset {spec.frank_dataset!r} in this FRANK file")
    return docs


def _reject_constant(name: str):
    # Python's json accepts NaN and Infinity; JSON, PostgreSQL and SQLite do not.
    raise ValueError(f"{name} is not valid JSON")


def unstorable(value: str) -> str:
    """Why a database cannot store this text, or "" when it can."""
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an invalid character (a lone UTF-16 surrogate such as \\ud800)"
    return ""


def _meta_problem(value, depth: int = 0) -> str:
    if depth > 20:
        return "is nested too deeply"
    if isinstance(value, str):
        return unstorable(value)
    if isinstance(value, dict):
        items = [*value.keys(), *value.values()]
    elif isinstance(value, list):
        items = value
    else:
        return ""
    return next((p for p in (_meta_problem(v, depth + 1) for v in items) if p), "")


def _frank_row(row: dict, spec: ImportSpec) -> dict:
    human = row.get("frank_human") or {}
    return {
        "id": row.get("hash"),
        "source": row.get("article"),
        "reference": row.get("reference", ""),
        "summaries": row.get("summaries"),
        "meta": {
            "frank_dataset": row.get("dataset"),
            "frank_split": row.get("frank_split"),
            "url": row.get("url"),
            "frank_human": {s: human.get(s) for s in (spec.system_a, spec.system_b) if s in human},
        },
    }


def _parse_csv(text: str, spec: ImportSpec, problems: _Collector) -> list[ParsedDocument]:
    csv.field_size_limit(settings.IMPORT_MAX_FIELD_CHARS + 1)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [h.strip() for h in next(reader)]
    except (csv.Error, StopIteration) as e:
        problems.add(1, f"cannot read the CSV header: {e}")
        return []
    missing = [c for c in ("id", "source") if c not in header]
    if missing:
        problems.add(
            1, f"CSV header lacks column(s) {', '.join(missing)}; it has {', '.join(header)}"
        )
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        problems.add(1, f"CSV header repeats column(s) {', '.join(dupes)}")
    if missing or dupes:
        return []
    systems = [h for h in header if h not in ("id", "source", "reference")]
    docs = []
    start = reader.line_num + 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            problems.add(start, f"CSV error: {e}")
            break
        number, start = start, reader.line_num + 1
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            problems.add(number, f"expected {len(header)} fields, found {len(values)}")
            continue
        cells = dict(zip(header, values, strict=True))
        row = {
            "id": cells["id"],
            "source": cells["source"],
            "reference": cells.get("reference", ""),
            "summaries": {s: cells[s] for s in systems},
        }
        doc = _document_from_row(number, row, spec, problems)
        if doc:
            docs.append(doc)
    return docs


def _document_from_row(
    number: int, row: dict, spec: ImportSpec, problems: _Collector
) -> ParsedDocument | None:
    before = len(problems.problems) + problems.dropped
    external_id = row.get("id")
    if isinstance(external_id, bool) or not isinstance(external_id, (str, int)):
        problems.add(number, "field 'id' is missing or not a string or integer")
    elif not str(external_id).strip():
        problems.add(number, "field 'id' is empty")
    elif len(str(external_id)) > 200:
        problems.add(number, "field 'id' is longer than 200 characters")
    elif unstorable(str(external_id)):
        problems.add(number, f"field 'id' {unstorable(str(external_id))}")
    source = _text_field(number, row, "source", problems, required=True)
    reference = _text_field(number, row, "reference", problems, required=False)
    summaries = row.get("summaries")
    summary_a = summary_b = ""
    if not isinstance(summaries, dict) or not summaries:
        problems.add(number, "field 'summaries' is missing or not an object of system: text")
    else:
        summary_a = _summary(number, summaries, spec.system_a, problems)
        summary_b = _summary(number, summaries, spec.system_b, problems)
    meta = row.get("meta", {})
    if not isinstance(meta, dict):
        problems.add(number, "field 'meta' must be an object")
    elif _meta_problem(meta):
        problems.add(number, f"field 'meta' {_meta_problem(meta)}")
    if len(problems.problems) + problems.dropped > before:
        return None
    return ParsedDocument(
        number, str(external_id).strip(), source, reference, summary_a, summary_b, meta
    )


def _text_field(number: int, row: dict, name: str, problems: _Collector, *, required: bool) -> str:
    value = row.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        problems.add(number, f"field {name!r} is missing or not a string")
        return ""
    if required and not value.strip():
        problems.add(number, f"field {name!r} is empty")
    if len(value) > settings.IMPORT_MAX_FIELD_CHARS:
        limit = settings.IMPORT_MAX_FIELD_CHARS
        problems.add(number, f"field {name!r} is longer than {limit:,} characters")
    if unstorable(value):
        problems.add(number, f"field {name!r} {unstorable(value)}")
    return value.strip()


def _summary(number: int, summaries: dict, system: str, problems: _Collector) -> str:
    if system not in summaries:
        known = ", ".join(sorted(str(s) for s in summaries))
        problems.add(number, f"no summary of system {system!r} (this line has: {known})")
        return ""
    return _text_field(number, summaries, system, problems, required=True)


def _check_collection(docs: list[ParsedDocument], problems: _Collector) -> None:
    if not docs:
        problems.add(None, "file holds no document")
    if len(docs) > settings.IMPORT_MAX_DOCUMENTS:
        problems.add(
            None, f"{len(docs):,} documents; the limit is {settings.IMPORT_MAX_DOCUMENTS:,}"
        )
    first_line: dict[str, int] = {}
    for doc in docs:
        if doc.external_id in first_line:
            problems.add(
                doc.line,
                f"duplicate id {doc.external_id!r} (first on line {first_line[doc.external_id]})",
            )
        else:
            first_line[doc.external_id] = doc.line
