"""The reading aids as data: paragraphs, the summaries' numbers and names found in the source,
the word-level difference; each checked against examples worked out by hand."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from evaluation.aids import reading_aids, split_paragraphs, word_diff

SOURCE = (
    "The BBC said £2.5m was paid in 2019 to Ana Lopes. Lopes said 21 people and 1.5 more came."
    "\n\nIn 2019 ana lopes spoke again."
)
LEFT = "Ana Lopes got £2.5m in 2019."
RIGHT = "The BBC paid Ana Lopes £3m in 2018, said Mr Wren."


def marked(paragraph) -> list[tuple[str, str]]:
    return [(s.text, s.mark) for s in paragraph if s.mark]


class TestParagraphs:
    def test_it_splits_at_blank_lines(self):
        assert split_paragraphs("One.\n\nTwo\nstill two.\n\n\n  Three.  ") == [
            "One.",
            "Two\nstill two.",
            "Three.",
        ]

    def test_single_line_breaks_split_when_there_is_no_blank_line(self):
        assert split_paragraphs("One.\nTwo.\nThree.") == ["One.", "Two.", "Three."]

    def test_a_long_unbroken_source_is_cut_at_sentence_ends_three_a_paragraph(self):
        sentences = [f"Mr. Wren said {n} things in the U.S. Senate today." for n in range(10)]
        parts = split_paragraphs(" ".join(sentences * 4))
        assert len(parts) == 14  # 40 sentences, 3 a paragraph ("Mr." and "U.S." cut nothing)
        assert parts[0] == " ".join(sentences[:3])

    def test_a_short_unbroken_source_stays_one_paragraph(self):
        assert split_paragraphs("One. Two. Three.") == ["One. Two. Three."]


class TestTerms:
    def test_numbers_and_names_of_both_summaries_one_list(self):
        aids = reading_aids(SOURCE, LEFT, RIGHT)
        found = {t.text: (t.kind, t.in_source) for t in aids.terms}
        # By hand: "£2.5m" once; "2019" twice; "Ana Lopes" twice (the second lowercased);
        # "BBC" once; "£3m", "2018" and "Wren" never ("The" and "Mr" are no names).
        assert found == {
            "£2.5m": ("number", 1),
            "2019": ("number", 2),
            "Ana Lopes": ("name", 2),
            "£3m": ("number", 0),
            "2018": ("number", 0),
            "BBC": ("name", 1),
            "Wren": ("name", 0),
        }

    def test_the_source_is_marked_at_word_boundaries_only(self):
        aids = reading_aids("In 2019, 12019 and 2019.5 and 20190 were not 2019.", "In 2019.", "")
        assert [s.text for p in aids.paragraphs for s in p if s.mark] == ["2019", "2019"]

    def test_a_number_never_matches_inside_another(self):
        aids = reading_aids("It took 1.5 hours, 21 days, 0.1 s and 1 minute.", "1 minute", "x")
        assert [s.text for p in aids.paragraphs for s in p if s.mark] == ["1"]

    def test_the_same_term_has_the_same_mark_on_both_sides(self):
        aids = reading_aids(SOURCE, LEFT, RIGHT)
        left = dict(marked(aids.left[0]))
        right = dict(marked(aids.right[0]))
        assert left["Ana Lopes"] == right["Ana Lopes"]
        assert {s.mark for p in aids.paragraphs for s in p if s.text.lower() == "ana lopes"} == {
            left["Ana Lopes"]
        }

    def test_terms_the_source_never_states_are_marked_absent(self):
        aids = reading_aids(SOURCE, LEFT, RIGHT)
        absent = {s.text for s in aids.right[0] if s.absent}
        assert absent == {"£3m", "2018", "Wren"}
        assert not any(s.absent for s in aids.left[0])
        assert not any(s.absent for p in aids.paragraphs for s in p)

    def test_a_lowercased_summary_takes_its_names_from_the_source(self):
        source = "Police in Mexico City said Carlos Slim was there. He left at 9pm."
        aids = reading_aids(source, "carlos slim was in mexico city .", "he left .")
        assert {t.text for t in aids.terms} == {"Mexico City", "Carlos Slim"}

    def test_tokenised_amounts_match_the_source(self):
        aids = reading_aids("He paid $5 million and 43% tax.", "he paid $ 5 million .", "43 %")
        assert [s.text for p in aids.paragraphs for s in p if s.mark] == ["$5 million", "43%"]

    def test_no_highlights_marks_nothing(self):
        aids = reading_aids(SOURCE, LEFT, RIGHT, highlights=False)
        assert aids.terms == []
        assert all(not s.mark for p in aids.paragraphs + aids.left + aids.right for s in p)

    def test_the_text_is_kept_whole(self):
        aids = reading_aids(SOURCE, LEFT, RIGHT, diff=True)
        assert "".join(s.text for s in aids.left[0]) == LEFT
        assert "".join(s.text for s in aids.right[0]) == RIGHT
        assert "".join(s.text for s in aids.diff_right) == RIGHT
        assert [("".join(s.text for s in p)) for p in aids.paragraphs] == split_paragraphs(SOURCE)


class TestWordDiff:
    def test_it_marks_the_words_the_other_summary_lacks_on_both_sides(self):
        left, right = word_diff("The mayor opened a bridge on Monday.", "The mayor shut a bridge.")
        assert [s.text for s in left if s.kind] == ["opened", "on Monday."]
        assert [s.text for s in right if s.kind] == ["shut"]  # "bridge." is "bridge"

    def test_case_is_ignored_and_spacing_kept(self):
        left, right = word_diff("the  Mayor said", "The mayor  said")
        assert not any(s.kind for s in left + right)
        assert "".join(s.text for s in left) == "the  Mayor said"


FRANK = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "frank"


class TestOnRealArticles:
    def test_every_frank_pair_keeps_its_text_and_counts_what_it_marks(self):
        path = FRANK / "frank_seed_articles.jsonl"
        if not path.exists():
            pytest.skip(f"{path} is absent (the shared FRANK data)")
        rows = [json.loads(line) for line in path.open(encoding="utf-8")][:120]
        for row in rows:
            left, right = list(row["summaries"].values())[:2]
            aids = reading_aids(row["article"], left, right, diff=True)
            source = split_paragraphs(row["article"])
            assert ["".join(s.text for s in p) for p in aids.paragraphs] == source
            assert " ".join("".join(s.text for s in p) for p in aids.left) == " ".join(
                split_paragraphs(left)
            )
            assert "".join(s.text for s in aids.diff_right) == right
            marks = [s for p in aids.paragraphs for s in p if s.mark]
            for term in aids.terms:
                # An independent count: the term's own words, case folded, at word boundaries.
                words = r"\s*".join(re.escape(w) for w in term.text.lower().split())
                found = re.findall(
                    rf"(?<!\w)(?<!\d[.,]){words}(?!\w)(?![.,]\d)", row["article"].lower()
                )
                assert term.in_source == sum(m.mark == term.id for m in marks) <= len(found)
