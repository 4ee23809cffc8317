"""Small inline SVG charts for the evaluation report: lines, horizontal bars, calibration.

No script and no links; every text is escaped, and a chart with nothing to draw says
"no data". A point holding None or NaN breaks its line instead of the chart.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from itertools import groupby
from typing import Any

Point = Sequence[Any]
"""An ``[x, y]`` pair; a pair that is not two finite numbers is skipped."""

WIDTH, HEIGHT = 440, 280
LEFT, RIGHT, TOP, BOTTOM = 60, 16, 46, 44  # room for tick labels, title and legend
COLORS = ("#4a79c7", "#c2410c", "#1a7f37", "#8250df", "#b08800")
MUTED, MARKER = "#8c959f", "#c62828"
BAR_LABEL, BAR_AREA, BAR_ROW = 140, 220, 22
UNIT = (0.0, 1.0)


def finite(value: Any) -> float | None:
    """A finite float, or None for None, NaN, infinities, booleans and non-numbers."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    result = float(value)
    return result if math.isfinite(result) else None


def number(value: Any) -> str:
    """A number for people: 3 significant digits, thousands separated, "n/a" if undefined."""
    found = finite(value)
    if found is None:
        return "n/a"
    rounded = float(f"{found:.3g}")
    if rounded == 0:
        return "0"
    return f"{rounded:,.0f}" if abs(rounded) >= 1000 else f"{rounded:.3g}"


def percent(value: Any) -> str:
    """A rate as a percentage with 3 significant digits; "n/a" if undefined."""
    found = finite(value)
    if found is None:
        return "n/a"
    shown = f"{found * 100:.3g}"
    if shown == "100" and found < 1:
        return ">99.9%"  # a rate just short of 100% must not read as 100%
    if 0 < abs(found) < 1e-6:
        return "<0.0001%" if found > 0 else ">-0.0001%"
    return shown + "%"


