"""Guidelines are Markdown rendered, then sanitised: hostile input never reaches a browser."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.urls import reverse

from evaluation.markup import render_markdown, sanitise

HOSTILE = [
    "<script>alert(1)</script>",
    "<style>body { display: none }</style>",
    '<img src="x" onerror="alert(1)">',
    '<a href="javascript:alert(1)" onclick="alert(2)">x</a>',
    "[click](javascript:alert(1))",
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "<javascript:alert(1)>",
    '<div style="position:fixed;inset:0">cover</div>',
    "<svg><script>alert(1)</script></svg>",
    '<iframe src="https://example.org"></iframe>',
    "**bold** <b onmouseover=alert(1)>b</b>",
]


class Elements(HTMLParser):
    """Every element and attribute a browser would build from the HTML."""

    def __init__(self):
        super().__init__()
        self.found: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))


def elements(html: str) -> list[tuple[str, dict]]:
    parser = Elements()
    parser.feed(html)
    return parser.found


def assert_harmless(html: str) -> None:
    for tag, attrs in elements(html):
        assert tag not in {"script", "style", "iframe", "svg", "img", "div"}, html
        assert not any(name.startswith("on") or name == "style" for name in attrs), html
        href = attrs.get("href")
        assert href is None or href.startswith(("http://", "https://", "mailto:")), html


class TestRenderMarkdown:
    def test_it_renders_markdown(self):
        html = render_markdown("# Rules\n\n**Read** the _source_ first.\n\n- one\n- two")
        assert [tag for tag, _ in elements(html)] == ["h2", "p", "strong", "em", "ul", "li", "li"]

    def test_headings_start_at_h2_because_each_page_has_its_own_h1(self):
        tags = [tag for tag, _ in elements(render_markdown("# a\n\n## b\n\n###### c"))]
        assert tags == ["h2", "h3", "h6"]
        tags = [tag for tag, _ in elements(render_markdown("## a\n\n### b"))]
        assert tags == ["h2", "h3"]  # never a skipped level below the page's h1

    @pytest.mark.parametrize("text", HOSTILE)
    def test_hostile_input_never_survives(self, text):
        assert_harmless(render_markdown(text))

    @pytest.mark.parametrize("text", HOSTILE)
    def test_the_sanitiser_alone_stops_hostile_html(self, text):
        # The second line of defence, should the parser ever let raw HTML through.
        assert_harmless(sanitise(text))

    def test_safe_links_keep_working_and_open_nothing_with_the_opener(self):
        [attrs] = [
            a
            for tag, a in elements(render_markdown("[guide](https://example.org/g)"))
            if tag == "a"
        ]
        assert attrs["href"] == "https://example.org/g"
        assert "noopener" in attrs["rel"]


@pytest.mark.django_db
class TestGuidelinesPages:
    def test_the_guidelines_page_and_the_judging_dialog_render_markdown(
        self, client, annotator, batch
    ):
        from evaluation.models import Assignment, Batch

        batch.status = Batch.Status.OPEN
        batch.guidelines = "## Factual\n\n**Always** check numbers.<script>alert(1)</script>"
        batch.save()
        batch.annotators.add(annotator)
        client.force_login(annotator)
        page = client.get(reverse("guidelines", args=[batch.pk])).content.decode()
        assert "<h2>Factual</h2>" in page and "<strong>Always</strong>" in page
        assert "**" not in page and "<script>alert" not in page
        client.get(reverse("annotate", args=[batch.pk]) + "?start")
        item = Assignment.objects.get()
        judging = client.get(reverse("assignment", args=[item.pk])).content.decode()
        assert "<strong>Always</strong>" in judging and "<script>alert" not in judging
