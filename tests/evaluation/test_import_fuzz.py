"""Fuzzing the importer: whatever the file, an import succeeds or raises BatchFileError.

Random bytes, wrong encodings, huge lines, deep or wrong JSON, CSV quoting tricks, valid-looking
lines with random field types. Never another exception, every problem line a non-empty string,
and after a refusal the database holds exactly what it held before (no partial batch).
"""

from __future__ import annotations

import csv
import io
import itertools
import json

import pytest
from django.test import override_settings
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from evaluation.importing import BatchFileError, ImportSpec, parse_batch_file
from evaluation.models import AuditEvent, Batch, Comparison, Document, Summary
from evaluation.services import import_batch
from scoring.models import MetricScore, ScoringJob
from tests.conftest import doc_row, jsonl, settings_for

FAST = settings(max_examples=150, deadline=None)
DB = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
LIMITS = {"IMPORT_MAX_FIELD_CHARS": 2000, "IMPORT_MAX_BYTES": 300_000}
SPEC = ImportSpec("MLE", "QUALS")
FILENAMES = st.sampled_from(["f.jsonl", "f.csv", "f.json", "f.txt", "upload", "F.CSV"])
MODELS = (Batch, Document, Summary, Comparison, AuditEvent, ScoringJob, MetricScore)
# Text as people and programs produce it: NUL, lone surrogates (from "\ud800" escapes) and
# the characters that matter to CSV and JSON included.
AWKWARD = "\x00\ud800\udfff\ufeff\"',\n\r\t\\{}[]é€"
TEXT = st.text(st.characters() | st.sampled_from(AWKWARD), max_size=40)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
names = itertools.count()


def snapshot() -> tuple[int, ...]:
    return tuple(model.objects.count() for model in MODELS)


def check_problems(error: BatchFileError) -> None:
    lines = error.lines()
    assert lines, "a refusal without a reason"
    assert all(isinstance(line, str) and line.strip() for line in lines), lines


def parse_or_refuse(data: bytes, filename: str) -> None:
    try:
        docs = parse_batch_file(data, filename, SPEC)
    except BatchFileError as e:
        check_problems(e)
    else:
        assert docs


def import_or_refuse(data: bytes, filename: str) -> None:
    """import_batch must succeed with one new batch, or refuse and leave everything as it was."""
    before = snapshot()
    try:
        batch = import_batch(data, filename, settings_for(f"fuzz {next(names)}"))
    except BatchFileError as e:
        check_problems(e)
        assert snapshot() == before, "a refused import left rows behind"
    else:
        assert Batch.objects.count() == before[0] + 1
        assert batch.comparisons.count() >= 1


def valid_text(rows: list[dict]) -> str:
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in rows)


@st.composite
def random_rows(draw) -> dict:
    """A line that looks like ours, any field possibly of the wrong type or missing."""
    row = doc_row(draw(st.integers(0, 5)))
    for key in ("id", "source", "reference", "summaries", "meta"):
        choice = draw(st.sampled_from(["keep", "keep", "text", "random", "missing"]))
        if choice == "text":
            row[key] = draw(TEXT.filter(str.strip))
        elif choice == "random":
            row[key] = draw(JSON_VALUES)
        elif choice == "missing":
            row.pop(key, None)
    if isinstance(row.get("summaries"), dict) and draw(st.booleans()):
        row["summaries"]["MLE"] = draw(TEXT | JSON_VALUES)
    return row


@st.composite
def csv_files(draw) -> bytes:
    header = draw(st.sampled_from(["id,source,reference,MLE,QUALS", "id,source,MLE,QUALS"]))
    width = header.count(",") + 1
    cells = st.lists(TEXT, min_size=width - 1, max_size=width + 1)
    rows = draw(st.lists(cells, min_size=1, max_size=5))
    out = io.StringIO()
    out.write(header + "\r\n")
    for cells_ in rows:
        if draw(st.booleans()):
            csv.writer(out).writerow(cells_)  # properly quoted
        else:
            # Hand-made: embedded and unterminated quotes, raw newlines, stray separators.
            out.write(",".join(draw(st.sampled_from(['"', '""', "", "'"])) + c for c in cells_))
            out.write(draw(st.sampled_from(["\n", "\r\n", "", '"\n', "\x00\n"])))
    return out.getvalue().encode("utf-8", "surrogatepass")


def deep(kind: str, depth: int) -> str:
    if kind == "list":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


