"""The lease order reads the random key; the A-on-left count stays within the places taken."""

import django.db.models.expressions
from django.db import migrations, models

TAKEN = django.db.models.expressions.CombinedExpression(
    models.F("annotations_done"), "+", models.F("annotations_in_progress")
)


class Migration(migrations.Migration):
    dependencies = [
        ("evaluation", "0011_sides_and_order"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="comparison",
            index=models.Index(
                models.F("batch"),
                models.F("is_check"),
                TAKEN,
                models.F("position"),
                models.F("id"),
                condition=models.Q(("annotations_needed__gt", TAKEN)),
                name="comparison_lease_order",
            ),
        ),
        migrations.AddConstraint(
            model_name="comparison",
            constraint=models.CheckConstraint(
                condition=models.Q(("taken_a_left__gte", 0), ("taken_a_left__lte", TAKEN)),
                name="comparison_sides_within_taken",
            ),
        ),
    ]
