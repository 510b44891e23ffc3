from __future__ import annotations

from django.apps import AppConfig


class CrowdConfig(AppConfig):
    name = "crowd"
    verbose_name = "Crowd studies"

    def ready(self) -> None:
        from evaluation.signals import work_done

        from .services import after_judging

        work_done.connect(after_judging, dispatch_uid="crowd.after_judging")
