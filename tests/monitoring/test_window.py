"""Reading windows of the prediction log: real segments written by PredictionLog."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shipyard.errors import MonitoringError
from shipyard.monitoring._ndjson import decode_columns, decode_objects, ndjson
from shipyard.monitoring.window import LOG_COLUMNS, WindowSlice, read_window, split_windows
from shipyard.serving.log import SCHEMA, PredictionLog

T0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday


def record(index: int, **extra: Any) -> dict[str, Any]:
    """One prediction, an hour after the previous one."""
    return {
        "request_id": f"r{index}",
        "ts": T0 + timedelta(hours=index),
        "model_version": "1",
        "entity_key": f"c{index % 3}",
        "score": index / 100,
        "decision": index % 2,
        "latency_ms": 2.0,
        "inputs": {"amount": index * 1.5, "country": "FR" if index % 2 else "DE"},
        "features": {"count_24h": index, "amount": -1.0, "vip": index % 3 == 0},
        **extra,
    }


def write(directory: Path, batches: list[list[dict[str, Any]]], model: str = "fraud") -> None:
    """One segment per batch, as a server's flushes."""
    with PredictionLog(directory, model=model, flush_rows=10**6, flush_seconds=3600) as log:
        for batch in batches:
            log.append_many(batch)
            assert log.flush()


def segments(directory: Path) -> list[Path]:
    return sorted((directory / "segments").glob("*/*.parquet"))


def test_reads_every_segment_and_decodes_inputs_and_features(tmp_path: Path) -> None:
    write(tmp_path, [[record(i) for i in range(5)], [record(i) for i in range(5, 8)]])

    window = read_window(tmp_path)

    assert window.segments == 2
    assert window.skipped == []
    frame = window.frame
    assert frame.columns == [*LOG_COLUMNS, "amount", "country", "count_24h", "vip"]
    assert frame["request_id"].to_list() == [f"r{i}" for i in range(8)]
    assert frame["amount"].to_list() == [i * 1.5 for i in range(8)]  # the input wins
    one_null = read_window(tmp_path, until=T0 + timedelta(hours=1)).frame
    assert one_null["amount"].to_list() == [0.0]
    assert frame["count_24h"].dtype == pl.Int64
    assert frame["vip"].to_list() == [i % 3 == 0 for i in range(8)]
    assert frame["ts"].dtype == pl.Datetime("us", "UTC")


def test_time_bounds_model_and_shadow_filters(tmp_path: Path) -> None:
    rows = [record(i) for i in range(10)]
    rows += [record(i, request_id=f"s{i}", shadow=True, model="challenger") for i in range(3)]
    rows += [record(i, request_id=f"o{i}", model="other") for i in range(2)]
    write(tmp_path, [rows])

    window = read_window(
        tmp_path, since=T0 + timedelta(hours=2), until=T0 + timedelta(hours=5), model="fraud"
    )
    assert window.frame["request_id"].to_list() == ["r2", "r3", "r4"]

    naive = read_window(tmp_path, since=datetime(2026, 3, 2, 8), model="fraud")
    assert naive.frame["request_id"].to_list() == ["r8", "r9"]  # naive taken as UTC

    shadow = read_window(tmp_path, shadow=True)
    assert shadow.frame["request_id"].to_list() == ["s0", "s1", "s2"]
    assert set(read_window(tmp_path).frame["model"]) == {"fraud", "other"}


def test_date_folders_before_since_are_not_opened(tmp_path: Path) -> None:
    write(tmp_path, [[record(i) for i in range(3)]])
    old = tmp_path / "segments" / "2020-01-01"
    old.mkdir()
    (old / "0000000099-dead.parquet").write_bytes(b"not parquet")  # would be skipped if read

    window = read_window(tmp_path, since=T0)
    assert window.skipped == []
    assert window.frame.height == 3

    everything = read_window(tmp_path)
    assert len(everything.skipped) == 1


