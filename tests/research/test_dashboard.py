"""The admins' dashboard: upload, settings, status, progress, re-scoring, accounts, checks."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from evaluation import assignments as engine
from evaluation.models import AuditEvent, Batch, Comparison
from scoring.models import ScoringJob
from tests.conftest import doc_row, jsonl, make_user
from tests.research.conftest import settings_form

ALL = {"factual": "left", "informative": "equal", "grammatical": "right"}


def upload(client, data: bytes, name="study.jsonl", **fields):
    form = {
        "name": "uploaded",
        "dataset": "XSUM",
        "system_a": "MLE",
        "system_b": "QUALS",
        "annotators_per_item": 3,
        "file": SimpleUploadedFile(name, data),
        **fields,
    }
    return client.post(reverse("batch_new"), form)


pytestmark = pytest.mark.usefixtures("no_broker")


@pytest.mark.django_db
class TestBatchUpload:
    def test_it_lists_every_problem_with_its_line_and_writes_nothing(self, admin_client):
        data = jsonl([doc_row(1)]) + b"\n{broken\n" + jsonl([doc_row(1)])
        response = upload(admin_client, data)
        assert response.status_code == 422
        content = response.content.decode()
        assert "nothing was written" in content
        assert "line 2: not valid JSON" in content
        assert not Batch.objects.exists()

    def test_it_imports_a_good_file_and_logs_it(self, admin_client, admin_user):
        response = upload(admin_client, jsonl([doc_row(1), doc_row(2)]))
        batch = Batch.objects.get(name="uploaded")
        assert response.url == reverse("batch_manage", args=[batch.pk])
        assert batch.comparisons.count() == 2 and batch.created_by == admin_user
        event = AuditEvent.objects.get(action="import")
        assert (event.actor, event.batch, event.details["documents"]) == (admin_user, batch, 2)

    def test_it_refuses_an_oversized_upload_before_reading_it(self, admin_client, settings):
        settings.IMPORT_MAX_BYTES = 10
        response = upload(admin_client, b"x" * 200_000)
        assert response.status_code == 413
        assert not Batch.objects.exists()

    def test_it_imports_the_real_frank_file(self, admin_client, frank_file):
        response = upload(
            admin_client,
            frank_file.read_bytes(),
            name=frank_file.name,
            system_a="pgn",
            system_b="bart",
            frank_dataset="cnndm",
        )
        assert response.status_code == 302
        assert Batch.objects.get().comparisons.count() == 250


@pytest.mark.django_db
class TestBatchManage:
    def test_it_changes_k_on_every_comparison(self, admin_client, batch):
        response = admin_client.post(
            reverse("batch_manage", args=[batch.pk]),
            settings_form(batch, annotators_per_item=5),
        )
        assert response.status_code == 302
        assert set(batch.comparisons.values_list("annotations_needed", flat=True)) == {5}
        assert AuditEvent.objects.filter(action="batch_change").exists()

    def test_it_sets_the_undo_window_within_its_range(self, admin_client, batch):
        url = reverse("batch_manage", args=[batch.pk])
        assert admin_client.post(url, settings_form(batch, undo_minutes=0)).status_code == 302
        assert Batch.objects.get(pk=batch.pk).undo_minutes == 0
        response = admin_client.post(url, settings_form(batch, undo_minutes=61))
        assert response.status_code == 422
        assert Batch.objects.get(pk=batch.pk).undo_minutes == 0

    def test_it_refuses_k_below_what_is_taken(self, admin_client, batch):
        Comparison.objects.filter(pk=batch.comparisons.first().pk).update(annotations_done=2)
        response = admin_client.post(
            reverse("batch_manage", args=[batch.pk]),
            settings_form(batch, annotators_per_item=1),
        )
        assert response.status_code == 422
        assert b"cannot go below" in response.content
        assert set(batch.comparisons.values_list("annotations_needed", flat=True)) == {3}

    def test_it_refuses_a_public_title_naming_a_system(self, admin_client, batch):
        response = admin_client.post(
            reverse("batch_manage", args=[batch.pk]),
            settings_form(batch, public_title="QUALS test"),
        )
        assert response.status_code == 422
        batch.refresh_from_db()
        assert batch.public_title == ""

    def test_it_refuses_a_title_that_spells_a_system_differently(self, admin_client, batch):
        for title in ("q.u.a.l.s test", "Ml-E pilot"):
            response = admin_client.post(
                reverse("batch_manage", args=[batch.pk]),
                settings_form(batch, public_title=title),
            )
            assert response.status_code == 422 and b"must not name a system" in response.content
        batch.refresh_from_db()
        assert batch.public_title == ""

    def test_it_refuses_guidelines_naming_a_system(self, admin_client, batch):
        response = admin_client.post(
            reverse("batch_manage", args=[batch.pk]),
            settings_form(batch, guidelines="One of them is QUALS."),
        )
        assert response.status_code == 422
        batch.refresh_from_db()
        assert batch.guidelines == ""

    @pytest.mark.parametrize("minutes", [0, 1441])
    def test_it_refuses_a_lease_outside_one_minute_to_a_day(self, admin_client, batch, minutes):
        response = admin_client.post(
            reverse("batch_manage", args=[batch.pk]),
            settings_form(batch, lease_minutes=minutes),
        )
        assert response.status_code == 422
        batch.refresh_from_db()
        assert batch.lease_minutes == 30

    def test_removing_an_annotator_gives_their_leases_back(self, admin_client, batch):
        alice, bob = make_user("alice", "annotator"), make_user("bob", "annotator")
        Batch.objects.filter(pk=batch.pk).update(status=Batch.Status.OPEN)
        batch.refresh_from_db()
        batch.annotators.add(alice, bob)
        held, kept = engine.lease_next(alice, batch), engine.lease_next(bob, batch)
        response = admin_client.post(
            reverse("batch_manage", args=[batch.pk]),
            settings_form(batch, annotators=[bob.pk]),
        )
        assert response.status_code == 302
        held.refresh_from_db(), kept.refresh_from_db()
        assert (held.status, kept.status) == ("expired", "leased")
        assert Comparison.objects.get(pk=held.comparison_id).annotations_in_progress == 0
        assert Comparison.objects.get(pk=kept.comparison_id).annotations_in_progress == 1
        event = AuditEvent.objects.get(target="annotators removed")
        assert event.details == {"annotators": ["alice"], "leases_ended": 1}

    def test_an_annotator_still_allowed_by_group_keeps_the_lease(self, admin_client, batch):
        from django.contrib.auth.models import Group

        alice = make_user("alice", "annotator")
        team = Group.objects.create(name="team")
        alice.groups.add(team)
        Batch.objects.filter(pk=batch.pk).update(status=Batch.Status.OPEN)
        batch.refresh_from_db()
        batch.annotators.add(alice)
        batch.annotator_groups.add(team)
        held = engine.lease_next(alice, batch)
        admin_client.post(
            reverse("batch_manage", args=[batch.pk]),
            settings_form(batch, annotator_groups=[team.pk]),
        )
        held.refresh_from_db()
        assert held.status == "leased"
        assert not AuditEvent.objects.filter(target="annotators removed").exists()

    def test_it_opens_pauses_and_closes(self, admin_client, batch):
        for action, status in (("open", "open"), ("pause", "paused"), ("close", "closed")):
            admin_client.post(reverse("batch_status", args=[batch.pk]), {"action": action})
            batch.refresh_from_db()
            assert batch.status == status
        assert AuditEvent.objects.filter(action="batch_change", target="status").count() == 3
        assert (
            admin_client.post(reverse("batch_status", args=[batch.pk]), {"action": "x"}).status_code
            == 400
        )

    def test_it_reruns_scoring(self, admin_client, batch, settings):
        settings.QUALS_MODEL = ""
        admin_client.post(
            reverse("batch_rescore", args=[batch.pk]), {"metric": "rouge", "force": "1"}
        )
        assert ScoringJob.objects.get(batch=batch).total == 8
        response = admin_client.post(reverse("batch_rescore", args=[batch.pk]), {"metric": "quals"})
        assert response.status_code == 422 and b"not configured" in response.content

    def test_progress_moves_while_open_and_stops_polling_when_closed(
        self, admin_client, batch, annotator
    ):
        batch.status = "open"
        batch.save()
        batch.annotators.add(annotator)
        url = reverse("batch_progress", args=[batch.pk])
        before = admin_client.get(url)
        assert before.status_code == 200 and b"every 2s" in before.content
        item = engine.lease_next(annotator, batch)
        engine.submit_judgments(annotator, item.pk, ALL)
        after = admin_client.get(url).content.decode()
        assert "<td>alice</td><td>1</td>" in after
        assert "No judgments yet" in before.content.decode()
        batch.status = "closed"
        batch.save()
        assert admin_client.get(url).status_code == 286


@pytest.mark.django_db
class TestAccounts:
    def test_it_creates_accounts_shows_passwords_once_and_the_csv_once(self, admin_client, batch):
        response = admin_client.post(
            reverse("accounts"), {"usernames": "zoe\nyann\n", "batch": batch.pk}
        )
        assert response.status_code == 200
        content = response.content.decode()
        assert "shown once" in content
        csv_response = admin_client.get(reverse("accounts_csv"))
        lines = csv_response.content.decode().splitlines()
        assert lines[0] == "username,password" and len(lines) == 3
        username, password = lines[1].split(",")
        assert password in content
        assert User.objects.get(username=username).check_password(password)
        assert admin_client.get(reverse("accounts_csv")).status_code == 410
        assert set(batch.annotators.values_list("username", flat=True)) == {"zoe", "yann"}
        assert "shown once" not in admin_client.get(reverse("accounts")).content.decode()

    def test_the_page_showing_passwords_is_never_cached(self, admin_client):
        response = admin_client.post(reverse("accounts"), {"usernames": "zoe"})
        assert "shown once" in response.content.decode()
        assert response["Cache-Control"] == "no-store"

    def test_the_csv_quotes_a_username_a_spreadsheet_would_run(self, admin_client):
        admin_client.post(reverse("accounts"), {"usernames": "+zoe\n@yann"})
        lines = admin_client.get(reverse("accounts_csv")).content.decode().splitlines()
        assert sorted(line.split(",")[0] for line in lines[1:]) == ["'+zoe", "'@yann"]

    def test_passwords_never_start_like_a_formula(self, monkeypatch):
        from evaluation import services

        tokens = iter(["-looks-like-minus", "fine-password"])
        monkeypatch.setattr(services.secrets, "token_urlsafe", lambda n: next(tokens))
        assert services.generate_password() == "fine-password"

    def test_it_refuses_a_bad_username_and_creates_nobody(self, admin_client):
        response = admin_client.post(reverse("accounts"), {"usernames": "ok\nnot ok"})
        assert response.status_code == 422
        assert not User.objects.filter(username="ok").exists()

    def test_it_deactivates_an_annotator(self, admin_client, annotator):
        admin_client.post(reverse("account_active", args=[annotator.pk]), {"active": "0"})
        annotator.refresh_from_db()
        assert not annotator.is_active
        assert AuditEvent.objects.get(action="account").target == "alice deactivated"


@pytest.mark.django_db
class TestAttentionChecks:
    def test_an_admin_marks_a_comparison_as_a_check(self, admin_client, batch):
        comparison = batch.comparisons.first()
        admin_client.post(
            reverse("batch_checks", args=[batch.pk]),
            {
                "comparison": comparison.pk,
                "factual": "B",
                "informative": "",
                "grammatical": "equal",
            },
        )
        comparison.refresh_from_db()
        assert comparison.is_check
        assert comparison.expected == {"factual": "B", "grammatical": "equal"}

    def test_a_check_without_an_expected_verdict_is_refused(self, admin_client, batch):
        comparison = batch.comparisons.first()
        response = admin_client.post(
            reverse("batch_checks", args=[batch.pk]), {"comparison": comparison.pk}
        )
        assert response.status_code == 422
        comparison.refresh_from_db()
        assert not comparison.is_check
