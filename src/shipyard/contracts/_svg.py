"""Small inline SVG charts of a column's profile (see ``_profile``): no script, no links."""

from __future__ import annotations

import datetime as dt
import math
from html import escape
from typing import Any

WIDTH = 360
PLOT_HEIGHT = 96
TOP = 14  # room for the label above the bars
LABEL_WIDTH = 150
BAR_ROW = 20
BAR_AREA = 160


def figure(profile: dict[str, Any], flagged: frozenset[str], rows_in: int) -> str:
    """The chart with a caption that says what it counts and what it leaves out."""
    caption = _caption(profile, rows_in)
    if flagged and profile.get("kind") != "numeric":
        caption += " ✗ marks a value seen in a failing row."
    return f"<figure>{chart(profile, flagged)}<figcaption>{escape(caption)}</figcaption></figure>"


def _caption(profile: dict[str, Any], rows_in: int) -> str:
    rows, nulls = int(profile.get("rows", 0)), int(profile.get("nulls", 0))
    if profile.get("kind") == "numeric":
        text = f"Distribution of {rows - nulls:,} values in 20 bins"
        unit = str(profile.get("unit") or "")
        if unit:
            text += " (times in UTC)" if unit.startswith("epoch") else f" ({unit})"
        if profile.get("nonfinite"):
            text += f"; {profile['nonfinite']:,} NaN or infinite not shown"
    else:
        shown = len(profile.get("top") or [])
        text = f"The {shown} commonest of {profile.get('distinct', shown):,} distinct values"
    text += f"; {nulls:,} null."
    if rows < rows_in:
        text += f" From the first {rows:,} of {rows_in:,} rows."
    return text


def chart(profile: dict[str, Any], flagged: frozenset[str] = frozenset()) -> str:
    """The chart of one profile: a histogram of numbers, or bars of the commonest values
    (those whose ``value_label`` is in ``flagged`` marked as failing)."""
    if profile.get("kind") == "numeric":
        return histogram(profile)
    return bars(profile, flagged)


def histogram(profile: dict[str, Any]) -> str:
    """A 20-bin histogram; a non-empty bin is always visible, however small."""
    edges: list[float] = profile.get("edges") or []
    counts: list[int] = profile.get("counts") or []
    if not counts or len(edges) != len(counts) + 1:
        return _empty("no values to plot")
    unit = profile.get("unit")
    tallest = max(counts) or 1
    step = WIDTH / len(counts)
    parts = []
    for index, count in enumerate(counts):
        height = 0.0 if count == 0 else max(2.0, PLOT_HEIGHT * count / tallest)
        low, high = label(edges[index], unit), label(edges[index + 1], unit)
        parts.append(
            f'<rect class="bin" x="{index * step + 1:.1f}" y="{TOP + PLOT_HEIGHT - height:.1f}" '
            f'width="{step - 2:.1f}" height="{height:.1f}">'
            f"<title>{escape(low)} to {escape(high)}: {count:,} rows</title></rect>"
        )
    base = TOP + PLOT_HEIGHT
    axis = (
        f'<line class="axis" x1="0" y1="{base + 0.5}" x2="{WIDTH}" y2="{base + 0.5}"/>'
        f'<text x="0" y="{base + 14}">{escape(label(edges[0], unit))}</text>'
        f'<text x="{WIDTH}" y="{base + 14}" text-anchor="end">'
        f"{escape(label(edges[-1], unit))}</text>"
        f'<text class="peak" x="0" y="10">tallest bin: {tallest:,} rows</text>'
    )
    return _svg(WIDTH, base + 20, "histogram", "".join(parts) + axis)


def bars(profile: dict[str, Any], flagged: frozenset[str] = frozenset()) -> str:
    """Horizontal bars of the commonest values, then the rest and the nulls."""
    rows: list[tuple[str, int, str]] = [
        (value_label(value), int(count), "bar") for value, count in profile.get("top") or []
    ]
    if profile.get("other"):
        rows.append(
            (
                f"other ({profile.get('distinct', 0) - len(rows):,} values)",
                int(profile["other"]),
                "bar rest",
            )
        )
    if profile.get("nulls"):
        rows.append(("null", int(profile["nulls"]), "bar rest"))
    rows = [
        (f"✗ {text}", count, "bar bad") if text in flagged else (text, count, css)
        for text, count, css in rows
    ]
    if not rows:
        return _empty("no values to plot")
    widest = max(count for _, count, _ in rows) or 1
    parts = [_bar(i, text, count, css, widest) for i, (text, count, css) in enumerate(rows)]
    return _svg(WIDTH, len(rows) * BAR_ROW, "bar chart", "".join(parts))


def _bar(index: int, text: str, count: int, css: str, widest: int) -> str:
    y = index * BAR_ROW
    width = 0.0 if count == 0 else max(2.0, BAR_AREA * count / widest)
    shown = text if len(text) <= 24 else text[:23] + "…"
    return (
        f'<text x="{LABEL_WIDTH - 6}" y="{y + 14}" text-anchor="end">{escape(shown)}'
        f"<title>{escape(text)}</title></text>"
        f'<rect class="{css}" x="{LABEL_WIDTH}" y="{y + 3}" width="{width:.1f}" height="14">'
        f"<title>{escape(text)}: {count:,} rows</title></rect>"
        f'<text x="{LABEL_WIDTH + width + 5:.1f}" y="{y + 14}">{count:,}</text>'
    )


def value_label(value: Any) -> str:
    """How a category reads in a chart: the empty text and null are named."""
    if value is None:
        return "null"
    if value == "":
        return "(empty text)"
    return str(value)


def label(value: float, unit: str | None) -> str:
    """An axis number: a date and time for epoch seconds, short otherwise."""
    if unit is not None and unit.startswith("epoch"):
        try:
            moment = dt.datetime.fromtimestamp(value, tz=dt.UTC)
        except (OverflowError, OSError, ValueError):
            return f"{value:.6g} s"
        return moment.strftime("%Y-%m-%d %H:%M")
    suffix = " s" if unit is not None else ""
    return _number(value) + suffix


def _number(value: float) -> str:
    size = abs(value)
    if not math.isfinite(value) or size >= 1e6 or 0 < size < 1e-3:
        return f"{value:.3g}"
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.1f}" if size >= 100 else f"{value:.4g}"


def _empty(text: str) -> str:
    return _svg(WIDTH, 24, text, f'<text x="0" y="16" class="none">{escape(text)}</text>')


def _svg(width: int, height: int, title: str, body: str) -> str:
    return (
        f'<svg class="chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{escape(title)}</title>{body}</svg>'
    )
