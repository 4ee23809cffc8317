"""Reading each column as the type its contract says, and which coercions are safe.

Safe coercions (the value cannot change meaning):
- integer → number (an int column satisfies ``number``);
- a float column → integer, for values without a fractional part;
- text → integer, number, boolean, date, timestamp or time, by parsing (CSV and
  JSON deliver text); values that do not parse are type failures of that row;
- date → timestamp (midnight);
- timestamps without a time zone are taken as UTC; with one, converted to UTC.
Anything else (a boolean column where a date was promised, say) is a schema
error for the whole batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

_ISO_AWARE = ("%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z")
_ISO_NAIVE = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d")
_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")
_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "date": "a date",
    "timestamp": "a timestamp",
    "time": "a time of day",
    "object": "an object",
    "array": "a list",
}


def describe(logical: str) -> str:
    """How a person says the type: 'a number', 'a date'."""
    return _WORDS.get(logical, logical)


@dataclass
class Typed:
    """A column read as its contract type: the value, where reading failed, and why not."""

    value: pl.Expr
    failed: pl.Expr | None = None  # True where the raw value could not be read as the type
    problem: str | None = None  # a whole-column mismatch: the batch cannot be validated


def typed_column(name: str, dtype: pl.DataType, logical: str | None, fmt: str | None) -> Typed:
    """Read column ``name`` (stored as ``dtype``) as ``logical``."""
    col = pl.col(name)
    if logical is None:
        return Typed(col)
    if dtype == pl.Null:
        return Typed(col.cast(_target(logical)))
    reader = _READERS.get(logical)
    if reader is None:
        return Typed(col)
    return reader(col, dtype, fmt)


def _target(logical: str) -> Any:
    return {
        "string": pl.String,
        "integer": pl.Int64,
        "number": pl.Float64,
        "boolean": pl.Boolean,
        "date": pl.Date,
        "timestamp": pl.Datetime("us", "UTC"),
        "time": pl.Time,
    }.get(logical, pl.Null)


def _text(col: pl.Expr, dtype: pl.DataType, fmt: str | None) -> Typed:
    if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
        return Typed(col.cast(pl.String))
    return Typed(col, problem=_mismatch(dtype, "string"))


def _integer(col: pl.Expr, dtype: pl.DataType, fmt: str | None) -> Typed:
    if dtype.is_integer():
        return Typed(col)
    if dtype.is_float():
        whole = col.is_finite() & (col == col.floor())
        value = pl.when(whole).then(col).cast(pl.Int64, strict=False)
        return Typed(value, failed=col.is_not_null() & ~whole.fill_null(False))
    if dtype == pl.String:
        value = col.str.strip_chars().cast(pl.Int64, strict=False)
        return _parsed(col, value)
    return Typed(col, problem=_mismatch(dtype, "integer"))


def _number(col: pl.Expr, dtype: pl.DataType, fmt: str | None) -> Typed:
    if dtype.is_numeric():
        return Typed(col)
    if dtype == pl.String:
        value = col.str.strip_chars().cast(pl.Float64, strict=False)
        return _parsed(col, value)
    return Typed(col, problem=_mismatch(dtype, "number"))


def _boolean(col: pl.Expr, dtype: pl.DataType, fmt: str | None) -> Typed:
    if dtype == pl.Boolean:
        return Typed(col)
    if dtype == pl.String:
        lowered = col.str.strip_chars().str.to_lowercase()
        value = (
            pl.when(lowered.is_in(_TRUE))
            .then(True)
            .when(lowered.is_in(_FALSE))
            .then(False)
            .otherwise(None)
        )
        return _parsed(col, value)
    return Typed(col, problem=_mismatch(dtype, "boolean"))


def _date(col: pl.Expr, dtype: pl.DataType, fmt: str | None) -> Typed:
    if dtype == pl.Date:
        return Typed(col)
    if dtype == pl.String:
        value = col.str.strip_chars().str.to_date(fmt or "%Y-%m-%d", strict=False)
        return _parsed(col, value)
    return Typed(col, problem=_mismatch(dtype, "date"))


def _timestamp(col: pl.Expr, dtype: pl.DataType, fmt: str | None) -> Typed:
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            return Typed(col.dt.replace_time_zone("UTC"))
        return Typed(col.dt.convert_time_zone("UTC"))
    if dtype == pl.Date:
        return Typed(col.cast(pl.Datetime("us")).dt.replace_time_zone("UTC"))
    if dtype == pl.String:
        text = col.str.strip_chars()
        value = pl.coalesce(*_parse_timestamps(text, fmt))
        return _parsed(col, value)
    return Typed(col, problem=_mismatch(dtype, "timestamp"))


def _parse_timestamps(text: pl.Expr, fmt: str | None) -> list[pl.Expr]:
    if fmt is not None:
        zoned = "%z" in fmt or "%Z" in fmt
        parsed = text.str.to_datetime(
            fmt, strict=False, time_unit="us", time_zone="UTC" if zoned else None
        )
        return [parsed if zoned else parsed.dt.replace_time_zone("UTC")]
    aware = [
        text.str.to_datetime(f, strict=False, time_unit="us", time_zone="UTC") for f in _ISO_AWARE
    ]
    naive = [
        text.str.to_datetime(f, strict=False, time_unit="us").dt.replace_time_zone("UTC")
        for f in _ISO_NAIVE
    ]
    return [*aware, *naive]


def _time(col: pl.Expr, dtype: pl.DataType, fmt: str | None) -> Typed:
    if dtype == pl.Time:
        return Typed(col)
    if dtype == pl.String:
        value = col.str.strip_chars().str.to_time(fmt or "%H:%M:%S", strict=False)
        return _parsed(col, value)
    return Typed(col, problem=_mismatch(dtype, "time"))


def _object(col: pl.Expr, dtype: pl.DataType, fmt: str | None) -> Typed:
    return (
        Typed(col)
        if isinstance(dtype, pl.Struct)
        else Typed(col, problem=_mismatch(dtype, "object"))
    )


def _array(col: pl.Expr, dtype: pl.DataType, fmt: str | None) -> Typed:
    if isinstance(dtype, (pl.List, pl.Array)):
        return Typed(col)
    return Typed(col, problem=_mismatch(dtype, "array"))


def _parsed(raw: pl.Expr, value: pl.Expr) -> Typed:
    """A column read from text: a value that was there but did not parse is a failure."""
    return Typed(value, failed=raw.is_not_null() & value.is_null())


def _mismatch(dtype: pl.DataType, logical: str) -> str:
    return f"should be {describe(logical)}, but the data holds {dtype} values"


_READERS = {
    "string": _text,
    "integer": _integer,
    "number": _number,
    "boolean": _boolean,
    "date": _date,
    "timestamp": _timestamp,
    "time": _time,
    "object": _object,
    "array": _array,
}


def literal(value: Any, logical: str | None) -> Any:
    """A bound from the contract (minimum, validValues) as a value comparable with the column."""
    import datetime as dt

    if isinstance(value, str) and logical == "date":
        return dt.date.fromisoformat(value)
    if isinstance(value, str) and logical == "timestamp":
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value
