"""Inline SVG charts over monitoring windows: lines with gaps, a band, a drift heat map.

One point per window, placed by its index, so windows without traffic leave a visible gap
(a grey column and a break in each line) instead of a line drawn across them. No script
and no links; every text is escaped. Numbers and ticks come from the evaluation charts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from itertools import groupby
from typing import Any

from shipyard.evaluation._plots import COLORS, MARKER, MUTED, finite, number, ticks

WIDTH, HEIGHT = 500, 250
LEFT, RIGHT, TOP, BOTTOM = 60, 16, 46, 40
HEAT_LABEL, HEAT_ROW, HEAT_AREA = 210, 24, 520
LEVELS = {  # heat map cell classes: colour and legend text
    "drifted": ("#c62828", "drifted"),
    "close": ("#e3a33b", "near its threshold"),
    "stable": ("#bcd8c1", "stable"),
    "none": ("#eef1f4", "no values in the window"),
}


@dataclass(frozen=True)
class Series:
    """One line over the windows; a value that is not a finite number leaves a gap."""

    label: str
    values: Sequence[Any]
    color: str = COLORS[0]
    dashed: bool = False


@dataclass(frozen=True)
class Cell:
    """One heat map cell: a key of ``LEVELS`` and the text shown on hover."""

    level: str
    tip: str


@dataclass(frozen=True)
class HeatRow:
    """One heat map row: a column, a note under its name, one cell per window."""

    label: str
    note: str
    cells: Sequence[Cell]


def time_chart(
    times: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    y_label: str,
    band: tuple[str, Sequence[Any], Sequence[Any]] | None = None,
    levels: Sequence[tuple[str, Any]] = (),
    gaps: Sequence[int] = (),
    fmt: Callable[[Any], str] = number,
    y_domain: tuple[float, float] | None = None,
) -> str:
    """Lines over the windows, oldest on the left.

    Args:
        times: One short label per window, for the x axis and the hover texts.
        series: The lines; a dashed one reads as an estimate.
        title: Shown above the plot and as the chart's accessible name.
        y_label: The y axis title.
        band: ``(label, lows, highs)`` shaded between two values per window.
        levels: ``(label, value)`` horizontal dashed lines, such as a threshold.
        gaps: Indexes of windows without traffic, drawn as grey columns.
        fmt: How a value is written in hover texts and level labels.
        y_domain: Values the y axis must cover, such as ``(0, 1)`` for a share.
    """
    values = [finite(v) for s in series for v in s.values]
    values += [finite(v) for v in (band[1] if band else ())] + [finite(v) for _, v in levels]
    found = [v for v in values if v is not None] + list(y_domain or ())
    if not times or not [v for s in series for v in s.values if finite(v) is not None]:
        return empty(title)
    scale = _Scale(len(times), ticks(min(found), max(found)))
    parts = [_title(title), _legend(series), _grid(scale, times, y_label, fmt)]
    parts += [_gap(scale, i, times[i]) for i in gaps if 0 <= i < len(times)]
    if band is not None:
        parts.append(_band(scale, *band))
    parts += [_level(scale, label, value, fmt) for label, value in levels]
    parts += [_line(scale, line, times, fmt) for line in series]
    return svg(WIDTH, HEIGHT, title, "".join(parts))


def heat_map(times: Sequence[str], rows: Sequence[HeatRow], *, title: str) -> str:
    """A grid of columns (rows) by windows (cells), coloured by how near drift each is."""
    if not times or not rows:
        return empty(title)
    step = max(2.0, min(28.0, HEAT_AREA / len(times)))
    wide = step - 1 if step >= 4 else step  # a hairline between cells while they are wide
    width = int(HEAT_LABEL + step * len(times) + RIGHT)
    top = 40
    parts = [_title(title)] + [
        f'<text x="{HEAT_LABEL + (i + 0.5) * step:.1f}" y="{top - 6}" text-anchor="middle">'
        f"{escape(times[i])}</text>"
        for i in _tick_indexes(len(times), max(2, int(step * len(times) / 90)))
    ]
    for index, row in enumerate(rows):
        y = top + index * HEAT_ROW
        name = row.label if len(row.label) <= 30 else row.label[:29] + "…"
        parts.append(
            f'<text class="name" x="0" y="{y + 11}">{escape(name)}<title>{escape(row.label)}'
            f'</title></text><text class="note" x="0" y="{y + 21}">{escape(row.note)}</text>'
        )
        parts += [
            f'<rect class="cell {cell.level}" fill="{LEVELS[cell.level][0]}" '
            f'x="{HEAT_LABEL + i * step:.1f}" y="{y + 2}" width="{wide:.1f}" '
            f'height="{HEAT_ROW - 4}"><title>{escape(cell.tip)}</title></rect>'
            for i, cell in enumerate(row.cells)
        ]
    bottom = top + len(rows) * HEAT_ROW + 8
    parts.append(_swatches(bottom))
    return svg(max(width, 560), bottom + 18, title, "".join(parts))


def drift_rows(times: Sequence[str], windows: Sequence[Mapping[str, Any]]) -> list[HeatRow]:
    """The heat map rows of the windows' drift results, columns drifted most often first.

    Args:
        times: One short label per window.
        windows: Window dicts whose ``drift`` holds ``DriftResult.to_dict()`` or None.
    """
    return [_heat_row(name, times, windows) for name in _drift_columns(windows)]


def empty(title: str) -> str:
    """A chart that has nothing to draw says so."""
    body = _title(title) + '<text class="none" x="0" y="40">no data</text>'
    return svg(WIDTH, 52, f"{title}: no data", body)


def svg(width: int, height: int, title: str, body: str) -> str:
    """An inline SVG element whose accessible name is ``title``."""
    return (
        f'<svg class="chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="system-ui, sans-serif" font-size="11">'
        f"<title>{escape(title)}</title>{body}</svg>"
    )


# -- drawing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scale:
    count: int
    ys: list[float]

    def x(self, index: float) -> float:
        return LEFT + (index + 0.5) * (WIDTH - LEFT - RIGHT) / self.count

    def y(self, value: float) -> float:
        share = (value - self.ys[0]) / (self.ys[-1] - self.ys[0])
        return HEIGHT - BOTTOM - share * (HEIGHT - TOP - BOTTOM)


def _grid(scale: _Scale, times: Sequence[str], y_label: str, fmt: Callable[[Any], str]) -> str:
    base, right = HEIGHT - BOTTOM, WIDTH - RIGHT
    rows = "".join(
        f'<line stroke="#eaeef2" x1="{LEFT}" y1="{scale.y(v):.1f}" x2="{right}" '
        f'y2="{scale.y(v):.1f}"/><text x="{LEFT - 6}" y="{scale.y(v) + 4:.1f}" '
        f'text-anchor="end">{escape(fmt(v))}</text>'
        for v in scale.ys
    )
    columns = "".join(
        f'<text x="{scale.x(i):.1f}" y="{base + 16}" text-anchor="middle">{escape(times[i])}</text>'
        for i in _tick_indexes(len(times), 4)
    )
    return (
        f'{rows}{columns}<path class="axis" fill="none" stroke="{MUTED}" '
        f'd="M{LEFT},{TOP} V{base} H{right}"/><text x="{(LEFT + right) / 2:.1f}" '
        f'y="{HEIGHT - 6}" text-anchor="middle">window start</text><text '
        f'transform="translate(14 {(TOP + base) / 2:.1f}) rotate(-90)" text-anchor="middle">'
        f"{escape(y_label)}</text>"
    )


def _tick_indexes(count: int, most: int) -> list[int]:
    """Up to ``most`` evenly spread window indexes, always the first and the last."""
    if count <= most:
        return list(range(count))
    return sorted({round(i * (count - 1) / (most - 1)) for i in range(most)})


def _line(scale: _Scale, line: Series, times: Sequence[str], fmt: Callable[[Any], str]) -> str:
    dash = ' stroke-dasharray="6 4"' if line.dashed else ""
    points = [
        None if (v := finite(value)) is None else (i, v) for i, value in enumerate(line.values)
    ]
    stretches = groupby(points, key=lambda point: point is None)
    runs = [[p for p in run if p is not None] for gone, run in stretches if not gone]
    parts = [
        f'<polyline class="series" fill="none" stroke="{line.color}" stroke-width="2"{dash} '
        f'points="{" ".join(f"{scale.x(i):.1f},{scale.y(v):.1f}" for i, v in run)}">'
        f"<title>{escape(line.label)}</title></polyline>"
        for run in runs
    ]
    parts += [
        f'<circle cx="{scale.x(i):.1f}" cy="{scale.y(v):.1f}" r="2.5" fill="{line.color}">'
        f"<title>{escape(f'{times[i]}: {line.label} {fmt(v)}')}</title></circle>"
        for run in runs
        for i, v in run
    ]
    return "".join(parts)


def _band(scale: _Scale, label: str, lows: Sequence[Any], highs: Sequence[Any]) -> str:
    pairs: list[tuple[float, float, float] | None] = [
        None if (lo := finite(low)) is None or (hi := finite(high)) is None else (i, lo, hi)
        for i, (low, high) in enumerate(zip(lows, highs, strict=False))
    ]
    parts = []
    for gone, run in groupby(pairs, key=lambda pair: pair is None):
        kept = [p for p in run if p is not None]
        if gone or not kept:
            continue
        if len(kept) == 1:  # a lone window still shows its spread
            kept = [(kept[0][0] - 0.2, *kept[0][1:]), (kept[0][0] + 0.2, *kept[0][1:])]
        upper = [f"{scale.x(i):.1f},{scale.y(hi):.1f}" for i, _, hi in kept]
        lower = [f"{scale.x(i):.1f},{scale.y(lo):.1f}" for i, lo, _ in reversed(kept)]
        parts.append(
            f'<polygon class="band" fill="{COLORS[0]}" fill-opacity="0.18" '
            f'points="{" ".join(upper + lower)}"><title>{escape(label)}</title></polygon>'
        )
    return "".join(parts)


def _level(scale: _Scale, label: str, value: Any, fmt: Callable[[Any], str]) -> str:
    found = finite(value)
    if found is None:
        return ""
    y, text = scale.y(found), f"{label} {fmt(found)}"
    return (
        f'<line class="level" stroke="{MARKER}" stroke-width="1.2" stroke-dasharray="3 3" '
        f'x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}"><title>{escape(text)}'
        f'</title></line><text class="level" fill="{MARKER}" x="{WIDTH - RIGHT}" '
        f'y="{y - 4:.1f}" text-anchor="end">{escape(text)}</text>'
    )


def _gap(scale: _Scale, index: int, time: str) -> str:
    step = (WIDTH - LEFT - RIGHT) / scale.count
    return (
        f'<rect class="gap" fill="#eef1f4" x="{scale.x(index) - step / 2:.1f}" y="{TOP}" '
        f'width="{step:.1f}" height="{HEIGHT - TOP - BOTTOM}"><title>'
        f"{escape(time)}: no traffic</title></rect>"
    )


def _legend(series: Sequence[Series]) -> str:
    parts, x = [], float(LEFT)
    for line in series:
        if all(finite(value) is None for value in line.values):
            continue
        dash = ' stroke-dasharray="6 4"' if line.dashed else ""
        parts.append(
            f'<line stroke="{line.color}" stroke-width="2"{dash} x1="{x:.1f}" y1="28" '
            f'x2="{x + 18:.1f}" y2="28"/><text x="{x + 22:.1f}" y="32">{escape(line.label)}</text>'
        )
        x += 34 + 6 * len(line.label)
    return "".join(parts)


def _swatches(y: int) -> str:
    parts, x = [], 0.0
    for color, text in LEVELS.values():
        parts.append(
            f'<rect fill="{color}" x="{x:.1f}" y="{y}" width="12" height="12"/>'
            f'<text x="{x + 16:.1f}" y="{y + 10}">{escape(text)}</text>'
        )
        x += 28 + 6 * len(text)
    return "".join(parts)


# -- drift results as heat map rows -------------------------------------------------


def _drift_columns(windows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Columns, those drifted in the most windows first (the newest window breaks ties)."""
    seen: dict[str, list[int]] = {}
    for age, window in enumerate(reversed(windows)):
        for name, column in ((window.get("drift") or {}).get("columns") or {}).items():
            marks = seen.setdefault(str(name), [0, len(windows)])
            if isinstance(column, Mapping) and column.get("drifted"):
                marks[0] -= 1
                marks[1] = min(marks[1], age)
    return sorted(seen, key=lambda name: (seen[name][0], seen[name][1], name))


