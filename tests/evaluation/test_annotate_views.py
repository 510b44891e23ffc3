"""The annotator's pages: access, blindness, plain-form and htmx flows."""

from __future__ import annotations

import re
import time

import pytest
from django.urls import reverse

from evaluation.models import Assignment, Batch, Judgment
from tests.conftest import make_user

ANSWERS = {"factual": "right", "informative": "equal", "grammatical": "left"}


def unmarked(page: str) -> str:
    """The page without the reading aids' marks and paragraph numbers (tests/evaluation/
    test_aids_views.py checks those)."""
    page = re.sub(r'<span class="para-no" aria-hidden="true">\d+</span> ', "", page)
    return re.sub(r"</?mark[^>]*>", "", page)


@pytest.fixture
def open_batch(batch, annotator):
    batch.status = Batch.Status.OPEN
    batch.guidelines = "Judge factual consistency first. Example: ..."
    batch.save()
    batch.annotators.add(annotator)
    return batch


@pytest.fixture
def judging(client, annotator, open_batch):
    client.force_login(annotator)
    response = client.get(reverse("annotate", args=[open_batch.pk]) + "?start")
    return Assignment.objects.get(pk=int(response.url.rstrip("/").split("/")[-1]))


@pytest.mark.django_db
class TestAnnotate:
    def test_it_shows_the_guidelines_on_first_visit(self, client, annotator, open_batch):
        client.force_login(annotator)
        response = client.get(reverse("annotate", args=[open_batch.pk]))
        assert response.status_code == 200
        assert b"Judge factual consistency first" in response.content
        assert not Assignment.objects.exists()

    def test_it_leases_and_redirects_to_the_comparison(self, client, judging):
        assert judging.status == "leased"

    def test_it_keeps_the_same_comparison_on_reload(self, client, judging, open_batch):
        response = client.get(reverse("annotate", args=[open_batch.pk]))
        assert response.url == reverse("assignment", args=[judging.pk])

    def test_it_hides_batches_the_annotator_is_not_on(self, client, open_batch):
        client.force_login(make_user("outsider", "annotator"))
        assert client.get(reverse("annotate", args=[open_batch.pk])).status_code == 404

    def test_it_refuses_other_roles(self, client, researcher, open_batch):
        client.force_login(researcher)
        assert client.get(reverse("annotate", args=[open_batch.pk])).status_code == 403

    def test_it_sends_anonymous_users_to_login(self, client, open_batch):
        response = client.get(reverse("annotate", args=[open_batch.pk]))
        assert response.status_code == 302 and response.url.startswith(reverse("login"))

    def test_it_refuses_post(self, client, annotator, open_batch):
        client.force_login(annotator)
        assert client.post(reverse("annotate", args=[open_batch.pk])).status_code == 405

    def test_it_says_when_a_batch_is_paused(self, client, judging, open_batch):
        Assignment.objects.all().delete()
        open_batch.status = "paused"
        open_batch.save()
        response = client.get(reverse("annotate", args=[open_batch.pk]) + "?start")
        assert b"paused" in response.content


@pytest.mark.django_db
class TestComparisonPage:
    def test_it_shows_the_source_and_both_summaries_with_keys(self, client, judging):
        response = client.get(reverse("assignment", args=[judging.pk]))
        content = unmarked(response.content.decode())
        assert judging.comparison.document.source in content
        assert "The mayor of Town1 closed a bridge." in content or "closed a bridge" in content
        assert content.count('type="radio"') == 9
        for key in "QWEASDZXC":
            assert re.search(f"<kbd[^>]*>{key}</kbd>", content)

    def test_it_defines_each_criterion_and_sends_the_keyboard_map_as_data(self, client, judging):
        import json
        import re

        from evaluation.criteria import CRITERIA, keyboard_map

        content = client.get(reverse("assignment", args=[judging.pk])).content.decode()
        for c in CRITERIA:
            assert c.definition.replace("'", "&#x27;") in content
        data = re.search(
            r'<script id="judging-keys" type="application/json">(.*?)</script>', content
        )
        assert data and json.loads(data.group(1)) == {k: list(v) for k, v in keyboard_map().items()}

    def test_it_puts_the_summaries_in_the_stored_order(self, client, judging):
        c = judging.comparison
        for left_system in ("A", "B"):
            Assignment.objects.filter(pk=judging.pk).update(left_system=left_system)
            content = client.get(reverse("assignment", args=[judging.pk])).content.decode()
            content = unmarked(content)
            a_at = content.index(c.summary_a.text)
            b_at = content.index(c.summary_b.text)
            assert (a_at < b_at) == (left_system == "A")

    def test_it_is_404_for_someone_elses_comparison(self, client, judging):
        client.force_login(make_user("other", "annotator"))
        assert client.get(reverse("assignment", args=[judging.pk])).status_code == 404


