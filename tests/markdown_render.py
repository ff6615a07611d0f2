"""Markdown as a reader of GitHub sees it: rendered by a CommonMark parser with GFM tables
(markdown-it-py), then reduced to the text a browser shows and a reader can see without
opening anything: no comments (an unclosed one hides the rest of the page, as in a browser),
no collapsed ``<details>`` beyond their summary, nothing in a code block (that is code, not a
section of the page), no script or style.
"""

from __future__ import annotations

from html.parser import HTMLParser

from markdown_it import MarkdownIt

_RENDERER = MarkdownIt("commonmark").enable(["table", "strikethrough"])
HIDING = {"pre", "script", "style", "template", "textarea", "title"}


class _Visible(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden: list[str] = []  # open elements that hide their text

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in HIDING or tag == "details":
            self.hidden.append(tag)
        elif tag == "summary" and self.hidden[-1:] == ["details"]:
            self.hidden.append("summary")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.hidden:
            while self.hidden and self.hidden.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        if not self.hidden or self.hidden[-1] == "summary":
            self.parts.append(data)


def visible_text(markdown: str) -> str:
    """The text of ``markdown`` a reader sees, whitespace collapsed to single spaces."""
    html = _RENDERER.render(markdown)
    if html.rfind("<!--") > html.rfind("-->"):  # a browser hides an unclosed comment to the end
        html = html[: html.rfind("<!--")]
    parser = _Visible()
    parser.feed(html)
    parser.close()
    return " ".join(" ".join(parser.parts).split())
