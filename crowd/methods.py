"""The methods paragraph's sentence on recruitment: added to research.methods.SENTENCES when
the app is ready, so that reporting never imports crowd studies."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Count, Q

from research.methods import MethodsFacts

from .models import CrowdStudy, Participant, Phase
from .pay import check_pay, median

PLATFORMS = {"prolific": "Prolific", "mturk": "Amazon Mechanical Turk", "generic": "a study link"}


def recruitment(f: MethodsFacts) -> str | None:
    """Who took part through crowd links, training and its screen-out, and the pay per hour
    at the completed participants' median time."""
    studies = list(CrowdStudy.objects.filter(batch_id__in=f.batch_ids).order_by("batch_id"))
    if not studies:
        return None
    people = Participant.objects.filter(study__in=studies)
    counts = people.aggregate(
        joined=Count("id"),
        completed=Count("id", filter=Q(phase=Phase.COMPLETE)),
        screened=Count("id", filter=Q(phase=Phase.SCREENED_OUT)),
        returned=Count("id", filter=Q(phase=Phase.RETURNED)),
    )
    platforms = sorted(set(people.values_list("platform", flat=True)))
    where = " and ".join(PLATFORMS.get(p, p) for p in platforms) or "study links"
    parts = [
        f"Participants were recruited through {where}: {counts['joined']} joined, "
        f"{counts['completed']} completed, {counts['screened']} were screened out and "
        f"{counts['returned']} returned or timed out."
    ]
    trained = [s for s in studies if s.training.exists()]
    if trained:
        marks = sorted({round(100 * s.training_pass_mark) for s in trained})
        parts.append(
            "Before judging, each completed a practice round with feedback (pass mark "
            + " / ".join(f"{m}%" for m in marks)
            + ", two attempts; those who failed twice were screened out and none of their "
            "answers counted)."
        )
    quotas = sorted({s.batch.items_per_annotator for s in studies if s.batch.items_per_annotator})
    if quotas:
        parts.append(
            "Each judged at most " + " / ".join(map(str, quotas)) + " comparisons, checks included."
        )
    minutes = median(
        [
            (p.finished_at - p.created_at).total_seconds() / 60
            for p in people.filter(phase=Phase.COMPLETE, finished_at__isnull=False)
        ]
    )
    rewards = sorted({float(s.reward) for s in studies})
    if minutes and len(rewards) == 1 and rewards[0] > 0:
        pay = check_pay(
            rewards[0],
            minutes,
            settings.CROWD_PAY_FLOOR_PER_HOUR,
            settings.CROWD_PAY_RECOMMENDED_PER_HOUR,
        )
        currency = settings.CROWD_PAY_CURRENCY
        parts.append(
            f"The reward was {rewards[0]:.2f} {currency} for a median {minutes:.1f} minutes, "
            f"{pay.hourly:.2f} {currency} an hour."
        )
    return " ".join(parts)
