"""Decoding the prediction log's JSON columns: each column read as newline-delimited JSON.

A column of JSON objects is decoded by joining its values into one newline-delimited
text and handing it to polars' NDJSON reader with an explicit schema (only the fields
asked for), many times faster than decoding row by row. The text is built by Arrow
(``binary_join_element_wise``: one pass over the column's buffer) rather than by string
operations in Python. Every value gives exactly one line, so rows stay aligned: a null,
empty or non-object value becomes ``{}`` (a row of nulls) and line breaks inside an object
become spaces. :func:`decode_columns` decodes several columns in threads (polars parses
without holding the GIL), so that the columns are parsed side by side on every core.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from shipyard.errors import MonitoringError

__all__ = ["decode_columns", "decode_objects", "infer_dtypes", "ndjson", "present"]

_NEWLINE = pa.scalar("\n", pa.large_string())
_NOTHING = pa.scalar("", pa.large_string())
_BRACE = ord("{")


def decode_columns(
    columns: Mapping[str, pl.Series], plans: Mapping[str, Mapping[str, pl.DataType]]
) -> tuple[list[pl.DataFrame], dict[str, int]]:
    """Decode each column of JSON objects for its plan's fields, the columns in parallel.

    Returns:
        One decoded frame per plan (in the plans' order) and, per field, how many values
        could not be cast to its dtype.
    """
    work = [(columns[name], plan) for name, plan in plans.items()]
    if sum(bool(plan) and len(values) > 0 for values, plan in work) > 1:
        with ThreadPoolExecutor(len(work)) as pool:  # polars parses without holding the GIL
            results = [pool.submit(decode_objects, values, plan) for values, plan in work]
            decoded = [result.result() for result in results]  # the first failure raised
    else:
        decoded = [decode_objects(values, plan) for values, plan in work]
    failures: dict[str, int] = {}
    for _, failed in decoded:
        failures |= failed
    return [frame for frame, _ in decoded], failures


def decode_objects(
    values: pl.Series, dtypes: Mapping[str, pl.DataType]
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Decode a column of JSON objects into one column per field of ``dtypes``.

    Returns:
        The decoded frame (one row per value; a null, empty or non-object value gives a
        row of nulls) and, per field, how many values could not be cast to its dtype.
    """
    if not dtypes:
        return pl.DataFrame(height=len(values)), {}
    native = {name: _native(dtype) for name, dtype in dtypes.items()}
    parsed = _parse(ndjson(values), native, str(values.name)) if len(values) else None
    decoded: list[pl.Series] = []
    failures: dict[str, int] = {}
    for name, dtype in dtypes.items():
        column, failed = _cast(
            pl.Series(name, [], native[name]) if parsed is None else parsed[name], dtype
        )
        decoded.append(column)
        if failed:
            failures[name] = failed
    return pl.DataFrame(decoded), failures


def _parse(text: bytes, native: dict[str, pl.DataType], column: str) -> pl.DataFrame:
    try:
        return pl.read_ndjson(text, schema=native)
    except pl.exceptions.ComputeError:  # a value of another type: read as text, then cast
        try:
            return pl.read_ndjson(text, schema=dict.fromkeys(native, pl.String()))
        except pl.exceptions.ComputeError as exc:
            raise _not_json(column, exc) from exc


def ndjson(values: pl.Series) -> bytes:
    """The values as newline-delimited JSON, one line per value (so rows stay aligned)."""
    array = _large_strings(values)
    if _odd(values, array):  # an odd value gets one line too: "{}" or its line breaks made spaces
        text = values.fill_null("{}")
        text = pl.select(
            pl.when(text.str.starts_with("{"))
            .then(text.str.replace_all("[\r\n]", " "))
            .otherwise(pl.lit("{}"))
        ).to_series()
        array = _large_strings(text)
    joined = pc.binary_join_element_wise(array, _NEWLINE, _NOTHING)
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int64)
    first, last = int(offsets[joined.offset]), int(offsets[joined.offset + len(joined)])
    data: bytes = joined.buffers()[2][first:last].to_pybytes()
    return data


def _large_strings(values: pl.Series) -> pa.LargeStringArray:
    array = values.to_arrow()
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.type != pa.large_string():
        array = array.cast(pa.large_string())
    assert isinstance(array, pa.LargeStringArray)
    return array


def _odd(values: pl.Series, array: pa.LargeStringArray) -> bool:
    """Whether a value is null, does not start with ``{`` or holds a line break."""
    if array.null_count or not len(array):
        return bool(array.null_count)
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[
        array.offset : array.offset + len(array) + 1
    ]
    data = np.frombuffer(array.buffers()[2], dtype=np.uint8)
    starts = offsets[:-1]
    if bool((starts == offsets[1:]).any()) or bool((data[starts] != _BRACE).any()):
        return True
    return bool(values.str.contains("[\r\n]").any())


def _native(dtype: pl.DataType) -> pl.DataType:
    """The dtype JSON is parsed into before the cast: Int64, Float64, Boolean or String."""
    if dtype.is_integer():
        return pl.Int64()
    if dtype.is_float():
        return pl.Float64()
    if isinstance(dtype, pl.Boolean):
        return pl.Boolean()
    if isinstance(dtype, pl.List | pl.Struct | pl.Array):
        return dtype
    return pl.String()


def _not_json(column: str, exc: Exception) -> MonitoringError:
    return MonitoringError(
        f"The log's {column} column holds text that is not JSON ({exc}); the segments "
        "were not written by shipyard's PredictionLog, or were altered. Find the "
        "segment with read_log() and move it out of the log's folder."
    )


def _cast(column: pl.Series, dtype: pl.DataType) -> tuple[pl.Series, int]:
    if column.dtype == dtype:
        return column, 0
    if isinstance(dtype, pl.Boolean) and column.dtype == pl.String:
        lowered = column.str.to_lowercase()
        cast = lowered.replace_strict({"true": True, "false": False}, default=None)
        cast = cast.cast(pl.Boolean)
    elif column.dtype == pl.String and isinstance(dtype, pl.Datetime | pl.Date):
        cast = _parse_time(column, dtype)
    else:
        cast = column.cast(dtype, strict=False)
    return cast, cast.null_count() - column.null_count()


def present(values: pl.Series, name: str) -> bool:
    """Whether any JSON object of ``values`` has the key ``name`` (even with a null value)."""
    keys = (f'"{name}":', f'"{name}" :')
    return any(bool(values.str.contains(key, literal=True).any()) for key in keys)


def infer_dtypes(values: pl.Series) -> dict[str, pl.DataType]:
    """Field dtypes of a (small) column of JSON objects (Null when only nulls were seen)."""
    if not len(values):
        return {}
    try:
        sample = pl.read_ndjson(ndjson(values), infer_schema_length=None)
    except pl.exceptions.ComputeError as exc:
        raise _not_json(str(values.name), exc) from exc
    return dict(sample.schema)


def _parse_time(column: pl.Series, dtype: pl.Datetime | pl.Date) -> pl.Series:
    """ISO 8601 text as ``dtype``; times with an offset are converted to its zone."""
    if isinstance(dtype, pl.Date):
        return column.str.to_date(strict=False)
    parsed = column.str.to_datetime(time_unit=dtype.time_unit, strict=False)
    zone = parsed.dtype.time_zone if isinstance(parsed.dtype, pl.Datetime) else None
    if zone is None:
        return parsed.dt.replace_time_zone(dtype.time_zone)
    if dtype.time_zone is None:
        return parsed.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return parsed.dt.convert_time_zone(dtype.time_zone)
