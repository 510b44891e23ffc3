"""Attention checks: blind by construction, type-correct swaps, random slots, approval first."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest
from django.db.models import F
from django.urls import reverse

from evaluation import assignments as engine
from evaluation import checks
from evaluation.models import Assignment, Batch, Comparison, Document
from evaluation.progress import annotator_progress
from evaluation.services import import_batch
from evaluation.swaps import YEAR, find_facts, find_swap, source_entities
from tests.conftest import (
    SHARED_DATA,
    approved_pool_checks,
    check_row,
    doc_row,
    jsonl,
    make_user,
    settings_for,
)

DEMO = Path(__file__).resolve().parents[2] / "evaluation" / "demo" / "demo_batch.jsonl"
ALL = {"factual": "left", "informative": "equal", "grammatical": "equal"}


def assert_type_correct(source: str, summary: str, pool, rng) -> str | None:
    """Swap a fact of `summary` and check what was swapped: same type and shape, a plausible
    value; the kind swapped, or None when nothing could be."""
    swap = find_swap(source, summary, pool, rng)
    if swap is None:
        return None
    assert (
        swap.text
        == summary[: swap.start] + swap.replacement + summary[swap.start + len(swap.original) :]
    )
    before = [f for f in find_facts(summary) if f.start == swap.start]
    after = [f for f in find_facts(swap.text) if f.start == swap.start]
    if not before:  # a lowercased summary: the entity was found in the source
        before = [f for f in source_entities(source, summary) if f.start == swap.start]
        assert before and before[0].kind in ("person", "organisation"), swap
        # the replacement is an entity of that type and shape in a source, in the summary's case
        same = {
            f.value.lower()
            for f in find_facts(source) + list(pool)
            if (f.kind, f.shape) == (before[0].kind, before[0].shape)
        }
        assert (
            swap.replacement.lower() in same and swap.replacement.lower() != swap.original.lower()
        )
        assert not swap.original.islower() or swap.replacement.islower(), swap
        return swap.kind
    assert before and after, swap
    assert (after[0].kind, after[0].shape) == (before[0].kind, before[0].shape), swap
    assert after[0].value == swap.replacement and swap.replacement != swap.original
    if swap.kind == "year":
        old, new = int(swap.original), int(swap.replacement)
        latest = max(int(y) for y in YEAR.findall(source))
        assert 1900 <= new <= latest and abs(new - old) <= 10, swap
    if swap.kind == "amount":
        whole = [v.replace(",", "").partition(".") for v in (swap.original, swap.replacement)]
        assert len(whole[0][0]) == len(whole[1][0]), swap  # same magnitude
        assert len(whole[0][2]) == len(whole[1][2]), swap  # same decimals
    return swap.kind


class TestSwaps:
    def test_a_year_becomes_a_near_year_never_money(self):
        source = "The club was founded in 1927 and moved in 1931. Tickets cost £20."
        kinds = {
            assert_type_correct(source, "It was founded in 1927.", [], random.Random(i))
            for i in range(20)
        }
        assert kinds == {"year"}

    def test_money_keeps_its_currency_scale_and_magnitude(self):
        source = "The repair estimate is £240,000 and the grant was £2.5m."
        for seed in range(20):
            swap = find_swap(source, "The repair costs £240,000.", [], random.Random(seed))
            assert swap.text.startswith("The repair costs £") and swap.kind == "amount"
            assert len(swap.replacement) == len("240,000") and swap.replacement != "240,000"

    def test_may_the_verb_and_sentence_starts_are_never_facts(self):
        assert find_facts("They may travel to hospital. Officials said so.") == []

    def test_a_person_is_replaced_by_a_person_of_the_sources(self):
        source = "Mr Tomasz Wren lost to Ms Priya Adeyemi-Hart in Leeds."
        swap = find_swap(source, "Ms Priya Adeyemi-Hart won.", find_facts(source), random.Random(1))
        assert (swap.kind, swap.replacement) == ("person", "Tomasz Wren")

    def test_a_lowercased_summary_gets_a_person_of_the_source_in_its_case(self):
        source = "Gary Locke will manage Kilmarnock. John Smith, the chairman, agreed."
        for seed in range(10):
            swap = find_swap(source, "gary locke will manage the club.", [], random.Random(seed))
            assert (swap.kind, swap.original, swap.replacement) == (
                "person", "gary locke", "john smith"
            )  # fmt: skip
            assert swap.text == "john smith will manage the club."

    def test_no_swap_when_no_fact_has_a_replacement_of_its_type(self):
        assert find_swap("A cat sat on a mat.", "A cat sat.", [], random.Random(0)) is None

    def test_every_swap_on_the_demo_articles_is_type_correct(self):
        rows = [json.loads(line) for line in DEMO.read_text("utf-8").splitlines()]
        pool = [f for r in rows for f in find_facts(r["source"])]
        rng = random.Random(0)
        kinds = [
            assert_type_correct(r["source"], text, pool, rng)
            for r in rows
            for text in [*r["summaries"].values(), r.get("reference", "")]
        ]
        assert len([k for k in kinds if k]) >= len(rows)  # most texts give a check
        assert {"person", "amount", "year", "month"} <= set(kinds)

    def test_every_swap_on_a_sample_of_frank_articles_is_type_correct(self):
        path = SHARED_DATA / "frank" / "frank_seed_articles.jsonl"
        if not path.exists():
            pytest.skip(f"real FRANK data not available at {path} (../shared is absent)")
        rows = [json.loads(line) for line in path.read_text("utf-8").splitlines()][::10]
        pool = [f for r in rows for f in find_facts(r["article"])]
        rng = random.Random(0)
        kinds = [
            assert_type_correct(r["article"], text, pool, rng)
            for r in rows
            for text in r["summaries"].values()
        ]
        assert len([k for k in kinds if k]) >= 50
        # FRANK's summaries are lowercased: persons are found in the article and matched
        assert Counter(kinds)["person"] >= 10, Counter(kinds)


def open_batch(n_docs: int = 6, k: int = 1, name: str = "study", row=doc_row) -> Batch:
    """An open batch; `row=check_row` for documents whose summaries have facts to swap."""
    rows = jsonl([{**row(i), "id": f"doc-{i}"} for i in range(1, n_docs + 1)])
    batch = import_batch(rows, "b.jsonl", settings_for(name, k))
    batch.status = Batch.Status.OPEN
    batch.check_every = 3
    batch.check_min_gap = 1
    batch.save()
    return batch


def one_more_place(batch: Batch, check: Comparison) -> None:
    """One more place on the real comparisons of the documents other than the check's."""
    Comparison.objects.filter(batch=batch, is_check=False).exclude(document=check.document).update(
        annotations_needed=F("annotations_needed") + 1
    )