def line_chart(
    series: Sequence[tuple[str, Sequence[Point]]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    marker_x: float | None = None,
    marker_label: str | None = None,
    reference: tuple[str, Sequence[Point]] | None = None,
    x_domain: tuple[float, float] | None = None,
    y_domain: tuple[float, float] | None = None,
) -> str:
    """Lines over a numeric x axis, with round-number ticks.

    Args:
        series: ``(label, [[x, y], ...])`` per line; a legend names them when there are two
            or more lines (the reference counts).
        title: Shown above the plot and as the chart's accessible name.
        x_label: The x axis title.
        y_label: The y axis title.
        marker_x: Where to draw a dashed vertical line, such as the chosen threshold.
        marker_label: The marker's text; by default its x value.
        reference: A dashed grey ``(label, points)`` line, such as chance or the diagonal.
        x_domain: Fixed x range, such as ``(0, 1)``; by default the data's range.
        y_domain: Fixed y range; by default the data's range.
    """
    lines = [
        _Line(label, _clean(points), COLORS[i % len(COLORS)])
        for i, (label, points) in enumerate(series)
    ]
    if reference is not None:
        lines.append(_Line(reference[0], _clean(reference[1]), MUTED, dashed=True))
    marker = None
    if marker_x is not None and math.isfinite(marker_x):
        marker = (marker_x, marker_label if marker_label is not None else number(marker_x))
    return _plot(lines, title, (x_label, y_label), (x_domain, y_domain), marker)


def reliability_chart(bins: Sequence[Mapping[str, Any]], *, title: str = "Calibration") -> str:
    """Mean score against the fraction positive per score bin, beside the diagonal.

    Args:
        bins: Dicts with ``lower``, ``upper``, ``count``, ``mean_score`` and
            ``fraction_positive``; empty or undefined bins are left out.
        title: Shown above the plot.
    """
    kept = [(b, p) for b in bins if (p := _pair([b.get("mean_score"), b.get("fraction_positive")]))]
    tips = tuple(_bin_tip(b) for b, _ in kept)
    model = _Line("model", [p for _, p in kept], COLORS[0], tips=tips)
    diagonal = _Line("perfectly calibrated", [(0.0, 0.0), (1.0, 1.0)], MUTED, dashed=True)
    labels = ("mean predicted score", "fraction positive")
    return _plot([model, diagonal], title, labels, (UNIT, UNIT), None)


def bar_chart(
    rows: Sequence[tuple[str, Any]],
    *,
    title: str,
    value_format: Callable[[float], str] = number,
) -> str:
    """Horizontal bars from zero, one per row; a None value is written "n/a", without a bar.

    Args:
        rows: ``(label, value)`` per bar, in the order to show.
        title: Shown above the bars.
        value_format: How a value is written beside its bar, such as :func:`percent`.
    """
    if not rows:
        return _empty(title)
    values = [finite(value) for _, value in rows]
    known = [v for v in values if v is not None]
    low, high = min([0.0, *known]), max([0.0, *known])
    scale = BAR_AREA / ((high - low) or 1.0)
    bars = [
        _bar(label, value, 26 + index * BAR_ROW, (BAR_LABEL - low * scale, scale), value_format)
        for index, ((label, _), value) in enumerate(zip(rows, values, strict=True))
    ]
    return _svg(WIDTH, 30 + len(rows) * BAR_ROW, title, _title(title) + "".join(bars))


def ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round numbers (1, 2 or 5 times a power of ten apart) covering the range."""
    if not high > low:
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / count
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw * (1 - 1e-9))
    first = math.floor(low / step + 1e-9) * step
    steps = math.ceil((high - first) / step - 1e-9)
    return [round(first + i * step, 12) for i in range(steps + 1)]


# -- drawing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Line:
    label: str
    points: list[tuple[float, float] | None]  # None breaks the line
    color: str
    dashed: bool = False
    tips: tuple[str, ...] = ()  # one per point: draw a dot that tells it


@dataclass(frozen=True)
class _Axes:
    xs: list[float]
    ys: list[float]

    def x(self, value: float) -> float:
        return LEFT + (value - self.xs[0]) / (self.xs[-1] - self.xs[0]) * (WIDTH - LEFT - RIGHT)

    def y(self, value: float) -> float:
        share = (value - self.ys[0]) / (self.ys[-1] - self.ys[0])
        return HEIGHT - BOTTOM - share * (HEIGHT - TOP - BOTTOM)


def _plot(
    lines: list[_Line],
    title: str,
    labels: tuple[str, str],
    domains: tuple[tuple[float, float] | None, tuple[float, float] | None],
    marker: tuple[float, str] | None,
) -> str:
    if not any(p for line in lines if not line.dashed for p in line.points):
        return _empty(title)
    found = [p for line in lines for p in line.points if p is not None]
    xs = [x for x, _ in found] + ([marker[0]] if marker else [])
    axes = _Axes(_scale(xs, domains[0]), _scale([y for _, y in found], domains[1]))
    parts = [_title(title), _legend(lines) if len(lines) > 1 else "", _grid(axes, *labels)]
    parts += [_draw(line, axes) for line in lines]
    if marker is not None:
        parts.append(_marker(axes, *marker))
    return _svg(WIDTH, HEIGHT, title, "".join(parts))


def _scale(values: list[float], domain: tuple[float, float] | None) -> list[float]:
    low, high = domain if domain is not None else (min(values), max(values))
    return ticks(low, high)


def _grid(axes: _Axes, x_label: str, y_label: str) -> str:
    base, right, middle = HEIGHT - BOTTOM, WIDTH - RIGHT, (TOP + HEIGHT - BOTTOM) / 2
    rows = "".join(
        f'<line class="grid" stroke="#eaeef2" x1="{LEFT}" y1="{axes.y(v):.1f}" x2="{right}" '
        f'y2="{axes.y(v):.1f}"/><text x="{LEFT - 6}" y="{axes.y(v) + 4:.1f}" text-anchor="end">'
        f"{_tick(v, axes.ys)}</text>"
        for v in axes.ys
    )
    columns = "".join(
        f'<line stroke="{MUTED}" x1="{axes.x(v):.1f}" y1="{base}" x2="{axes.x(v):.1f}" '
        f'y2="{base + 4}"/><text x="{axes.x(v):.1f}" y="{base + 16}" text-anchor="middle">'
        f"{_tick(v, axes.xs)}</text>"
        for v in axes.xs
    )
    return (
        f'{rows}{columns}<path class="axis" fill="none" stroke="{MUTED}" '
        f'd="M{LEFT},{TOP} V{base} H{right}"/><text x="{(LEFT + right) / 2:.1f}" '
        f'y="{HEIGHT - 6}" text-anchor="middle">{escape(x_label)}</text><text '
        f'transform="translate(14 {middle:.1f}) rotate(-90)" text-anchor="middle">'
        f"{escape(y_label)}</text>"
    )


def _tick(value: float, scale: list[float]) -> str:
    """A tick label with as many decimals as the step between ticks needs."""
    decimals = max(0, -math.floor(math.log10(scale[1] - scale[0]) + 1e-9))
    return f"{value:,.{decimals}f}"


def _draw(line: _Line, axes: _Axes) -> str:
    dash = ' stroke-dasharray="5 4"' if line.dashed else ""
    parts = [  # a lone point is drawn twice so that its round caps show it as a dot
        f'<polyline fill="none" stroke="{line.color}" stroke-width="2" stroke-linecap="round"'
        f'{dash} points="{_coords(run * 2 if len(run) == 1 else run, axes)}">'
        f"<title>{escape(line.label)}</title></polyline>"
        for run in _runs(line.points)
    ]
    parts += [
        f'<circle cx="{axes.x(point[0]):.1f}" cy="{axes.y(point[1]):.1f}" r="4" '
        f'fill="{line.color}"><title>{escape(tip)}</title></circle>'
        for point, tip in zip(line.points, line.tips, strict=False)
        if point is not None
    ]
    return "".join(parts)


def _coords(run: list[tuple[float, float]], axes: _Axes) -> str:
    return " ".join(f"{axes.x(x):.1f},{axes.y(y):.1f}" for x, y in run)


def _runs(points: list[tuple[float, float] | None]) -> list[list[tuple[float, float]]]:
    """The unbroken stretches of a line, split where a point is missing."""
    stretches = groupby(points, key=lambda point: point is None)
    return [[p for p in run if p is not None] for missing, run in stretches if not missing]


def _marker(axes: _Axes, value: float, label: str) -> str:
    x, base = axes.x(value), HEIGHT - BOTTOM
    anchor, shift = ("end", -4) if x > WIDTH * 0.7 else ("start", 4)
    return (
        f'<line class="marker" stroke="{MARKER}" stroke-width="1.5" stroke-dasharray="4 3" '
        f'x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{base}"/><text class="marker" '
        f'fill="{MARKER}" x="{x + shift:.1f}" y="{TOP + 10}" text-anchor="{anchor}">'
        f"{escape(label)}</text>"
    )


def _legend(lines: list[_Line]) -> str:
    parts, x = [], float(LEFT)
    for line in lines:
        dash = ' stroke-dasharray="5 4"' if line.dashed else ""
        parts.append(
            f'<line stroke="{line.color}" stroke-width="2"{dash} x1="{x:.1f}" y1="28" '
            f'x2="{x + 18:.1f}" y2="28"/><text x="{x + 22:.1f}" y="32">{escape(line.label)}</text>'
        )
        x += 34 + 6.5 * len(line.label)
    return "".join(parts)


def _bar(
    label: str,
    value: float | None,
    y: int,
    axis: tuple[float, float],
    shown: Callable[[float], str],
) -> str:
    """One bar; ``axis`` is the x of zero and the pixels per unit."""
    zero, scale = axis
    short = label if len(label) <= 20 else label[:19] + "…"
    name = (
        f'<text x="{BAR_LABEL - 6}" y="{y + 15}" text-anchor="end">{escape(short)}'
        f"<title>{escape(label)}</title></text>"
    )
    if value is None:
        return f'{name}<text class="na" x="{zero + 4:.1f}" y="{y + 15}">n/a</text>'
    end, text = zero + value * scale, escape(shown(value))
    return (
        f'{name}<rect class="bar" fill="{COLORS[0]}" x="{min(zero, end):.1f}" y="{y + 4}" '
        f'width="{abs(end - zero):.1f}" height="14"><title>{escape(label)}: {text}</title></rect>'
        f'<text x="{max(zero, end) + 5:.1f}" y="{y + 15}">{text}</text>'
    )


def _bin_tip(bin_: Mapping[str, Any]) -> str:
    low, high = number(bin_.get("lower")), number(bin_.get("upper"))
    return (
        f"scores {low} to {high}: {finite(bin_.get('count')) or 0:,.0f} rows, mean score "
        f"{percent(bin_.get('mean_score'))}, {percent(bin_.get('fraction_positive'))} positive"
    )


def _clean(points: Sequence[Point]) -> list[tuple[float, float] | None]:
    return [_pair(point) for point in points or ()]


def _pair(point: Any) -> tuple[float, float] | None:
    """``(x, y)`` when ``point`` holds two finite numbers, else None."""
    try:
        x, y = finite(point[0]), finite(point[1])
    except (TypeError, IndexError, KeyError):
        return None
    return None if x is None or y is None else (x, y)


def _title(title: str) -> str:
    return f'<text class="title" x="0" y="14">{escape(title)}</text>'


def _empty(title: str) -> str:
    body = _title(title) + '<text class="none" x="0" y="40">no data</text>'
    return _svg(WIDTH, 52, f"{title}: no data", body)


def _svg(width: int, height: int, title: str, body: str) -> str:
    return (
        f'<svg class="chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="system-ui, sans-serif" font-size="11">'
        f"<title>{escape(title)}</title>{body}</svg>"
    )
