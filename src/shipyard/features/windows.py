"""Per-entity aggregations over trailing time windows, as of each event.

The building block of a feature view's transformation: "this customer's number of
transactions in the last hour, the sum of their amounts in the last 7 days". Windows are
absolute durations measured on the UTC instant, so ``"1d"`` is always 24 hours.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Literal, TypeVar

import polars as pl

from shipyard.errors import DataInputError, FeatureDefinitionError

__all__ = ["window_aggregates"]

Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)
Closed = Literal["right", "left", "both", "none"]

_CLOSED = ("right", "left", "both", "none")
_AGGREGATIONS = ("count", "sum", "mean", "max", "min", "std")
_ROLLING: dict[str, Callable[..., pl.Expr]] = {
    "mean": pl.Expr.rolling_mean_by,
    "max": pl.Expr.rolling_max_by,
    "min": pl.Expr.rolling_min_by,
    "std": pl.Expr.rolling_std_by,
}
_NS = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_NS |= {"d": 24 * _NS["h"], "w": 7 * 24 * _NS["h"]}
_PART = r"(\d+)(ns|us|ms|s|m|h|d|w)"
_LABEL_UNITS = ("d", "h", "m", "s", "ms")


def window_aggregates(
    frame: Frame,
    *,
    by: str | Sequence[str],
    timestamp: str,
    windows: Sequence[str | datetime.timedelta],
    aggregations: Mapping[str, Sequence[str]],
    closed: Closed = "right",
    prefix: str = "",
) -> Frame:
    """Add, to every event, aggregates of its entity's events in trailing windows.

    The window of an event at time ``t`` holds the events of the same entity with a time in
    ``(t - w, t]`` for ``closed="right"`` (the event itself and every event at ``t``),
    ``[t - w, t)`` for ``"left"`` (strictly earlier history), ``[t - w, t]`` for ``"both"``
    and ``(t - w, t)`` for ``"none"``. Windows are absolute: ``"1d"`` is 24 hours even across
    a daylight-saving change. Rows whose key is null form one group of their own, as in
    Polars' ``group_by``.

    Over an empty or all-null window, ``count`` and ``sum`` are 0 and the other
    aggregations are null; ``std`` is the sample standard deviation, null below 2 values.
    Counts are Int64, sums Int64 (integer columns) or Float64, means and deviations
    Float64, and ``max``/``min`` keep the column's dtype.

    Args:
        frame: The events; a LazyFrame gives a LazyFrame, a DataFrame a DataFrame.
        by: The entity key column or columns.
        timestamp: The event time: a Datetime (any unit, naive or tz-aware) or a Date.
        windows: Durations such as ``"30m"``, ``"24h"``, ``"7d"``, or timedeltas.
        aggregations: Column to aggregations among ``count``, ``sum``, ``mean``, ``max``,
            ``min``, ``std``. The column ``"*"`` takes only ``count``: the number of events.
        closed: Which edges of the window are included, as above.
        prefix: Put before every new column's name.

    Returns:
        Every input row in the input order with its columns, plus one column per column,
        aggregation and window named ``{prefix}{column}_{agg}_{window}``, or
        ``{prefix}count_{window}`` for ``"*"``. A timedelta window is written compactly
        (``timedelta(minutes=90)`` gives ``90m``).

    Raises:
        FeatureDefinitionError: An unknown aggregation or ``closed``, a window that is not a
            positive duration, or a new column whose name is taken.
        DataInputError: A missing column, a column of the wrong type, or null timestamps
            (for a LazyFrame, when it is collected).

    Example:
        >>> from datetime import datetime
        >>> payments = pl.DataFrame({
        ...     "customer": [1, 1, 2],
        ...     "ts": [datetime(2024, 1, 1, 0), datetime(2024, 1, 1, 1), datetime(2024, 1, 1, 1)],
        ...     "amount": [10.0, 5.0, 7.0],
        ... })
        >>> out = window_aggregates(
        ...     payments, by="customer", timestamp="ts", windows=["1h", "7d"],
        ...     aggregations={"*": ["count"], "amount": ["sum"]},
        ... )
        >>> out["amount_sum_1h"].to_list(), out["count_7d"].to_list()
        ([10.0, 5.0, 7.0], [1, 2, 1])
    """
    schema = frame.collect_schema()
    keys: list[str] = [by] if isinstance(by, str) else list(by)
    _require_columns(schema, [*keys, timestamp, *(c for c in aggregations if c != "*")])
    _check_arguments(keys, windows, aggregations, closed)
    unit = _time_unit(schema, timestamp)
    time = _unused_name("__window_time", schema)
    columns: dict[str, pl.Expr] = {}
    for window in windows:
        label, size = _label_and_size(window, unit, timestamp)
        for column, aggs in aggregations.items():
            for agg in aggs:
                name = prefix + (f"count_{label}" if column == "*" else f"{column}_{agg}_{label}")
                _claim(name, schema, columns)
                columns[name] = _rolling(column, agg, schema, time, size, closed).over(keys)
    check = partial(_refuse_nulls, timestamp)
    epoch = pl.col(timestamp).map_batches(check, return_dtype=schema[timestamp]).dt.epoch(unit)
    return frame.with_columns(epoch.alias(time)).with_columns(**columns).drop(time)


def _require_columns(schema: pl.Schema, names: Sequence[str]) -> None:
    for name in names:
        if name not in schema:
            have = ", ".join(repr(c) for c in schema)
            raise DataInputError(f"No column {name!r}. The frame has: {have}.")


def _check_arguments(
    keys: Sequence[str],
    windows: object,
    aggregations: Mapping[str, Sequence[str]],
    closed: str,
) -> None:
    if not keys:
        raise FeatureDefinitionError("by names no column: give the entity key column(s).")
    if closed not in _CLOSED:
        known = ", ".join(map(repr, _CLOSED))
        raise FeatureDefinitionError(f"closed must be one of {known}, got {closed!r}.")
    if isinstance(windows, str) or not isinstance(windows, Sequence):
        raise FeatureDefinitionError(f"windows must be a list such as ['1h'], got {windows!r}.")
    if not windows:
        raise FeatureDefinitionError("No windows: give at least one, such as ['1h', '7d'].")
    if not aggregations:
        raise FeatureDefinitionError(
            "No aggregations: give at least one, such as {'*': ['count']}."
        )
    for column, aggs in aggregations.items():
        _check_aggregations(column, aggs)


def _check_aggregations(column: str, aggs: Sequence[str]) -> None:
    if isinstance(aggs, str):
        raise FeatureDefinitionError(
            f"{column!r} needs a list of aggregations such as ['sum'], got {aggs!r}."
        )
    for agg in aggs:
        if agg not in _AGGREGATIONS:
            raise FeatureDefinitionError(
                f"Unknown aggregation {agg!r} for {column!r}. Known: {', '.join(_AGGREGATIONS)}."
            )
        if column == "*" and agg != "count":
            raise FeatureDefinitionError(
                f"'*' counts events and accepts only 'count', got {agg!r}. "
                "To aggregate a column's values, name the column."
            )


def _time_unit(schema: pl.Schema, timestamp: str) -> Literal["ns", "us", "ms"]:
    dtype = schema[timestamp]
    if isinstance(dtype, pl.Datetime):
        return dtype.time_unit
    if dtype == pl.Date:
        return "ms"
    raise DataInputError(
        f"The timestamp column {timestamp!r} must be a Datetime or a Date, got {dtype}. "
        "Convert it first, e.g. with pl.col(...).str.to_datetime()."
    )


def _label_and_size(window: object, unit: str, timestamp: str) -> tuple[str, str]:
    """The window's name in column names and its length in ticks of ``unit`` (``"3600i"``)."""
    if isinstance(window, datetime.timedelta):
        nanoseconds = window // datetime.timedelta(microseconds=1) * _NS["us"]
        label = _compact(nanoseconds)
    elif isinstance(window, str) and re.fullmatch(f"(?:{_PART})+", window):
        nanoseconds = sum(int(n) * _NS[u] for n, u in re.findall(_PART, window))
        label = window
    else:
        nanoseconds = 0
    if nanoseconds <= 0:
        raise FeatureDefinitionError(
            f"Window {window!r} is not a positive duration. Give one such as '30m', '24h', "
            "'7d' (units ns, us, ms, s, m, h, d, w; no calendar months or years) or a timedelta."
        )
    ticks, rest = divmod(nanoseconds, _NS[unit])
    if rest:
        raise FeatureDefinitionError(
            f"Window {window!r} is finer than the resolution of {timestamp!r} ({unit}). "
            f"Give a whole number of {unit}, or cast the column to a finer time unit."
        )
    return label, f"{ticks}i"