def work_through(user, batch: Batch, answer=None) -> list[Assignment]:
    served = []
    while (item := engine.lease_next(user, batch)) is not None:
        served.append(item)
        verdicts = answer(item) if answer else ALL
        engine.submit_judgments(user, item.pk, verdicts)
    return served


@pytest.mark.django_db
class TestGenerating:
    def test_checks_wait_for_approval_and_a_discarded_one_is_gone(self, monkeypatch):
        batch = open_batch()
        checks.add_check_pool(batch, jsonl([check_row(1), check_row(2)]), "pool.jsonl")
        made = checks.create_attention_checks(batch, 2)
        assert [c.check_state for c in made] == ["pending", "pending"]
        monkeypatch.setattr(checks, "check_due", lambda batch, user_id, n: True)
        user = make_user("ann", "annotator")
        assert checks.next_check(batch, user) is None  # nothing approved: nothing served
        assert (
            checks.discard_check(made[0]) and not Comparison.objects.filter(pk=made[0].pk).exists()
        )
        assert checks.approve_check(made[1])
        assert checks.next_check(batch, user).pk == made[1].pk
        assert not checks.discard_check(made[1])  # approved: no longer to discard

    def test_the_faithful_side_is_drawn_among_a_b_and_the_reference(self):
        rows = [json.loads(line) for line in DEMO.read_text("utf-8").splitlines()]
        batch = import_batch(jsonl(rows), "demo.jsonl", settings_for("demo"))
        made = checks.create_attention_checks(batch, len(rows))
        labels = {c.expected["faithful"] for c in made}
        assert labels <= {"A", "B", "reference"} and len(labels) >= 2
        for check in made:
            faithful, swap = check.summary_a, check.expected["swap"]
            row = next(r for r in rows if r["id"] == check.document.external_id)
            want = {
                "A": row["summaries"]["MLE"],
                "B": row["summaries"]["QUALS"],
                "reference": row["reference"],
            }
            assert faithful.text == want[check.expected["faithful"]]  # that side's, verbatim
            start = swap["start"]
            assert check.summary_b.text == (
                faithful.text[:start]
                + swap["replacement"]
                + faithful.text[start + len(swap["original"]) :]
            )
            assert check.expected["factual"] == "A"  # summary_a is the faithful side

    def test_a_summary_judged_less_factual_is_never_the_faithful_side(self):
        batch = open_batch(n_docs=1, k=1)
        user = make_user("ann", "annotator")
        item = engine.lease_next(user, batch)
        b_better = "right" if item.left_system == "A" else "left"
        engine.submit_judgments(user, item.pk, {**ALL, "factual": b_better})
        document = batch.documents.get()
        labels = {label for label, _ in checks._faithful_candidates(batch, document)}
        assert labels == {"B", "reference"}

    def test_a_pool_file_with_an_id_the_batch_has_is_refused_and_nothing_written(self):
        batch = open_batch()
        with pytest.raises(checks.BatchFileError, match="already in the batch"):
            checks.add_check_pool(batch, jsonl([check_row(1), doc_row(1)]), "pool.jsonl")
        assert not Document.objects.filter(check_pool=True).exists()


