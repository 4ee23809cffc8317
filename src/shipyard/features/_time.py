"""Event times, normalized: every stored and joined time is a UTC datetime in nanoseconds,
so times given in nanoseconds compare exactly (the online store keeps microseconds)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from shipyard.errors import DataInputError

UTC_NS = pl.Datetime("ns", "UTC")
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def is_naive(dtype: Any) -> bool:
    """Whether a time column carries no time zone (a naive Datetime, or a Date)."""
    return dtype == pl.Date or (isinstance(dtype, pl.Datetime) and dtype.time_zone is None)


def to_utc(expr: pl.Expr, dtype: Any, *, what: str = "a timestamp") -> pl.Expr:
    """``expr`` as UTC nanoseconds; naive times are taken to be UTC already."""
    if dtype == pl.Date:
        return expr.cast(pl.Datetime("ns")).dt.replace_time_zone("UTC")
    if not isinstance(dtype, pl.Datetime):
        raise DataInputError(
            f"{what} must be a Datetime (or Date) column, got {dtype}. Parse it first, e.g. "
            "pl.col(...).str.to_datetime()."
        )
    if dtype.time_zone is None:
        return expr.dt.cast_time_unit("ns").dt.replace_time_zone("UTC")
    return expr.dt.convert_time_zone("UTC").dt.cast_time_unit("ns")


def us_of(value: dt.datetime) -> int:
    """Microseconds since the epoch (a naive datetime is taken to be UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def iso_of(us: int | None) -> str | None:
    """ISO 8601 (UTC) of microseconds since the epoch."""
    return None if us is None else (EPOCH + dt.timedelta(microseconds=us)).isoformat()
