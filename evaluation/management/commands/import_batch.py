from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from evaluation.importing import FORMATS, FRANK_DATASETS, BatchFileError
from evaluation.services import BatchSettings, import_batch


class Command(BaseCommand):
    help = (
        "Import a batch of documents and summaries (JSONL, CSV or the FRANK seed file). "
        "The whole file is validated first; on any problem nothing is written."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--name", required=True, help="Batch name (unique).")
        parser.add_argument("--dataset", required=True, help="Dataset label, e.g. XSUM or CNNDM.")
        parser.add_argument("--system-a", required=True, help="Baseline system, e.g. MLE.")
        parser.add_argument("--system-b", required=True, help="System under test, e.g. QUALS.")
        parser.add_argument("--annotators-per-item", type=int, default=3, metavar="K")
        parser.add_argument(
            "--format", choices=FORMATS, help="Default: from the extension and the content."
        )
        parser.add_argument(
            "--frank-dataset",
            choices=sorted(FRANK_DATASETS),
            help="For a FRANK file: which of its datasets to import (bbc and xsum are the same).",
        )
        parser.add_argument("--guidelines", type=Path, help="A text or Markdown file.")

    def handle(self, *args, **opts):
        data = _read(opts["file"])
        guidelines = _read(opts["guidelines"]).decode("utf-8") if opts["guidelines"] else ""
        batch_settings = BatchSettings(
            name=opts["name"],
            dataset=opts["dataset"],
            system_a=opts["system_a"],
            system_b=opts["system_b"],
            annotators_per_item=opts["annotators_per_item"],
            guidelines=guidelines,
        )
        try:
            batch = import_batch(
                data,
                opts["file"].name,
                batch_settings,
                fmt=opts["format"],
                frank_dataset=opts["frank_dataset"],
            )
        except BatchFileError as e:
            for line in e.lines():
                self.stderr.write(f"{opts['file']}: {line}")
            raise CommandError(f"{opts['file']}: not imported, nothing was written") from e
        n = batch.comparisons.count()
        self.stdout.write(
            f"Imported batch {batch.name!r} (id {batch.pk}): {n} comparisons of "
            f"{batch.system_a} vs {batch.system_b}, {batch.annotators_per_item} annotators each."
        )


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise CommandError(f"cannot read {path}: {e.strerror}") from e