def _heat_row(name: str, times: Sequence[str], windows: Sequence[Mapping[str, Any]]) -> HeatRow:
    cells, note = [], ""
    for time, window in zip(times, windows, strict=True):
        column = ((window.get("drift") or {}).get("columns") or {}).get(name)
        if not isinstance(column, Mapping):
            cells.append(Cell("none", f"{time}: {name} not tested"))
            continue
        note = f"{column.get('method', '?')} · threshold {number(column.get('threshold'))}"
        cells.append(Cell(_drift_level(column), f"{time}: {name} {_drift_tip(column)}"))
    return HeatRow(name, note, cells)


def _drift_level(column: Mapping[str, Any]) -> str:
    if column.get("drifted"):
        return "drifted"
    statistic, p_value = finite(column.get("statistic")), finite(column.get("p_value"))
    threshold = finite(column.get("threshold"))
    if (statistic is None and p_value is None) or threshold is None:
        return "none"
    if p_value is not None:  # tests drift when p < threshold
        return "close" if p_value < 2 * threshold else "stable"
    return "close" if statistic is not None and statistic >= threshold / 2 else "stable"


def _drift_tip(column: Mapping[str, Any]) -> str:
    state = "DRIFTED" if column.get("drifted") else "stable"
    text = f"{state}: {column.get('method', '?')} {number(column.get('statistic'))}"
    if column.get("p_value") is not None:
        text += f", p-value {number(column.get('p_value'))}"
    text += f", threshold {number(column.get('threshold'))}, PSI {number(column.get('psi'))}"
    rows = finite(column.get("current_rows"))
    text += "" if rows is None else f", {rows:,.0f} rows"
    return text + (f" ({column['note']})" if column.get("note") else "")


def _title(title: str) -> str:
    return f'<text class="title" x="0" y="14">{escape(title)}</text>'
