"""The management commands a researcher or admin types."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from evaluation.models import Batch, Role
from tests.conftest import doc_row, jsonl


@pytest.fixture
def good_file(tmp_path):
    path = tmp_path / "good.jsonl"
    path.write_bytes(jsonl([doc_row(1), doc_row(2), doc_row(3)]))
    return path


def run_import(path, *extra: str) -> None:
    call_command(
        "import_batch", str(path), "--name", "b1", "--dataset", "XSUM",
        "--system-a", "MLE", "--system-b", "QUALS", *extra,
    )  # fmt: skip


@pytest.mark.django_db
class TestImportBatchCommand:
    def test_it_imports_a_file_with_k_defaulting_to_three(self, good_file, capsys):
        run_import(good_file)
        batch = Batch.objects.get(name="b1")
        assert batch.annotators_per_item == 3
        assert batch.comparisons.count() == 3
        assert "3 comparisons of MLE vs QUALS" in capsys.readouterr().out

    def test_it_takes_annotators_per_item(self, good_file):
        run_import(good_file, "--annotators-per-item", "5")
        assert set(
            Batch.objects.get().comparisons.values_list("annotations_needed", flat=True)
        ) == {5}

    def test_it_fails_with_line_numbers_and_writes_nothing(self, tmp_path, capsys):
        path = tmp_path / "bad.jsonl"
        path.write_bytes(jsonl([doc_row(1)]) + b"\n{oops\n" + jsonl([doc_row(1)]))
        with pytest.raises(CommandError, match="nothing was written"):
            run_import(path)
        err = capsys.readouterr().err
        assert "line 2: not valid JSON" in err
        assert (
            "line 3: duplicate id 'doc-1' (first on line 1)" not in err
        )  # parse errors stop first
        assert not Batch.objects.exists()

    def test_it_fails_clearly_on_a_missing_file(self, tmp_path):
        with pytest.raises(CommandError, match="cannot read"):
            run_import(tmp_path / "absent.jsonl")

    def test_it_imports_the_real_frank_file(self, frank_file):
        call_command(
            "import_batch", str(frank_file), "--name", "frank", "--dataset", "CNNDM",
            "--system-a", "pgn", "--system-b", "bart", "--frank-dataset", "cnndm",
        )  # fmt: skip
        assert Batch.objects.get(name="frank").comparisons.count() == 250


@pytest.mark.django_db
class TestAddAnnotatorsCommand:
    def test_it_creates_missing_accounts_and_allows_them(self, batch, annotator, capsys):
        call_command("add_annotators", batch.name, "alice", "bob")
        out = capsys.readouterr().out
        assert "existing alice" in out
        password = out.split("created bob  password: ")[1].split()[0]
        bob = User.objects.get(username="bob")
        assert bob.check_password(password)
        assert bob.groups.filter(name=Role.ANNOTATOR).exists()
        assert set(batch.annotators.values_list("username", flat=True)) == {"alice", "bob"}

    def test_it_accepts_the_batch_id(self, batch):
        call_command("add_annotators", str(batch.pk), "carol")
        assert batch.annotators.filter(username="carol").exists()

    def test_it_refuses_an_unknown_batch(self, db):
        with pytest.raises(CommandError, match="no batch named or numbered 'nope'"):
            call_command("add_annotators", "nope", "carol")

    def test_it_refuses_invalid_usernames_and_creates_nobody(self, batch):
        with pytest.raises(CommandError, match="invalid username"):
            call_command("add_annotators", batch.name, "dave", "bad name!")
        assert not User.objects.filter(username="dave").exists()


@pytest.mark.django_db
class TestLoadDemoCommand:
    def test_it_loads_the_demo_once(self):
        call_command("load_demo")
        call_command("load_demo")
        batch = Batch.objects.get()
        assert batch.status == Batch.Status.OPEN
        assert batch.comparisons.count() >= 20
        assert (batch.system_a, batch.system_b) == ("MLE", "QUALS")
        assert batch.guidelines.strip()
        assert User.objects.count() == 5
        assert batch.annotators.count() == 3
        admin = User.objects.get(username="admin")
        assert admin.is_superuser and admin.check_password("factpair-admin")
