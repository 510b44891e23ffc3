from __future__ import annotations

from django import template

register = template.Library()
UNDEFINED = "–"


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


@register.filter
def percent(value: object, digits: int = 1) -> str:
    """0.6123 -> "61.2%"; anything undefined (None, missing, NaN) -> an en dash, never a number."""
    return f"{100 * value:.{digits}f}%" if _is_number(value) else UNDEFINED


@register.filter
def pvalue(value: object) -> str:
    if not _is_number(value):
        return UNDEFINED
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


@register.filter
def number(value: object, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if _is_number(value) else UNDEFINED
