from __future__ import annotations

from pathlib import Path

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand
from django.db import transaction

from evaluation.models import Batch, Role
from evaluation.roles import ensure_role_groups
from evaluation.services import BatchSettings, import_batch

DEMO_DIR = Path(__file__).resolve().parents[2] / "demo"
DEMO_BATCH = "Demo: MLE vs QUALS"
# Development accounts only: `make run` prints them. Never load the demo in production.
DEMO_ACCOUNTS = [
    ("admin", "factpair-admin", Role.ADMIN),
    ("researcher", "factpair-researcher", Role.RESEARCHER),
    ("annotator1", "factpair-annotator", Role.ANNOTATOR),
    ("annotator2", "factpair-annotator", Role.ANNOTATOR),
    ("annotator3", "factpair-annotator", Role.ANNOTATOR),
]


class Command(BaseCommand):
    help = "Load the demo batch and demo accounts (idempotent: running it twice adds nothing)."

    def handle(self, *args, **opts):
        ensure_role_groups()
        with transaction.atomic():
            users = [self.ensure_account(*account) for account in DEMO_ACCOUNTS]
        batch = Batch.objects.filter(name=DEMO_BATCH).first()
        if batch is None:
            batch = import_batch(
                (DEMO_DIR / "demo_batch.jsonl").read_bytes(),
                "demo_batch.jsonl",
                BatchSettings(
                    name=DEMO_BATCH,
                    dataset="DEMO",
                    system_a="MLE",
                    system_b="QUALS",
                    annotators_per_item=3,
                    guidelines=(DEMO_DIR / "guidelines.md").read_text("utf-8"),
                ),
            )
            batch.status = Batch.Status.OPEN
            batch.public_title = "News summaries (demo)"
            batch.save(update_fields=["status", "public_title"])
            batch.annotators.add(*[u for u in users if u.username.startswith("annotator")])
            self.stdout.write(f"Loaded {DEMO_BATCH!r}: {batch.comparisons.count()} comparisons.")
        else:
            self.stdout.write(f"{DEMO_BATCH!r} is already loaded.")

    def ensure_account(self, username: str, password: str, role: str) -> User:
        user, created = User.objects.get_or_create(username=username)
        if created:
            user.set_password(password)
            if role == Role.ADMIN:
                user.is_staff = user.is_superuser = True
            user.save()
            self.stdout.write(f"Created demo account {username}.")
        user.groups.add(Group.objects.get(name=role))
        return user
