"""Model text made inert before it goes into Markdown the bot posts (PR bodies, comments, job summaries).

A model's summary ending in ``<!--`` would turn everything after it into an HTML comment, an
unclosed ``<details>`` would fold the bot's file list away, and an unclosed code fence would
turn the receipt into code. So, in model text: every raw HTML construct (what CommonMark reads
as an HTML block or inline HTML, found with markdown-it-py, the parser the task reader uses)
has its ``<`` written as ``&lt;`` and shows as text; a fence left open is closed; and the
result is quoted (every line under ``>``), so it reads as quoted model text and whatever it
leaves open ends with the quote. Code (fences, indented blocks, code spans) keeps its ``<``.
"""

from __future__ import annotations

import re

from markdown_it import MarkdownIt

_PARSER = MarkdownIt("commonmark").enable(["table", "strikethrough"])


def neutralise(text: str) -> str:
    """``text`` with its raw HTML shown as text and every code fence closed."""
    lines = text.split("\n")
    html_lines: set[int] = set()
    code_lines: set[int] = set()
    inline_html: list[tuple[int, int, str]] = []
    closes: list[str] = []
    for token in _PARSER.parse(text):
        if token.map is None:
            continue
        start, end = token.map
        if token.type == "html_block":
            html_lines.update(range(start, end))
        elif token.type == "inline":
            inline_html += [(start, end, child.content) for child in token.children or () if child.type == "html_inline"]
        elif token.type in ("fence", "code_block"):
            code_lines.update(range(start, end))
            if token.type == "fence" and token.level == 0 and not _closes(lines[end - 1] if end - 1 > start else "", token.markup):
                closes.append(token.markup)  # left open, it would run to the end of the document
    for index in html_lines:
        lines[index] = lines[index].replace("<", "&lt;")
    for index in set(range(len(lines))) - code_lines:  # a comment opener is text anywhere else, a code span too
        lines[index] = lines[index].replace("<!--", "&lt;!--")
    for start, end, tag in inline_html:  # every copy in the block, a code span's too: shown, never live
        block = "\n".join(lines[start:end]).replace(tag, "&lt;" + tag[1:]).split("\n")
        lines[start:end] = block
    return "\n".join(lines + closes[-1:])


def _closes(line: str, markup: str) -> bool:
    """Whether ``line`` closes a fence opened with ``markup`` (the same character, at least as many)."""
    return re.fullmatch(rf"[ >\t]*{re.escape(markup[0])}{{{len(markup)},}}[ \t]*", line) is not None


def quote(text: str) -> str:
    """``text`` neutralised and quoted: every line under ``>``."""
    return "\n".join(f"> {line}" if line.strip() else ">" for line in neutralise(text).split("\n"))


def unquote(text: str) -> str:
    """What ``quote`` quoted, back without the ``>`` (the text stays neutralised)."""
    return "\n".join(re.sub(r"^>[ ]?", "", line) for line in text.split("\n"))
