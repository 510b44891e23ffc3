"""Each batch gets a secret for its random draws; comparisons count the places taken with system A
on the left and carry a random lease-order key drawn from that secret.

Existing rows: every batch gets its own secret, every comparison its key and its count of live
(leased or submitted) assignments with A on the left. The index and the constraint follow in 0012
(PostgreSQL cannot alter a table in the transaction that updated its rows).
"""

import hashlib
import hmac
import secrets

from django.db import migrations, models
from django.db.models import Count, Q

import evaluation.models


def draw(secret: str, *parts) -> int:
    message = ":".join(str(p) for p in parts).encode()
    return int.from_bytes(hmac.new(secret.encode(), message, hashlib.sha256).digest()[:8], "big")


def fill(apps, schema_editor):
    Batch = apps.get_model("evaluation", "Batch")
    Comparison = apps.get_model("evaluation", "Comparison")
    for batch in Batch.objects.all():
        batch.secret = secrets.token_hex(32)
        batch.save(update_fields=["secret"])
        live = Q(assignments__status__in=["leased", "submitted"])
        comparisons = Comparison.objects.filter(batch=batch).annotate(
            a_left=Count("assignments", filter=live & Q(assignments__left_system="A"))
        )
        for comparison in comparisons:
            comparison.position = draw(batch.secret, "order", comparison.pk) >> 1
            comparison.taken_a_left = comparison.a_left
        Comparison.objects.bulk_update(comparisons, ["position", "taken_a_left"], batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("evaluation", "0010_assignment_late"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="comparison",
            name="comparison_lease_order",
        ),
        migrations.AddField(
            model_name="batch",
            name="secret",
            field=models.CharField(
                default=evaluation.models.new_batch_secret, editable=False, max_length=64
            ),
        ),
        migrations.AddField(
            model_name="comparison",
            name="position",
            field=models.BigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="comparison",
            name="taken_a_left",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
