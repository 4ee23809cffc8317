"""The label store: delayed ground truth ingested from real files, attached to log windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from shipyard.errors import MonitoringError
from shipyard.monitoring.labels import LabelStore, attach
from shipyard.monitoring.window import read_window
from shipyard.serving.log import PredictionLog, read_log

T0 = datetime(2026, 3, 2, tzinfo=UTC)


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    """Six predictions, one an hour from T0 + 30 s, for customers c0, c1, c2, c0, c1, c2."""
    directory = tmp_path / "log"
    with PredictionLog(directory, model="fraud") as log:
        log.append_many(
            {
                "request_id": f"r{i}",
                "ts": T0 + timedelta(hours=i, seconds=30),
                "model_version": "1",
                "entity_key": f"c{i % 3}",
                "score": i / 10,
                "decision": i % 2,
                "latency_ms": 1.0,
                "inputs": {"amount": float(i)},
            }
            for i in range(6)
        )
    return directory


def labels(ids: list[str], values: list[Any], column: str = "request_id") -> pl.DataFrame:
    return pl.DataFrame({column: ids, "is_fraud": values}, strict=False)


def test_ingest_parquet_counts_duplicates_conflicts_and_unknown_ids(
    tmp_path: Path, log_dir: Path
) -> None:
    source = tmp_path / "chargebacks.parquet"
    labels(
        ["r0", "r1", "r1", "r2", "r2", "ghost-1", "ghost-2"],
        [1, 0, 0, 1, 0, 1, 0],
    ).write_parquet(source)
    store = LabelStore(tmp_path / "labels")

    done = store.ingest(source, label="is_fraud", log=read_log(log_dir))

    assert (done.rows, done.stored, done.duplicates, done.conflicts) == (7, 5, 1, 1)
    assert (done.unknown, done.unknown_examples) == (2, ("ghost-1", "ghost-2"))
    assert (done.updated, done.unchanged, done.kind) == (0, 0, "request_id")
    assert done.path.parent == tmp_path / "labels" / "request_id"
    assert done.path.is_file()
    current = store.read().collect().sort("request_id")
    assert current.rows() == [("ghost-1", 1), ("ghost-2", 0), ("r0", 1), ("r1", 0), ("r2", 0)]
    assert current["label"].dtype == pl.Int8
    assert done.to_dict()["unknown_examples"] == ["ghost-1", "ghost-2"]
    assert done.to_dict()["path"] == str(done.path)


def test_later_ingest_corrects_earlier_labels(tmp_path: Path) -> None:
    store = LabelStore(tmp_path)
    store.ingest(labels(["a", "b", "c"], [0, 0, 1]), label="is_fraud")

    done = store.ingest(labels(["a", "b", "d"], [1, 0, 1]), label="is_fraud")

    assert (done.updated, done.unchanged, done.stored) == (1, 1, 3)
    assert dict(store.read().collect().rows()) == {"a": 1, "b": 0, "c": 1, "d": 1}


def test_csv_with_own_id_column_and_text_labels(tmp_path: Path) -> None:
    source = tmp_path / "labels.csv"
    source.write_text("txn,fraud\n00042,TRUE\n00043, false\n00044,1\n00045,0\n")

    done = LabelStore(tmp_path / "store").ingest(source, label="fraud", key="txn")

    assert done.stored == 4
    stored = LabelStore(tmp_path / "store").read().collect()
    assert stored.rows() == [("00042", 1), ("00043", 0), ("00044", 1), ("00045", 0)]


def test_boolean_and_float_labels(tmp_path: Path) -> None:
    store = LabelStore(tmp_path)
    store.ingest(labels(["a", "b"], [True, False]), label="is_fraud")
    store.ingest(labels(["c", "d"], [1.0, 0.0]), label="is_fraud")
    assert dict(store.read().collect().rows()) == {"a": 1, "b": 0, "c": 1, "d": 0}


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (
            labels(["a", "b"], [1, 2]),
            r"1 labels in the DataFrame .* are not 0/1 or true/false: \[2\]",
        ),
        (labels(["a", "b"], ["yes!", "0"]), r"not 0/1 or true/false: \['yes!'\]"),
        (labels(["a", "b"], [1, None]), r"not 0/1 or true/false: \[None\]"),
        (labels(["a", None], [1, 0]), r"1 labels in the DataFrame have no request_id \(rows \[1\]"),
        (labels(["a"], [1], column="id"), r"no column 'request_id'; found \['id', 'is_fraud'\]"),
        (labels([], []), r"No labels in the DataFrame: it has no rows"),
    ],
)
def test_bad_labels_are_refused_and_nothing_is_stored(
    tmp_path: Path, frame: pl.DataFrame, message: str
) -> None:
    store = LabelStore(tmp_path / "store")
    with pytest.raises(MonitoringError, match=message):
        store.ingest(frame, label="is_fraud")
    assert not list(tmp_path.rglob("*.parquet*"))
    assert store.read().collect().height == 0


def test_bad_files_are_refused_with_what_to_do(tmp_path: Path) -> None:
    store = LabelStore(tmp_path / "store")
    excel = tmp_path / "labels.xlsx"
    excel.write_bytes(b"PK")
    with pytest.raises(MonitoringError, match=r"expected a \.parquet or \.csv file, got \.xlsx"):
        store.ingest(excel, label="y")
    with pytest.raises(MonitoringError, match="No label file at"):
        store.ingest(tmp_path / "absent.csv", label="y")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really")
    with pytest.raises(
        MonitoringError, match="Cannot read the labels in .*broken.parquet as PARQUET"
    ):
        store.ingest(broken, label="y")
    assert not (tmp_path / "store").exists()


def test_a_failed_write_leaves_no_segment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LabelStore(tmp_path)
    store.ingest(labels(["a"], [1]), label="is_fraud")

    def fail(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", fail)
    with pytest.raises(OSError, match="disk full"):
        store.ingest(labels(["a"], [0]), label="is_fraud")
    assert len(list(tmp_path.rglob("*"))) == 2  # request_id/ and the first segment
    assert dict(store.read().collect().rows()) == {"a": 1}


def test_attach_by_request_id_keeps_every_prediction(tmp_path: Path, log_dir: Path) -> None:
    store = LabelStore(tmp_path / "labels")
    store.ingest(labels(["r1", "r4", "ghost"], [1, 0, 1]), label="is_fraud")
    window = read_window(log_dir)

    frame = attach(window.frame.with_columns(label=pl.lit(9)), store)

    assert frame["request_id"].to_list() == [f"r{i}" for i in range(6)]
    assert frame["label"].to_list() == [None, 1, None, None, 0, None]
    assert frame["label"].dtype == pl.Int8
    assert frame.columns == [*window.frame.columns, "label"]
    assert attach(window.frame, store.read())["label"].to_list() == frame["label"].to_list()


def test_entity_and_time_labels_attach_as_of_within_the_tolerance(
    tmp_path: Path, log_dir: Path
) -> None:
    source = tmp_path / "events.csv"
    source.write_text(
        "customer_id,event_timestamp,chargeback\n"
        "c1,2026-03-02T01:00:00Z,1\n"  # r1 at 01:00:30
        "c2,2026-03-02 05:00:00,0\n"  # r5 at 05:00:30 (naive: UTC)
        "c9,2026-03-02T05:00:00+02:00,1\n"  # an entity the log never saw
    )
    store = LabelStore(tmp_path / "labels")

    done = store.ingest(
        source, label="chargeback", key=("customer_id", "event_timestamp"), log=read_log(log_dir)
    )

    assert (done.kind, done.stored, done.unknown, done.unknown_examples) == (
        "entity",
        3,
        1,
        ("c9",),
    )
    stored = store.read().collect()
    assert stored.columns == ["entity_key", "ts", "label"]
    assert stored["ts"].to_list()[2] == datetime(2026, 3, 2, 3, tzinfo=UTC)

    window = read_window(log_dir)
    frame = attach(window.frame, store, ("entity_key", "ts"))
    assert frame["label"].to_list() == [None, 1, None, None, None, 0]
    assert frame["label_ts"].to_list()[1] == datetime(2026, 3, 2, 1, tzinfo=UTC)

    unbounded = attach(window.frame, store, ("entity_key", "ts"), tolerance=None)
    assert unbounded["label"].to_list() == [None, 1, None, None, 1, 0]  # r4 inherits c1's


def test_unparseable_event_times_are_refused(tmp_path: Path) -> None:
    frame = pl.DataFrame({"c": ["a", "b"], "t": ["2026-03-02T01:00:00", "yesterday"], "y": [1, 0]})
    with pytest.raises(
        MonitoringError, match=r"1 event times .* not ISO 8601 times: \['yesterday'\]"
    ):
        LabelStore(tmp_path).ingest(frame, label="y", key=("c", "t"))


def test_read_needs_a_kind_when_both_are_stored(tmp_path: Path) -> None:
    store = LabelStore(tmp_path)
    assert store.read().collect().columns == ["request_id", "label"]
    store.ingest(labels(["a"], [1]), label="is_fraud")
    store.ingest(pl.DataFrame({"c": ["x"], "t": [T0], "y": [0]}), label="y", key=("c", "t"))
    with pytest.raises(MonitoringError, match=r"read\('request_id'\) or read\('entity'\)"):
        store.read()
    assert store.read("entity").collect().height == 1


def test_attach_with_an_empty_store_gives_null_labels(tmp_path: Path, log_dir: Path) -> None:
    window = read_window(log_dir)
    empty = LabelStore(tmp_path / "none").read()
    frame = attach(window.frame, empty, ("entity_key", "ts"))
    assert frame["label"].null_count() == 6
    with pytest.raises(MonitoringError, match="need"):
        attach(
            window.frame, pl.LazyFrame({"request_id": ["r1"], "label": [1]}), ("entity_key", "ts")
        )
