from __future__ import annotations

from django.apps import AppConfig


class CrowdConfig(AppConfig):
    name = "crowd"
    verbose_name = "Crowd studies"

    def ready(self) -> None:
        from evaluation.signals import work_done

        from .services import after_judging

        work_done.connect(after_judging, dispatch_uid="crowd.after_judging")

        from research.methods import SENTENCES

        from .methods import recruitment

        if recruitment not in SENTENCES:  # the methods paragraph says how people were recruited
            SENTENCES.insert(SENTENCES.index(_goes_before(SENTENCES)), recruitment)


def _goes_before(sentences: list):
    """Recruitment is told before the attention checks (or before the last sentence)."""
    return next((s for s in sentences if s.__name__ == "attention_checks"), sentences[-1])
