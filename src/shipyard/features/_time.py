"""Event times, normalized: every stored and joined time is a UTC datetime in microseconds."""

from __future__ import annotations

from typing import Any

import polars as pl

from shipyard.errors import DataInputError

UTC_US = pl.Datetime("us", "UTC")


def is_naive(dtype: Any) -> bool:
    """Whether a time column carries no time zone (a naive Datetime, or a Date)."""
    return dtype == pl.Date or (isinstance(dtype, pl.Datetime) and dtype.time_zone is None)


def to_utc(expr: pl.Expr, dtype: Any, *, what: str = "a timestamp", ceil: bool = False) -> pl.Expr:
    """``expr`` as UTC microseconds; naive times are taken to be UTC already.

    Nanoseconds are cut to microseconds, down by default; ``ceil`` rounds feature
    event times up instead, so a feature row less than a microsecond after an
    entity row can never be joined to it (at worst a sub-microsecond tie is missed).
    """
    if ceil and isinstance(dtype, pl.Datetime) and dtype.time_unit == "ns":
        zone = dtype.time_zone
        nanos = expr.dt.convert_time_zone("UTC").dt.replace_time_zone(None) if zone else expr
        up = ((nanos.cast(pl.Int64) + 999) // 1000).cast(pl.Datetime("us"))
        expr, dtype = (up.dt.replace_time_zone("UTC"), UTC_US) if zone else (up, pl.Datetime("us"))
        if zone:
            return expr
    if dtype == pl.Date:
        return expr.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if not isinstance(dtype, pl.Datetime):
        raise DataInputError(
            f"{what} must be a Datetime (or Date) column, got {dtype}. Parse it first, e.g. "
            "pl.col(...).str.to_datetime()."
        )
    if dtype.time_zone is None:
        return expr.dt.cast_time_unit("us").dt.replace_time_zone("UTC")
    return expr.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
