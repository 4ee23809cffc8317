"""The prediction log: durable segments, background flushes, reading back, joining labels."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest

from shipyard.errors import StoreError
from shipyard.serving import log as log_module
from shipyard.serving.log import PredictionLog, PredictionLogClosedError, join_labels, read_log

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def record(i: int, **overrides: Any) -> dict[str, Any]:
    """A complete prediction record numbered ``i``."""
    base: dict[str, Any] = {
        "request_id": f"r{i}",
        "ts": T0 + timedelta(seconds=i),
        "model_version": "3",
        "inputs": {"amount": i * 1.5, "country": "FR"},
        "features": {"txn_count_7d": i},
        "score": i / 1000,
        "decision": i % 2 == 0,
        "latency_ms": 2.5,
        "entity_key": f"card{i % 3}",
    }
    return base | overrides


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def segments(directory: Path) -> list[Path]:
    return sorted((directory / "segments").glob("*/*"))


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    with PredictionLog(tmp_path, model="fraud") as log:
        log.append_many(record(i) for i in range(500))
        log.append(record(500, ts=1_700_000_000_123_456, model="fraud-shadow", shadow=True))
        log.append(record(501, ts=datetime(2026, 3, 1, 12, 0), entity_key=None, decision=7))
    frame = read_log(tmp_path).collect().sort("request_id")
    assert frame.height == 502
    assert (log.appended, log.flushed, log.rejected) == (502, 502, 0)
    first = frame.filter(pl.col("request_id") == "r1").row(0, named=True)
    assert first == {
        "request_id": "r1",
        "ts": T0 + timedelta(seconds=1),
        "model": "fraud",
        "model_version": "3",
        "entity_key": "card1",
        "shadow": False,
        "score": 0.001,
        "decision": 0,
        "latency_ms": 2.5,
        "inputs_json": '{"amount":1.5,"country":"FR"}',
        "features_json": '{"txn_count_7d":1}',
    }
    shadow = frame.filter(pl.col("request_id") == "r500").row(0, named=True)
    assert shadow["ts"] == datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=UTC)
    assert (shadow["model"], shadow["shadow"]) == ("fraud-shadow", True)
    naive = frame.filter(pl.col("request_id") == "r501").row(0, named=True)
    assert (naive["ts"], naive["entity_key"], naive["decision"]) == (T0, None, 7)
    assert json.loads(naive["inputs_json"]) == {"amount": 751.5, "country": "FR"}


def test_flushes_when_flush_rows_are_waiting(tmp_path: Path) -> None:
    with PredictionLog(tmp_path, model="fraud", flush_rows=100, flush_seconds=60) as log:
        log.append_many(record(i) for i in range(99))
        time.sleep(0.05)
        assert (log.flushed, segments(tmp_path)) == (0, [])
        log.append(record(99))
        wait_until(lambda: log.flushed == 100)
        assert len(segments(tmp_path)) == 1
        assert log.lag_seconds() == 0.0


def test_flushes_every_flush_seconds(tmp_path: Path) -> None:
    with PredictionLog(tmp_path, model="fraud", flush_seconds=0.05) as log:
        log.append(record(1))
        assert log.lag_seconds() > 0.0
        wait_until(lambda: log.flushed == 1)
        log.append(record(2))
        wait_until(lambda: log.flushed == 2)
    names = [path.name for path in segments(tmp_path)]
    assert [name.split("-")[0] for name in names] == ["0000000000", "0000000001"]


def test_close_flushes_everything_and_refuses_more(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, model="fraud", flush_seconds=60)
    log.append_many(record(i) for i in range(10))
    log.close()
    log.close()
    assert read_log(tmp_path).collect().height == 10
    with pytest.raises(PredictionLogClosedError, match="is closed; open a new PredictionLog"):
        log.append(record(11))


def test_sequence_continues_in_a_reopened_directory(tmp_path: Path) -> None:
    for start in (0, 10):
        with PredictionLog(tmp_path, model="fraud", flush_seconds=60) as log:
            log.append_many(record(i) for i in range(start, start + 10))
    assert [path.name[:10] for path in segments(tmp_path)] == ["0000000000", "0000000001"]


def test_concurrent_appends_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    with PredictionLog(tmp_path, model="fraud", flush_rows=700, flush_seconds=0.01) as log:

        def worker(thread: int) -> None:
            for i in range(2_000):
                log.append(record(thread * 10_000 + i))

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    ids = read_log(tmp_path).select("request_id").collect()["request_id"]
    assert ids.len() == 16_000
    assert ids.n_unique() == 16_000
    assert len(segments(tmp_path)) > 1


CRASH = """
import os, sys
from datetime import UTC, datetime
from pathlib import Path
from shipyard.serving.log import PredictionLog

