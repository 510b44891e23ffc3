"""The batch setting of the break reminder: its bounds on the form and in the database, and
the judging page that carries it only when it is on."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from evaluation.models import MAX_BREAK_REMINDER_MINUTES, Assignment, Batch
from research.forms import BatchSettingsForm
from tests.research.conftest import settings_form

pytestmark = pytest.mark.usefixtures("no_broker")


def post(client, batch, **fields):
    return client.post(reverse("batch_manage", args=[batch.pk]), settings_form(batch, **fields))


@pytest.mark.django_db
class TestBreakReminderSetting:
    @pytest.mark.parametrize("minutes", [0, 1, 45, MAX_BREAK_REMINDER_MINUTES])
    def test_it_saves_minutes_within_the_bounds(self, admin_client, batch, minutes):
        response = post(admin_client, batch, break_reminder_minutes=minutes)
        assert response.status_code == 302
        batch.refresh_from_db()
        assert batch.break_reminder_minutes == minutes

    def test_an_empty_field_means_off(self, admin_client, batch):
        Batch.objects.filter(pk=batch.pk).update(break_reminder_minutes=30)
        response = post(admin_client, batch, break_reminder_minutes="")
        assert response.status_code == 302
        batch.refresh_from_db()
        assert batch.break_reminder_minutes == 0

    @pytest.mark.parametrize(
        ("raw", "message"),
        [
            (-1, "greater than or equal to 0"),
            (MAX_BREAK_REMINDER_MINUTES + 1, f"less than or equal to {MAX_BREAK_REMINDER_MINUTES}"),
            ("ten", "Enter a whole number."),
            ("2.5", "Enter a whole number."),
        ],
    )
    def test_it_refuses_bad_minutes_beside_the_field_and_keeps_the_old(self, batch, raw, message):
        Batch.objects.filter(pk=batch.pk).update(break_reminder_minutes=30)
        batch.refresh_from_db()
        form = BatchSettingsForm(settings_form(batch, break_reminder_minutes=raw), instance=batch)
        assert not form.is_valid()
        assert message in " ".join(form.errors["break_reminder_minutes"])
        assert list(form.errors) == ["break_reminder_minutes"]
        assert Batch.objects.get(pk=batch.pk).break_reminder_minutes == 30

    def test_the_manage_page_shows_the_error_and_saves_nothing(self, admin_client, batch):
        response = post(admin_client, batch, break_reminder_minutes=481, lease_minutes=45)
        assert response.status_code == 422
        assert b"less than or equal to 480" in response.content
        batch.refresh_from_db()
        assert (batch.break_reminder_minutes, batch.lease_minutes) == (0, 30)

    @pytest.mark.parametrize("minutes", [-1, MAX_BREAK_REMINDER_MINUTES + 1])
    def test_the_database_refuses_minutes_out_of_bounds(self, batch, minutes):
        with pytest.raises(IntegrityError), transaction.atomic():
            Batch.objects.filter(pk=batch.pk).update(break_reminder_minutes=minutes)


@pytest.mark.django_db
class TestBreakReminderOnTheJudgingPage:
    def judging_page(self, client, batch, annotator):
        Batch.objects.filter(pk=batch.pk).update(status=Batch.Status.OPEN)
        batch.annotators.add(annotator)
        client.force_login(annotator)
        response = client.get(reverse("annotate", args=[batch.pk]) + "?start", follow=True)
        assert Assignment.objects.filter(annotator=annotator).count() == 1
        return response.content.decode()

    def test_it_is_absent_when_off(self, client, batch, annotator):
        page = self.judging_page(client, batch, annotator)
        assert "break-reminder" not in page and "breaks.js" not in page

    def test_it_carries_the_minutes_when_on(self, client, batch, annotator):
        Batch.objects.filter(pk=batch.pk).update(break_reminder_minutes=50)
        page = self.judging_page(client, batch, annotator)
        assert 'data-minutes="50"' in page and "evaluation/breaks.js" in page
        assert 'id="break-reminder" class="break-reminder" role="status"' in page
        assert "judging for 50 minutes without a pause" in page
        # Hidden until due: the script shows it, the page never opens with it.
        assert '<div id="break-due" class="break-box" hidden>' in page