@pytest.mark.django_db
class TestServing:
    def test_slots_are_random_per_annotator_at_the_rate_with_the_gap(self):
        batch = open_batch()
        batch.check_every, batch.check_min_gap = 10, 2
        slots = {u: [n for n in range(4000) if checks.check_due(batch, u, n)] for u in (1, 2)}
        for positions in slots.values():
            assert all(b - a > 2 for a, b in zip(positions, positions[1:], strict=False))
            assert 4000 / 10 * 0.85 < len(positions) < 4000 / 10 * 1.15
        assert slots[1][:10] != slots[2][:10]  # not one schedule for everybody

    def test_items_to_come_follows_the_annotators_own_slots(self):
        batch = open_batch()
        batch.check_every, batch.check_min_gap = 4, 2
        for user_id, position, real_left in [(1, 0, 30), (2, 7, 12), (3, 40, 1), (1, 5, 0)]:
            n, reals = position, 0  # walk the slots as the engine serves them
            while reals < real_left:
                reals += not checks.check_due(batch, user_id, n)
                n += 1
            assert checks.items_to_come(batch, user_id, position, real_left) == n - position

    def test_the_total_to_do_stays_put_whichever_kind_is_served(self):
        """done + still to come, after each item as the engine serves them: the same number
        after a check as after a real comparison (a counter that moved would tell them apart)."""
        batch = open_batch()
        batch.check_every, batch.check_min_gap = 3, 1
        real_left, served, totals, kinds = 20, 0, [], []
        while real_left:
            is_check = checks.check_due(batch, 5, served)
            real_left -= not is_check
            served += 1
            kinds.append(is_check)
            totals.append(served + checks.items_to_come(batch, 5, served, real_left))
        assert any(kinds) and not all(kinds)
        assert set(totals) == {served}

    def test_no_document_is_both_a_check_and_a_real_item_and_every_comparison_reaches_k(self):
        batch = open_batch(n_docs=8, k=2, row=check_row)
        batch.check_every = 2
        batch.save()
        approved_pool_checks(batch, 2)
        # checks from the batch's own documents too
        for check in checks.create_attention_checks(batch, 8):
            checks.approve_check(check)
        users = [make_user(f"ann{i}", "annotator") for i in range(4)]
        served = {u: [] for u in users}
        active = list(users)
        while active:  # interleaved, one item each in turn
            for user in list(active):
                item = engine.lease_next(user, batch)
                if item is None:
                    active.remove(user)
                    continue
                served[user].append(item)
                engine.submit_judgments(user, item.pk, ALL)
        checked_any = False
        for user, items in served.items():
            check_docs = {a.comparison.document_id for a in items if a.comparison.is_check}
            real_docs = {a.comparison.document_id for a in items if not a.comparison.is_check}
            assert not check_docs & real_docs, user
            checked_any |= bool(check_docs)
        assert checked_any
        real = Comparison.objects.filter(batch=batch, is_check=False)
        assert all(c.annotations_done == c.annotations_needed for c in real)

    def test_a_batch_document_is_a_check_only_once_it_is_complete(self, monkeypatch):
        batch = open_batch(n_docs=2, k=1, row=check_row)
        (check,) = checks.create_attention_checks(batch, 1)
        checks.approve_check(check)
        monkeypatch.setattr(checks, "check_due", lambda batch, user_id, n: True)
        first, second = make_user("first", "annotator"), make_user("second", "annotator")
        batch.annotators.add(first, second)
        assert checks.annotators_without_checks(batch, {first.pk, second.pk}) == [
            first.pk,
            second.pk,
        ]
        for item in work_through(first, batch):
            assert not item.comparison.is_check  # its document was still open
        # Both documents are complete now: `second` may get the check, `first` (who judged
        # that document for real) never.
        assert checks.annotators_without_checks(batch, {first.pk, second.pk}) == [first.pk]
        # ...though not while no real item is left for them: it would be one item past the
        # "n of N" total. One more place on the other document gives them one.
        assert checks.next_check(batch, second) is None
        one_more_place(batch, check)
        assert checks.next_check(batch, second).pk == check.pk

    def test_checks_come_in_an_order_drawn_per_annotator(self, monkeypatch):
        batch = open_batch(n_docs=1, k=2)  # a real item to come for both: checks before it
        approved_pool_checks(batch, 8)
        monkeypatch.setattr(checks, "check_due", lambda batch, user_id, n: True)
        orders = []
        for name in ("one", "two"):
            user = make_user(name, "annotator")
            orders.append(
                [a.comparison_id for a in work_through(user, batch) if a.comparison.is_check]
            )
        assert sorted(orders[0]) == sorted(orders[1]) and len(orders[0]) == 8
        assert orders[0] != orders[1]

    def test_still_available_is_the_same_whether_a_check_or_a_real_item_is_held(self, monkeypatch):
        """Leasing an item never moves the annotator's figures, whichever kind it is."""
        batch = open_batch(n_docs=3)
        approved_pool_checks(batch, 1)
        user = make_user("ann", "annotator")
        monkeypatch.setattr(checks, "_slot_low", lambda batch, user_id, n: n == 0)
        before = annotator_progress(user.pk, batch)
        assert (before.done, before.available) == (0, 4)  # the check slot, then three
        held = engine.lease_next(user, batch)
        assert held.comparison.is_check and annotator_progress(user.pk, batch) == before
        engine.skip_assignment(user, held.pk, "unsure")
        before = annotator_progress(user.pk, batch)
        held = engine.lease_next(user, batch)
        assert not held.comparison.is_check and annotator_progress(user.pk, batch) == before

    def test_a_check_held_at_the_end_counts_with_the_last_real_item_and_none_follows(
        self, monkeypatch
    ):
        """Slots at items 0 and 2 of a one-comparison batch: the check held before the last
        real item counts with it, and the slot after it is not filled."""
        batch = open_batch(n_docs=1)
        approved_pool_checks(batch, 2)
        user = make_user("ann", "annotator")
        monkeypatch.setattr(checks, "_slot_low", lambda batch, user_id, n: n in (0, 2))
        figures = [annotator_progress(user.pk, batch)]
        held = engine.lease_next(user, batch)
        assert held.comparison.is_check
        figures.append(annotator_progress(user.pk, batch))
        engine.submit_judgments(user, held.pk, ALL)
        last_real = engine.lease_next(user, batch)
        assert not last_real.comparison.is_check
        figures.append(annotator_progress(user.pk, batch))
        engine.submit_judgments(user, last_real.pk, ALL)
        assert engine.lease_next(user, batch) is None
        figures.append(annotator_progress(user.pk, batch))
        assert [(f.done, f.available) for f in figures] == [(0, 2), (0, 2), (1, 1), (2, 0)]


