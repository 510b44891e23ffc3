from django.db import migrations, models


class Migration(migrations.Migration):
    # Its own migration: on PostgreSQL a table cannot be altered in the transaction that
    # just updated its rows (pending trigger events).

    dependencies = [
        ("evaluation", "0004_assignment_verdict_codes"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name='assignment',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('status', 'submitted'), ('verdict_factual__in', [-1, 0, 1]), ('verdict_informative__in', [-1, 0, 1]), ('verdict_grammatical__in', [-1, 0, 1])), models.Q(models.Q(('status', 'submitted'), _negated=True), ('verdict_factual__isnull', True), ('verdict_informative__isnull', True), ('verdict_grammatical__isnull', True)), _connector='OR'), name='assignment_verdicts_iff_submitted'),
        ),
    ]