def _compact(nanoseconds: int) -> str:
    for unit in _LABEL_UNITS:
        if nanoseconds % _NS[unit] == 0:
            return f"{nanoseconds // _NS[unit]}{unit}"
    return f"{nanoseconds // _NS['us']}us"  # a timedelta counts whole microseconds


def _claim(name: str, schema: pl.Schema, columns: Mapping[str, pl.Expr]) -> None:
    if name in schema:
        raise FeatureDefinitionError(
            f"The new column {name!r} already exists in the frame; pass another prefix= "
            "or drop that column first."
        )
    if name in columns:
        raise FeatureDefinitionError(
            f"The column {name!r} would be produced twice: remove the repeated window "
            "(a timedelta and a string may name the same one) or aggregation."
        )


def _rolling(
    column: str, agg: str, schema: pl.Schema, time: str, size: str, closed: Closed
) -> pl.Expr:
    """One aggregation of ``column`` over the window, before grouping by entity."""
    if agg == "count":
        present = pl.col(time if column == "*" else column).is_not_null()
        return _sum(present.cast(pl.Int64), time, size, closed)
    dtype = schema[column]
    if not (dtype.is_integer() or dtype.is_float()):
        raise DataInputError(f"{agg!r} needs a numeric column; {column!r} is {dtype}.")
    if agg == "sum":
        wide = pl.Int64 if dtype.is_integer() else pl.Float64
        return _sum(pl.col(column).cast(wide), time, size, closed)
    value = pl.col(column).cast(pl.Float64) if agg in ("mean", "std") else pl.col(column)
    return _ROLLING[agg](value, time, window_size=size, closed=closed)


def _sum(value: pl.Expr, time: str, size: str, closed: Closed) -> pl.Expr:
    # An empty window sums to 0, not to null.
    return value.rolling_sum_by(time, window_size=size, closed=closed).fill_null(0)


def _refuse_nulls(timestamp: str, times: pl.Series) -> pl.Series:
    if nulls := times.null_count():
        raise DataInputError(
            f"The timestamp column {timestamp!r} has {nulls} rows with a null time. "
            "An event without a time belongs to no window: drop or fill those rows first."
        )
    return times


def _unused_name(base: str, schema: pl.Schema) -> str:
    while base in schema:
        base += "_"
    return base
