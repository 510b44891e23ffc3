"""What every page shows a crowd participant: the way out of the study."""

from __future__ import annotations

from django.http import HttpRequest
from django.urls import reverse

# The study a participant joined through its link, kept in their session (no query to read).
SESSION_KEY = "crowd_study"


def participation(request: HttpRequest) -> dict:
    """`leave_study_url` while the session's user takes part in a crowd study, so that the
    page header offers to leave it: participants may withdraw at any time."""
    session = getattr(request, "session", None)
    study_id = session.get(SESSION_KEY) if session is not None else None
    if study_id is None:
        return {}
    return {"leave_study_url": reverse("crowd_withdraw", args=[study_id])}