@pytest.mark.django_db
class TestAccuracy:
    def answer(self, good: bool):
        def verdicts(item):
            if not item.comparison.is_check:
                return ALL
            faithful = "left" if item.left_system == "A" else "right"
            wrong = "right" if faithful == "left" else "left"
            return {**ALL, "factual": faithful if good else wrong}

        return verdicts

    def test_nobody_is_flagged_before_the_minimum_of_answered_checks(self, monkeypatch):
        batch = open_batch(n_docs=1)
        batch.checks_before_flag = 3
        batch.save()
        approved_pool_checks(batch, 3)
        monkeypatch.setattr(checks, "check_due", lambda batch, user_id, n: True)
        user = make_user("sloppy", "annotator")
        for n in range(3):
            item = engine.lease_next(user, batch)
            engine.submit_judgments(user, item.pk, self.answer(False)(item))
            (row,) = checks.check_accuracy(batch)
            assert (row.checks, row.accuracy, row.flagged) == (n + 1, 0.0, n + 1 >= 3)

    def test_skipped_and_reported_checks_count_as_served_and_are_reported(self, monkeypatch):
        batch = open_batch(n_docs=1)
        approved_pool_checks(batch, 3)
        monkeypatch.setattr(checks, "check_due", lambda batch, user_id, n: True)
        user = make_user("skipper", "annotator")
        first = engine.lease_next(user, batch)
        engine.skip_assignment(user, first.pk, "no idea")
        second = engine.lease_next(user, batch)
        engine.skip_assignment(user, second.pk, "broken text", problem=True)
        assert first.comparison.is_check and second.comparison.is_check
        assert first.comparison_id != second.comparison_id  # a skipped check is not served again
        (row,) = checks.check_accuracy(batch)
        assert (row.username, row.skipped, row.checks, row.flagged) == ("skipper", 2, 0, False)

    def test_k_cannot_rise_once_a_batch_document_was_served_as_a_check(
        self, admin_client, monkeypatch
    ):
        batch = open_batch(n_docs=2, k=1, row=check_row)
        user = make_user("ann", "annotator")
        work_through(user, batch)
        (check,) = checks.create_attention_checks(batch, 1)
        checks.approve_check(check)
        one_more_place(batch, check)  # a real item to come for `other`: a check may precede it
        monkeypatch.setattr(checks, "check_due", lambda batch, user_id, n: True)
        other = make_user("other", "annotator")
        assert engine.lease_next(other, batch).comparison.is_check
        data = {
            "public_title": "", "annotators_per_item": 2, "lease_minutes": 30, "undo_minutes": 2,
            "guidelines": "",
            "check_every": 3, "check_min_gap": 1, "check_threshold": 0.7, "checks_before_flag": 5,
        }  # fmt: skip
        response = admin_client.post(reverse("batch_manage", args=[batch.pk]), data)
        assert response.status_code == 422 and b"raising K" in response.content
        assert Batch.objects.get(pk=batch.pk).annotators_per_item == 1


