from __future__ import annotations

from django.apps import AppConfig


class ResearchConfig(AppConfig):
    """The reporting layer: results, statistics, exports, figures, researchers' and admins' pages.

    It sits above the study core (`evaluation`) and `scoring` and has no models of its own.
    """

    name = "research"
    verbose_name = "Results and management"