def rec(i):
    return {"request_id": f"r{i}", "ts": datetime.now(UTC), "model_version": "1",
            "score": 0.5, "decision": 1, "latency_ms": 1.0}

log = PredictionLog(Path(sys.argv[1]), model="fraud", flush_seconds=60)
log.append_many(rec(i) for i in range(int(sys.argv[2])))
assert log.flush()
log.append_many(rec(i) for i in range(1_000_000, 1_000_000 + int(sys.argv[3])))
os._exit(0)
"""


def test_a_crash_loses_only_unflushed_rows_and_leaves_no_partial_segment(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-c", CRASH, str(tmp_path), "300", "50"], check=True)
    files = segments(tmp_path)
    assert len(files) == 1
    assert files[0].suffix == ".parquet"
    ids = read_log(tmp_path).collect()["request_id"].to_list()
    assert sorted(ids) == sorted(f"r{i}" for i in range(300))


def test_a_failed_write_keeps_the_rows_for_the_next_flush(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = PredictionLog(tmp_path, model="fraud", flush_seconds=60)
    log.append_many(record(i) for i in range(5))
    if os.geteuid() == 0:  # root writes through read-only modes; fail the writer itself once
        real = log_module._write_segment
        calls: list[Path] = []

        def fail_once(table: pa.Table, final: Path) -> None:
            calls.append(final)
            if len(calls) == 1:
                raise OSError(28, "No space left on device")
            real(table, final)

        monkeypatch.setattr(log_module, "_write_segment", fail_once)
        assert log.flush() is False
    else:
        (tmp_path / "segments").mkdir()
        os.chmod(tmp_path / "segments", 0o500)
        try:
            assert log.flush() is False
        finally:
            os.chmod(tmp_path / "segments", 0o700)
    assert (log.failed_flushes, log.flushed) == (1, 0)
    assert isinstance(log.last_error, OSError)
    assert log.lag_seconds() > 0.0
    log.append(record(5))
    log.close()
    assert sorted(read_log(tmp_path).collect()["request_id"]) == [f"r{i}" for i in range(6)]
    assert (log.failed_flushes, log.flushed) == (1, 6)


def test_close_reports_rows_it_could_not_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(table: pa.Table, final: Path) -> None:
        raise OSError(13, "Permission denied")

    monkeypatch.setattr(log_module, "_write_segment", broken)
    log = PredictionLog(tmp_path, model="fraud", flush_seconds=60)
    log.append_many(record(i) for i in range(3))
    with pytest.raises(StoreError, match="3 predictions could not be written"):
        log.close()
    monkeypatch.undo()
    assert log.flush() is True
    assert read_log(tmp_path).collect().height == 3


def test_a_malformed_record_is_rejected_not_retried(tmp_path: Path) -> None:
    with PredictionLog(tmp_path, model="fraud", flush_seconds=60) as log:
        log.append(record(1))
        log.append({"request_id": "broken", "ts": T0})
        log.append(record(2, score="high"))
        log.append(record(3, decision=2**64))
    assert (log.flushed, log.rejected, log.failed_flushes) == (1, 3, 0)
    assert isinstance(log.last_error, ValueError)
    assert read_log(tmp_path).collect()["request_id"].to_list() == ["r1"]


def test_read_log_filters_by_time_and_model(tmp_path: Path) -> None:
    with PredictionLog(tmp_path, model="fraud", flush_rows=4, flush_seconds=60) as log:
        log.append_many(record(i) for i in range(10))
        log.append_many(record(i, model="churn") for i in range(10, 13))
    window = read_log(tmp_path, since=T0 + timedelta(seconds=2), until=T0 + timedelta(seconds=5))
    assert sorted(window.collect()["request_id"]) == ["r2", "r3", "r4"]
    naive_since = datetime(2026, 3, 1, 12, 0, 8)
    fraud = read_log(tmp_path, since=naive_since, model="fraud").collect()
    assert sorted(fraud["request_id"]) == ["r8", "r9"]
    assert read_log(tmp_path, model="churn").collect().height == 3


def test_read_log_of_an_empty_directory_has_the_schema(tmp_path: Path) -> None:
    frame = read_log(tmp_path, since=T0, model="fraud").collect()
    assert frame.height == 0
    assert frame.schema["ts"] == pl.Datetime("us", "UTC")
    assert frame.columns == log_module.SCHEMA.names


def predictions() -> pl.LazyFrame:
    return pl.LazyFrame(
        {
            "request_id": ["a", "b", "c", "d"],
            "entity_key": ["k1", "k1", "k2", "k3"],
            "ts": [T0 + timedelta(minutes=m) for m in (10, 0, 5, 5)],
            "score": [0.9, 0.1, 0.5, 0.7],
        }
    ).with_columns(pl.col("ts").dt.cast_time_unit("us"))


def test_join_labels_by_request_id_keeps_every_prediction() -> None:
    labels = pl.LazyFrame({"request_id": ["a", "c", "a"], "label": [0, 1, 1]})
    joined = join_labels(predictions(), labels).collect()
    assert joined.select("request_id", "label").rows() == [
        ("a", 1),
        ("b", None),
        ("c", 1),
        ("d", None),
    ]


def test_join_labels_by_entity_and_time_takes_the_event_at_or_before() -> None:
    labels = pl.LazyFrame(
        {
            "entity_key": ["k1", "k1", "k2", "k3"],
            "ts": [
                T0 - timedelta(seconds=1),
                T0 + timedelta(minutes=9),
                T0,
                T0 + timedelta(minutes=6),
            ],
            "label": [10, 11, 20, 30],
        }
    ).with_columns(pl.col("ts").dt.replace_time_zone(None).dt.cast_time_unit("ns"))
    exact = join_labels(predictions(), labels, on=("entity_key", "ts"), tolerance="2m").collect()
    assert exact.select("request_id", "label", "label_ts").rows() == [
        ("a", 11, T0 + timedelta(minutes=9)),
        ("b", 10, T0 - timedelta(seconds=1)),
        ("c", None, None),
        ("d", None, None),
    ]
    loose = join_labels(predictions(), labels, on=("entity_key", "ts")).collect()
    assert loose["label"].to_list() == [11, 10, 20, None]


def test_tables_and_records_share_segments_and_the_flush_threshold(tmp_path: Path) -> None:
    from shipyard.serving.log import SCHEMA

    log = PredictionLog(tmp_path, model="fraud", flush_rows=5, flush_seconds=60)
    table = pa.Table.from_pylist(
        [
            {
                "request_id": f"t{i}",
                "ts": datetime(2026, 1, 1, tzinfo=UTC),
                "model": "fraud",
                "model_version": "1",
                "entity_key": None,
                "shadow": False,
                "score": 0.5,
                "decision": 1,
                "latency_ms": 1.0,
                "inputs_json": "{}",
                "features_json": "{}",
            }
            for i in range(4)
        ],
        schema=SCHEMA,
    )
    log.append_table(table.select(list(reversed(SCHEMA.names))))  # any column order
    assert log.lag_seconds() > 0
    log.append(
        {
            "request_id": "r",
            "ts": 0,
            "model_version": "1",
            "score": 0.1,
            "decision": 0,
            "latency_ms": 1.0,
        }
    )
    deadline = time.monotonic() + 10
    while log.flushed < 5:  # 4 table rows + 1 record reach flush_rows
        assert time.monotonic() < deadline
        time.sleep(0.01)
    log.close()
    logged = read_log(tmp_path).collect()
    assert sorted(logged["request_id"].to_list()) == ["r", "t0", "t1", "t2", "t3"]
    with (
        PredictionLog(tmp_path / "x", model="m") as other,
        pytest.raises(ValueError, match="needs the columns"),
    ):
        other.append_table(table.drop(["score"]))
