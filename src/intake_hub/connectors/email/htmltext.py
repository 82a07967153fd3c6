"""HTML mail bodies as plain text: scripts and styles dropped, blocks as lines; pure."""

from __future__ import annotations

import re
from html.parser import HTMLParser

_SKIP = frozenset({"script", "style", "head", "title", "template", "noscript"})
_BLOCK = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt",
        "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "ol", "p",
        "pre", "section", "table", "td", "th", "tr", "ul",
    }
)  # fmt: skip
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")


class _Text(HTMLParser):
    """Collects the visible text; lines inside <blockquote> are marked `> ` as quoted."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = [""]
        self.skipping = 0
        self.quoted = 0

    def _break(self) -> None:
        if self.lines[-1].strip(" >"):
            self.lines.append("")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Open a block (a new line) or start skipping invisible content."""
        if tag in _SKIP:
            self.skipping += 1
        elif tag in _BLOCK:
            self._break()
            if tag == "blockquote":
                self.quoted += 1
            elif tag == "li":
                self.handle_data("- ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """`<br/>` and `<hr/>` break the line."""
        if tag in _BLOCK:
            self._break()

    def handle_endtag(self, tag: str) -> None:
        """Close a block or a skipped element."""
        if tag in _SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCK:
            self._break()
            if tag == "blockquote":
                self.quoted = max(0, self.quoted - 1)

    def handle_data(self, data: str) -> None:
        """Visible text, spaces collapsed as a browser shows them."""
        if self.skipping:
            return
        text = _SPACES.sub(" ", data.replace("\n", " "))
        if not text.strip() and not self.lines[-1]:
            return
        if not self.lines[-1] and self.quoted:
            self.lines[-1] = "> " * self.quoted
        self.lines[-1] += text


def html_to_text(html: str) -> str:
    """The text a reader sees in `html`, one block per line, at most one blank line."""
    parser = _Text()
    parser.feed(html)
    parser.close()
    text = "\n".join(line.strip() for line in parser.lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
