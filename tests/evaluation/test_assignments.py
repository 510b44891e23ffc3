"""The assignment engine: capacity, leases, idempotent submission, skips."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from evaluation import assignments as engine
from evaluation.models import Assignment, AuditEvent, Batch, Comparison, Judgment
from tests.conftest import make_user

ALL_LEFT = {"factual": "left", "informative": "left", "grammatical": "left"}


@pytest.fixture
def open_batch(batch):
    batch.status = Batch.Status.OPEN
    batch.save()
    return batch


def annotators(n: int):
    return [make_user(f"ann{i}", "annotator") for i in range(n)]


def judge_all(user, batch) -> int:
    count = 0
    while (item := engine.lease_next(user, batch)) is not None:
        engine.submit_judgments(user, item.pk, ALL_LEFT)
        count += 1
    return count


@pytest.mark.django_db
class TestLeaseNext:
    def test_it_hands_out_least_judged_comparisons_first(self, open_batch):
        first, second = annotators(2)
        a = engine.lease_next(first, open_batch)
        b = engine.lease_next(second, open_batch)
        assert a.comparison_id != b.comparison_id

    def test_it_gives_back_the_annotators_own_unfinished_comparison(self, open_batch):
        (user,) = annotators(1)
        a = engine.lease_next(user, open_batch)
        assert engine.lease_next(user, open_batch).pk == a.pk
        assert Assignment.objects.count() == 1

    def test_it_never_gives_an_annotator_the_same_comparison_twice(self, open_batch):
        (user,) = annotators(1)
        assert judge_all(user, open_batch) == 4
        seen = list(Assignment.objects.values_list("comparison_id", flat=True))
        assert len(seen) == len(set(seen)) == 4

    def test_it_fills_each_comparison_with_exactly_k(self, open_batch):
        users = annotators(5)
        total = sum(judge_all(u, open_batch) for u in users)
        assert total == 4 * 3
        assert set(Comparison.objects.values_list("annotations_done", flat=True)) == {3}
        assert engine.lease_next(make_user("late", "annotator"), open_batch) is None

    def test_it_counts_live_leases_against_k(self, open_batch):
        holders = annotators(3)
        leased = {engine.lease_next(u, open_batch).comparison_id for u in holders}
        assert len(leased) == 3  # spread out: least-taken first
        workers = [make_user(f"worker{i}", "annotator") for i in range(6)]
        assert sum(judge_all(u, open_batch) for u in workers) == 4 * 3 - 3
        for c in Comparison.objects.all():
            assert c.annotations_done + c.annotations_in_progress == 3
            assert c.annotations_in_progress == (1 if c.pk in leased else 0)

    def test_it_returns_an_expired_lease_to_the_pool(self, open_batch):
        Comparison.objects.update(annotations_needed=1)
        first, second = annotators(2)
        held = engine.lease_next(first, open_batch)
        later = timezone.now() + timedelta(minutes=31)
        taken = set()
        while (item := engine.lease_next(second, open_batch, now=later)) is not None:
            taken.add(item.comparison_id)
            engine.submit_judgments(second, item.pk, ALL_LEFT, now=later)
        assert held.comparison_id in taken and len(taken) == 4
        assert Assignment.objects.get(pk=held.pk).status == Assignment.Status.EXPIRED
        assert engine.lease_next(first, open_batch, now=later) is None

    def test_an_annotator_who_comes_back_first_gets_their_comparison_back(self, open_batch):
        (user,) = annotators(1)
        first = engine.lease_next(user, open_batch)
        later = timezone.now() + timedelta(minutes=45)
        again = engine.lease_next(user, open_batch, now=later)
        assert again.pk == first.pk
        assert again.status == Assignment.Status.LEASED
        assert again.lease_expires_at == later + timedelta(minutes=30)
        c = Comparison.objects.get(pk=first.comparison_id)
        assert c.annotations_in_progress == 1

    def test_a_live_lease_comes_before_expired_ones(self, open_batch):
        Comparison.objects.update(annotations_needed=1)
        user, other = annotators(2)
        lost = engine.lease_next(user, open_batch)
        later = timezone.now() + timedelta(minutes=31)
        # Someone else fills the comparison after the lease ran out: it stays expired for good.
        while (item := engine.lease_next(other, open_batch, now=later)) is not None:
            engine.submit_judgments(other, item.pk, ALL_LEFT, now=later)
        assert Assignment.objects.get(pk=lost.pk).status == Assignment.Status.EXPIRED
        Comparison.objects.exclude(pk=lost.comparison_id).update(annotations_needed=2)
        live = engine.lease_next(user, open_batch, now=later)
        assert live.pk != lost.pk
        assert engine.lease_next(user, open_batch, now=later).pk == live.pk
        assert Assignment.objects.filter(annotator=user, status="leased").count() == 1

    def test_the_lease_query_can_use_the_lease_order_index(self, open_batch):
        """The partial index only serves a query whose room filter reads like its condition:
        the least-taken level, the first candidate at or after the annotator's start, and the
        first at that level (the wrap) are each read from it."""
        (user,) = annotators(1)
        captured = []

        def capture(execute, sql, params, many, context):
            captured.append((sql, params))
            return execute(sql, params, many, context)

        with connection.execute_wrapper(capture):
            engine.lease_next(user, open_batch)
        ((sql, params),) = [
            (q, p) for q, p in captured if "ORDER BY" in q and 'FROM "evaluation_comparison"' in q
        ]
        sql = sql.replace(" FOR UPDATE SKIP LOCKED", "")
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SET LOCAL enable_seqscan = off")  # 4 rows: force the choice
                cursor.execute("SET LOCAL enable_sort = off")
                cursor.execute("EXPLAIN " + sql, params)
                plan = "\n".join(row[0] for row in cursor.fetchall())
                # the level, then at-or-after and the wrap, each with the level again
                assert plan.count("comparison_lease_order") >= 4, plan
                assert "Sort" not in plan, plan
            else:
                cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
                steps = [row[-1] for row in cursor.fetchall()]
                searches = [s for s in steps if s.startswith(("SEARCH W0", "SEARCH V0", "SCAN"))]
                assert len(searches) == 4, steps
                assert all("comparison_lease_order" in s for s in searches), steps
                assert any("<expr>=? AND position>?" in s for s in searches), steps
                assert not any("TEMP B-TREE" in s for s in steps), steps

    def test_a_paused_or_closed_batch_hands_out_nothing(self, open_batch):
        (user,) = annotators(1)
        for status, word in (("paused", "paused"), ("closed", "closed")):
            open_batch.status = status
            open_batch.save()
            with pytest.raises(engine.BatchNotOpen, match=word):
                engine.lease_next(user, open_batch)
        assert not Assignment.objects.exists()


@pytest.mark.django_db
class TestSubmitJudgments:
    def leased(self, batch, left_system="A"):
        (user,) = annotators(1)
        item = engine.lease_next(user, batch)
        Assignment.objects.filter(pk=item.pk).update(left_system=left_system)
        # the comparison's count of A-on-left places follows the side set here
        Comparison.objects.filter(pk=item.comparison_id).update(
            taken_a_left=1 if left_system == "A" else 0
        )
        item.refresh_from_db()
        return user, item

    @pytest.mark.parametrize(
        "left_system, expected",
        [("A", {"factual": "A", "informative": "equal", "grammatical": "B"}),
         ("B", {"factual": "B", "informative": "equal", "grammatical": "A"})],
    )  # fmt: skip
    def test_it_stores_verdicts_in_system_terms_and_as_shown(
        self, open_batch, left_system, expected
    ):
        user, item = self.leased(open_batch, left_system)
        shown = {"factual": "left", "informative": "equal", "grammatical": "right"}
        later = item.served_at + timedelta(seconds=30)
        engine.submit_judgments(user, item.pk, shown, active_seconds=12.5, now=later)
        stored = {j.criterion: (j.verdict, j.shown) for j in Judgment.objects.all()}
        assert stored == {c: (expected[c], shown[c]) for c in shown}
        item.refresh_from_db()
        assert item.status == "submitted" and item.active_seconds == 12.5
        codes = {"A": -1, "equal": 0, "B": 1}
        assert item.verdict_factual == codes[expected["factual"]]
        assert item.verdict_informative == 0
        assert item.verdict_grammatical == codes[expected["grammatical"]]
        c = item.comparison
        c.refresh_from_db()
        assert (c.annotations_done, c.annotations_in_progress) == (1, 0)

    def test_a_repeated_submission_stores_one_set(self, open_batch):
        user, item = self.leased(open_batch)
        engine.submit_judgments(user, item.pk, ALL_LEFT)
        engine.submit_judgments(user, item.pk, ALL_LEFT)
        assert Judgment.objects.count() == 3
        assert Comparison.objects.get(pk=item.comparison_id).annotations_done == 1

    def test_it_refuses_to_change_a_submitted_answer(self, open_batch):
        user, item = self.leased(open_batch)
        engine.submit_judgments(user, item.pk, ALL_LEFT)
        with pytest.raises(engine.SubmissionRefused, match="already submitted"):
            engine.submit_judgments(user, item.pk, {**ALL_LEFT, "factual": "right"})
        assert set(Judgment.objects.values_list("shown", flat=True)) == {"left"}

    def test_it_refuses_an_incomplete_submission_and_stores_nothing(self, open_batch):
        user, item = self.leased(open_batch)
        with pytest.raises(engine.IncompleteSubmission) as exc:
            engine.submit_judgments(user, item.pk, {"factual": "left", "informative": "up"})
        assert exc.value.missing == ["informative", "grammatical"]
        assert not Judgment.objects.exists()
        assert Assignment.objects.get(pk=item.pk).status == "leased"

    def test_it_refuses_someone_elses_assignment(self, open_batch):
        _, item = self.leased(open_batch)
        with pytest.raises(engine.SubmissionRefused, match="not assigned to you"):
            engine.submit_judgments(make_user("mallory", "annotator"), item.pk, ALL_LEFT)
        assert not Judgment.objects.exists()

    def test_a_late_submission_keeps_a_place_nobody_took(self, open_batch):
        user, item = self.leased(open_batch)
        later = timezone.now() + timedelta(minutes=31)
        stored = engine.submit_judgments(user, item.pk, ALL_LEFT, now=later)
        assert (stored.status, stored.late) == ("submitted", True)
        c = Comparison.objects.get(pk=item.comparison_id)
        assert (c.annotations_done, c.annotations_in_progress) == (1, 0)

    def test_a_late_submission_takes_a_given_back_place_again_while_one_is_free(self, open_batch):
        user, item = self.leased(open_batch)
        open_batch.annotators.add(user)
        later = timezone.now() + timedelta(minutes=31)
        assert engine.release_expired(open_batch, later) == 1
        assert Comparison.objects.get(pk=item.comparison_id).annotations_in_progress == 0
        stored = engine.submit_judgments(user, item.pk, ALL_LEFT, now=later)
        assert (stored.status, stored.late) == ("submitted", True)
        c = Comparison.objects.get(pk=item.comparison_id)
        assert (c.annotations_done, c.annotations_in_progress) == (1, 0)
        assert Judgment.objects.filter(assignment=item).count() == 3

    def test_a_late_submission_is_refused_to_someone_removed_from_the_batch(self, open_batch):
        user, item = self.leased(open_batch)
        open_batch.annotators.add(user)
        later = timezone.now() + timedelta(minutes=31)
        engine.release_expired(open_batch, later)
        open_batch.annotators.remove(user)
        with pytest.raises(engine.SubmissionRefused, match="no longer on this batch"):
            engine.submit_judgments(user, item.pk, ALL_LEFT, now=later)
        assert not Judgment.objects.filter(assignment=item).exists()

    def test_a_late_submission_is_refused_once_someone_else_took_the_place(self, open_batch):
        Comparison.objects.update(annotations_needed=1)
        user, other = annotators(2)
        open_batch.annotators.add(user)
        lost = engine.lease_next(user, open_batch)
        later = timezone.now() + timedelta(minutes=31)
        while (item := engine.lease_next(other, open_batch, now=later)) is not None:
            engine.submit_judgments(other, item.pk, ALL_LEFT, now=later)
        with pytest.raises(engine.SubmissionRefused, match="another annotator took") as refused:
            engine.submit_judgments(user, lost.pk, ALL_LEFT, now=later)
        assert refused.value.move_on
        assert not Judgment.objects.filter(assignment=lost).exists()
        c = Comparison.objects.get(pk=lost.comparison_id)
        assert (c.annotations_done, c.annotations_in_progress) == (1, 0)

    def test_it_refuses_a_closed_batch(self, open_batch):
        user, item = self.leased(open_batch)
        open_batch.status = "closed"
        open_batch.save()
        with pytest.raises(engine.SubmissionRefused, match="closed"):
            engine.submit_judgments(user, item.pk, ALL_LEFT)


@pytest.mark.django_db
class TestSubmitAndLeaseNext:
    def test_it_stores_the_set_and_leases_the_next_comparison(self, open_batch):
        (user,) = annotators(1)
        first = engine.lease_next(user, open_batch)
        later = first.served_at + timedelta(seconds=30)
        stored, following, why = engine.submit_and_lease_next(
            user, first.pk, ALL_LEFT, 7.0, now=later
        )
        assert stored.status == Assignment.Status.SUBMITTED and stored.active_seconds == 7.0
        assert Judgment.objects.filter(assignment=first).count() == 3
        assert following.status == Assignment.Status.LEASED and why is None
        assert following.comparison_id != first.comparison_id
        events = set(AuditEvent.objects.exclude(action="import").values_list("action", "target"))
        assert events == {
            ("assign", f"assignment {first.pk}"),
            ("submit", f"assignment {first.pk}"),
            ("assign", f"assignment {following.pk}"),
        }

    def test_a_failed_lease_stores_nothing(self, open_batch, monkeypatch):
        (user,) = annotators(1)
        first = engine.lease_next(user, open_batch)
        events_before = AuditEvent.objects.count()

        def broken(*args):
            raise DatabaseError("connection lost")

        monkeypatch.setattr(engine, "_lease", broken)
        with pytest.raises(DatabaseError), transaction.atomic():
            engine.submit_and_lease_next(user, first.pk, ALL_LEFT)
        assert not Judgment.objects.exists()
        assert Assignment.objects.get(pk=first.pk).status == Assignment.Status.LEASED
        c = Comparison.objects.get(pk=first.comparison_id)
        assert (c.annotations_done, c.annotations_in_progress) == (0, 1)
        assert AuditEvent.objects.count() == events_before

    def test_a_paused_batch_keeps_the_set_and_says_why_nothing_follows(self, open_batch):
        (user,) = annotators(1)
        first = engine.lease_next(user, open_batch)
        Batch.objects.filter(pk=open_batch.pk).update(status=Batch.Status.PAUSED)
        stored, following, why = engine.submit_and_lease_next(user, first.pk, ALL_LEFT)
        assert stored.status == Assignment.Status.SUBMITTED
        assert following is None and "paused" in why
        assert Assignment.objects.count() == 1

    def test_the_last_set_leaves_nothing_to_lease(self, open_batch):
        (user,) = annotators(1)
        item, count = engine.lease_next(user, open_batch), 0
        while item is not None:
            _, item, why = engine.submit_and_lease_next(user, item.pk, ALL_LEFT)
            count += 1
        assert count == 4 and why is None

    def test_a_refusal_changes_nothing(self, open_batch):
        (user,) = annotators(1)
        first = engine.lease_next(user, open_batch)
        with pytest.raises(engine.IncompleteSubmission):
            engine.submit_and_lease_next(user, first.pk, {"factual": "left"})
        assert not Judgment.objects.exists()
        assert Assignment.objects.count() == 1


@pytest.mark.django_db
class TestSkip:
    def test_it_records_the_reason_and_gives_the_comparison_to_others(self, open_batch):
        Comparison.objects.update(annotations_needed=1)
        first, second = annotators(2)
        item = engine.lease_next(first, open_batch)
        engine.skip_assignment(first, item.pk, "I know this story too well")
        item.refresh_from_db()
        assert (item.status, item.skip_reason) == ("skipped", "I know this story too well")
        assert Comparison.objects.get(pk=item.comparison_id).annotations_in_progress == 0
        taken = set()
        while (other := engine.lease_next(second, open_batch)) is not None:
            taken.add(other.comparison_id)
            engine.submit_judgments(second, other.pk, ALL_LEFT)
        assert item.comparison_id in taken
        assert judge_all(first, open_batch) == 0  # never the skipped one again

    def test_it_records_a_problem_report(self, open_batch):
        (user,) = annotators(1)
        item = engine.lease_next(user, open_batch)
        engine.skip_assignment(user, item.pk, "The source is cut off", problem=True)
        item.refresh_from_db()
        assert (item.status, item.problem_report) == ("skipped", "The source is cut off")

    def test_it_needs_a_reason(self, open_batch):
        (user,) = annotators(1)
        item = engine.lease_next(user, open_batch)
        with pytest.raises(engine.SubmissionRefused, match="reason"):
            engine.skip_assignment(user, item.pk, "   ")
        assert Assignment.objects.get(pk=item.pk).status == "leased"


class TestChooseLeft:
    """choose_left(comparison A-left, comparison taken, K, annotator A-left, served, coin)."""

    def test_the_coin_decides_where_both_balances_allow_either_side(self):
        assert engine.choose_left(0, 0, 3, 0, 0, coin=0) == "A"
        assert engine.choose_left(0, 0, 3, 0, 0, coin=1) == "B"
        assert engine.choose_left(1, 2, 3, 3, 5, coin=3) == "B"  # an even split: the coin
        assert engine.choose_left(1, 2, 3, 3, 5, coin=2) == "A"  # annotator one A ahead: fine

    def test_where_both_allow_it_evens_out_the_comparison(self):
        # the second of K = 3 sees the side the first did not, whatever the coin
        assert engine.choose_left(1, 1, 3, 0, 0, coin=0) == "B"
        assert engine.choose_left(0, 1, 3, 0, 0, coin=1) == "A"

    def test_a_comparison_never_shows_one_side_to_more_than_half_of_k(self):
        # K = 3: two annotators already saw A on the left, the third sees B
        assert engine.choose_left(2, 2, 3, 0, 0, coin=0) == "B"
        assert engine.choose_left(0, 2, 3, 0, 0, coin=1) == "A"
        # K = 4: two of four on each side
        assert engine.choose_left(2, 3, 4, 0, 0, coin=0) == "B"

    def test_an_annotator_stays_within_one_item_of_half(self):
        # 5 A of 8 served: 2 a - n = 2, one more A would be 1.5 items from half
        assert engine.choose_left(0, 0, 3, 5, 8, coin=0) == "B"
        assert engine.choose_left(0, 0, 3, 3, 8, coin=1) == "A"

    def test_it_says_when_both_cannot_hold(self):
        assert engine.choose_left(0, 2, 3, 5, 8, coin=0) is None


@pytest.mark.django_db
class TestSidesAndOrder:
    def test_a_simulated_batch_is_balanced_per_comparison_and_per_annotator(self):
        """2,000 comparisons x 3 annotators, 10 annotators taking turns as fast as they can."""
        from evaluation.services import import_batch
        from tests.conftest import doc_row, jsonl, settings_for

        batch = import_batch(
            jsonl([doc_row(i) for i in range(2000)]), "big.jsonl", settings_for("big", k=3)
        )
        # A fixed secret, so that the draws (and this test) are the same on every run.
        Batch.objects.filter(pk=batch.pk).update(status=Batch.Status.OPEN, secret="sides-test")
        batch.refresh_from_db()
        comparisons = list(batch.comparisons.select_related("document"))
        for c in comparisons:
            c.position = batch.draw("order", c.document.external_id) >> 1
        Comparison.objects.bulk_update(comparisons, ["position"])
        users = annotators(10)
        worst = {u.pk: 0.0 for u in users}
        a_left = dict.fromkeys(worst, 0)
        served = dict.fromkeys(worst, 0)
        active = list(users)
        while active:
            for user in list(active):
                item = engine.lease_next(user, batch)
                if item is None:
                    active.remove(user)
                    continue
                served[user.pk] += 1
                a_left[user.pk] += item.left_system == "A"
                worst[user.pk] = max(worst[user.pk], abs(a_left[user.pk] - served[user.pk] / 2))
                engine.submit_judgments(user, item.pk, ALL_LEFT)
        assert Assignment.objects.filter(status="submitted").count() == 6000
        assert max(worst.values()) <= 1, "an annotator drifted more than one item from half"
        per_comparison = Counter(
            Assignment.objects.filter(left_system="A").values_list("comparison_id", flat=True)
        )
        ids = Comparison.objects.filter(batch=batch).values_list("id", flat=True)
        splits = Counter(per_comparison.get(c, 0) for c in ids)
        assert set(splits) <= {1, 2}, f"a comparison showed all three the same side: {splits}"
        for c in Comparison.objects.filter(batch=batch):
            assert c.taken_a_left == per_comparison.get(c.pk, 0)

    def test_the_lease_order_follows_draws_per_annotator_not_the_ids(self, open_batch):
        """Each lease takes the first comparison at or after a start drawn for (annotator,
        item), wrapping round: computed here from the positions and the draws."""
        users = annotators(2)
        positions = dict(Comparison.objects.filter(batch=open_batch).values_list("pk", "position"))
        assert len(set(positions.values())) == 4  # drawn, distinct
        for user in users:
            order = []
            while (item := engine.lease_next(user, open_batch)) is not None:
                order.append(item.comparison_id)
                engine.submit_judgments(user, item.pk, ALL_LEFT)
            left, expected = sorted(positions, key=positions.get), []
            for n in range(4):
                start = open_batch.draw("start", user.pk, n) >> 1
                after = [pk for pk in left if positions[pk] >= start]
                expected.append((after or left)[0])
                left.remove(expected[-1])
            assert order == expected
        other = Batch.objects.get(pk=open_batch.pk)
        assert other.draw("order", 1) != Batch(secret="another").draw("order", 1)

    def test_positions_are_drawn_and_evenly_spaced(self):
        from evaluation.services import spaced_positions

        batch = Batch(secret="spacing")
        keys = [f"doc-{i}" for i in range(50)]
        positions = spaced_positions(batch, keys)
        step = 2**63 // 50
        assert sorted(positions) == [r * step for r in range(50)]
        drawn = sorted(keys, key=lambda k: batch.draw("order", k))
        assert sorted(keys, key=lambda k: positions[keys.index(k)]) == drawn

    def test_every_annotator_meets_equally_needed_comparisons_in_their_own_order(self):
        """100 comparisons, 10 annotators one after another, each judging all of them: at
        each one's turn every comparison is equally needed, so their orders are theirs alone.
        The engine's former single order per batch gave a rank correlation of 1 for every
        pair; independent orders give about 0."""
        from evaluation.services import import_batch
        from tests.conftest import doc_row, jsonl, settings_for

        batch = import_batch(
            jsonl([doc_row(i) for i in range(100)]), "orders.jsonl", settings_for("o", k=10)
        )
        Batch.objects.filter(pk=batch.pk).update(status=Batch.Status.OPEN, secret="order-test")
        batch.refresh_from_db()
        # the positions import_batch would draw with this secret
        comparisons = list(batch.comparisons.select_related("document"))
        keys = [c.document.external_id for c in comparisons]
        from evaluation.services import spaced_positions

        for c, position in zip(comparisons, spaced_positions(batch, keys), strict=True):
            c.position = position
        Comparison.objects.bulk_update(comparisons, ["position"])
        orders = []
        for user in annotators(10):
            order = []
            while (item := engine.lease_next(user, batch)) is not None:
                order.append(item.comparison_id)
                engine.submit_judgments(user, item.pk, ALL_LEFT)
            assert sorted(order) == sorted(c.pk for c in comparisons)
            orders.append(order)
        rhos = [spearman(a, b) for i, a in enumerate(orders) for b in orders[i + 1 :]]
        mean = sum(rhos) / len(rhos)
        assert abs(mean) < 0.2, f"orders follow one another: mean rho {mean:.2f}"
        assert max(rhos) < 0.6, f"two annotators share an order: rho {max(rhos):.2f}"
        assert len({tuple(o[:5]) for o in orders}) == 10  # nobody starts like anybody else

    def test_a_simulated_batch_fills_every_comparison_to_k_and_no_more(self):
        """200 comparisons x 3, 10 annotators taking turns: every comparison reaches K."""
        from evaluation.services import import_batch
        from tests.conftest import doc_row, jsonl, settings_for

        batch = import_batch(
            jsonl([doc_row(i) for i in range(200)]), "k.jsonl", settings_for("k", k=3)
        )
        Batch.objects.filter(pk=batch.pk).update(status=Batch.Status.OPEN)
        batch.refresh_from_db()
        active = annotators(10)
        firsts = []
        while active:
            for user in list(active):
                item = engine.lease_next(user, batch)
                if item is None:
                    active.remove(user)
                    continue
                firsts.append(item.comparison_id)
                engine.submit_judgments(user, item.pk, ALL_LEFT)
        per_comparison = Counter(
            Assignment.objects.filter(status="submitted").values_list("comparison_id", flat=True)
        )
        ids = set(batch.comparisons.values_list("id", flat=True))
        assert set(per_comparison) == ids and set(per_comparison.values()) == {3}
        for c in batch.comparisons.all():
            assert (c.annotations_done, c.annotations_in_progress) == (3, 0)
        # least needed first: the first 200 leases took 200 different comparisons
        assert len(set(firsts[:200])) == 200


def spearman(a: list[int], b: list[int]) -> float:
    """Spearman's rank correlation of two orders of the same items (no ties)."""
    rank_b = {x: i for i, x in enumerate(b)}
    n = len(a)
    d2 = sum((i - rank_b[x]) ** 2 for i, x in enumerate(a))
    return 1 - 6 * d2 / (n * (n * n - 1))


@pytest.mark.django_db
class TestActiveSecondsCap:
    def test_it_stores_at_most_the_wall_time_since_serving(self, open_batch):
        (user,) = annotators(1)
        item = engine.lease_next(user, open_batch)
        soon = item.served_at + timedelta(seconds=0.03)
        engine.submit_judgments(user, item.pk, ALL_LEFT, active_seconds=604000, now=soon)
        item.refresh_from_db()
        assert item.active_seconds == pytest.approx(0.03)

    def test_it_keeps_a_plausible_figure(self):
        now = timezone.now()
        assert engine.capped_active_seconds(12.5, now - timedelta(seconds=60), now) == 12.5
        assert engine.capped_active_seconds(None, now, now) is None
