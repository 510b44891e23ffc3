"""The batch page's forms refuse bad input with 422 and the reason beside the field, on the
page as it was (htmx: only the settings form is swapped), and change nothing."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.urls import reverse

from evaluation.models import Batch, Comparison
from scoring.models import ScoringJob
from tests.research.conftest import settings_form

pytestmark = pytest.mark.usefixtures("no_broker")


def control(html: str, control_id: str) -> str:
    tag = re.search(rf"<(?:input|select|textarea)[^>]*\bid=\"{control_id}\"[^>]*>", html)
    assert tag, f"no control #{control_id}"
    return tag.group(0)


def reason_beside(html: str, control_id: str) -> str:
    """The text of the message the control is described by (aria-describedby), which must be
    in the page; the control must be marked invalid."""
    tag = control(html, control_id)
    assert 'aria-invalid="true"' in tag
    described = re.search(r'aria-describedby="([^"]+)"', tag).group(1).split()
    texts = []
    for ref in described:
        found = re.search(rf'<(\w+)[^>]*\bid="{ref}"[^>]*>(.*?)</\1>', html, re.S)
        assert found, f"#{control_id} is described by #{ref}, which is not in the page"
        texts.append(unescape(re.sub(r"<[^>]+>", "", found.group(2))).strip())
    return " ".join(texts)


@pytest.mark.django_db
class TestSettingsRefused:
    def url(self, batch):
        return reverse("batch_manage", args=[batch.pk])

    def test_a_plain_post_shows_the_page_with_the_reason_beside_the_field(
        self, admin_client, batch
    ):
        data = settings_form(batch, public_title="QUALS test", lease_minutes=45)
        response = admin_client.post(self.url(batch), data)
        assert response.status_code == 422
        html = response.content.decode()
        assert '<header class="top">' in html  # the whole page, header included
        assert "must not name a system" in reason_beside(html, "id_public_title")
        batch.refresh_from_db()
        assert (batch.public_title, batch.lease_minutes) == ("", 30)

    def test_an_htmx_post_answers_the_form_alone_with_the_reason(self, admin_client, batch):
        data = settings_form(batch, break_reminder_minutes=481, lease_minutes=45)
        response = admin_client.post(self.url(batch), data, HTTP_HX_REQUEST="true")
        assert response.status_code == 422
        html = response.content.decode()
        assert html.lstrip().startswith('<form method="post"') and "<header" not in html
        assert 'id="settings-form"' in html and "The settings were not saved" in html
        reason = reason_beside(html, "id_break_reminder_minutes")
        assert "less than or equal to 480" in reason
        assert "autofocus" in control(html, "id_break_reminder_minutes")  # htmx focuses it
        assert 'value="481"' in html  # what was typed stays, to be corrected
        batch.refresh_from_db()
        assert (batch.break_reminder_minutes, batch.lease_minutes) == (0, 30)

    def test_an_htmx_post_that_is_saved_reloads_the_page(self, admin_client, batch):
        data = settings_form(batch, lease_minutes=45)
        response = admin_client.post(self.url(batch), data, HTTP_HX_REQUEST="true")
        assert response.status_code == 204
        assert response["HX-Redirect"] == self.url(batch)
        batch.refresh_from_db()
        assert batch.lease_minutes == 45


@pytest.mark.django_db
class TestCheckFormsRefused:
    def url(self, batch):
        return reverse("batch_checks", args=[batch.pk])

    def test_a_count_that_is_not_a_number_is_refused_beside_the_field(self, admin_client, batch):
        response = admin_client.post(self.url(batch), {"action": "create", "count": "some"})
        assert response.status_code == 422
        html = response.content.decode()
        assert '<header class="top">' in html
        tag = re.search(r'<input type="number" name="count"[^>]*>', html).group(0)
        assert 'aria-describedby="count-error"' in tag and 'aria-invalid="true"' in tag
        assert re.search(r'id="count-error">The number of checks must be a whole number\.<', html)
        assert not Comparison.objects.filter(batch=batch, is_check=True).exists()

    def test_an_unknown_comparison_is_refused_beside_its_id(self, admin_client, batch):
        other = Comparison.objects.exclude(batch=batch).first()
        unknown = other.pk if other else 999_999
        response = admin_client.post(self.url(batch), {"comparison": unknown, "factual": "B"})
        assert response.status_code == 422
        html = response.content.decode()
        assert "<details open><summary>Mark a comparison as a check" in html
        assert reason_beside(html, "id_comparison") == "No such comparison in this batch."
        assert not Comparison.objects.filter(is_check=True).exists()

    def test_a_check_without_a_verdict_says_why_in_the_form(self, admin_client, batch):
        comparison = batch.comparisons.first()
        response = admin_client.post(self.url(batch), {"comparison": comparison.pk})
        assert response.status_code == 422
        html = response.content.decode()
        form = html[html.index("Mark a comparison as a check") :]
        before_fields = form[: form.index('id="id_comparison"')]
        assert 'class="errorlist nonfield"' in before_fields
        assert "give the expected verdict (A, B or equal)" in before_fields
        comparison.refresh_from_db()
        assert not comparison.is_check and comparison.expected in ({}, None)


@pytest.mark.django_db
class TestRescoreRefused:
    def test_an_unconfigured_metric_is_refused_beside_the_choice(
        self, admin_client, batch, settings
    ):
        settings.QUALS_MODEL = ""
        url = reverse("batch_rescore", args=[batch.pk])
        response = admin_client.post(url, {"metric": "quals"})
        assert response.status_code == 422
        html = response.content.decode()
        assert '<header class="top">' in html
        tag = re.search(r'<select name="metric"[^>]*>', html).group(0)
        assert 'aria-describedby="rescore-error"' in tag and 'aria-invalid="true"' in tag
        assert re.search(r'id="rescore-error">[^<]*not configured', html)
        assert not ScoringJob.objects.filter(batch=batch).exists()
        assert Batch.objects.get(pk=batch.pk).status == batch.status