@pytest.mark.django_db
class TestSubmit:
    def test_a_plain_form_post_stores_and_redirects(self, client, judging, open_batch):
        response = client.post(reverse("submit", args=[judging.pk]), ANSWERS)
        assert response.status_code == 302
        assert response.url == reverse("annotate", args=[open_batch.pk])
        assert Judgment.objects.filter(assignment=judging).count() == 3

    def test_it_caps_active_seconds_at_the_wall_time_since_serving(self, client, judging):
        time.sleep(0.03)
        started = time.monotonic()
        client.post(reverse("submit", args=[judging.pk]), {**ANSWERS, "active_seconds": 604000})
        judging.refresh_from_db()
        wall = (judging.submitted_at - judging.served_at).total_seconds()
        assert judging.active_seconds == pytest.approx(wall)
        assert 0.03 <= judging.active_seconds < 0.03 + 5 + (time.monotonic() - started)

    def test_htmx_swaps_in_the_next_comparison(self, client, judging):
        response = client.post(
            reverse("submit", args=[judging.pk]), ANSWERS, HTTP_HX_REQUEST="true"
        )
        assert response.status_code == 200
        following = Assignment.objects.exclude(pk=judging.pk).get()
        assert response["HX-Push-Url"] == reverse("assignment", args=[following.pk])
        assert b'id="work"' in response.content and b"<html" not in response.content

    def test_htmx_submit_stays_within_its_query_budget(
        self, client, judging, django_assert_max_num_queries
    ):
        """The judging hot path (bench/load.py): session, user, role, one transaction that
        stores the set and leases the next comparison, then the next page. A query more a
        submission is a regression at a hundred submissions a second. 17 since the lease
        reads what the annotator was served (one aggregate) to balance their screen sides."""
        with django_assert_max_num_queries(17):
            response = client.post(
                reverse("submit", args=[judging.pk]), ANSWERS, HTTP_HX_REQUEST="true"
            )
        assert response.status_code == 200 and Judgment.objects.count() == 3

    @pytest.mark.parametrize("check_available", [False, True])
    def test_a_check_slot_costs_one_query_more_than_a_real_item(
        self, client, judging, monkeypatch, django_assert_max_num_queries, check_available
    ):
        """A check slot is decided without a query; on a slot the eligible checks' ids are one
        query more (18), whether a check is served or, none being available, a real item."""
        from evaluation import checks
        from tests.conftest import approved_pool_checks

        if check_available:
            approved_pool_checks(judging.comparison.batch, 1)
        monkeypatch.setattr(checks, "check_due", lambda batch, user_id, n: True)
        with django_assert_max_num_queries(18):
            response = client.post(
                reverse("submit", args=[judging.pk]), ANSWERS, HTTP_HX_REQUEST="true"
            )
        assert response.status_code == 200
        served = Assignment.objects.exclude(pk=judging.pk).get()
        assert served.comparison.is_check == check_available

    def test_a_paused_batch_keeps_the_htmx_submission_and_says_so(
        self, client, judging, open_batch
    ):
        Batch.objects.filter(pk=open_batch.pk).update(status=Batch.Status.PAUSED)
        response = client.post(
            reverse("submit", args=[judging.pk]), ANSWERS, HTTP_HX_REQUEST="true"
        )
        assert response.status_code == 200 and b"paused" in response.content
        assert Judgment.objects.filter(assignment=judging).count() == 3
        assert Assignment.objects.count() == 1

    def test_it_is_404_to_submit_someone_elses_comparison(self, client, judging):
        client.force_login(make_user("mallory", "annotator"))
        response = client.post(reverse("submit", args=[judging.pk]), ANSWERS)
        assert response.status_code == 404
        assert not Judgment.objects.exists()

    def test_a_late_submission_whose_place_was_taken_links_to_the_next_comparison(
        self, client, judging
    ):
        from evaluation.models import Comparison

        Assignment.objects.filter(pk=judging.pk).update(status="expired")
        Comparison.objects.filter(pk=judging.comparison_id).update(
            annotations_in_progress=0, annotations_done=3
        )  # given back, then filled by others
        response = client.post(
            reverse("submit", args=[judging.pk]), ANSWERS, HTTP_HX_REQUEST="true"
        )
        assert response.status_code == 409 and not Judgment.objects.exists()
        content = response.content.decode()
        assert "another annotator took its place" in content
        link = reverse("annotate", args=[judging.comparison.batch_id]) + "?start"
        assert f'href="{link}">Go to your next comparison</a>' in content
        assert client.get(link).status_code == 302  # and it leads somewhere

    def test_a_double_submission_stores_one_set(self, client, judging):
        for _ in range(2):
            client.post(reverse("submit", args=[judging.pk]), ANSWERS)
        assert Judgment.objects.count() == 3

    def test_it_refuses_a_missing_criterion_and_keeps_the_answers(self, client, judging):
        partial = {"factual": "right", "informative": "equal"}
        response = client.post(reverse("submit", args=[judging.pk]), partial)
        assert response.status_code == 422
        assert b"Please answer every criterion" in response.content
        assert re.search(rb'value="right" required[^>]*checked', response.content)
        assert not Judgment.objects.exists()

    def test_going_back_to_a_submitted_comparison_never_resubmits(self, client, judging):
        client.post(reverse("submit", args=[judging.pk]), ANSWERS)
        response = client.get(reverse("assignment", args=[judging.pk]))
        assert response.status_code == 200
        content = response.content.decode()
        assert "This comparison was submitted" in content and 'id="judge-form"' not in content
        link = reverse("annotate", args=[judging.comparison.batch_id]) + "?start"
        assert f'href="{link}"' in content
        assert Judgment.objects.count() == 3

    def test_it_refuses_get(self, client, judging):
        assert client.get(reverse("submit", args=[judging.pk])).status_code == 405

    def test_it_shows_the_finished_page_at_the_end(self, client, judging, open_batch):
        item = judging
        for _ in range(4):
            response = client.post(
                reverse("submit", args=[item.pk]), ANSWERS, HTTP_HX_REQUEST="true"
            )
            nxt = Assignment.objects.filter(status="leased").first()
            if nxt is None:
                break
            item = nxt
        assert b"All done" in response.content
        assert Assignment.objects.filter(status="submitted").count() == 4


