"""The request and response codecs of the prediction API: pure functions, no server.

Three wire formats turn into the same polars frame, with the model's exact input
dtypes: shipyard's own JSON records (:func:`parse_records`), the Open Inference
Protocol v2 (:func:`parse_v2_infer`) and the MLflow scoring protocol
(:func:`parse_invocations`). Every value is checked against the input schema and
every problem is reported at once, in one :class:`ProtocolError`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import math
from collections.abc import Mapping, Set
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from shipyard._utils.frames import by_rows
from shipyard._utils.lazy import lazy_attributes
from shipyard.errors import ProtocolError

try:  # the serve extra installs it; everything works without it, more slowly
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised when the extra is not installed
    _orjson = None  # type: ignore[assignment]

__all__ = [
    "ProtocolError",
    "format_invocations",
    "format_v2_infer",
    "parse_invocations",
    "parse_records",
    "parse_v2_infer",
    "records_json_schema",
    "v2_metadata",
    "v2_server_metadata",
]

# The v2 and MLflow codecs build on the checks below, so they are loaded on first use.
_LAZY = {
    "format_invocations": "shipyard.serving._mlflow",
    "parse_invocations": "shipyard.serving._mlflow",
    "format_v2_infer": "shipyard.serving._v2",
    "parse_v2_infer": "shipyard.serving._v2",
    "v2_metadata": "shipyard.serving._v2",
    "v2_server_metadata": "shipyard.serving._v2",
}

if TYPE_CHECKING:
    from shipyard.serving._mlflow import format_invocations, parse_invocations
    from shipyard.serving._v2 import (
        format_v2_infer,
        parse_v2_infer,
        v2_metadata,
        v2_server_metadata,
    )

__getattr__ = lazy_attributes(__name__, _LAZY, globals())

Schema = Mapping[str, pl.DataType | type[pl.DataType]]

_ABSENT = object()  # a value already reported (missing field, record not an object)
_EXPECTED = {
    "float": "a number",
    "int": "an integer",
    "bool": "true or false",
    "string": "a string",
    "datetime": "an ISO 8601 date-time string",
    "date": "an ISO 8601 date string",
    "other": "a value",
}


def load_json(body: bytes | str) -> Any:
    """A request body's JSON: orjson when installed (several times faster), else the
    standard library, which also reads what orjson refuses (``NaN``, integers beyond 64
    bits) so the codec can say what is wrong with those values.

    Raises:
        ValueError: not JSON at all (``json.JSONDecodeError``, ``UnicodeDecodeError``).
    """
    if _orjson is not None:
        with contextlib.suppress(_orjson.JSONDecodeError):
            return _orjson.loads(body)
    return json.loads(body)


def parse_records(body: Any, schema: Schema, optional: Set[str] = frozenset()) -> pl.DataFrame:
    """Shipyard's own JSON: one object, a list of objects, or ``{"records": [...]}``.

    Args:
        body: The decoded JSON body.
        schema: The model's input columns and their polars types.
        optional: Columns that may be missing or null.

    Returns:
        One row per record, one column per schema entry, with the schema's dtypes.

    Raises:
        ProtocolError: Status 422, listing every missing, unknown, null or
            mistyped field of every record.
    """
    dtypes = _dtypes(schema)
    if isinstance(body, dict) and set(body) == {"records"} and "records" not in dtypes:
        body = body["records"]
    if isinstance(body, dict):
        return _records_frame([body], dtypes, optional, status=422)
    if not isinstance(body, list):
        expected = 'expected a JSON object, a list of objects or {"records": [...]}'
        raise ProtocolError([f"{expected}, got {_describe(body)}"], status=422)
    return _records_frame(body, dtypes, optional, status=422)


def records_json_schema(schema: Schema, optional: Set[str] = frozenset()) -> dict[str, Any]:
    """The JSON Schema of one input record, for the OpenAPI document.

    Args:
        schema: The model's input columns and their polars types.
        optional: Columns that may be left out or null.

    Returns:
        An object schema with one property per column, the required ones listed,
        and no other properties allowed.
    """
    dtypes = _dtypes(schema)
    properties = {}
    for name, dtype in dtypes.items():
        prop = _json_type(dtype)
        if name in optional and "type" in prop:
            prop["type"] = [prop["type"], "null"]
        properties[name] = prop
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in dtypes if name not in optional],
        "additionalProperties": False,
    }


def _json_type(dtype: pl.DataType) -> dict[str, Any]:
    kind = _kind(dtype)
    if kind == "int":
        low, high = _int_range(dtype)
        return {"type": "integer", "minimum": low, "maximum": high}
    types: dict[str, dict[str, Any]] = {
        "float": {"type": "number"},
        "bool": {"type": "boolean"},
        "string": {"type": "string"},
        "datetime": {"type": "string", "format": "date-time"},
        "date": {"type": "string", "format": "date"},
    }
    return dict(types.get(kind, {}))


# The value checks shared by every format.


def _dtypes(schema: Schema) -> dict[str, pl.DataType]:
    return {name: dtype() if isinstance(dtype, type) else dtype for name, dtype in schema.items()}


@functools.lru_cache(maxsize=256)
def _kind(dtype: pl.DataType) -> str:
    if dtype == pl.Boolean:
        return "bool"
    if dtype.is_float():
        return "float"
    if dtype.is_integer():
        return "int"
    if dtype == pl.String:
        return "string"
    if isinstance(dtype, pl.Datetime):
        return "datetime"
    return "date" if dtype == pl.Date else "other"


@functools.lru_cache(maxsize=64)
def _int_range(dtype: pl.DataType) -> tuple[int, int]:
    info = np.iinfo(str(dtype).lower())
    return int(info.min), int(info.max)


def _expected(dtype: pl.DataType) -> str:
    kind = _kind(dtype)
    if kind == "int" and dtype != pl.Int64:
        low, high = _int_range(dtype)
        return f"an integer from {low} to {high}"
    return _EXPECTED[kind]


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"{shown!r} (a string)"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value!r} (not a finite number)"
    if isinstance(value, int | float):
        return f"{value!r} (a number)"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return f"an object with keys {', '.join(map(str, value)) or '(none)'}"
    return f"{value!r} (a {type(value).__name__})"


def _coerce(value: Any, kind: str, dtype: pl.DataType) -> tuple[bool, Any]:
    """Whether ``value`` fits the column, and the value polars should receive."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "float":
        finite = _finite(value) if number else None
        return finite is not None, value if finite is None else finite
    if kind == "int":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        low, high = _int_range(dtype)
        return isinstance(value, int) and not isinstance(
            value, bool
        ) and low <= value <= high, value
    if kind == "bool":
        return isinstance(value, bool), value
    if kind == "string":
        return isinstance(value, str), value
    if kind == "datetime":
        parsed = _parse_datetime(value)
        return parsed is not None, parsed
    if kind == "date":
        try:
            return True, dt.date.fromisoformat(value)
        except (TypeError, ValueError):
            return False, value
    return True, value


