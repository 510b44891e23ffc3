"""Guidelines as annotators read them: Markdown rendered, then sanitised.

Researchers write the guidelines; annotators' browsers run what they contain. So raw HTML is
escaped by the Markdown parser, and what it produces goes through an allowlist sanitiser
anyway (nh3): no script, style, event attribute or javascript: link survives either way.
The top heading level becomes h2: each page has its own h1.
"""

from __future__ import annotations

from functools import lru_cache

import nh3
from markdown_it import MarkdownIt

ALLOWED_TAGS = {
    *("p", "br", "hr", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "code"),
    *("ul", "ol", "li", "strong", "em", "del", "a"),
    *("table", "thead", "tbody", "tr", "th", "td"),
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}

_parser = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


def _markdown_html(text: str) -> str:
    tokens = _parser.parse(text)
    headings = [t for t in tokens if t.type in ("heading_open", "heading_close")]
    # The guidelines' top heading level becomes h2, whichever the author started from.
    shift = 2 - min((int(t.tag[1]) for t in headings), default=2)
    for token in headings:
        token.tag = f"h{min(int(token.tag[1]) + shift, 6)}"
    return _parser.renderer.render(tokens, _parser.options, {})


def sanitise(html: str) -> str:
    """Only the allowlisted tags and attributes; links only to http(s) and mailto."""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
    )


@lru_cache(maxsize=64)
def render_markdown(text: str) -> str:
    """Safe HTML for a researcher's Markdown (cached: the judging page shows it every time)."""
    return sanitise(_markdown_html(text))
