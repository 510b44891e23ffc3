"""Undo: the annotator's last submission, changed within the batch's undo window."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from evaluation import assignments as engine
from evaluation.criteria import BY_KEY, VERDICT_CODES
from evaluation.models import Assignment, AuditEvent, Batch, Comparison, Judgment
from tests.conftest import make_user

FIRST = {"factual": "right", "informative": "equal", "grammatical": "left"}
CHANGED = {"factual": "left", "informative": "right", "grammatical": "left"}


def in_system_terms(shown: str, left_system: str) -> str:
    """Independent of the engine: which system the annotator picked, by what they clicked."""
    if shown == "equal":
        return "equal"
    on_left = shown == "left"
    return left_system if on_left else {"A": "B", "B": "A"}[left_system]


@pytest.fixture
def open_batch(batch, annotator):
    batch.status = Batch.Status.OPEN
    batch.save()
    batch.annotators.add(annotator)
    return batch


@pytest.fixture
def submitted(annotator, open_batch):
    """(the annotator's submitted assignment, the one leased next), as after a real submit."""
    first = engine.lease_next(annotator, open_batch)
    stored, held, _ = engine.submit_and_lease_next(annotator, first.pk, FIRST)
    return stored, held


def snapshot(assignment_id: int) -> tuple:
    a = Assignment.objects.get(pk=assignment_id)
    judgments = sorted(Judgment.objects.filter(assignment=a).values_list("criterion", "shown"))
    verdicts = tuple(getattr(a, c.verdict_column) for c in BY_KEY.values())
    return a.status, a.revisions, a.revised_at, verdicts, tuple(judgments)


def counts(batch) -> list[tuple]:
    return list(
        Comparison.objects.filter(batch=batch)
        .order_by("id")
        .values_list("annotations_done", "annotations_in_progress", "taken_a_left")
    )


@pytest.mark.django_db
class TestReviseJudgments:
    def test_it_changes_the_answers_in_system_terms(self, annotator, submitted):
        stored, _ = submitted
        engine.revise_judgments(annotator, stored.pk, CHANGED)
        stored.refresh_from_db()
        got = dict(stored.judgments.values_list("criterion", "verdict"))
        want = {c: in_system_terms(s, stored.left_system) for c, s in CHANGED.items()}
        assert got == want
        assert dict(stored.judgments.values_list("criterion", "shown")) == CHANGED
        for c, verdict in want.items():
            assert getattr(stored, BY_KEY[c].verdict_column) == VERDICT_CODES[verdict]
        assert stored.revisions == 1 and stored.revised_at is not None
        assert stored.judgments.count() == 3

    def test_it_counts_each_revision_and_keeps_counts_and_the_held_lease(
        self, annotator, open_batch, submitted
    ):
        stored, held = submitted
        before = counts(open_batch)
        engine.revise_judgments(annotator, stored.pk, CHANGED)
        engine.revise_judgments(annotator, stored.pk, FIRST)
        assert Assignment.objects.get(pk=stored.pk).revisions == 2
        assert counts(open_batch) == before
        live = Assignment.objects.filter(annotator=annotator, status="leased")
        assert list(live.values_list("pk", flat=True)) == [held.pk]
        assert engine.lease_next(annotator, open_batch).pk == held.pk

    def test_it_audits_old_and_new_verdicts(self, annotator, submitted):
        stored, _ = submitted
        engine.revise_judgments(annotator, stored.pk, CHANGED)
        event = AuditEvent.objects.get(action=AuditEvent.Action.REVISE)
        left = stored.left_system
        assert event.actor == annotator and event.target == f"assignment {stored.pk}"
        assert event.details == {
            "old": {c: in_system_terms(s, left) for c, s in FIRST.items()},
            "new": {c: in_system_terms(s, left) for c, s in CHANGED.items()},
        }

    def test_it_allows_the_last_moment_of_the_window_and_refuses_after(
        self, annotator, open_batch, submitted
    ):
        stored, _ = submitted
        end = stored.submitted_at + timedelta(minutes=open_batch.undo_minutes)
        before = snapshot(stored.pk)
        with pytest.raises(engine.SubmissionRefused, match="run out"):
            engine.revise_judgments(annotator, stored.pk, CHANGED, now=end + timedelta(seconds=1))
        assert snapshot(stored.pk) == before
        assert not AuditEvent.objects.filter(action="revise").exists()
        engine.revise_judgments(annotator, stored.pk, CHANGED, now=end)
        assert Assignment.objects.get(pk=stored.pk).revisions == 1

    def test_it_refuses_a_batch_without_undo(self, annotator, open_batch, submitted):
        stored, _ = submitted
        Batch.objects.filter(pk=open_batch.pk).update(undo_minutes=0)
        with pytest.raises(engine.SubmissionRefused, match="cannot be changed"):
            engine.revise_judgments(annotator, stored.pk, CHANGED)
        assert Assignment.objects.get(pk=stored.pk).revisions == 0

    def test_it_refuses_all_but_the_latest_submission(self, annotator, open_batch, submitted):
        stored, held = submitted
        engine.submit_and_lease_next(annotator, held.pk, FIRST)
        before = snapshot(stored.pk)
        with pytest.raises(engine.SubmissionRefused, match="most recent"):
            engine.revise_judgments(annotator, stored.pk, CHANGED)
        assert snapshot(stored.pk) == before
        engine.revise_judgments(annotator, held.pk, CHANGED)  # the latest may be changed

    def test_it_refuses_another_annotators_submission(self, open_batch, submitted):
        stored, _ = submitted
        mallory = make_user("mallory", "annotator")
        open_batch.annotators.add(mallory)
        before = snapshot(stored.pk)
        with pytest.raises(engine.SubmissionRefused, match="not assigned to you"):
            engine.revise_judgments(mallory, stored.pk, CHANGED)
        assert snapshot(stored.pk) == before

    def test_it_refuses_a_leased_comparison_and_a_partial_set(self, annotator, submitted):
        stored, held = submitted
        with pytest.raises(engine.SubmissionRefused, match="not submitted"):
            engine.revise_judgments(annotator, held.pk, CHANGED)
        before = snapshot(stored.pk)
        with pytest.raises(engine.IncompleteSubmission):
            engine.revise_judgments(annotator, stored.pk, {"factual": "left"})
        assert snapshot(stored.pk) == before

    def test_it_refuses_a_closed_batch(self, annotator, open_batch, submitted):
        stored, _ = submitted
        Batch.objects.filter(pk=open_batch.pk).update(status=Batch.Status.CLOSED)
        with pytest.raises(engine.SubmissionRefused, match="closed"):
            engine.revise_judgments(annotator, stored.pk, CHANGED)

    def test_it_revises_a_check_as_any_comparison(self, annotator, open_batch, monkeypatch):
        from evaluation import checks
        from tests.conftest import approved_pool_checks

        approved_pool_checks(open_batch, 1)
        monkeypatch.setattr(checks, "check_due", lambda batch, user_id, n: True)
        check = engine.lease_next(annotator, open_batch)
        assert check.comparison.is_check
        engine.submit_judgments(annotator, check.pk, FIRST)
        engine.revise_judgments(annotator, check.pk, CHANGED)
        check.refresh_from_db()
        assert check.revisions == 1
        assert dict(check.judgments.values_list("criterion", "shown")) == CHANGED

    @pytest.mark.parametrize(
        "fields",
        [
            {"revisions": 1},  # counted without a time
            {"revised_at": "now"},  # a time without a count
            {"revisions": 1, "revised_at": "now", "status": "leased"},  # not submitted
        ],
    )
    def test_the_database_refuses_an_inconsistent_revision(self, submitted, fields):
        stored, _ = submitted
        values = {k: timezone.now() if v == "now" else v for k, v in fields.items()}
        with pytest.raises(IntegrityError), transaction.atomic():
            Assignment.objects.filter(pk=stored.pk).update(**values)


@pytest.mark.django_db
class TestReviseView:
    @pytest.fixture
    def judging(self, client, annotator, submitted):
        client.force_login(annotator)
        return submitted

    def test_it_refuses_other_methods(self, client, judging):
        stored, _ = judging
        assert client.put(reverse("revise", args=[stored.pk])).status_code == 405

    def test_it_refuses_other_roles(self, client, researcher, judging):
        stored, _ = judging
        client.force_login(researcher)
        assert client.get(reverse("revise", args=[stored.pk])).status_code == 403

    def test_it_is_404_for_someone_elses_submission(self, client, open_batch, judging):
        stored, _ = judging
        client.force_login(make_user("mallory", "annotator"))
        response = client.post(reverse("revise", args=[stored.pk]), CHANGED)
        assert response.status_code == 404
        assert Assignment.objects.get(pk=stored.pk).revisions == 0

    def test_it_reopens_with_the_same_sides_and_the_stored_answers(self, client, judging):
        stored, _ = judging
        response = client.get(reverse("revise", args=[stored.pk]), HTTP_HX_REQUEST="true")
        assert response.status_code == 200
        content = response.content.decode()
        assert "You are changing answers you already submitted" in content
        assert "current comparison is kept" in content
        comparison = stored.comparison
        left = comparison.summary_a if stored.left_system == "A" else comparison.summary_b
        left_html = re.search(r'id="left-summary">(.*?)</div>', content, re.S).group(1)
        assert left.text.split("\n")[0] in re.sub(r"</?mark[^>]*>", "", left_html)
        for criterion, shown in FIRST.items():
            pattern = rf'name="{criterion}" value="{shown}" required[^>]*checked'
            assert re.search(pattern, content), criterion
        assert content.count("checked") == 3
        assert f'hx-post="{reverse("revise", args=[stored.pk])}"' in content
        assert 'id="skip-panel"' not in content
        assert "no-store" in response["Cache-Control"]

    def test_saving_returns_to_the_held_comparison(self, client, open_batch, judging):
        stored, held = judging
        before = counts(open_batch)
        response = client.post(reverse("revise", args=[stored.pk]), CHANGED, HTTP_HX_REQUEST="true")
        assert response.status_code == 200
        assert response["HX-Push-Url"] == reverse("assignment", args=[held.pk])
        assert f'data-assignment="{held.pk}"' in response.content.decode()
        assert (
            dict(Judgment.objects.filter(assignment=stored).values_list("criterion", "shown"))
            == CHANGED
        )
        assert counts(open_batch) == before
        assert Assignment.objects.filter(status="leased").count() == 1

    def test_a_plain_form_post_saves_and_redirects(self, client, open_batch, judging):
        stored, held = judging
        response = client.post(reverse("revise", args=[stored.pk]), CHANGED)
        assert response.status_code == 302
        assert response.url == reverse("annotate", args=[open_batch.pk])
        assert Assignment.objects.get(pk=stored.pk).revisions == 1

    def test_a_late_change_is_refused_in_place_and_changes_nothing(
        self, client, open_batch, judging
    ):
        stored, _ = judging
        Assignment.objects.filter(pk=stored.pk).update(
            submitted_at=timezone.now() - timedelta(minutes=open_batch.undo_minutes, seconds=1)
        )
        before = snapshot(stored.pk)
        response = client.post(reverse("revise", args=[stored.pk]), CHANGED, HTTP_HX_REQUEST="true")
        assert response.status_code == 422
        assert response["HX-Retarget"] == "#form-error"
        content = response.content.decode()
        assert "run out" in content and "Go to your current comparison" in content
        assert snapshot(stored.pk) == before
        assert not AuditEvent.objects.filter(action="revise").exists()

    def test_reopening_an_older_submission_is_refused(self, client, annotator, judging):
        stored, held = judging
        engine.submit_and_lease_next(annotator, held.pk, FIRST)
        response = client.get(reverse("revise", args=[stored.pk]), HTTP_HX_REQUEST="true")
        assert response.status_code == 422 and b"most recent" in response.content
        plain = client.get(reverse("revise", args=[stored.pk]))
        assert plain.status_code == 422 and b"This comparison was submitted" in plain.content

    def test_an_incomplete_change_keeps_the_form(self, client, judging):
        stored, _ = judging
        response = client.post(
            reverse("revise", args=[stored.pk]), {"factual": "left"}, HTTP_HX_REQUEST="true"
        )
        assert response.status_code == 422 and b"Please answer every criterion" in response.content
        assert Assignment.objects.get(pk=stored.pk).revisions == 0


@pytest.mark.django_db
class TestUndoControl:
    @pytest.fixture
    def judging(self, client, annotator, open_batch):
        client.force_login(annotator)
        return engine.lease_next(annotator, open_batch)

    def test_the_next_comparison_offers_undo_after_a_submit(self, client, judging):
        response = client.post(reverse("submit", args=[judging.pk]), FIRST, HTTP_HX_REQUEST="true")
        content = response.content.decode()
        assert f'href="{reverse("revise", args=[judging.pk])}"' in content
        assert "Undo last <kbd>U</kbd>" in content
        seconds = int(re.search(r'id="undo" data-seconds="(\d+)"', content).group(1))
        assert 0 < seconds <= judging.comparison.batch.undo_minutes * 60
        assert "no-store" in response["Cache-Control"]

    def test_no_undo_when_the_batch_has_none(self, client, open_batch, judging):
        Batch.objects.filter(pk=open_batch.pk).update(undo_minutes=0)
        response = client.post(reverse("submit", args=[judging.pk]), FIRST, HTTP_HX_REQUEST="true")
        assert b'id="undo"' not in response.content

    def test_a_page_load_offers_undo_only_within_the_window(self, client, open_batch, judging):
        client.post(reverse("submit", args=[judging.pk]), FIRST)
        client.get(reverse("annotate", args=[open_batch.pk]))  # leases the next one
        held = Assignment.objects.get(status="leased")
        page = client.get(reverse("assignment", args=[held.pk]))
        assert b'id="undo-button"' in page.content
        assert "no-store" in page["Cache-Control"]
        Assignment.objects.filter(pk=judging.pk).update(
            submitted_at=timezone.now() - timedelta(minutes=open_batch.undo_minutes, seconds=1)
        )
        assert b'id="undo-button"' not in client.get(reverse("assignment", args=[held.pk])).content

    def test_back_to_the_submitted_comparison_offers_undo_and_the_current_one(
        self, client, judging
    ):
        client.post(reverse("submit", args=[judging.pk]), FIRST)
        response = client.get(reverse("assignment", args=[judging.pk]))
        content = response.content.decode()
        assert "This comparison was submitted" in content
        assert f'href="{reverse("revise", args=[judging.pk])}"' in content
        assert "Go to your current comparison" in content

    def test_a_stale_resubmission_links_to_the_next_comparison(self, client, judging):
        client.post(reverse("submit", args=[judging.pk]), FIRST)
        response = client.post(
            reverse("submit", args=[judging.pk]), CHANGED, HTTP_HX_REQUEST="true"
        )
        assert response.status_code == 409
        assert b'id="next-comparison"' in response.content

    def test_the_finished_page_offers_undo_of_the_last_comparison(
        self, client, annotator, open_batch, judging
    ):
        Comparison.objects.filter(batch=open_batch).exclude(pk=judging.comparison_id).delete()
        response = client.post(reverse("submit", args=[judging.pk]), FIRST, HTTP_HX_REQUEST="true")
        assert b"All done" in response.content
        assert f'href="{reverse("revise", args=[judging.pk])}"'.encode() in response.content
        saved = client.post(reverse("revise", args=[judging.pk]), CHANGED, HTTP_HX_REQUEST="true")
        assert saved.status_code == 200 and b"All done" in saved.content
        assert Assignment.objects.get(pk=judging.pk).revisions == 1


def wait_for_a_lock_wait(done, seconds: float = 10) -> bool:
    """True once some other backend is waiting on a row lock, False if `done` came first."""
    import time

    from django.db import connections

    deadline = time.monotonic() + seconds
    with connections["default"].cursor() as cursor:
        while time.monotonic() < deadline and not done.is_set():
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"
            )
            if cursor.fetchone()[0]:
                return True
            time.sleep(0.02)
    return False


