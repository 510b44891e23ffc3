"""The reading aids on the judging page: each one there when its batch setting is on and gone
when off; marks escaped and alike for both sides; the settings form and the methods paragraph
that record them."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from evaluation.models import Assignment, Batch
from research import methods
from research.exports import export
from research.forms import BatchSettingsForm
from tests.conftest import doc_row, jsonl, settings_for
from tests.research.conftest import settings_form

HOSTILE = '<script>alert(1)</script> <img src=x onerror="alert(2)"> Mr Wren paid 240 in 2019.'
AIDS = ("aid_paragraph_numbers", "aid_highlights", "aid_word_diff")


def judging_page(client, batch, annotator, **aids) -> str:
    Batch.objects.filter(pk=batch.pk).update(status=Batch.Status.OPEN, **aids)
    batch.annotators.add(annotator)
    client.force_login(annotator)
    response = client.get(reverse("annotate", args=[batch.pk]) + "?start", follow=True)
    assert response.status_code == 200
    assert Assignment.objects.filter(annotator=annotator).count() == 1
    return response.content.decode()


def hostile_batch():
    from evaluation.services import import_batch

    row = doc_row(1, source=f"First paragraph.\n\n{HOSTILE}\n\nThird <b>bold</b> paragraph.")
    row["summaries"] = {"MLE": HOSTILE, "QUALS": "Mr Wren paid 420 in 2019 <b>x</b>."}
    return import_batch(jsonl([row]), "h.jsonl", settings_for())


@pytest.mark.django_db
class TestAidsOnTheJudgingPage:
    def test_all_on_numbers_marks_and_offers_the_diff(self, client, annotator):
        batch = hostile_batch()
        page = judging_page(client, batch, annotator, aid_word_diff=True)
        numbers = re.findall(r'<span class="para-no" aria-hidden="true">(\d+)</span>', page)
        assert numbers == ["1", "2", "3"]
        assert 'id="mark-status"' in page and 'aria-live="polite"' in page
        assert 'id="word-diff" aria-pressed="false"' in page
        assert 'id="left-diff" hidden' in page and 'id="right-diff" hidden' in page
        assert "evaluation/aids.js" in page

    def test_untrusted_text_is_escaped_everywhere(self, client, annotator):
        page = judging_page(client, hostile_batch(), annotator, aid_word_diff=True)
        assert "<script>alert" not in page and "<img" not in page and "<b>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert "onerror=&quot;alert(2)&quot;" in page

    def test_marks_are_alike_for_both_sides_and_absent_ones_distinct(self, client, annotator):
        page = judging_page(client, hostile_batch(), annotator)
        marks = re.findall(r'<mark class="(term[^"]*)" data-term="(t\d+)">([^<]*)', page)
        by_text = {}
        for css, term, text in marks:
            by_text.setdefault(text, set()).add((css, term))
        # "Wren" and "2019" are in both summaries and the source: one id, one style.
        assert len(by_text["Wren"]) == 1 and len(by_text["2019"]) == 1
        assert {css for css, _ in by_text["240"]} == {"term"}
        assert {css for css, _ in by_text["420"]} == {"term absent"}  # never in the source
        assert "(not in the source)" in page

    @pytest.mark.parametrize("aid", AIDS)
    def test_each_aid_off_removes_it(self, client, annotator, aid):
        on = {"aid_paragraph_numbers": True, "aid_highlights": True, "aid_word_diff": True}
        page = judging_page(client, hostile_batch(), annotator, **{**on, aid: False})
        gone = {
            "aid_paragraph_numbers": 'class="para-no"',
            "aid_highlights": '<mark class="term',
            "aid_word_diff": 'id="word-diff"',
        }
        for name, marker in gone.items():
            assert (marker in page) == (name != aid), name
        if aid == "aid_highlights":
            assert 'id="mark-status"' not in page and 'data-term="' not in page

    def test_all_off_shows_the_plain_texts(self, client, annotator):
        off = dict.fromkeys(AIDS, False)
        page = judging_page(client, hostile_batch(), annotator, **off)
        assert "<mark" not in page and "para-no" not in page and "aids-bar" not in page
        assert "<p>First paragraph.</p>" in page

    @pytest.mark.parametrize("aids_on", [True, False])
    def test_the_key_help_names_every_key_the_page_answers(self, client, annotator, aids_on):
        from evaluation.criteria import PAGE_KEYS

        page = judging_page(client, hostile_batch(), annotator, **dict.fromkeys(AIDS, aids_on))
        help_text = re.search(r'id="key-help">(.*?)</span>', page, re.S).group(1)
        named = {k.lower() for k in re.findall(r"<kbd>(?:Shift\+)?([^<]+)</kbd>", help_text)}
        aid_actions = {"next_mark", "previous_mark", "word_diff"}
        for action, key in PAGE_KEYS.items():
            if action == "submit":  # on the Submit button itself
                continue
            assert (key.lower() in named) == (aids_on or action not in aid_actions), action

    def test_the_aids_cost_no_query(self, client, annotator, django_assert_max_num_queries):
        batch = hostile_batch()
        judging_page(client, batch, annotator, **dict.fromkeys(AIDS, False))
        url = reverse("assignment", args=[Assignment.objects.get(annotator=annotator).pk])
        with django_assert_max_num_queries(50) as plain:
            client.get(url)
        Batch.objects.filter(pk=batch.pk).update(**dict.fromkeys(AIDS, True))
        with django_assert_max_num_queries(50) as aided:
            client.get(url)
        assert len(aided.captured_queries) == len(plain.captured_queries)


@pytest.mark.django_db
class TestAidSettings:
    def test_the_settings_form_saves_each_aid(self, client, admin_user, batch, monkeypatch):
        from scoring.tasks import score_rouge

        monkeypatch.setattr(score_rouge, "delay", lambda *a: None)
        client.force_login(admin_user)
        data = settings_form(batch, aid_word_diff="on")
        del data["aid_paragraph_numbers"], data["aid_highlights"]  # unticked: not sent
        response = client.post(reverse("batch_manage", args=[batch.pk]), data)
        assert response.status_code == 302
        batch.refresh_from_db()
        assert (batch.aid_paragraph_numbers, batch.aid_highlights, batch.aid_word_diff) == (
            False,
            False,
            True,
        )

    def test_the_form_names_them(self, batch):
        form = BatchSettingsForm(instance=batch)
        assert form.fields["aid_highlights"].label == "Reading aid: highlight numbers and names"
        assert {"aid_paragraph_numbers", "aid_word_diff"} <= set(form.fields)


@pytest.mark.django_db
class TestAidsInTheMethods:
    def test_the_paragraph_names_the_aids_the_batch_had(self, batch):
        text = " ".join("".join(export(batch, "methods", "txt")).split())
        assert (
            "Annotators had these reading aids: paragraph numbers in the source; the numbers"
            in text
        )
        assert "word-level" not in text  # off by default
        Batch.objects.filter(pk=batch.pk).update(**dict.fromkeys(AIDS, False))
        batch.refresh_from_db()
        text = " ".join("".join(export(batch, "methods", "txt")).split())
        assert "Annotators had no reading aids (plain source and summaries)." in text

    def test_pooled_batches_with_different_aids_say_so(self):
        facts = methods.MethodsFacts.__new__(methods.MethodsFacts)
        facts.aids = [(), ("paragraph numbers in the source",)]
        assert methods.reading_aids(facts) == (
            "The reading aids differed between the pooled batches: (no reading aids) / "
            "(paragraph numbers in the source)."
        )
