"""The criteria annotators judge, defined once.

Everything that enumerates criteria reads `CRITERIA`: the schema (the judgment's choices, the
assignment's verdict-code columns and their constraint), the admins' check form, the judging
page and its keyboard map (rendered into the page as data), the analysis and the exports.
Adding a criterion is one entry here and a migration.

Verdicts are in SYSTEM terms and coded A better = -1, equal = 0, B better = +1, so that "+1"
always means "B better than A", wherever a number stands for a verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

# The three answers of every criterion, in the order they stand on screen.
SHOWN_CHOICES = ("left", "equal", "right")
VERDICT_CODES = {"A": -1, "equal": 0, "B": 1}
VERDICT_NAMES = {code: name for name, code in VERDICT_CODES.items()}


@dataclass(frozen=True)
class CriterionSpec:
    key: str
    label: str
    definition: str
    # The keys answering left better / equal / right better, in SHOWN_CHOICES order.
    keys: tuple[str, str, str]

    @property
    def verdict_column(self) -> str:
        """The assignment's column holding this criterion's verdict code."""
        return f"verdict_{self.key}"

    def key_map(self) -> dict[str, tuple[str, str]]:
        """keyboard key -> (criterion, shown answer)."""
        return {k: (self.key, shown) for k, shown in zip(self.keys, SHOWN_CHOICES, strict=True)}


CRITERIA: tuple[CriterionSpec, ...] = (
    CriterionSpec(
        "factual",
        "Factual consistency",
        "Which summary states only what the source supports: no wrong names, numbers or claims?",
        ("q", "w", "e"),
    ),
    CriterionSpec(
        "informative",
        "Informativeness",
        "Which summary conveys more of the source's most important information?",
        ("a", "s", "d"),
    ),
    CriterionSpec(
        "grammatical",
        "Grammaticality",
        "Which summary is more fluent and grammatical, whatever it says?",
        ("z", "x", "c"),
    ),
)
KEYS: tuple[str, ...] = tuple(c.key for c in CRITERIA)
BY_KEY: dict[str, CriterionSpec] = {c.key: c for c in CRITERIA}


# The judging page's other keys, action -> key (as `KeyboardEvent.key`, lower case; a capital
# means the key with Shift). None may answer a criterion: `page_keys` refuses a clash.
PAGE_KEYS: dict[str, str] = {
    "submit": "enter",
    "skip": "k",
    "report": "r",
    "guidelines": "g",
    "undo": "u",
    "next_mark": "n",
    "previous_mark": "N",
    "word_diff": "v",
}


def page_keys() -> dict[str, str]:
    """The page's non-answering keys, action -> key, checked against the answering keys."""
    answering = set(keyboard_map())
    clash = sorted(k for k in PAGE_KEYS.values() if k.lower() in answering)
    if clash:
        raise ValueError(f"keys {clash} both answer a criterion and do something else")
    if len(set(PAGE_KEYS.values())) != len(PAGE_KEYS):
        raise ValueError("two page actions share a key")
    return dict(PAGE_KEYS)


def keyboard_map() -> dict[str, tuple[str, str]]:
    """Every answering key of the judging page -> (criterion, shown answer)."""
    keys: dict[str, tuple[str, str]] = {}
    for criterion in CRITERIA:
        clash = set(keys) & set(criterion.keys)
        if clash:
            raise ValueError(f"keys {sorted(clash)} answer two criteria")
        keys.update(criterion.key_map())
    return keys