@pytest.mark.django_db(transaction=True)
class TestRevisionRacesASubmit:
    """Two tabs: one changes the last submission while the other submits the held comparison.
    Whichever commits first wins, and the change never lands on a submission that is no longer
    the latest."""

    @pytest.fixture(autouse=True)
    def postgres_only(self):
        from django.db import connection

        if connection.vendor != "postgresql":
            pytest.skip("row locks: SQLite serialises all writers by design (BEGIN IMMEDIATE)")

    def race(self, first_holds, then):
        """Run `first_holds` in a transaction kept open in a thread, then `then` in a second
        thread; release the first once the second waits on its lock (or has finished)."""
        import threading

        from django.db import connection

        holding, release, done = (threading.Event() for _ in range(3))
        outcome = []

        def first():
            try:
                with transaction.atomic():
                    first_holds()
                    holding.set()
                    release.wait(10)
            except Exception as e:
                outcome.append(("first", repr(e)))
            finally:
                connection.close()

        def second():
            try:
                outcome.append(("second", then()))
            except Exception as e:
                outcome.append(("second", e))
            finally:
                done.set()
                connection.close()

        threads = [threading.Thread(target=first), threading.Thread(target=second)]
        threads[0].start()
        assert holding.wait(10)
        threads[1].start()
        waited = wait_for_a_lock_wait(done)
        release.set()
        for t in threads:
            t.join(20)
        return waited, outcome

    def test_a_change_waits_for_the_submit_and_is_then_refused(self, annotator, submitted):
        stored, held = submitted
        before = snapshot(stored.pk)
        waited, outcome = self.race(
            lambda: engine.submit_judgments(annotator, held.pk, FIRST),
            lambda: engine.revise_judgments(annotator, stored.pk, CHANGED),
        )
        assert waited, "the change did not wait for the open submission"
        [(who, result)] = outcome
        assert who == "second" and isinstance(result, engine.SubmissionRefused)
        assert "most recent submission" in str(result)
        assert snapshot(stored.pk) == before
        assert Assignment.objects.get(pk=held.pk).status == Assignment.Status.SUBMITTED

    def test_a_submit_waits_for_the_change_and_both_land(self, annotator, submitted):
        stored, held = submitted
        waited, outcome = self.race(
            lambda: engine.revise_judgments(annotator, stored.pk, CHANGED),
            lambda: engine.submit_judgments(annotator, held.pk, FIRST),
        )
        assert waited, "the submission did not wait for the open change"
        [(who, result)] = outcome
        assert who == "second" and result.status == Assignment.Status.SUBMITTED
        revised = Assignment.objects.get(pk=stored.pk)
        assert revised.revisions == 1
        shown = dict(Judgment.objects.filter(assignment=revised).values_list("criterion", "shown"))
        assert shown == CHANGED
        assert engine.latest_submitted(annotator, revised.comparison.batch).pk == held.pk
