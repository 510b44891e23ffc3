from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe

from ..markup import render_markdown

register = template.Library()


@register.filter
def markdown(text: str) -> SafeString:
    """Markdown to sanitised HTML (evaluation.markup)."""
    return mark_safe(render_markdown(text or ""))  # sanitised by nh3