@pytest.mark.django_db
class TestImportFuzz:
    @FAST
    @given(data=st.binary(max_size=3000), filename=FILENAMES)
    def test_it_survives_random_bytes(self, data, filename):
        parse_or_refuse(data, filename)

    @FAST
    @given(text=st.text(max_size=2000), filename=FILENAMES)
    def test_it_survives_random_text(self, text, filename):
        parse_or_refuse(text.encode("utf-8"), filename)

    @DB
    @given(
        rows=st.lists(st.integers(0, 30), min_size=1, max_size=4),
        accent=st.sampled_from(["Café in Zürich", "naïve façade", "€100", "Ωmega"]),
        encoding=st.sampled_from(["latin-1", "cp1252", "utf-16", "utf-16-le", "utf-16-be"]),
        fmt=st.sampled_from(["jsonl", "csv"]),
    )
    def test_it_refuses_wrong_encodings(self, rows, accent, encoding, fmt):
        docs = [doc_row(i, source=f"{accent} {i}.") for i in sorted(set(rows))]
        if fmt == "csv":
            text = "id,source,MLE,QUALS\n" + "\n".join(
                f'{d["id"]},"{d["source"]}",a,b' for d in docs
            )
        else:
            text = valid_text(docs)
        data = text.encode(encoding, errors="replace")
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            before = snapshot()
            with pytest.raises(BatchFileError) as refused:
                import_batch(data, f"f.{fmt}", settings_for(f"fuzz {next(names)}"))
            check_problems(refused.value)
            assert snapshot() == before
        else:
            import_or_refuse(data, f"f.{fmt}")  # ASCII after all ("€" has no latin-1 byte)

    @override_settings(**LIMITS)  # outermost, so that hypothesis sees its own settings
    @DB
    @given(
        length=st.integers(1990, 2010),
        field=st.sampled_from(["source", "reference", "id", "MLE"]),
        fmt=st.sampled_from(["jsonl", "csv"]),
    )
    @example(length=150_000, field="source", fmt="jsonl")
    @example(length=150_000, field="source", fmt="csv")
    def test_it_survives_huge_fields(self, length, field, fmt):
        row = doc_row(1)
        if field == "MLE":
            row["summaries"]["MLE"] = "w" * length
        else:
            row[field] = "w" * length
        if fmt == "csv":
            s = row["summaries"]
            data = f"id,source,reference,MLE,QUALS\n{row['id']},{row['source']},"
            data += f"{row['reference']},{s['MLE']},{s['QUALS']}\n"
            import_or_refuse(data.encode(), "f.csv")
        else:
            import_or_refuse(jsonl([row, doc_row(2)]), "f.jsonl")

    @override_settings(**LIMITS)  # outermost, so that hypothesis sees its own settings
    @DB
    @given(size=st.integers(250_000, 350_000), newline=st.booleans())
    def test_it_survives_one_huge_line(self, size, newline):
        data = b'{"id": "x", "source": "' + b"y" * size + (b"\n" if newline else b"")
        import_or_refuse(data, "f.jsonl")

    @DB
    @given(
        depth=st.one_of(st.integers(1, 50), st.integers(800, 1100), st.integers(5000, 100_000)),
        kind=st.sampled_from(["list", "object"]),
        where=st.sampled_from(["line", "meta", "source"]),
    )
    @example(depth=100_000, kind="list", where="line")
    @example(depth=950, kind="object", where="meta")
    def test_it_survives_deep_json(self, depth, kind, where):
        nested = deep(kind, depth)
        if where == "line":
            text = valid_text([doc_row(1)]) + "\n" + nested
        else:
            row = json.dumps(doc_row(1))[:-1]
            text = row + f', "{where}": {nested}' + "}"
        import_or_refuse(text.encode(), "f.jsonl")

    @DB
    @given(rows=st.lists(random_rows(), min_size=1, max_size=4))
    @example(rows=[doc_row(1, source="nul \x00 byte")])
    @example(rows=[doc_row(1, source="lone \ud800 surrogate")])
    @example(rows=[doc_row(1, meta={"score": float("nan")})])
    def test_it_survives_valid_looking_lines_with_random_types(self, rows):
        # ensure_ascii: lone surrogates travel as "\ud800" escapes, as other programs write them.
        data = "\n".join(json.dumps(r) for r in rows).encode()
        import_or_refuse(data, "f.jsonl")

    @DB
    @given(data=csv_files())
    @example(data=b'id,source,MLE,QUALS\r\n1,"unterminated,a,b\r\n')
    @example(data=b'id,source,MLE,QUALS\r\n1,"a ""quoted"" word\nand a newline",a,b\r\n')
    @example(data=b"id,source,MLE,QUALS\r\n1,nul \x00 byte,a,b\r\n")
    def test_it_survives_csv_quoting_tricks(self, data):
        import_or_refuse(data, "f.csv")

    @DB
    @given(value=JSON_VALUES, filename=st.sampled_from(["f.jsonl", "f.json"]))
    def test_it_survives_lines_that_are_not_objects(self, value, filename):
        text = valid_text([doc_row(1)]) + "\n" + json.dumps(value)
        import_or_refuse(text.encode(), filename)
