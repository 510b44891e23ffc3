"""An annotator holds at most one live lease per batch; the assignment's batch is required and
indexed with the annotator (their lease, progress and check schedule)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("evaluation", "0008_assignment_batch"),
    ]

    operations = [
        migrations.AlterField(
            model_name="assignment",
            name="batch",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="evaluation.batch",
            ),
        ),
        migrations.AddConstraint(
            model_name="assignment",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status", "leased")),
                fields=("annotator", "batch"),
                name="assignment_one_live_lease",
            ),
        ),
        migrations.RemoveIndex(
            model_name="assignment",
            name="evaluation__annotat_323112_idx",
        ),
        migrations.AddIndex(
            model_name="assignment",
            index=models.Index(
                fields=["annotator", "batch", "status"], name="evaluation__annotat_e55439_idx"
            ),
        ),
    ]
