"""The batch importer: every kind of bad input is refused with its line and writes nothing."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from evaluation.importing import MAX_PROBLEMS, BatchFileError
from evaluation.models import Batch, Comparison, Document, Summary
from evaluation.services import import_batch
from tests.conftest import doc_row, jsonl, settings_for


def counts() -> tuple[int, int, int, int]:
    return (
        Batch.objects.count(),
        Document.objects.count(),
        Summary.objects.count(),
        Comparison.objects.count(),
    )


def refuse(data: bytes, filename: str = "f.jsonl", settings=None, **kwargs) -> list[str]:
    """Import must fail, leave the database as it was, and return the problem lines."""
    before = counts()
    with pytest.raises(BatchFileError) as exc:
        import_batch(data, filename, settings or settings_for(), **kwargs)
    assert counts() == before
    return exc.value.lines()


@pytest.mark.django_db
class TestJsonlImport:
    def test_it_imports_the_two_named_systems_of_each_line(self):
        batch = import_batch(jsonl([doc_row(1), doc_row(2)]), "f.jsonl", settings_for(k=2))
        assert batch.comparisons.count() == 2
        comparison = batch.comparisons.select_related("summary_a", "summary_b").first()
        assert comparison.summary_a.system == "MLE"
        assert comparison.summary_a.text == "The mayor of Town1 closed a bridge."
        assert comparison.summary_b.system == "QUALS"
        assert comparison.annotations_needed == 2
        assert not Summary.objects.filter(system="OTHER").exists()

    def test_it_accepts_integer_ids_a_missing_reference_and_meta(self):
        row = doc_row(1, id=7, meta={"note": "x"})
        del row["reference"]
        import_batch(jsonl([row]), "f.jsonl", settings_for())
        doc = Document.objects.get()
        assert (doc.external_id, doc.reference, doc.meta) == ("7", "", {"note": "x"})

    def test_it_skips_blank_lines_and_a_byte_order_mark(self):
        data = b"\xef\xbb\xbf" + jsonl([doc_row(1)]) + b"\n\n" + jsonl([doc_row(2)]) + b"\n"
        import_batch(data, "f.jsonl", settings_for())
        assert Document.objects.count() == 2

    def test_it_reports_bad_json_with_its_line(self):
        data = jsonl([doc_row(1)]) + b'\n{"id": "x", broken\n' + jsonl([doc_row(3)])
        assert refuse(data)[0].startswith("line 2: not valid JSON")

    def test_it_reports_a_line_that_is_not_an_object(self):
        assert refuse(jsonl([doc_row(1)]) + b"\n[1, 2]") == [
            "line 2: expected a JSON object, got list"
        ]

    def test_it_reports_missing_and_empty_fields(self):
        rows = [doc_row(1, id=""), doc_row(2, source="   "), doc_row(3, summaries="text")]
        del rows[0]["source"]
        assert refuse(jsonl(rows)) == [
            "line 1: field 'id' is empty",
            "line 1: field 'source' is missing or not a string",
            "line 2: field 'source' is empty",
            "line 3: field 'summaries' is missing or not an object of system: text",
        ]

    def test_it_reports_an_unknown_system(self):
        row = doc_row(1, summaries={"MLE": "a", "BART": "b"})
        assert refuse(jsonl([row])) == [
            "line 1: no summary of system 'QUALS' (this line has: BART, MLE)"
        ]

    def test_it_reports_an_empty_summary(self):
        row = doc_row(1, summaries={"MLE": "", "QUALS": "b"})
        assert refuse(jsonl([row])) == ["line 1: field 'MLE' is empty"]

    def test_it_reports_duplicate_ids_with_both_lines(self):
        assert refuse(jsonl([doc_row(1), doc_row(2), doc_row(1)])) == [
            "line 3: duplicate id 'doc-1' (first on line 1)"
        ]

    def test_it_reports_bytes_that_are_not_utf8_with_their_line(self):
        data = jsonl([doc_row(1)]) + b"\n" + '{"id": "caf\u00e9"}'.encode("latin-1")
        assert refuse(data) == ["line 2: not UTF-8 (byte 0xe9); save the file as UTF-8"]

    def test_it_reports_an_empty_file(self):
        assert refuse(b"  \n") == ["file is empty"]

    def test_it_reports_every_problem_up_to_a_cap(self):
        lines = refuse(b"\n".join([b"nope"] * (MAX_PROBLEMS + 7)))
        assert len(lines) == MAX_PROBLEMS + 1
        assert lines[-1] == "... and 7 more problems not shown"

    @override_settings(IMPORT_MAX_BYTES=100)
    def test_it_refuses_a_file_over_the_size_limit(self):
        assert refuse(jsonl([doc_row(1), doc_row(2)]))[0].endswith("the limit is 100")

    @override_settings(IMPORT_MAX_FIELD_CHARS=50)
    def test_it_refuses_an_overlong_field(self):
        assert "line 1: field 'source' is longer than 50 characters" in refuse(jsonl([doc_row(1)]))

    @override_settings(IMPORT_MAX_DOCUMENTS=1)
    def test_it_refuses_too_many_documents(self):
        assert refuse(jsonl([doc_row(1), doc_row(2)])) == ["2 documents; the limit is 1"]

    def test_it_refuses_text_a_database_cannot_store(self):
        data = (
            b'{"id": "a", "source": "bad \\ud800 char", '
            b'"summaries": {"MLE": "x\\u0000y", "QUALS": "q"}}'
        )
        lines = refuse(data)
        assert lines[0].startswith("line 1: field 'source' contains an invalid character")
        assert lines[1:] == ["line 1: field 'MLE' contains a NUL character"]

    def test_it_refuses_nan_which_is_not_json(self):
        data = jsonl([doc_row(1)]).replace(b'"id"', b'"meta": {"score": NaN}, "id"')
        assert refuse(data) == ["line 1: not valid JSON: NaN is not valid JSON"]

    def test_it_refuses_deeply_nested_json(self):
        data = b'{"id": "x", "meta": ' + b"[" * 100000 + b"]" * 100000 + b"}"
        assert refuse(data, settings=settings_for())[0].startswith("line 1:")


@pytest.mark.django_db
class TestBatchSettings:
    def test_it_refuses_an_existing_batch_name(self, batch):
        assert refuse(jsonl([doc_row(1)])) == ["a batch named 'study' already exists"]

    def test_it_refuses_the_same_system_twice(self):
        s = settings_for()
        s.system_b = "MLE"
        assert refuse(jsonl([doc_row(1)]), settings=s) == ["system A and system B are both 'MLE'"]

    def test_it_refuses_zero_annotators_per_item(self):
        assert refuse(jsonl([doc_row(1)]), settings=settings_for(k=0)) == [
            "annotators per item must be between 1 and 50"
        ]

    def test_it_refuses_guidelines_that_name_a_system(self):
        s = settings_for()
        s.guidelines = "Summaries come from q.u.a.l.s and a baseline."
        assert refuse(jsonl([doc_row(1)]), settings=s) == [
            "annotators see the guidelines: they name 'QUALS'"
        ]

    def test_it_takes_guidelines_that_only_look_alike(self):
        s = settings_for()
        s.guidelines = "Choose equal when they are equally good; a small study."
        assert import_batch(jsonl([doc_row(1)]), "f.jsonl", s).guidelines == s.guidelines


def csv_bytes(text: str) -> bytes:
    return text.encode("utf-8")


@pytest.mark.django_db
class TestCsvImport:
    def test_it_imports_a_csv_with_quoted_newlines_and_commas(self):
        data = csv_bytes(
            "id,source,reference,MLE,QUALS\n"
            'a,"First line.\nSecond, with comma.",ref,"mle, a",quals a\n'
            "b,Other source,,mle b,quals b\n"
        )
        import_batch(data, "f.csv", settings_for())
        docs = list(Document.objects.order_by("external_id"))
        assert docs[0].source == "First line.\nSecond, with comma."
        assert docs[1].reference == ""
        assert Summary.objects.get(document=docs[0], system="MLE").text == "mle, a"

    def test_it_reports_a_missing_column(self):
        assert refuse(csv_bytes("id,text,MLE,QUALS\na,b,c,d\n"), "f.csv")[0].startswith(
            "line 1: CSV header lacks column(s) source"
        )

    def test_it_reports_a_missing_system_column(self):
        data = csv_bytes("id,source,MLE,BART\na,src,x,y\n")
        assert refuse(data, "f.csv") == [
            "line 2: no summary of system 'QUALS' (this line has: BART, MLE)"
        ]

    def test_it_reports_rows_with_the_wrong_number_of_fields(self):
        data = csv_bytes('id,source,MLE,QUALS\na,"two\nlines",x,y\nb,src,x\n')
        assert refuse(data, "f.csv") == ["line 4: expected 4 fields, found 3"]

    def test_it_reports_broken_quoting(self):
        data = csv_bytes('id,source,MLE,QUALS\na,src,x,y\nb,"src"oops,x,y\n')
        assert refuse(data, "f.csv")[0].startswith("line 3: CSV error:")

    def test_it_reports_duplicate_ids(self):
        data = csv_bytes("id,source,MLE,QUALS\na,s,x,y\na,s,x,y\n")
        assert refuse(data, "f.csv") == ["line 3: duplicate id 'a' (first on line 2)"]


@pytest.mark.django_db
class TestFrankImport:
    def frank_settings(self, a: str, b: str):
        s = settings_for("frank")
        s.system_a, s.system_b = a, b
        return s

    def test_it_imports_the_chosen_dataset_and_systems_unedited(self, frank_file):
        data = frank_file.read_bytes()
        batch = import_batch(
            data, frank_file.name, self.frank_settings("pgn", "bart"), frank_dataset="cnndm"
        )
        cnndm = [json.loads(line) for line in data.splitlines() if b'"cnndm"' in line[:200]]
        assert batch.comparisons.count() == len(cnndm) == 250
        first = cnndm[0]
        doc = Document.objects.get(batch=batch, external_id=first["hash"])
        assert doc.source == first["article"].strip()
        assert (
            Summary.objects.get(document=doc, system="bart").text
            == first["summaries"]["bart"].strip()
        )
        assert set(doc.meta["frank_human"]) == {"pgn", "bart"}

    def test_it_imports_xsum_as_bbc(self, frank_file):
        s = self.frank_settings("PtGen", "BERTS2S")
        batch = import_batch(frank_file.read_bytes(), frank_file.name, s, frank_dataset="bbc")
        assert batch.comparisons.count() == 249

    def test_it_asks_which_frank_dataset(self, frank_file):
        lines = refuse(frank_file.read_bytes(), frank_file.name, self.frank_settings("pgn", "bart"))
        assert lines == ["a FRANK file needs --frank-dataset cnndm or bbc (XSum)"]

    def test_it_reports_a_system_of_the_other_dataset(self, frank_file):
        lines = refuse(
            frank_file.read_bytes(),
            frank_file.name,
            self.frank_settings("pgn", "PtGen"),
            frank_dataset="cnndm",
        )
        assert lines[0].startswith("line 1: no summary of system 'PtGen'")
