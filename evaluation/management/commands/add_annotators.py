from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from evaluation.models import BatchNotFound, find_batch
from evaluation.services import InvalidUsernames, add_annotators


class Command(BaseCommand):
    help = "Allow annotators on a batch, creating missing accounts; new passwords are printed once."

    def add_arguments(self, parser):
        parser.add_argument("batch", help="Batch name or id.")
        parser.add_argument("usernames", nargs="+")

    def handle(self, *args, **opts):
        try:
            batch = find_batch(opts["batch"])
            created = add_annotators(batch, opts["usernames"])
        except (BatchNotFound, InvalidUsernames) as e:
            raise CommandError(str(e)) from e
        for username, password in created.items():
            if password:
                self.stdout.write(f"created {username}  password: {password}")
            else:
                self.stdout.write(f"existing {username}")
        self.stdout.write(f"{len(created)} annotator(s) may now work on {batch.name!r}.")
