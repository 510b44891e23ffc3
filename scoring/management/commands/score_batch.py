from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from evaluation.services import BatchNotFound, find_batch
from scoring.services import ScoringNotConfigured, start_batch_scoring


class Command(BaseCommand):
    help = (
        "Enqueue ROUGE and/or QUALS scoring of a batch's summaries (unscored ones unless --force)."
    )

    def add_arguments(self, parser):
        parser.add_argument("batch", help="Batch name or id.")
        parser.add_argument("--metric", choices=["rouge", "quals"], help="Default: both.")
        parser.add_argument("--force", action="store_true", help="Re-score summaries with scores.")

    def handle(self, *args, **opts):
        try:
            batch = find_batch(opts["batch"])
            kinds = [opts["metric"]] if opts["metric"] else None
            jobs = start_batch_scoring(batch.pk, kinds, force=opts["force"])
        except (BatchNotFound, ScoringNotConfigured) as e:
            raise CommandError(str(e)) from e
        for job in jobs:
            self.stdout.write(
                f"{job.get_kind_display()}: {job.total} summaries enqueued (job {job.pk})."
            )
        if not opts["metric"] and not any(j.kind == "quals" for j in jobs):
            self.stdout.write("QUALS: not configured (set QUALS_MODEL); skipped.")
