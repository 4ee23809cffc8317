"""The prediction API's codecs: every format gives one frame, every bad input a clear message."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from shipyard.errors import ShipyardError
from shipyard.serving.protocols import (
    ProtocolError,
    format_invocations,
    format_v2_infer,
    parse_invocations,
    parse_records,
    parse_v2_infer,
    records_json_schema,
    v2_metadata,
    v2_server_metadata,
)

SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "amount": pl.Float64,
    "count": pl.Int32,
    "country": pl.String,
    "is_new": pl.Boolean,
    "event_timestamp": pl.Datetime("us", "UTC"),
}
OPTIONAL = frozenset({"is_new"})
COLUMNS = list(SCHEMA)
ROWS = [
    [12.5, 1, "FR", True, "2024-03-01T10:00:00"],
    [3, 2, "DE", False, "2024-03-01T12:30:00+02:00"],
    [0.25, 3, "US", None, "2024-03-02T00:00:00Z"],
]
RECORDS = [dict(zip(COLUMNS, row, strict=True)) for row in ROWS]
EXPECTED = pl.DataFrame(
    {
        "amount": [12.5, 3.0, 0.25],
        "count": [1, 2, 3],
        "country": ["FR", "DE", "US"],
        "is_new": [True, False, None],
        "event_timestamp": [
            dt.datetime(2024, 3, 1, 10, tzinfo=dt.UTC),
            dt.datetime(2024, 3, 1, 10, 30, tzinfo=dt.UTC),
            dt.datetime(2024, 3, 2, tzinfo=dt.UTC),
        ],
    },
    schema=SCHEMA,
)
V2_TYPES = {"amount": "FP64", "count": "INT32", "country": "BYTES", "is_new": "BOOL"}


def _v2_body(**overrides: Any) -> dict[str, Any]:
    inputs = [
        {
            "name": name,
            "shape": [3, 1] if name == "country" else [3],
            "datatype": V2_TYPES.get(name, "BYTES"),
            "data": [record[name] for record in RECORDS],
        }
        for name in COLUMNS
    ]
    return {"id": "req-1", "inputs": inputs, **overrides}


def _json(document: Any) -> bytes:
    return json.dumps(document).encode()


def _problems(excinfo: pytest.ExceptionInfo[ProtocolError]) -> list[str]:
    return excinfo.value.problems


CSV = (
    "amount,count,country,is_new,event_timestamp\n"
    "12.5,1,FR,true,2024-03-01T10:00:00\n"
    "3,2,DE,false,2024-03-01T12:30:00+02:00\n"
    "0.25,3,US,,2024-03-02T00:00:00Z\n"
)


@pytest.mark.parametrize(
    "parse",
    [
        pytest.param(lambda: parse_records(RECORDS, SCHEMA, OPTIONAL), id="records"),
        pytest.param(lambda: parse_records({"records": RECORDS}, SCHEMA, OPTIONAL), id="wrapped"),
        pytest.param(lambda: parse_v2_infer(_v2_body(), SCHEMA, OPTIONAL)[0], id="v2"),
        pytest.param(
            lambda: parse_invocations(
                _json({"dataframe_split": {"columns": COLUMNS, "data": ROWS, "index": [0, 1, 2]}}),
                "application/json",
                SCHEMA,
                OPTIONAL,
            ),
            id="dataframe_split",
        ),
        pytest.param(
            lambda: parse_invocations(
                _json({"dataframe_records": RECORDS}), "application/json", SCHEMA, OPTIONAL
            ),
            id="dataframe_records",
        ),
        pytest.param(
            lambda: parse_invocations(
                _json({"instances": RECORDS}), "application/json", SCHEMA, OPTIONAL
            ),
            id="instances-objects",
        ),
        pytest.param(
            lambda: parse_invocations(
                _json({"instances": ROWS}), "application/json; charset=utf-8", SCHEMA, OPTIONAL
            ),
            id="instances-lists",
        ),
        pytest.param(
            lambda: parse_invocations(
                _json({"inputs": {name: [r[name] for r in RECORDS] for name in COLUMNS}}),
                "application/json",
                SCHEMA,
                OPTIONAL,
            ),
            id="inputs-columns",
        ),
        pytest.param(
            lambda: parse_invocations(
                _json({"inputs": RECORDS}), "application/json", SCHEMA, OPTIONAL
            ),
            id="inputs-objects",
        ),
        pytest.param(
            lambda: parse_invocations(CSV.encode(), "text/csv", SCHEMA, OPTIONAL), id="csv"
        ),
    ],
)
def test_every_format_gives_the_same_frame_with_exact_dtypes(parse: Any) -> None:
    frame = parse()
    assert frame.schema == pl.Schema(SCHEMA)
    assert_frame_equal(frame, EXPECTED)


def test_one_record_gives_one_row() -> None:
    frame = parse_records(RECORDS[0], SCHEMA, OPTIONAL)
    assert_frame_equal(frame, EXPECTED.head(1))


def test_optional_field_may_be_left_out() -> None:
    record = {name: value for name, value in RECORDS[0].items() if name != "is_new"}
    assert parse_records(record, SCHEMA, OPTIONAL)["is_new"].to_list() == [None]


def test_v2_returns_the_request_meta() -> None:
    body = _v2_body(parameters={"threshold": 0.5}, outputs=[{"name": "score"}])
    _, meta = parse_v2_infer(body, SCHEMA, OPTIONAL)
    assert meta == {"id": "req-1", "parameters": {"threshold": 0.5}, "outputs": ["score"]}


def test_every_record_problem_is_reported_at_once() -> None:
    records = [
        {"amount": "abc", "count": 1, "country": "FR", "event_timestamp": "2024-03-01"},
        {"amount": 1, "count": True, "country": None, "colour": "red"},
        {"amount": 1, "count": 300, "country": 7, "event_timestamp": "yesterday"},
    ]
    schema = {**SCHEMA, "count": pl.UInt8}
    with pytest.raises(ProtocolError) as excinfo:
        parse_records(records, schema, OPTIONAL)
    assert excinfo.value.status == 422
    assert isinstance(excinfo.value, ShipyardError) and isinstance(excinfo.value, ValueError)
    known = "amount, count, country, is_new, event_timestamp"
    assert _problems(excinfo) == [
        f"record 1: unknown field 'colour' (known fields: {known})",
        "record 1: missing required field 'event_timestamp'",
        "record 0: amount: expected a number, got 'abc' (a string)",
        "record 1: count: expected an integer from 0 to 255, got true (a boolean)",
        "record 2: count: expected an integer from 0 to 255, got 300 (a number)",
        "record 1: country: expected a string, got null",
        "record 2: country: expected a string, got 7 (a number)",
        "record 2: event_timestamp: expected an ISO 8601 date-time string, "
        "got 'yesterday' (a string)",
    ]
    assert str(excinfo.value).startswith("8 problems in the request:\n- record 1: unknown field")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "no records: send at least one object"),
        ("text", 'expected a JSON object, a list of objects or {"records": [...]}, got '),
        ([1], "record 0: expected an object, got 1 (a number)"),
    ],
)
def test_records_that_are_not_objects_are_refused(body: Any, message: str) -> None:
    with pytest.raises(ProtocolError, match="^" + re.escape(message)) as excinfo:
        parse_records(body, SCHEMA, OPTIONAL)
    assert excinfo.value.status == 422


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-01T10:00:00", dt.datetime(2024, 3, 1, 10, tzinfo=dt.UTC)),
        ("2024-03-01", dt.datetime(2024, 3, 1, tzinfo=dt.UTC)),
        ("2024-03-01T10:00:00Z", dt.datetime(2024, 3, 1, 10, tzinfo=dt.UTC)),
        ("2024-03-01T10:00:00-05:00", dt.datetime(2024, 3, 1, 15, tzinfo=dt.UTC)),
        ("2024-03-01T01:00:00.250+02:00", dt.datetime(2024, 2, 29, 23, 0, 0, 250000, dt.UTC)),
    ],
)
def test_datetimes_without_offset_are_utc_and_offsets_are_converted(
    text: str, expected: dt.datetime
) -> None:
    utc = parse_records({"t": text}, {"t": pl.Datetime("us", "UTC")})
    naive = parse_records({"t": text}, {"t": pl.Datetime("ms")})
    paris = parse_records({"t": text}, {"t": pl.Datetime("us", "Europe/Paris")})
    assert utc["t"].to_list() == [expected]
    assert naive["t"].to_list() == [expected.replace(tzinfo=None)]
    assert naive.schema == pl.Schema({"t": pl.Datetime("ms")})
    assert paris["t"].dt.convert_time_zone("UTC").to_list() == [expected]


def _v2_error(body: dict[str, Any]) -> list[str]:
    with pytest.raises(ProtocolError) as excinfo:
        parse_v2_infer(body, SCHEMA, OPTIONAL)
    assert excinfo.value.status == 400
    return _problems(excinfo)


def test_v2_bad_shape_datatype_and_names() -> None:
    body = _v2_body()
    body["inputs"][0]["shape"] = [3, 2]
    body["inputs"][1]["datatype"] = "FP32"
    body["inputs"][2]["datatype"] = "STRING"
    body["inputs"][3]["data"] = [True, False]
    body["inputs"].append({"name": "colour", "shape": [3], "datatype": "BYTES", "data": []})
    del body["inputs"][4]
    assert _v2_error(body) == [
        "input 'amount': shape [3, 2] is not [n] or [n, 1] (one tensor per column)",
        "input 'count': datatype FP32 cannot carry an integer "
        "(expected one of INT8, INT16, INT32, INT64, UINT8, UINT16, UINT32, UINT64)",
        "input 'country': unknown datatype 'STRING' (expected one of BOOL, INT8, INT16, INT32, "
        "INT64, UINT8, UINT16, UINT32, UINT64, FP16, FP32, FP64, BYTES)",
        "input 'is_new': shape [3] needs 3 values in data, got 2 values",
        "input 'colour': unknown input (known inputs: "
        "amount, count, country, is_new, event_timestamp)",
        "missing required input 'event_timestamp'",
    ]


def test_v2_rows_must_agree_and_values_must_fit() -> None:
    body = _v2_body()
    body["inputs"][0].update(shape=[2], data=[1.5, "abc"])
    assert _v2_error(body) == [
        "inputs have different row counts: amount has 2, count has 3, "
        "country has 3, is_new has 3, event_timestamp has 3"
    ]
    body = _v2_body()
    body["inputs"][0]["data"] = [1.5, "abc", None]
    assert _v2_error(body) == [
        "record 1: amount: expected a number, got 'abc' (a string)",
        "record 2: amount: expected a number, got null",
    ]
    assert _v2_error({"inputs": "x"}) == [
        'expected an object with "inputs": [tensor, ...], got an object with keys inputs'
    ]


def _invocation_error(body: bytes, content_type: str = "application/json") -> list[str]:
    with pytest.raises(ProtocolError) as excinfo:
        parse_invocations(body, content_type, SCHEMA, OPTIONAL)
    assert excinfo.value.status == 400
    return _problems(excinfo)


KEYS = "dataframe_split, dataframe_records, instances, inputs"


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (
            _json({"dataframe_split": {"columns": COLUMNS, "data": [ROWS[0], ROWS[1][:2]]}}),
            "application/json",
            "dataframe_split: row 1 has 2 values, expected 5 values "
            "(one per column: amount, count, country, is_new, event_timestamp)",
        ),
        (
            _json({"dataframe_split": {"columns": ["amount"], "data": [5]}}),
            "application/json",
            "dataframe_split: row 0: expected a list of 1 values (one per column: amount), "
            "got 5 (a number)",
        ),
        (
            _json({"instances": RECORDS, "inputs": RECORDS}),
            "application/json",
            f"expected exactly one of {KEYS}; got instances, inputs",
        ),
        (
            _json({"data": RECORDS}),
            "application/json",
            f"expected exactly one of {KEYS}; got none of them (an object with keys data)",
        ),
        (
            b"  ",
            "application/json",
            f"empty body: send JSON with one of {KEYS}, or CSV with a header",
        ),
        (
            b'{"instances": [',
            "application/json",
            "body is not valid JSON: Expecting value: line 1 column 16 (char 15)",
        ),
        (
            b"amount,country\n1,FR\n",
            "text/csv",
            "missing required column 'count' (CSV header: amount, country)",
        ),
        (
            b"<x/>",
            "application/xml",
            "unsupported content type 'application/xml' (expected application/json or text/csv)",
        ),
    ],
)
def test_bad_invocations_are_400_with_a_clear_message(
    body: bytes, content_type: str, message: str
) -> None:
    assert _invocation_error(body, content_type)[0] == message


def test_csv_cells_that_do_not_parse_are_reported_as_text() -> None:
    body = CSV.replace("12.5,1,FR,true", "lots,1.5,FR,maybe").encode()
    assert _invocation_error(body, "text/csv") == [
        "record 0: amount: expected a number, got 'lots' (a string)",
        "record 0: count: expected an integer from -2147483648 to 2147483647, got '1.5' (a string)",
        "record 0: is_new: expected true or false, got 'maybe' (a string)",
    ]


def test_mlflow_columns_of_different_lengths_are_refused() -> None:
    columns = {name: [r[name] for r in RECORDS] for name in COLUMNS}
    columns["amount"] = [1.0]
    assert _invocation_error(_json({"inputs": columns})) == [
        "columns have different lengths: amount has 1, count has 3, country has 3, "
        "is_new has 3, event_timestamp has 3"
    ]


# Found while fuzzing the API (tests/serving/test_fuzz.py): the first two answered 500,
# the third broke the v2 answer the OpenAPI document promises.


def test_numbers_no_json_answer_can_carry_are_refused_in_every_format() -> None:
    records = [{**RECORDS[0], "amount": value} for value in (math.nan, -math.inf, 10**400)]
    with pytest.raises(ProtocolError) as excinfo:
        parse_records(records, SCHEMA, OPTIONAL)
    csv = CSV.replace("12.5,", "nan,").replace("0.25,", "-Infinity,").encode()

    assert _problems(excinfo) == [
        "record 0: amount: expected a number, got nan (not a finite number)",
        "record 1: amount: expected a number, got -inf (not a finite number)",
        f"record 2: amount: expected a number, got {10**400!r} (a number)",
    ]
    assert _invocation_error(csv, "text/csv") == [
        "record 0: amount: expected a number, got nan (not a finite number)",
        "record 2: amount: expected a number, got -inf (not a finite number)",
    ]
    one = _json({"instances": [{**RECORDS[0], "amount": "X"}]})
    assert _invocation_error(one.replace(b'"X"', b"1e999")) == [
        "record 0: amount: expected a number, got inf (not a finite number)"
    ]
    assert _invocation_error(one.replace(b'"X"', b"9" * 5000)) == [
        "body is not valid JSON: Exceeds the limit (4300 digits) for integer string "
        "conversion: value has 5000 digits; use sys.set_int_max_str_digits() to increase the limit"
    ]


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+00:01", "9999-12-31T23:59:59-01:00"])
def test_datetimes_whose_utc_time_is_out_of_range_are_refused(text: str) -> None:
    with pytest.raises(ProtocolError) as excinfo:
        parse_records({"t": text}, {"t": pl.Datetime("us", "UTC")})
    assert _problems(excinfo) == [
        f"record 0: t: expected an ISO 8601 date-time string, got {text!r} (a string)"
    ]


def test_v2_id_and_parameters_must_be_a_string_and_an_object() -> None:
    # An id of 7 came back as "id": 7, against the protocol and the OpenAPI document.
    assert _v2_error(_v2_body(id=7, parameters=[1])) == [
        "id: expected a string, got 7 (a number)",
        "parameters: expected an object, got a list of 1",
    ]
    _, meta = parse_v2_infer(_v2_body(id=None, parameters=None), SCHEMA, OPTIONAL)
    assert meta == {"id": None, "parameters": {}, "outputs": []}


def test_responses() -> None:
    outputs: dict[str, np.ndarray[Any, Any] | list[Any]] = {
        "score": np.array([0.25, 0.75], dtype=np.float32),
        "label": np.array([[1], [0]]),
        "flag": [True, False],
        "name": np.array(["a", "b"]),
    }
    assert format_v2_infer("fraud", "3", "req-1", outputs) == {
        "model_name": "fraud",
        "model_version": "3",
        "id": "req-1",
        "outputs": [
            {"name": "score", "shape": [2], "datatype": "FP64", "data": [0.25, 0.75]},
            {"name": "label", "shape": [2, 1], "datatype": "INT64", "data": [1, 0]},
            {"name": "flag", "shape": [2], "datatype": "BOOL", "data": [True, False]},
            {"name": "name", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]},
        ],
    }
    assert format_invocations(np.array([0.5, 1.0])) == {"predictions": [0.5, 1.0]}
    assert format_invocations(pl.Series([1, 2])) == {"predictions": [1, 2]}


def test_metadata_documents() -> None:
    assert v2_metadata("fraud", ["1", "2"], SCHEMA, {"score": pl.Float32}) == {
        "name": "fraud",
        "versions": ["1", "2"],
        "platform": "shipyard",
        "inputs": [
            {"name": "amount", "datatype": "FP64", "shape": [-1]},
            {"name": "count", "datatype": "INT32", "shape": [-1]},
            {"name": "country", "datatype": "BYTES", "shape": [-1]},
            {"name": "is_new", "datatype": "BOOL", "shape": [-1]},
            {"name": "event_timestamp", "datatype": "BYTES", "shape": [-1]},
        ],
        "outputs": [{"name": "score", "datatype": "FP32", "shape": [-1]}],
    }
    assert v2_server_metadata("0.4.0") == {
        "name": "shipyard",
        "version": "0.4.0",
        "extensions": [],
    }


def test_records_json_schema() -> None:
    assert records_json_schema(SCHEMA, OPTIONAL) == {
        "type": "object",
        "properties": {
            "amount": {"type": "number"},
            "count": {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1},
            "country": {"type": "string"},
            "is_new": {"type": ["boolean", "null"]},
            "event_timestamp": {"type": "string", "format": "date-time"},
        },
        "required": ["amount", "count", "country", "event_timestamp"],
        "additionalProperties": False,
    }


DTYPES: dict[Any, st.SearchStrategy[Any]] = {
    pl.Float64: st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**53), 2**53),
    pl.Int64: st.integers(-(2**63), 2**63 - 1),
    pl.UInt8: st.integers(0, 255),
    pl.Boolean: st.booleans(),
    pl.String: st.text(),
    pl.Datetime("us", "UTC"): st.datetimes(
        min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1)
    ).map(dt.datetime.isoformat),
}


@st.composite
def _schemas_and_records(draw: st.DrawFn) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    names = draw(
        st.lists(st.text("abcxyz_", min_size=1, max_size=6), min_size=1, max_size=5, unique=True)
    )
    schema = {name: draw(st.sampled_from(list(DTYPES))) for name in names}
    record = st.fixed_dictionaries({name: DTYPES[dtype] for name, dtype in schema.items()})
    return schema, draw(st.lists(record, min_size=1, max_size=5))


def _normalised(value: Any, dtype: Any) -> Any:
    if dtype == pl.Float64:
        return float(value)
    if isinstance(dtype, pl.Datetime):
        return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)
    return value


@settings(max_examples=150, deadline=None)
@given(_schemas_and_records())
def test_valid_records_survive_the_round_trip(
    case: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    schema, records = case
    frame = parse_records(records, schema)
    assert frame.schema == pl.Schema(schema)
    assert frame.to_dicts() == [
        {name: _normalised(value, schema[name]) for name, value in record.items()}
        for record in records
    ]
