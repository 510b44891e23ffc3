"""What the research tests share: an admin's client, no broker, the batch settings form."""

from __future__ import annotations

import pytest

from scoring.tasks import score_rouge


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def no_broker(monkeypatch):
    """Imports enqueue scoring after commit; these tests need no worker."""
    monkeypatch.setattr(score_rouge, "delay", lambda *a: None)


def settings_form(batch, **overrides) -> dict:
    """The batch page's settings form as posted, keeping what the batch has, with overrides."""
    data = {
        "public_title": "",
        "annotators_per_item": batch.annotators_per_item,
        "lease_minutes": batch.lease_minutes,
        "undo_minutes": batch.undo_minutes,
        "break_reminder_minutes": batch.break_reminder_minutes,
        "guidelines": "",
        "check_every": 0,
        "check_min_gap": batch.check_min_gap,
        "check_threshold": 0.7,
        "checks_before_flag": batch.checks_before_flag,
        "aid_paragraph_numbers": batch.aid_paragraph_numbers,
        "aid_highlights": batch.aid_highlights,
        "aid_word_diff": batch.aid_word_diff,
    }
    return {**data, **overrides}