@pytest.mark.django_db
class TestReviewPages:
    def test_the_review_page_shows_both_texts_with_the_swap_marked(self, admin_client):
        batch = open_batch()
        checks.add_check_pool(batch, jsonl([check_row(1)]), "pool.jsonl")
        (check,) = checks.create_attention_checks(batch, 1)
        content = admin_client.get(reverse("batch_check_review", args=[batch.pk])).content.decode()
        swap = check.expected["swap"]
        assert f"<mark>{swap['original']}</mark>" in content.replace("&#x27;", "'")
        assert f"<mark>{swap['replacement']}</mark>" in content.replace("&#x27;", "'")
        url = reverse("batch_check_decide", args=[batch.pk, check.pk])
        assert admin_client.post(url, {"action": "approve"}).status_code == 302
        assert Comparison.objects.get(pk=check.pk).check_state == "approved"
        assert admin_client.post(url, {"action": "discard"}).status_code == 409

    def test_a_bad_pool_upload_says_why_and_writes_nothing(self, admin_client):
        from django.core.files.uploadedfile import SimpleUploadedFile

        batch = open_batch()
        upload = SimpleUploadedFile("pool.jsonl", b'{"id": "x"}\n')
        response = admin_client.post(reverse("batch_check_pool", args=[batch.pk]), {"file": upload})
        assert response.status_code == 422 and b"line 1" in response.content
        assert not Document.objects.filter(check_pool=True).exists()

    def test_a_pool_upload_makes_checks_waiting_for_approval(self, admin_client):
        from django.core.files.uploadedfile import SimpleUploadedFile

        batch = open_batch()
        upload = SimpleUploadedFile("pool.jsonl", jsonl([check_row(1), check_row(2)]))
        response = admin_client.post(reverse("batch_check_pool", args=[batch.pk]), {"file": upload})
        assert response.status_code == 302
        assert Comparison.objects.filter(batch=batch, check_state="pending").count() == 2

    def test_the_dashboard_says_when_checks_cannot_reach_every_annotator(self, admin_client):
        batch = open_batch()
        batch.annotators.add(make_user("ann", "annotator"))
        content = admin_client.get(reverse("batch_manage", args=[batch.pk])).content
        assert b"cannot supply checks to every annotator: 1 of 1" in content
        approved_pool_checks(batch, 1)
        content = admin_client.get(reverse("batch_manage", args=[batch.pk])).content
        assert b"cannot supply checks" not in content
