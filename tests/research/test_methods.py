"""The methods paragraph's design sentence says how long a submission could still be changed."""

from __future__ import annotations

from research import methods
from tests.crowd.test_methods import _blank_facts


def design_with(undo_minutes: list[int]) -> str:
    facts = {**_blank_facts(), "criteria": ["Fluency"], "undo_minutes": undo_minutes}
    return methods.design(methods.MethodsFacts(**facts))


class TestUndoClause:
    def test_it_gives_the_undo_window(self):
        text = design_with([2])
        assert "right better; annotators could change their latest submission within 2 min" in text
        assert text.endswith("of submitting it.")

    def test_it_says_nothing_without_undo(self):
        assert design_with([0]).endswith("each answered as left better, equal, or right better.")
        assert design_with([]).endswith("right better.")

    def test_pooled_batches_give_the_range_and_say_where_some_had_none(self):
        assert "within 2 to 5 min of submitting it." in design_with([2, 5])
        assert "within 2 min of submitting it where the batch allowed it." in design_with([0, 2])