def test_window_with_no_traffic_is_empty_not_an_error(tmp_path: Path) -> None:
    empty = read_window(tmp_path / "never-written", schema={"amount": pl.Float64})
    assert empty.frame.height == 0
    assert empty.frame.columns == [*LOG_COLUMNS, "amount"]
    assert empty.frame["amount"].dtype == pl.Float64
    assert (empty.segments, empty.skipped, empty.missing) == (0, [], ())

    write(tmp_path, [[record(i) for i in range(3)]])
    later = read_window(tmp_path, since=T0 + timedelta(days=30))
    assert later.frame.height == 0
    assert later.frame.columns == LOG_COLUMNS  # no rows to infer fields from


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda path: path.write_bytes(path.read_bytes()[:40]), id="truncated"),
        pytest.param(lambda path: path.write_text("hello, not parquet"), id="not-parquet"),
        pytest.param(
            lambda path: pq.write_table(pa.table({"request_id": ["x"], "ts": [1]}), path),
            id="wrong-schema",
        ),
        pytest.param(
            lambda path: pq.write_table(
                pa.Table.from_pylist(
                    [dict.fromkeys(SCHEMA.names, "1")],
                    schema=pa.schema([(name, pa.string()) for name in SCHEMA.names]),
                ),
                path,
            ),
            id="wrong-types",
        ),
    ],
)
def test_corrupted_segment_is_skipped_with_its_name_and_the_rest_read(
    tmp_path: Path, damage: Any
) -> None:
    write(tmp_path, [[record(i) for i in range(j * 3, j * 3 + 3)] for j in range(3)])
    broken = segments(tmp_path)[1]
    damage(broken)

    window = read_window(tmp_path, schema={"amount": pl.Float64})

    assert window.frame["request_id"].to_list() == ["r0", "r1", "r2", "r6", "r7", "r8"]
    assert window.segments == 2
    assert len(window.skipped) == 1
    message = window.skipped[0]
    assert str(broken) in message
    assert "The rest of the log was read" in message
    assert "Move the file out of" in message


def test_temporary_segments_are_ignored(tmp_path: Path) -> None:
    write(tmp_path, [[record(0)]])
    folder = segments(tmp_path)[0].parent
    (folder / "0000000005-abc.parquet.tmp").write_bytes(b"half a flush")

    window = read_window(tmp_path)
    assert (window.frame.height, window.skipped) == (1, [])


def test_schema_casts_and_reports_missing_fields_and_bad_values(tmp_path: Path) -> None:
    rows = [record(i) for i in range(4)]
    rows[2]["inputs"] = {"amount": "a lot", "country": "FR"}  # not a number
    write(tmp_path, [rows])

    window = read_window(
        tmp_path,
        schema={
            "amount": pl.Float32,
            "count_24h": pl.Int8(),
            "country": pl.Categorical(),
            "merchant": pl.String,  # never logged
            "vip": pl.Boolean,
        },
    )

    frame = window.frame
    assert window.missing == ("merchant",)
    assert frame["merchant"].dtype == pl.String
    assert frame["merchant"].null_count() == 4
    assert frame["amount"].dtype == pl.Float32
    assert frame["amount"].to_list() == [0.0, 1.5, None, 4.5]
    assert window.uncastable == {"amount": 1}
    assert frame["count_24h"].dtype == pl.Int8
    assert frame["country"].dtype == pl.Categorical
    assert frame["vip"].to_list() == [True, False, False, True]


def test_a_field_present_with_null_values_is_not_missing(tmp_path: Path) -> None:
    write(tmp_path, [[record(0, inputs={"amount": None}), record(1, inputs={"amount": None})]])
    window = read_window(tmp_path, schema={"amount": pl.Float64})
    assert window.missing == ()
    assert window.frame["amount"].null_count() == 2


def test_input_wins_over_feature_and_log_column_names_are_suffixed(tmp_path: Path) -> None:
    rows = [
        record(0, inputs={"amount": None, "score": 7}),
        record(1, inputs={}, features={"amount": 3.0, "only_feature": 1}),
    ]
    write(tmp_path, [rows])
    frame = read_window(tmp_path).frame
    assert frame["amount"].to_list() == [None, None]  # the inputs carry it, if only as null
    assert frame["only_feature"].to_list() == [None, 1]
    assert frame["score"].to_list() == [0.0, 0.01]  # the log's own column
    assert frame["score_field"].to_list() == [7, None]


def test_datetime_fields_are_decoded_as_utc(tmp_path: Path) -> None:
    when = datetime(2026, 3, 1, 12, tzinfo=UTC)
    write(tmp_path, [[record(0, inputs={"seen": when}), record(1, inputs={"seen": "nope"})]])
    window = read_window(tmp_path, schema={"seen": pl.Datetime("us", "UTC")})
    assert window.frame["seen"].to_list() == [when, None]
    assert window.uncastable == {"seen": 1}


def test_inference_sees_fields_of_late_rows(tmp_path: Path) -> None:
    rows = [record(i, features={}) for i in range(30)]
    rows[-1]["features"] = {"late": 1.5}
    write(tmp_path, [rows])
    frame = read_window(tmp_path).frame
    assert frame["late"].to_list() == [None] * 29 + [1.5]


