from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from evaluation.models import BatchNotFound, find_batch
from scoring.metrics import BY_KEY, FAMILIES
from scoring.scorers import MetricUnavailable
from scoring.services import start_batch_scoring


class Command(BaseCommand):
    help = "Enqueue the scoring of a batch's summaries (unscored ones unless --force)."

    def add_arguments(self, parser):
        parser.add_argument("batch", help="Batch name or id.")
        parser.add_argument(
            "--metric", choices=list(BY_KEY), help="A metric family. Default: every family."
        )
        parser.add_argument("--force", action="store_true", help="Re-score summaries with scores.")

    def handle(self, *args, **opts):
        try:
            batch = find_batch(opts["batch"])
            kinds = [opts["metric"]] if opts["metric"] else None
            jobs = start_batch_scoring(batch.pk, kinds, force=opts["force"])
        except (BatchNotFound, MetricUnavailable) as e:
            raise CommandError(str(e)) from e
        for job in jobs:
            self.stdout.write(
                f"{job.get_kind_display()}: {job.total} summaries enqueued (job {job.pk})."
            )
        if not opts["metric"]:
            for family in FAMILIES:
                if family.unavailable():
                    self.stdout.write(f"{family.label}: skipped ({family.unavailable()}).")
