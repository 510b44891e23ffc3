from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from evaluation.models import BatchNotFound, find_batch
from research.exports import FORMATS, FORMATS_OF, POOLED_FORMATS_OF, WHATS, export, export_pooled

POOLED = "pooled"  # in place of a batch: the pooled page (/results/)


class Command(BaseCommand):
    help = (
        "Export a batch's judgments, comparisons, scores, results table, position bias, skips "
        "or methods paragraph (formats per export: see --what); or, for the batch 'pooled', "
        "the pooled page's table or methods."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "batch",
            help=f"Batch name or id, or {POOLED!r} for the pooled page (/results/; a batch of that "
            "name is reached by its id).",
        )
        kinds = "; ".join(f"{w}: {', '.join(f)}" for w, f in FORMATS_OF.items())
        parser.add_argument("--what", choices=WHATS, default="judgments", help=kinds)
        parser.add_argument(
            "--format", choices=FORMATS, dest="fmt", help="Default: the export's first format."
        )
        parser.add_argument(
            "--exclude-flagged",
            action="store_true",
            help="Leave out the annotators flagged by attention checks (said in the file).",
        )
        parser.add_argument("--output", help="File to write (default: standard output).")

    def handle(self, *args, **opts):
        lines = self.lines(opts)
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

    def lines(self, opts):
        what, pooled = opts["what"], opts["batch"] == POOLED
        kinds = POOLED_FORMATS_OF if pooled else FORMATS_OF
        if what not in kinds:
            raise CommandError(f"the pooled page exports {', '.join(kinds)}, not {what}")
        fmt = opts["fmt"] or kinds[what][0]
        if fmt not in kinds[what]:
            raise CommandError(f"{what} exports as {', '.join(kinds[what])}, not {fmt}")
        if pooled:
            return export_pooled(what, fmt, exclude_flagged=opts["exclude_flagged"])
        try:
            batch = find_batch(opts["batch"])
        except BatchNotFound as e:
            raise CommandError(str(e)) from e
        return export(batch, what, fmt, exclude_flagged=opts["exclude_flagged"])
