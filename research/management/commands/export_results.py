from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from evaluation.models import BatchNotFound, find_batch
from research.exports import FORMATS, WHATS, export


class Command(BaseCommand):
    help = "Export a batch's judgments, comparisons, scores or results table as CSV or JSONL."

    def add_arguments(self, parser):
        parser.add_argument("batch", help="Batch name or id.")
        parser.add_argument("--what", choices=WHATS, default="judgments")
        parser.add_argument("--format", choices=FORMATS, default="csv", dest="fmt")
        parser.add_argument("--output", help="File to write (default: standard output).")

    def handle(self, *args, **opts):
        try:
            batch = find_batch(opts["batch"])
        except BatchNotFound as e:
            raise CommandError(str(e)) from e
        lines = export(batch, opts["what"], opts["fmt"])
        if not opts["output"]:
            for line in lines:
                self.stdout.write(line, ending="")
            return
        try:
            # newline="": the lines already end as they should; no translation on Windows.
            with open(opts["output"], "w", encoding="utf-8", newline="") as out:
                count = 0
                for line in lines:
                    out.write(line)
                    count += 1
        except OSError as e:
            raise CommandError(f"cannot write {opts['output']}: {e}") from e
        self.stderr.write(f"wrote {count} line(s) to {opts['output']}")
