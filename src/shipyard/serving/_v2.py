"""The Open Inference Protocol v2 (KServe, Triton, MLServer): requests, responses, metadata."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Set
from typing import Any

import numpy as np
import polars as pl

from shipyard.serving.protocols import (
    _EXPECTED,
    ProtocolError,
    Schema,
    _columns_frame,
    _describe,
    _dtypes,
    _kind,
    load_json,
)

_INTEGER_TYPES = ("INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64")
_FLOAT_TYPES = ("FP16", "FP32", "FP64")
DATATYPES = ("BOOL", *_INTEGER_TYPES, *_FLOAT_TYPES, "BYTES")

# Which v2 datatypes a column of each kind accepts; ints widen to floats as in JSON.
ACCEPTED_DATATYPES: dict[str, tuple[str, ...]] = {
    "float": _FLOAT_TYPES + _INTEGER_TYPES,
    "int": _INTEGER_TYPES,
    "bool": ("BOOL",),
    "string": ("BYTES",),
    "datetime": ("BYTES",),
    "date": ("BYTES",),
    "other": DATATYPES,
}


def parse_v2_infer(
    body: Any, schema: Schema, optional: Set[str] = frozenset()
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """An Open Inference Protocol v2 request: one ``[n]`` or ``[n, 1]`` tensor per column.

    Args:
        body: The decoded JSON body, ``{"id", "parameters", "inputs", "outputs"}``.
        schema: The model's input columns and their polars types.
        optional: Columns whose tensor may be left out.

    Returns:
        The frame, and the request's meta: ``{"id", "parameters", "outputs"}``
        (``outputs`` lists the names of the requested outputs).

    Raises:
        ProtocolError: Status 400, as the protocol asks, for every problem found.
    """
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise ProtocolError(
            [f'expected an object with "inputs": [tensor, ...], got {_describe(body)}'], status=400
        )
    dtypes = _dtypes(schema)
    problems: list[str] = []
    columns: dict[str, list[Any]] = {}
    for position, tensor in enumerate(body["inputs"]):
        name = tensor.get("name") if isinstance(tensor, dict) else None
        if not isinstance(name, str):
            problems.append(f'inputs[{position}]: expected {{"name", "shape", "datatype", "data"}}')
        elif name not in dtypes:
            problems.append(f"input '{name}': unknown input (known inputs: {', '.join(dtypes)})")
        elif name in columns:
            problems.append(f"input '{name}': sent twice")
        else:
            columns[name] = _tensor_values(name, tensor, _kind(dtypes[name]), problems)
    heights = {name: len(values) for name, values in columns.items() if values is not None}
    if len(set(heights.values())) > 1:
        sizes = ", ".join(f"{name} has {height}" for name, height in heights.items())
        problems.append(f"inputs have different row counts: {sizes}")
    meta = {
        "id": _optional(body, "id", str, "a string", problems),
        "parameters": _optional(body, "parameters", dict, "an object", problems) or {},
        "outputs": _requested_outputs(body.get("outputs"), problems),
    }
    frame = _columns_frame(columns, dtypes, optional, problems, status=400, noun="input")
    return frame, meta


_BINARY_TYPES = {
    "BOOL": "?",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "FP32": "<f4",
    "FP64": "<f8",
}


def decode_binary_infer(body: bytes, header_length: str) -> Any:
    """A request of the binary tensor extension (what Triton's clients send by default):
    ``header_length`` bytes of JSON, then the raw data of each input whose parameters give
    a ``binary_data_size``, in input order. Returns the JSON with those inputs' ``data``
    filled in, for :func:`parse_v2_infer`.

    Raises:
        ProtocolError: Status 400 for a header length, JSON or binary sizes that do not fit.
    """
    if not header_length.isdigit() or int(header_length) > len(body):
        raise ProtocolError(
            [
                f"Inference-Header-Content-Length {header_length!r} is not a byte count within "
                f"the body ({len(body)} bytes)"
            ],
            status=400,
        )
    split = int(header_length)
    try:
        request = load_json(body[:split])
    except ValueError as exc:
        raise ProtocolError([f"the JSON header is not valid JSON: {exc}"], status=400) from exc
    offset = split
    for position, tensor in enumerate(_inputs_of(request)):
        parameters = tensor.get("parameters")
        size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
        if size is None:
            continue
        where = f"input '{tensor.get('name', position)}'"
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ProtocolError(
                [f"{where}: binary_data_size {size!r} is not a byte count"], status=400
            )
        if offset + size > len(body):
            raise ProtocolError(
                [f"{where}: binary_data_size {size} runs past the end of the body"], status=400
            )
        tensor["data"] = _binary_values(where, tensor.get("datatype"), body[offset : offset + size])
        offset += size
    if offset != len(body):
        raise ProtocolError(
            [f"{len(body) - offset} bytes after the last binary input; binary_data_size is wrong"],
            status=400,
        )
    return request


def _inputs_of(request: Any) -> list[dict[str, Any]]:
    inputs = request.get("inputs") if isinstance(request, dict) else None
    return [t for t in inputs if isinstance(t, dict)] if isinstance(inputs, list) else []


def _binary_values(where: str, datatype: Any, raw: bytes) -> list[Any]:
    if datatype == "BYTES":  # each element: a 4-byte little-endian length, then the bytes
        values, at = [], 0
        while at < len(raw):
            if at + 4 > len(raw):
                raise ProtocolError(
                    [f"{where}: BYTES data ends inside a length prefix"], status=400
                )
            length = int.from_bytes(raw[at : at + 4], "little")
            element = raw[at + 4 : at + 4 + length]
            if len(element) != length:
                raise ProtocolError([f"{where}: BYTES element runs past its data"], status=400)
            try:
                values.append(element.decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise ProtocolError([f"{where}: BYTES element is not UTF-8"], status=400) from exc
            at += 4 + length
        return values
    code = _BINARY_TYPES.get(str(datatype))
    if code is None:
        return []  # parse_v2_infer reports the unknown datatype
    width = np.dtype(code).itemsize
    if len(raw) % width:
        raise ProtocolError(
            [f"{where}: {len(raw)} bytes are not a whole number of {datatype} values"],
            status=400,
        )
    numbers: list[Any] = np.frombuffer(raw, dtype=code).tolist()
    return numbers


def _tensor_values(name: str, tensor: dict[str, Any], kind: str, problems: list[str]) -> Any:
    where = f"input '{name}'"
    datatype, shape, data = tensor.get("datatype"), tensor.get("shape"), tensor.get("data")
    accepted = ", ".join(ACCEPTED_DATATYPES[kind])
    if datatype not in DATATYPES:
        known = ", ".join(DATATYPES)
        problems.append(f"{where}: unknown datatype {datatype!r} (expected one of {known})")
        return None
    if datatype not in ACCEPTED_DATATYPES[kind]:
        expected = f"{_EXPECTED[kind]} (expected one of {accepted})"
        problems.append(f"{where}: datatype {datatype} cannot carry {expected}")
        return None
    rows = _rows_of(shape)
    if rows is None:
        problems.append(f"{where}: shape {shape!r} is not [n] or [n, 1] (one tensor per column)")
        return None
    if isinstance(data, list) and all(isinstance(row, list) and len(row) == 1 for row in data):
        data = [row[0] for row in data]
    if not isinstance(data, list) or len(data) != rows:
        got = f"{len(data)} values" if isinstance(data, list) else _describe(data)
        problems.append(f"{where}: shape {shape} needs {rows} values in data, got {got}")
        return None
    return data


def _rows_of(shape: Any) -> int | None:
    """The row count of an ``[n]`` or ``[n, 1]`` shape, None for any other shape."""
    if not isinstance(shape, list) or not shape or shape[1:] not in ([], [1]):
        return None
    rows = shape[0]
    return rows if isinstance(rows, int) and not isinstance(rows, bool) and rows >= 0 else None


def _optional(body: dict[str, Any], key: str, kind: type, noun: str, problems: list[str]) -> Any:
    """``body[key]`` when absent, null or of ``kind``; else a problem and None."""
    value = body.get(key)
    if value is None or isinstance(value, kind):
        return value
    problems.append(f"{key}: expected {noun}, got {_describe(value)}")
    return None


def _requested_outputs(outputs: Any, problems: list[str]) -> list[str]:
    if outputs is None:
        return []
    if isinstance(outputs, list) and all(
        isinstance(output, dict) and isinstance(output.get("name"), str) for output in outputs
    ):
        return [output["name"] for output in outputs]
    problems.append(f'outputs: expected a list of {{"name": ...}}, got {_describe(outputs)}')
    return []


def datatype_of(dtype: pl.DataType) -> str:
    """The v2 datatype that carries a polars column type (``BYTES`` for text and dates)."""
    if dtype == pl.Boolean:
        return "BOOL"
    names = {"Float16": "FP16", "Float32": "FP32", "Float64": "FP64"}
    name = str(dtype)
    if name in names:
        return names[name]
    if dtype.is_integer():
        return name.upper()
    return "BYTES"


def format_v2_infer(
    model_name: str,
    model_version: str | None,
    request_id: str | None,
    outputs: Mapping[str, np.ndarray[Any, Any] | list[Any]],
) -> dict[str, Any]:
    """The body of a v2 inference response.

    Args:
        model_name: The model that answered.
        model_version: Its version, or None when the request named none.
        request_id: The ``id`` of the request, echoed back (None when it had none).
        outputs: One array per output; floats become ``FP64``, integers ``INT64``,
            booleans ``BOOL`` and text or datetimes ``BYTES``. Data is flattened row-major.

    Returns:
        ``{"model_name", "model_version", "id", "outputs": [...]}``, each output
        ``{"name", "shape", "datatype", "data"}``.
    """
    tensors = [_tensor(name, np.asarray(values)) for name, values in outputs.items()]
    return {
        "model_name": model_name,
        "model_version": model_version,
        "id": request_id,
        "outputs": tensors,
    }


def _tensor(name: str, array: np.ndarray[Any, Any]) -> dict[str, Any]:
    shape = list(array.shape)
    flat = array.reshape(-1)
    kind = array.dtype.kind
    if kind == "b":
        datatype, data = "BOOL", flat.tolist()
    elif kind in "iu":
        datatype, data = "INT64", flat.astype(np.int64).tolist()
    elif kind == "f":
        datatype, data = "FP64", flat.astype(np.float64).tolist()
    elif kind == "M":
        datatype, data = "BYTES", [_iso(value) for value in flat.astype("datetime64[us]").tolist()]
    else:
        datatype, data = "BYTES", [None if value is None else str(value) for value in flat.tolist()]
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def v2_metadata(
    model_name: str,
    versions: Iterable[str],
    schema: Mapping[str, pl.DataType | type[pl.DataType]],
    outputs: Mapping[str, pl.DataType | type[pl.DataType]],
) -> dict[str, Any]:
    """The body of ``GET /v2/models/{name}``: one ``[-1]``-shaped tensor per column.

    Args:
        model_name: The model's name.
        versions: Its servable versions.
        schema: The input columns and their polars types.
        outputs: The output names and their polars types.

    Returns:
        ``{"name", "versions", "platform": "shipyard", "inputs": [...], "outputs": [...]}``.
    """
    return {
        "name": model_name,
        "versions": list(versions),
        "platform": "shipyard",
        "inputs": _tensor_metadata(schema),
        "outputs": _tensor_metadata(outputs),
    }


def _tensor_metadata(
    columns: Mapping[str, pl.DataType | type[pl.DataType]],
) -> list[dict[str, Any]]:
    return [
        {"name": name, "datatype": datatype_of(_instance(dtype)), "shape": [-1]}
        for name, dtype in columns.items()
    ]


def _instance(dtype: pl.DataType | type[pl.DataType]) -> pl.DataType:
    return dtype() if isinstance(dtype, type) else dtype


def v2_server_metadata(version: str) -> dict[str, Any]:
    """The body of ``GET /v2``: the server's name, version and protocol extensions."""
    return {"name": "shipyard", "version": version, "extensions": []}
