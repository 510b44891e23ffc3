"""An annotator's "12 of 40", the home page's three states, and the admin's stuck list, each
checked against a count done here by walking the rows."""

from __future__ import annotations

import pytest
from django.urls import reverse

from evaluation import assignments as engine
from evaluation import checks
from evaluation.models import Assignment, Batch, Comparison
from evaluation.progress import annotator_progress, stuck_comparisons
from evaluation.services import import_batch
from tests.conftest import approved_pool_checks, doc_row, jsonl, make_user, settings_for

ANSWERS = {"factual": "right", "informative": "equal", "grammatical": "left"}


def open_batch(n: int, k: int, annotators: list) -> Batch:
    batch = import_batch(jsonl([doc_row(i) for i in range(1, n + 1)]), "p.jsonl", settings_for(k=k))
    Batch.objects.filter(pk=batch.pk).update(status=Batch.Status.OPEN)
    batch.refresh_from_db()
    batch.annotators.add(*annotators)
    return batch


def judge(user, batch, n: int) -> None:
    for _ in range(n):
        item = engine.lease_next(user, batch)
        engine.submit_judgments(user, item.pk, ANSWERS, 10.0)


def expected_available(user, batch) -> int:
    """Walking every comparison: room left and never given to this user, plus their lease."""
    count = 0
    for c in Comparison.objects.filter(batch=batch, is_check=False):
        mine = Assignment.objects.filter(comparison=c, annotator=user)
        if mine.filter(status="leased").exists() or (
            not mine.exists()
            and c.annotations_done + c.annotations_in_progress < c.annotations_needed
        ):
            count += 1
    return count


@pytest.mark.django_db
class TestAnnotatorProgress:
    def test_it_counts_done_and_still_available_to_this_annotator(self):
        ann, bob = make_user("ann", "annotator"), make_user("bob", "annotator")
        batch = open_batch(6, 1, [ann, bob])
        judge(ann, batch, 2)
        judge(bob, batch, 3)
        engine.lease_next(ann, batch)  # one on screen
        progress = annotator_progress(ann.pk, batch)
        assert progress.done == 2
        assert progress.available == expected_available(ann, batch) == 1
        assert progress.reachable == 3

    def test_the_total_never_moves_when_a_check_is_served_even_at_the_end(self, monkeypatch):
        """Slots at items 1 and 3 of two real comparisons: one check between them, and none
        after the last real item (it would be one item more than the total promised)."""
        ann = make_user("ann", "annotator")
        batch = open_batch(2, 1, [ann])
        Batch.objects.filter(pk=batch.pk).update(check_every=2, check_min_gap=1)
        batch.refresh_from_db()
        approved_pool_checks(batch, 2)
        monkeypatch.setattr(checks, "_slot_low", lambda batch, user_id, n: n in (1, 3))
        totals, kinds = [annotator_progress(ann.pk, batch).reachable], []
        while (item := engine.lease_next(ann, batch)) is not None:
            kinds.append(item.comparison.is_check)
            totals.append(annotator_progress(ann.pk, batch).reachable)  # "n of N" on screen
            engine.submit_judgments(ann, item.pk, ANSWERS, 10.0)
        totals.append(annotator_progress(ann.pk, batch).reachable)
        assert kinds == [False, True, False]
        assert totals == [3, 3, 3, 3, 3]

    def test_a_skipped_comparison_is_no_longer_available(self):
        ann = make_user("ann", "annotator")
        batch = open_batch(3, 2, [ann])
        item = engine.lease_next(ann, batch)
        engine.skip_assignment(ann, item.pk, "unreadable")
        assert annotator_progress(ann.pk, batch).available == expected_available(ann, batch) == 2

    def test_the_judging_page_says_12_of_40(self, client):
        ann = make_user("ann", "annotator")
        batch = open_batch(5, 1, [ann])
        judge(ann, batch, 2)
        item = engine.lease_next(ann, batch)
        client.force_login(ann)
        content = client.get(reverse("assignment", args=[item.pk])).content.decode()
        assert '<span class="muted" id="progress">2 of 5 done</span>' in content


@pytest.mark.django_db
class TestHomeStates:
    def state(self, client, user) -> str:
        client.force_login(user)
        content = client.get(reverse("home")).content.decode()
        return content.split('<td class="state">', 1)[1].split("</td>", 1)[0]

    def test_not_started_in_progress_finished_and_nothing_left(self, client):
        ann, bob, late = (make_user(n, "annotator") for n in ("ann", "bob", "late"))
        batch = open_batch(2, 1, [ann, bob])
        assert "Not started" in self.state(client, ann)
        judge(ann, batch, 1)
        assert "1 of 2 done" in self.state(client, ann)
        judge(bob, batch, 1)
        assert "Finished" in self.state(client, ann)
        assert "Finished" in self.state(client, bob)
        batch.annotators.add(late)  # added after the batch was full
        state = self.state(client, late)
        assert "Nothing left for you" in state and "Finished" not in state

    def test_the_finished_page_tells_an_annotator_who_did_nothing_apart(self, client):
        ann, late = make_user("ann", "annotator"), make_user("late", "annotator")
        batch = open_batch(1, 1, [ann, late])
        judge(ann, batch, 1)
        client.force_login(late)
        content = client.get(reverse("annotate", args=[batch.pk]) + "?start").content
        assert b"Nothing left for you" in content and b"All done" not in content


@pytest.mark.django_db
class TestStuck:
    def test_it_lists_comparisons_every_eligible_annotator_has_used_up(self, client, admin_user):
        ann, bob = make_user("ann", "annotator"), make_user("bob", "annotator")
        batch = open_batch(2, 3, [ann, bob])  # three sets needed, two annotators: all stuck
        judge(ann, batch, 2)
        assert list(stuck_comparisons(batch)) == []  # bob can still take both
        judge(bob, batch, 1)
        item = engine.lease_next(bob, batch)
        engine.skip_assignment(bob, item.pk, "no")
        stuck = list(stuck_comparisons(batch))
        expected = [
            c
            for c in Comparison.objects.filter(batch=batch).order_by("id")
            if c.annotations_done + c.annotations_in_progress < c.annotations_needed
            and all(
                Assignment.objects.filter(comparison=c, annotator=u).exists() for u in (ann, bob)
            )
        ]
        assert stuck == expected and len(stuck) == 2

        client.force_login(admin_user)
        page = client.get(reverse("batch_progress", args=[batch.pk])).content.decode()
        assert 'id="sets-done">3</strong> of <strong id="sets-needed">6</strong>' in page
        assert "Stuck:" in page and "doc-1: " in page and "doc-2: " in page

    def test_a_new_annotator_unsticks_the_batch(self):
        ann = make_user("ann", "annotator")
        batch = open_batch(1, 2, [ann])
        judge(ann, batch, 1)
        assert len(stuck_comparisons(batch)) == 1
        batch.annotators.add(make_user("new", "annotator"))
        assert len(stuck_comparisons(batch)) == 0
