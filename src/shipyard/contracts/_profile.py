"""A small per-column summary of a batch, for the distribution plots in the report.

Numbers and times get a 20-bin histogram, everything else its most common values.
Only the first ``sample_rows`` rows are read (one query), so profiling a large batch
costs about as much as profiling a small one. The result is plain JSON-able data.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import polars as pl

BINS = 20
TOP = 10

# Temporal columns are binned as seconds; the unit says what the numbers mean.
_EPOCH = "epoch seconds (UTC)"
_SECONDS = "seconds"
_MIDNIGHT = "seconds since midnight"
_PER_SECOND = {"ns": 1e9, "us": 1e6, "ms": 1e3}


def profile(
    frame: pl.LazyFrame, columns: list[str], *, sample_rows: int = 100_000
) -> dict[str, dict[str, Any]]:
    """Summarise ``columns`` of ``frame`` (those it has) over its first ``sample_rows`` rows.

    Returns, per column, either ``{"kind": "numeric", "edges": [21 floats], "counts":
    [20 ints], "nulls", "rows", "nonfinite"}`` (plus ``"unit"`` for dates, times and
    durations, binned as seconds) or ``{"kind": "categorical", "top": [[value, count],
    ...], "other", "distinct", "nulls", "rows"}``. A numeric column without a finite
    value has empty ``edges`` and ``counts``.
    """
    present = frame.collect_schema().names()
    wanted = list(dict.fromkeys(c for c in columns if c in present))
    if not wanted:
        return {}
    sample = frame.head(sample_rows).select(wanted).collect()
    return {name: profile_series(sample[name]) for name in wanted}


def profile_series(series: pl.Series) -> dict[str, Any]:
    """The summary of one column's values (see ``profile``)."""
    numbers, unit = _as_numbers(series)
    if numbers is None:
        return _categorical(series)
    summary = _histogram(numbers)
    if unit is not None:
        summary["unit"] = unit
    return summary


def _as_numbers(series: pl.Series) -> tuple[pl.Series | None, str | None]:
    """The column as Float64 seconds or numbers, or None if it is not numeric."""
    dtype = series.dtype
    if dtype == pl.Date:
        return series.cast(pl.Int64).cast(pl.Float64) * 86_400.0, _EPOCH
    if isinstance(dtype, pl.Datetime):
        return _scaled(series, dtype.time_unit), _EPOCH
    if isinstance(dtype, pl.Duration):
        return _scaled(series, dtype.time_unit), _SECONDS
    if dtype == pl.Time:
        return _scaled(series, "ns"), _MIDNIGHT
    if dtype.is_numeric():
        return series.cast(pl.Float64), None
    return None, None


def _scaled(series: pl.Series, time_unit: str | None) -> pl.Series:
    return series.to_physical().cast(pl.Float64) / _PER_SECOND[time_unit or "us"]


def _histogram(values: pl.Series) -> dict[str, Any]:
    nulls = values.null_count()
    present = values.drop_nulls()
    finite = present.filter(present.is_finite())
    summary: dict[str, Any] = {
        "kind": "numeric",
        "edges": [],
        "counts": [],
        "nulls": nulls,
        "rows": values.len(),
        "nonfinite": present.len() - finite.len(),
    }
    if finite.len() == 0:
        return summary
    low, high = _range(float(finite.min()), float(finite.max()))  # type: ignore[arg-type]
    # Halve everything when high - low overflows (values near +-1.8e308).
    scale = 1.0 if math.isfinite(high - low) else 0.5
    width = (high * scale - low * scale) / BINS
    edges = [(low * scale + i * width) / scale for i in range(BINS)] + [high]
    index = ((finite * scale - low * scale) / width).floor().cast(pl.Int64).clip(0, BINS - 1)
    counts = [0] * BINS
    for bin_, count in index.rename("bin").value_counts(name="n").iter_rows():
        counts[bin_] = count
    summary.update(edges=edges, counts=counts)
    return summary


def _range(low: float, high: float) -> tuple[float, float]:
    """The histogram's range; a single value sits in the middle of a small one."""
    if (high - low) / BINS >= sys.float_info.min:  # bins narrower lose all precision
        return low, high
    half = max(0.5, abs(low) * 1e-9)  # wide enough that low +- half differ in float64
    top = sys.float_info.max  # near the largest float, low +- half would overflow to inf
    return max(low - half, -top), min(low + half, top)


def _categorical(series: pl.Series) -> dict[str, Any]:
    values = _sortable(series).rename("value").drop_nulls()
    counts = values.value_counts(sort=False, name="count")
    counts = counts.sort(["count", "value"], descending=[True, False])
    top = [[_plain(value), int(count)] for value, count in counts.head(TOP).iter_rows()]
    return {
        "kind": "categorical",
        "top": top,
        "other": values.len() - sum(c for _, c in top),
        "distinct": counts.height,
        "nulls": series.null_count(),
        "rows": series.len(),
    }


def _sortable(series: pl.Series) -> pl.Series:
    """Text, booleans and categories as they are; anything else as its text."""
    dtype = series.dtype
    if dtype in (pl.String, pl.Boolean) or isinstance(dtype, (pl.Categorical, pl.Enum)):
        return series
    if dtype == pl.Null:
        return series.cast(pl.String)
    text = [None if v is None else _text(v) for v in series.to_list()]
    return pl.Series(series.name, text, dtype=pl.String)


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