def _finite(number: float) -> float | None:
    """``number`` as a finite float, None for NaN, infinities and ints beyond any float.

    Python's JSON and CSV readers take NaN, Infinity and 1e999; no score of them can be
    answered in JSON, so they are refused here, at the input.
    """
    try:
        value = float(number)
    except OverflowError:
        return None
    return value if math.isfinite(value) else None


def _parse_datetime(value: Any) -> dt.datetime | None:
    """An ISO 8601 string as a naive UTC datetime: naive means UTC, offsets are converted."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, dt.datetime):
        return None
    if value.tzinfo is None:
        return value
    try:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    except OverflowError:  # 0001-01-01T00:00+01:00 and the like fall outside years 1 to 9999
        return None


def _records_frame(
    records: list[Any], dtypes: dict[str, pl.DataType], optional: Set[str], status: int
) -> pl.DataFrame:
    if not records:
        raise ProtocolError(["no records: send at least one object"], status=status)
    keys = dtypes.keys()
    if all(type(record) is dict and record.keys() == keys for record in records):
        # every record has exactly the contract's fields: gather the columns at C speed
        whole = {name: [record[name] for record in records] for name in dtypes}
        return _frame(whole, dtypes, optional, [], status)
    problems: list[str] = []
    known = ", ".join(dtypes)
    columns: dict[str, list[Any]] = {name: [] for name in dtypes}
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            problems.append(f"record {index}: expected an object, got {_describe(record)}")
            record = dict.fromkeys(dtypes, _ABSENT)
        for name in record:
            if name not in dtypes:
                problems.append(f"record {index}: unknown field '{name}' (known fields: {known})")
        for name, values in columns.items():
            if name not in record and name not in optional:
                problems.append(f"record {index}: missing required field '{name}'")
            values.append(record.get(name, None if name in optional else _ABSENT))
    return _frame(columns, dtypes, optional, problems, status)


def _columns_frame(
    columns: dict[str, Any],
    dtypes: dict[str, pl.DataType],
    optional: Set[str],
    problems: list[str],
    status: int,
    noun: str,
) -> pl.DataFrame:
    known = ", ".join(dtypes)
    for name, values in columns.items():
        if name not in dtypes:
            problems.append(f"unknown {noun} '{name}' (known {noun}s: {known})")
        elif not isinstance(values, list) and values is not None:
            problems.append(f"{noun} '{name}': expected a list of values, got {_describe(values)}")
    for name in dtypes:
        if name not in columns and name not in optional:
            problems.append(f"missing required {noun} '{name}'")
    lists = {name: values for name, values in columns.items() if isinstance(values, list)}
    heights = {len(values) for values in lists.values()}
    if problems or len(heights) > 1:
        if len(heights) > 1 and not problems:
            sizes = ", ".join(f"{name} has {len(values)}" for name, values in lists.items())
            problems.append(f"{noun}s have different lengths: {sizes}")
        raise ProtocolError(problems, status=status)
    height = heights.pop() if heights else 0
    if height == 0:
        raise ProtocolError(["no rows: send at least one value per column"], status=status)
    full = {name: lists.get(name, [None] * height) for name in dtypes}
    return _frame(full, dtypes, optional, problems, status)


def _frame(
    columns: dict[str, list[Any]],
    dtypes: dict[str, pl.DataType],
    optional: Set[str],
    problems: list[str],
    status: int,
) -> pl.DataFrame:
    """Check every value, then build the frame column by column with the exact dtypes."""
    clean: dict[str, Any] = {}
    for name, dtype in dtypes.items():
        fast = _fits(columns[name], _kind(dtype), dtype)
        clean[name] = (
            fast if fast is not None else _column(name, columns[name], dtype, optional, problems)
        )
    if problems:
        raise ProtocolError(problems, status=status)
    height = len(next(iter(clean.values()), []))
    if height <= ROWS_BY_ROW and all(_row_safe(dtype) for dtype in dtypes.values()):
        built = by_rows(clean, dtypes)
        if built is not None:
            return built
    return pl.DataFrame([_series(name, values, dtypes[name]) for name, values in clean.items()])


ROWS_BY_ROW = 64


def _fits(values: list[Any], kind: str, dtype: pl.DataType) -> list[Any] | None:
    """``values`` as they are when every one already fits the column (no null, no
    conversion needed), else None: :func:`_column` then checks each one and says why."""
    if kind == "float":
        if not all(type(v) is float or type(v) is int for v in values):
            return None
        try:  # an integer beyond any float raises OverflowError
            if len(values) <= ROWS_BY_ROW:
                finite = all(math.isfinite(v) for v in values)
            else:
                finite = bool(np.isfinite(np.asarray(values, dtype=np.float64)).all())
        except OverflowError:
            return None
        return values if finite else None
    if kind == "int":
        if not values or not all(type(v) is int for v in values):
            return None
        low, high = _int_range(dtype)
        return values if low <= min(values) and max(values) <= high else None
    wanted = {"string": str, "bool": bool}.get(kind)
    if wanted is not None and all(type(v) is wanted for v in values):
        return values
    return None


def _row_safe(dtype: pl.DataType) -> bool:
    """Whether a row-built column of ``dtype`` holds what :func:`_series` would: naive
    datetimes are UTC, which polars assumes only for UTC (or naive) columns."""
    return not isinstance(dtype, pl.Datetime) or dtype.time_zone in (None, "UTC")


def _column(
    name: str, values: list[Any], dtype: pl.DataType, optional: Set[str], problems: list[str]
) -> list[Any]:
    kind = _kind(dtype)
    clean: list[Any] = []
    for index, value in enumerate(values):
        if value is _ABSENT or (value is None and name in optional):
            clean.append(None)
            continue
        fits, fitted = (False, value) if value is None else _coerce(value, kind, dtype)
        if not fits:
            problems.append(
                f"record {index}: {name}: expected {_expected(dtype)}, got {_describe(value)}"
            )
        clean.append(fitted)
    return clean


def _series(name: str, values: list[Any], dtype: pl.DataType) -> pl.Series:
    if not isinstance(dtype, pl.Datetime):
        return pl.Series(name, values, dtype=dtype, strict=False)
    naive = pl.Series(name, values, dtype=pl.Datetime(dtype.time_unit), strict=False)
    if dtype.time_zone is None:
        return naive
    return naive.dt.replace_time_zone("UTC").dt.convert_time_zone(dtype.time_zone)