def test_json_strings_with_line_breaks_and_non_objects_keep_rows_aligned(
    tmp_path: Path,
) -> None:
    rows = [
        record(0, inputs_json='{\n  "amount": 1.0\n}'),
        record(1, inputs_json="[1, 2]"),
        record(2, inputs_json=""),
        record(3, inputs_json='{"amount": 4.0}'),
    ]
    write(tmp_path, [rows])
    frame = read_window(tmp_path, schema={"amount": pl.Float64}).frame
    assert frame["amount"].to_list() == [1.0, None, None, 4.0]


def test_rows_come_back_in_time_order(tmp_path: Path) -> None:
    write(tmp_path, [[record(5), record(1)], [record(0), record(3)]])
    assert read_window(tmp_path).frame["request_id"].to_list() == ["r0", "r1", "r3", "r5"]


def _frame(hours: list[float]) -> pl.DataFrame:
    return pl.DataFrame(
        {"ts": [T0 + timedelta(hours=hour) for hour in hours], "x": list(range(len(hours)))},
        schema={"ts": pl.Datetime("us", "UTC"), "x": pl.Int64},
    )


def test_split_by_calendar_period_includes_empty_windows() -> None:
    frame = _frame([0.5, 1.2, 1.9, 5.0])

    slices = split_windows(frame, "1h")

    assert [s.start for s in slices] == [T0 + timedelta(hours=h) for h in range(6)]
    assert [s.frame["x"].to_list() for s in slices] == [[0], [1, 2], [], [], [], [3]]
    assert all(s.end - s.start == timedelta(hours=1) for s in slices)


def test_split_aligns_days_and_weeks_on_the_calendar() -> None:
    frame = _frame([-30.0, 10.0, 50.0, 24 * 9])  # Saturday 18:00 .. Wednesday after next

    days = split_windows(frame, "1d")
    assert days[0].start == datetime(2026, 2, 28, tzinfo=UTC)
    assert [s.frame.height for s in days] == [1, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1]

    weeks = split_windows(frame, "1w")
    assert [s.start for s in weeks] == [
        datetime(2026, 2, 23, tzinfo=UTC),
        datetime(2026, 3, 2, tzinfo=UTC),
        datetime(2026, 3, 9, tzinfo=UTC),
    ]
    assert [s.frame.height for s in weeks] == [1, 2, 1]
    assert [s.start for s in split_windows(frame, "7d")] == [s.start for s in weeks]

    quarters = split_windows(frame, "6h", start=T0, end=T0 + timedelta(days=1))
    assert [s.start.hour for s in quarters] == [0, 6, 12, 18]
    assert [s.frame.height for s in quarters] == [0, 1, 0, 0]


def test_split_with_bounds_and_no_traffic_gives_empty_windows() -> None:
    empty = _frame([])
    slices = split_windows(empty, "1d", start=T0, end=T0 + timedelta(days=3))
    assert [(s.start, s.frame.height) for s in slices] == [
        (T0 + timedelta(days=d), 0) for d in range(3)
    ]
    assert split_windows(empty, "1d") == []
    assert split_windows(empty, 100) == []


def test_split_by_row_count_in_time_order() -> None:
    frame = _frame([3.0, 1.0, 2.0, 0.0, 4.0])
    slices = split_windows(frame, "2")
    assert [s.frame["x"].to_list() for s in slices] == [[3, 1], [2, 0], [4]]
    assert slices[0] == WindowSlice(T0, T0 + timedelta(hours=1, microseconds=1), slices[0].frame)
    assert [s.frame.height for s in split_windows(frame, 10)] == [5]


@pytest.mark.parametrize("every", ["1m", "0h", "hourly", "0", "-5", ""])
def test_split_rejects_unknown_periods(every: str) -> None:
    with pytest.raises(MonitoringError, match=r"'1h'|positive count"):
        split_windows(_frame([0.0]), every)


def test_reading_many_segments_is_the_same_as_one(tmp_path: Path) -> None:
    rows = [record(i) for i in range(60)]
    write(tmp_path / "many", [rows[i : i + 7] for i in range(0, 60, 7)])
    write(tmp_path / "one", [rows])
    many, one = read_window(tmp_path / "many"), read_window(tmp_path / "one")
    assert many.segments == 9
    assert many.frame.equals(one.frame)


