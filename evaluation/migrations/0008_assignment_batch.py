"""Each assignment carries its comparison's batch (made required, with the one-live-lease
constraint, in 0009: PostgreSQL cannot alter a table in the transaction that updated its rows).

Existing data: the batch is copied from the comparison; where an annotator held several live
leases in one batch (possible before this constraint), the newest stays and the others are given
back to their comparisons, as an expired lease would be.
"""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import Count, F, OuterRef, Subquery


def copy_batch_and_keep_one_lease(apps, schema_editor):
    Assignment = apps.get_model("evaluation", "Assignment")
    Comparison = apps.get_model("evaluation", "Comparison")
    batch_of = Comparison.objects.filter(pk=OuterRef("comparison_id")).values("batch_id")[:1]
    Assignment.objects.update(batch_id=Subquery(batch_of))
    doubled = (
        Assignment.objects.filter(status="leased")
        .values("annotator_id", "batch_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    for row in doubled:
        leases = Assignment.objects.filter(
            status="leased", annotator_id=row["annotator_id"], batch_id=row["batch_id"]
        ).order_by("-served_at", "-id")
        for lease in leases[1:]:
            Assignment.objects.filter(pk=lease.pk).update(status="expired")
            Comparison.objects.filter(pk=lease.comparison_id).update(
                annotations_in_progress=F("annotations_in_progress") - 1
            )


class Migration(migrations.Migration):
    dependencies = [
        ("evaluation", "0007_verdict_codes_not_null"),
    ]

    operations = [
        migrations.AddField(
            model_name="assignment",
            name="batch",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="evaluation.batch",
            ),
        ),
        migrations.RunPython(copy_batch_and_keep_one_lease, migrations.RunPython.noop),
    ]
