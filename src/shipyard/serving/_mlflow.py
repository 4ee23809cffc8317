"""The MLflow scoring protocol: ``POST /invocations`` as JSON or CSV, and its response."""

from __future__ import annotations

import csv
import io
from collections.abc import Set
from typing import Any

import numpy as np
import polars as pl

from shipyard.serving.protocols import (
    ProtocolError,
    Schema,
    _columns_frame,
    _describe,
    _dtypes,
    _kind,
    _records_frame,
    load_json,
)

MLFLOW_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def parse_invocations(
    body: bytes, content_type: str, schema: Schema, optional: Set[str] = frozenset()
) -> pl.DataFrame:
    """An MLflow scoring request (``POST /invocations``), as JSON or CSV.

    Args:
        body: The raw request body.
        content_type: The request's ``Content-Type``; ``application/json`` or ``text/csv``.
        schema: The model's input columns and their polars types.
        optional: Columns that may be missing or null.

    Returns:
        One row per input row, with the schema's dtypes.

    Raises:
        ProtocolError: Status 400 (MLflow's answer) for every problem found.
    """
    dtypes = _dtypes(schema)
    media = content_type.split(";")[0].strip().lower()
    if not body.strip():
        raise ProtocolError(
            [f"empty body: send JSON with one of {', '.join(MLFLOW_KEYS)}, or CSV with a header"],
            status=400,
        )
    if media == "text/csv":
        return _csv_frame(body, dtypes, optional)
    if media != "application/json":
        raise ProtocolError(
            [f"unsupported content type {media!r} (expected application/json or text/csv)"],
            status=400,
        )
    try:
        document = load_json(body)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an int of 4300+ digits
        raise ProtocolError([f"body is not valid JSON: {exc}"], status=400) from exc
    keys = [key for key in MLFLOW_KEYS if isinstance(document, dict) and key in document]
    if len(keys) != 1:
        sent = ", ".join(keys) if keys else f"none of them ({_describe(document)})"
        raise ProtocolError(
            [f"expected exactly one of {', '.join(MLFLOW_KEYS)}; got {sent}"], status=400
        )
    return _mlflow_frame(keys[0], document[keys[0]], dtypes, optional)


def _mlflow_frame(
    key: str, value: Any, dtypes: dict[str, pl.DataType], optional: Set[str]
) -> pl.DataFrame:
    if key == "dataframe_split":
        return _split_frame(value, dtypes, optional)
    if key == "inputs" and isinstance(value, dict):
        return _columns_frame(dict(value), dtypes, optional, [], status=400, noun="column")
    if (
        key == "instances"
        and isinstance(value, list)
        and value
        and all(isinstance(row, list) for row in value)
    ):
        return _rows_frame(list(dtypes), value, dtypes, optional, where="instances")
    if not isinstance(value, list):
        raise ProtocolError(
            [f"{key}: expected a list of objects, got {_describe(value)}"], status=400
        )
    return _records_frame(value, dtypes, optional, status=400)


def _split_frame(value: Any, dtypes: dict[str, pl.DataType], optional: Set[str]) -> pl.DataFrame:
    columns, data = (
        (value.get("columns"), value.get("data")) if isinstance(value, dict) else (None, None)
    )
    if not isinstance(columns, list) or not isinstance(data, list):
        expected = 'expected {"columns": [...], "data": [[...], ...]}'
        raise ProtocolError([f"dataframe_split: {expected}, got {_describe(value)}"], status=400)
    return _rows_frame(columns, data, dtypes, optional, where="dataframe_split")


def _rows_frame(
    names: list[Any],
    rows: list[Any],
    dtypes: dict[str, pl.DataType],
    optional: Set[str],
    where: str,
) -> pl.DataFrame:
    expected = f"{len(names)} values (one per column: {', '.join(map(str, names))})"
    problems = [
        f"{where}: row {index} has {len(row)} values, expected {expected}"
        if isinstance(row, list)
        else f"{where}: row {index}: expected a list of {expected}, got {_describe(row)}"
        for index, row in enumerate(rows)
        if not isinstance(row, list) or len(row) != len(names)
    ]
    if problems:
        raise ProtocolError(problems, status=400)
    columns = {str(name): [row[position] for row in rows] for position, name in enumerate(names)}
    return _columns_frame(columns, dtypes, optional, [], status=400, noun="column")


def _csv_frame(body: bytes, dtypes: dict[str, pl.DataType], optional: Set[str]) -> pl.DataFrame:
    try:
        rows = [row for row in csv.reader(io.StringIO(body.decode("utf-8-sig"))) if row]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ProtocolError([f"body is not valid UTF-8 CSV: {exc}"], status=400) from exc
    header = rows[0]
    missing = [name for name in dtypes if name not in header and name not in optional]
    if missing:
        raise ProtocolError(
            [
                f"missing required column '{name}' (CSV header: {', '.join(header)})"
                for name in missing
            ],
            status=400,
        )
    kinds = [_kind(dtypes[name]) if name in dtypes else "other" for name in header]
    typed = [
        [_from_text(cell, kind) for cell, kind in zip(row, kinds, strict=False)] for row in rows[1:]
    ]
    return _rows_frame(header, typed, dtypes, optional, where="CSV")


def _from_text(text: str, kind: str) -> Any:
    """A CSV cell as the JSON value it stands for; left as text when it does not parse."""
    if text == "":
        return None
    converters: dict[str, Any] = {"float": float, "int": int, "bool": _bool_from_text}
    try:
        return converters[kind](text) if kind in converters else text
    except ValueError:
        return text


def _bool_from_text(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise ValueError(text)


def format_invocations(predictions: Any) -> dict[str, Any]:
    """The body of an MLflow scoring response: ``{"predictions": [...]}``."""
    if isinstance(predictions, pl.DataFrame):
        return {"predictions": predictions.to_dicts()}
    if isinstance(predictions, pl.Series):
        return {"predictions": predictions.to_list()}
    if isinstance(predictions, np.ndarray):
        return {"predictions": predictions.tolist()}
    return {"predictions": list(predictions)}
