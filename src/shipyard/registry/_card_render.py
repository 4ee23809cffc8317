"""A model card's sections as plain blocks, and the two ways to write them: Markdown, HTML.

The sections hold text as it was recorded (names, descriptions, notes typed by people);
each writer escapes it for its format, so a ``<script>`` in a description stays text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

from shipyard.contracts._html import CSS as BASE_CSS


@dataclass(frozen=True)
class Fields:
    """Labelled values, one per line."""

    items: Sequence[tuple[str, str]]


@dataclass(frozen=True)
class Table:
    """Rows under a head; a head name starting with "#" is a column of numbers."""

    head: Sequence[str]
    rows: Sequence[Sequence[str]]
    caption: str = ""


@dataclass(frozen=True)
class Text:
    """A paragraph."""

    text: str
    quiet: bool = False


@dataclass(frozen=True)
class Code:
    """Text to copy as it is: a command, parameters."""

    text: str


@dataclass(frozen=True)
class Verdict:
    """A headline in a coloured box: passed (True), failed (False) or neither (None)."""

    passed: bool | None
    text: str


Block = Fields | Table | Text | Code | Verdict


@dataclass(frozen=True)
class Section:
    """A titled part of the card."""

    title: str
    blocks: Sequence[Block] = field(default_factory=tuple)


# -- Markdown ------------------------------------------------------------------------------

# Emphasis, code, links, table cells, and "<" where it could open an HTML tag; "#" only
# opens a heading at the start of a line, where recorded text may stand.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|]|<(?=[A-Za-z/!?])|^#)")


def markdown(title: str, sections: Sequence[Section]) -> str:
    """The card as CommonMark with GitHub tables."""
    parts = [f"# {_md(title)}"]
    for section in sections:
        parts.append(f"## {_md(section.title)}")
        parts.extend(_md_block(block) for block in section.blocks)
    return "\n\n".join(parts) + "\n"


def _md_block(block: Block) -> str:
    if isinstance(block, Fields):
        return "\n".join(f"- **{_md(name)}:** {_md(value)}" for name, value in block.items)
    if isinstance(block, Table):
        return _md_table(block)
    if isinstance(block, Code):
        fence = "````" if "```" in block.text else "```"
        return f"{fence}\n{block.text}\n{fence}"
    if isinstance(block, Verdict):
        return f"> **{_md(block.text)}**"
    return f"*{_md(block.text)}*" if block.quiet else _md(block.text)


def _md_table(table: Table) -> str:
    names = [name.removeprefix("#") for name in table.head]
    rule = ["---:" if name.startswith("#") else "---" for name in table.head]
    lines = [_md_row(names), "| " + " | ".join(rule) + " |"]
    lines += [_md_row(row) for row in table.rows]
    caption = f"\n\n*{_md(table.caption)}*" if table.caption else ""
    return "\n".join(lines) + caption


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(_md(cell) for cell in cells) + " |"


def _md(text: str) -> str:
    """Recorded text as Markdown that shows it literally, on one line."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


# -- HTML ----------------------------------------------------------------------------------

CSS = (
    BASE_CSS
    + """
section.card { margin-bottom: 8px; }
section.card table { margin: 10px 0; }
pre { background: var(--soft); border: 1px solid var(--line); border-radius: 6px;
  padding: 10px 14px; overflow-x: auto; }
p.caption { color: var(--muted); font-size: 13px; margin: 2px 0 12px; }
"""
)


def html(title: str, sections: Sequence[Section]) -> str:
    """The card as one HTML page: inline CSS, no script, nothing to fetch."""
    body = "".join(_html_section(section) for section in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head>"
        f"<body><main><h1>{_e(title)}</h1>{body}</main></body></html>\n"
    )


def _html_section(section: Section) -> str:
    blocks = "".join(_html_block(block) for block in section.blocks)
    return f'<section class="card"><h2>{_e(section.title)}</h2>{blocks}</section>'


def _html_block(block: Block) -> str:
    if isinstance(block, Fields):
        items = "".join(f"<dt>{_e(name)}</dt><dd>{_e(value)}</dd>" for name, value in block.items)
        return f'<dl class="meta">{items}</dl>'
    if isinstance(block, Table):
        return _html_table(block)
    if isinstance(block, Code):
        return f"<pre><code>{_e(block.text)}</code></pre>"
    if isinstance(block, Verdict):
        tone = {True: "ok", False: "fail", None: "warn"}[block.passed]
        return f'<div class="verdict {tone}"><h3 class="{tone}">{_e(block.text)}</h3></div>'
    return f'<p class="quiet">{_e(block.text)}</p>' if block.quiet else f"<p>{_e(block.text)}</p>"


def _html_table(table: Table) -> str:
    numeric = [name.startswith("#") for name in table.head]
    head = "".join(
        f'<th class="num">{_e(name[1:])}</th>' if number else f"<th>{_e(name)}</th>"
        for name, number in zip(table.head, numeric, strict=True)
    )
    rows = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{_e(cell)}</td>' if number else f"<td>{_e(cell)}</td>"
            for cell, number in zip(row, numeric, strict=True)
        )
        + "</tr>"
        for row in table.rows
    )
    caption = f'<p class="caption">{_e(table.caption)}</p>' if table.caption else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>{caption}"


def _e(text: str) -> str:
    return escape(str(text), quote=True)