def test_unexpected_folder_names_are_read_not_ignored(tmp_path: Path) -> None:
    write(tmp_path, [[record(0)]])
    source = segments(tmp_path)[0]
    odd = tmp_path / "segments" / "copied"
    odd.mkdir()
    os.replace(source, odd / source.name)
    assert read_window(tmp_path, since=T0).frame.height == 1


def test_a_field_null_in_the_inputs_takes_the_features_type_when_inferred(tmp_path: Path) -> None:
    rows = [record(i, inputs={"amount": None}, features={"amount": 2.5}) for i in range(2)]
    write(tmp_path, [rows])
    frame = read_window(tmp_path).frame
    assert frame["amount"].dtype == pl.Float64
    assert frame["amount"].to_list() == [None, None]  # the inputs carry it: the input wins


def test_field_beyond_the_sample_is_found_when_named_in_the_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("shipyard.monitoring.window.INFER_ROWS", 3)
    rows = [record(i, features={}) for i in range(9)]
    rows[4]["features"] = {"rare": 7}
    write(tmp_path, [rows])
    window = read_window(tmp_path, schema={"rare": pl.Int32, "absent": pl.Float64})
    assert window.frame["rare"].to_list() == [None] * 4 + [7] + [None] * 4
    assert window.missing == ("absent",)


def test_text_that_is_not_json_is_a_clear_error(tmp_path: Path) -> None:
    write(tmp_path, [[record(0, inputs_json='{"amount": oops}')]])
    with pytest.raises(MonitoringError, match="inputs_json column holds text that is not JSON"):
        read_window(tmp_path, schema={"amount": pl.Float64})


def test_ndjson_gives_one_line_per_value_whatever_the_value() -> None:
    values = pl.Series("inputs_json", [None, "", "[1]", '{\r\n"a": 1}', '{"a": 2}', " {}"])
    text = ndjson(values)
    assert text.count(b"\n") == len(values)
    assert pl.read_ndjson(text, schema={"a": pl.Int64})["a"].to_list() == [
        None,
        None,
        None,
        1,
        2,
        None,
    ]


def test_ndjson_of_clean_values_is_the_values_joined(tmp_path: Path) -> None:
    values = pl.Series("features_json", ['{"a":1}', '{"a":2,"b":"x"}', '{"a":3}', "{}"])
    assert ndjson(values) == b'{"a":1}\n{"a":2,"b":"x"}\n{"a":3}\n{}\n'
    assert ndjson(values.slice(1, 2)) == b'{"a":2,"b":"x"}\n{"a":3}\n'  # an offset array
    chunked = pl.concat([values.slice(0, 1), values.slice(2, 1)], rechunk=False)
    assert ndjson(chunked) == b'{"a":1}\n{"a":3}\n'


def test_columns_decoded_in_parallel_match_one_by_one() -> None:
    inputs = pl.Series("inputs_json", ['{"x": 1, "t": "1"}', '{"x": "two"}', None] * 50)
    features = pl.Series("features_json", ['{"y": 0.5}', "[]", '{"y": 2, "z": true}'] * 50)
    plans: dict[str, dict[str, pl.DataType]] = {
        "inputs_json": {"x": pl.Int16(), "t": pl.Int64()},
        "features_json": {"y": pl.Float32(), "z": pl.Boolean()},
    }
    frames, uncastable = decode_columns({"inputs_json": inputs, "features_json": features}, plans)
    one_by_one = [
        decode_objects(inputs, plans["inputs_json"]),
        decode_objects(features, plans["features_json"]),
    ]
    assert [frame.to_dict(as_series=False) for frame in frames] == [
        frame.to_dict(as_series=False) for frame, _ in one_by_one
    ]
    assert uncastable == {"x": 50} == one_by_one[0][1] | one_by_one[1][1]
    assert frames[0]["x"].to_list()[:3] == [1, None, None]
    assert frames[1]["y"].dtype == pl.Float32


def test_decoding_no_values_gives_empty_typed_columns() -> None:
    frame, failures = decode_objects(pl.Series("inputs_json", [], pl.String), {"a": pl.Int8()})
    assert frame.schema == pl.Schema({"a": pl.Int8()})
    assert frame.height == 0
    assert failures == {}


def test_text_that_is_not_json_names_its_column_when_both_are_decoded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("shipyard.monitoring.window.INFER_ROWS", 2)  # rows 0 and 2 sampled
    write(tmp_path, [[record(0), record(1, features_json='{"count_24h": oops}'), record(2)]])
    with pytest.raises(MonitoringError, match="features_json column holds text that is not JSON"):
        read_window(tmp_path, schema={"amount": pl.Float64, "count_24h": pl.Int64})
