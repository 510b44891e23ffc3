"""The participants export: platform ids for admins, the judgments export's pseudonyms for
researchers, so that survey answers join the judgments by pseudonym."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator

from evaluation.models import Batch
from research.exports import annotator_pseudonym, csv_safe

from .models import CrowdStudy
from .quality import participant_rows

COLUMNS = [
    "participant",
    "platform",
    "phase",
    "consented",
    "training_attempts",
    "training_score",
    "submitted",
    "skipped",
    "checks_answered",
    "check_accuracy",
    "median_active_seconds",
    "arrived_at",
    "finished_at",
    "minutes",
    "completion",
    "screened_out_reason",
    "flagged",
    "survey_answers",
]


class _Line:
    def write(self, value: str) -> str:
        return value


def _rows(study: CrowdStudy, platform_ids: bool) -> Iterator[list]:
    for r in participant_rows(study):
        p = r.participant
        yield [
            p.platform_id if platform_ids else annotator_pseudonym(p.user_id),
            p.platform,
            p.phase,
            p.consented_at is not None,
            p.training_attempts,
            p.training_score,
            r.submitted,
            r.skipped,
            r.checks_answered,
            r.check_accuracy,
            r.median_active_seconds,
            p.created_at.isoformat(),
            p.finished_at.isoformat() if p.finished_at else None,
            r.minutes,
            r.completion,
            p.screened_out_reason,
            p.flagged,
            p.survey_answers,
        ]


def export_participants(study: CrowdStudy, fmt: str, *, platform_ids: bool) -> Iterator[str]:
    if fmt == "csv":
        writer = csv.writer(_Line(), lineterminator="\n")
        yield writer.writerow(COLUMNS)
        for row in _rows(study, platform_ids):
            row[-1] = json.dumps(row[-1], ensure_ascii=False)
            yield writer.writerow(csv_safe("" if v is None else v for v in row))
    else:
        dumps = json.JSONEncoder(ensure_ascii=False).encode
        for row in _rows(study, platform_ids):
            yield dumps(dict(zip(COLUMNS, row, strict=True))) + "\n"


def survey_columns(batch: Batch) -> tuple[list[str], dict[int, tuple]]:
    """The judgments export's survey columns: one per question of the batch's crowd study
    ("survey: <question>"), each row carrying its participant's answer (none for annotators
    who are not participants). Joined by annotator, so by the same pseudonym."""
    study = CrowdStudy.objects.filter(batch=batch).first()
    if study is None or not study.questions:
        return [], {}
    questions = study.questions
    answers = {
        user_id: tuple(given.get(q) or None for q in questions)
        for user_id, given in study.participants.values_list("user_id", "survey_answers")
    }
    return [f"survey: {q}" for q in questions], answers