@pytest.mark.django_db
class TestSkipView:
    def test_it_skips_with_a_reason(self, client, judging):
        response = client.post(
            reverse("skip", args=[judging.pk]), {"reason": "unreadable", "kind": "skip"}
        )
        assert response.status_code == 302
        judging.refresh_from_db()
        assert (judging.status, judging.skip_reason) == ("skipped", "unreadable")

    def test_it_reports_a_problem(self, client, judging):
        client.post(reverse("skip", args=[judging.pk]), {"reason": "source cut", "kind": "problem"})
        judging.refresh_from_db()
        assert judging.problem_report == "source cut"

    def test_it_refuses_an_empty_reason(self, client, judging):
        response = client.post(reverse("skip", args=[judging.pk]), {"reason": ""})
        assert response.status_code == 422
        assert b"Please give a reason" in response.content
        assert re.search(rb'<details class="skip" id="skip-panel" open', response.content)
        judging.refresh_from_db()
        assert judging.status == "leased"

    def test_htmx_gets_only_the_panel_back_with_the_reason_beside_the_field(self, client, judging):
        response = client.post(
            reverse("skip", args=[judging.pk]),
            {"reason": "   ", "kind": "problem"},
            HTTP_HX_REQUEST="true",
        )
        assert response.status_code == 422
        assert (response["HX-Retarget"], response["HX-Reswap"]) == ("#skip-panel", "outerHTML")
        content = response.content.decode()
        assert content.lstrip().startswith('<details class="skip" id="skip-panel" open')
        assert 'id="skip-error" role="alert">Please describe the problem.</p>' in content
        assert 'aria-describedby="skip-error"' in content and 'id="judge-form"' not in content
        judging.refresh_from_db()
        assert judging.status == "leased" and judging.problem_report == ""

    def test_the_reason_is_required_in_the_form(self, client, judging):
        content = client.get(reverse("assignment", args=[judging.pk])).content.decode()
        assert re.search(r'<textarea id="skip-reason" name="reason"[^>]* required', content)

    def test_it_is_404_to_skip_someone_elses_comparison_even_without_a_reason(
        self, client, judging
    ):
        client.force_login(make_user("mallory", "annotator"))
        response = client.post(reverse("skip", args=[judging.pk]), {"reason": ""})
        assert response.status_code == 404


@pytest.mark.django_db
class TestBlindness:
    """Walk every page an annotator reaches; no system name may appear anywhere in it."""

    def assert_blind(self, response, names=("MLE", "QUALS", "OTHER")):
        text = response.content.decode() + " ".join(f"{k}: {v}" for k, v in response.items())
        for name in names:
            assert name not in text, f"{name!r} leaked in {response.request['PATH_INFO']}"

    def test_no_page_names_a_system(self, client, annotator, open_batch):
        open_batch.name = "MLE vs QUALS pilot"
        open_batch.save()
        client.force_login(annotator)
        self.assert_blind(client.get(reverse("home")))
        self.assert_blind(client.get(reverse("guidelines", args=[open_batch.pk])))
        self.assert_blind(client.get(reverse("annotate", args=[open_batch.pk])))
        response = client.get(reverse("annotate", args=[open_batch.pk]) + "?start")
        self.assert_blind(response)
        item = Assignment.objects.get()
        self.assert_blind(client.get(reverse("assignment", args=[item.pk])))
        self.assert_blind(client.post(reverse("submit", args=[item.pk]), {"factual": "left"}))
        while item is not None:
            response = client.post(
                reverse("submit", args=[item.pk]), ANSWERS, HTTP_HX_REQUEST="true"
            )
            self.assert_blind(response)
            item = Assignment.objects.filter(status="leased").first()
        self.assert_blind(client.get(reverse("annotate", args=[open_batch.pk])))
        self.assert_blind(client.get(reverse("home")))
