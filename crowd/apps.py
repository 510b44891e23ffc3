from __future__ import annotations

from django.apps import AppConfig


class CrowdConfig(AppConfig):
    name = "crowd"
    verbose_name = "Crowd studies"

    def ready(self) -> None:
        from evaluation.signals import work_done

        from .services import after_judging

        work_done.connect(after_judging, dispatch_uid="crowd.after_judging")

        from research.exports import ANNOTATOR_COLUMNS
        from research.methods import SENTENCES

        from .exports import survey_columns
        from .methods import recruitment

        if survey_columns not in ANNOTATOR_COLUMNS:  # survey answers join the judgments export
            ANNOTATOR_COLUMNS.append(survey_columns)
        if recruitment not in SENTENCES:  # the methods paragraph says how people were recruited
            SENTENCES.insert(SENTENCES.index(_goes_before(SENTENCES)), recruitment)


def _goes_before(sentences: list):
    """Recruitment is told before the attention checks (or before the last sentence)."""
    return next((s for s in sentences if s.__name__ == "attention_checks"), sentences[-1])
