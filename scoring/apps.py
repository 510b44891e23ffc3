from __future__ import annotations

from django.apps import AppConfig


class ScoringConfig(AppConfig):
    name = "scoring"
    verbose_name = "Automatic scoring"

    def ready(self) -> None:
        # The study core announces imports; scoring listens (the core never imports scoring).
        # Imported here because models and services need the app registry ready.
        from evaluation.signals import batch_imported

        # Registers the tasks in every process (web, commands, workers), so that services can
        # send them by name; Celery's autodiscovery alone runs only when a worker starts.
        from . import tasks  # noqa: F401
        from .services import score_imported_batch

        batch_imported.connect(score_imported_batch, dispatch_uid="scoring.score_imported_batch")
