"""The prediction log: every answered prediction, appended to Parquet segments on disk.

Monitoring reads the log weeks later and joins it with labels, by request id or by
entity key and time. A server normally keeps its log under
``project.settings.state_dir / "predictions" / <model>``.

Layout: ``<directory>/segments/<UTC date of the flush>/<sequence>-<uuid>.parquet``,
one file per flush, the sequence zero-padded to 10 digits and counted on from the
highest one already on disk. The uuid keeps names unique when several processes
share a directory; their sequences may then repeat, which only affects file order.

Durability: ``append`` only adds the record to an in-memory buffer (it keeps a
reference: do not mutate a record after appending it). A background thread writes
the buffer every ``flush_seconds``, or as soon as ``flush_rows`` rows are waiting.
Each segment is written under a ``.parquet.tmp`` name, fsynced, renamed, and its
folder fsynced, so a reader never sees a partial segment under a real name. A
crash (``kill -9``, power loss) loses at most the rows appended since the last
flush: about ``flush_seconds`` of traffic, or ``flush_rows`` rows.

Failures never reach the request path: a segment that cannot be written (disk full,
permission denied) puts its rows back at the head of the buffer for the next flush
and counts in ``failed_flushes``. A record that cannot be converted (a missing
field, a score that is not a number) is dropped at flush and counted in
``rejected``, as retrying it would never succeed. ``last_error`` is the latest of
either failure.

Columns: ``request_id`` (str), ``ts`` (timestamp µs UTC; a naive datetime is taken
as UTC, an int as epoch µs), ``model`` (the log's ``model`` unless the record names
another, e.g. a shadow model), ``model_version`` (str), ``entity_key`` (str or null),
``shadow`` (bool, default False), ``score`` (f64), ``decision`` (i64, a bool is 0/1),
``latency_ms`` (f64), ``inputs_json`` and ``features_json`` (the ``inputs`` and
``features`` dicts as compact JSON, or the JSON strings a record gives under those names;
absent means ``{}``).
"""

from __future__ import annotations

import io
import json
import os
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from shipyard.errors import PredictionLogClosedError, StoreError

SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("model", pa.string()),
        ("model_version", pa.string()),
        ("entity_key", pa.string()),
        ("shadow", pa.bool_()),
        ("score", pa.float64()),
        ("decision", pa.int64()),
        ("latency_ms", pa.float64()),
        ("inputs_json", pa.string()),
        ("features_json", pa.string()),
    ]
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
YIELD_EVERY = 64  # records converted between two yields of the GIL during a flush
_MICROSECOND = timedelta(microseconds=1)


class PredictionLog:
    """An append-only, crash-safe log of predictions, flushed to Parquet in the background.

    Args:
        directory: Folder of the log; created if missing.
        model: Model name written for records that do not carry a ``model``.
        flush_rows: Flush as soon as this many rows are waiting.
        flush_seconds: Flush at least this often while rows are waiting.
    """

    def __init__(
        self,
        directory: Path,
        *,
        model: str,
        flush_rows: int = 10_000,
        flush_seconds: float = 1.0,
    ) -> None:
        self.directory = Path(directory)
        self.model = model
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.appended = 0
        self.flushed = 0
        self.rejected = 0
        self.failed_flushes = 0
        self.last_error: BaseException | None = None
        self._buffer: list[Mapping[str, Any] | pa.Table] = []
        self._waiting = 0  # rows in the buffer (a table holds many)
        self._oldest = 0.0
        self._closed = False
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._sequence = _next_sequence(self.directory / "segments")
        self._thread = threading.Thread(target=self._run, name=f"prediction-log-{model}")
        self._thread.daemon = True  # an unclosed log must not hang interpreter exit
        self._thread.start()

    def append(self, record: Mapping[str, Any]) -> None:
        """Buffer one prediction record; cheap, never blocks on disk."""
        self._extend([record])

    def append_many(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Buffer several prediction records under one lock acquisition."""
        self._extend(list(records))

    def append_table(self, table: pa.Table) -> None:
        """Buffer a table of predictions with the log's columns (``SCHEMA``): the cheap way
        to log a request of many rows, built column by column instead of row by row.

        Raises:
            ValueError: the table lacks a column of ``SCHEMA`` or cannot be cast to it.
        """
        missing = [name for name in SCHEMA.names if name not in table.column_names]
        if missing:
            raise ValueError(f"a prediction table needs the columns {missing}; see log.SCHEMA")
        self._extend([table.select(SCHEMA.names).cast(SCHEMA)])

    def flush(self) -> bool:
        """Write every buffered row to a new segment now.

        Returns:
            True when the buffer was written (or empty); False when the write failed,
            in which case the rows stay buffered and ``last_error`` says why.
        """
        with self._flush_lock:
            with self._lock:
                records, self._buffer = self._buffer, []
                waiting, self._waiting = self._waiting, 0
                oldest = self._oldest
            if not records:
                return True
            good = records
            try:
                good, table = self._to_table(records)
                if table.num_rows:
                    self._write(table)
            except Exception as exc:  # the request path must never see a disk failure
                with self._lock:
                    self._buffer[:0] = good
                    self._waiting += waiting
                    self._oldest = oldest
                self.failed_flushes += 1
                self.last_error = exc
                return False
            self.flushed += table.num_rows
            return True

    def lag_seconds(self) -> float:
        """Age in seconds of the oldest row not yet on disk; 0 when nothing is waiting."""
        with self._lock:
            return time.monotonic() - self._oldest if self._buffer else 0.0

    def close(self) -> None:
        """Stop the background thread and flush what is left; calling it again is harmless.

        Raises:
            StoreError: The last rows could not be written. They stay in memory, and
                ``flush()`` may be called again once the cause is fixed.
        """
        with self._lock:
            self._closed = True
        self._stop.set()
        self._wake.set()
        self._thread.join()
        if not self.flush():
            waiting = self._waiting
            raise StoreError(
                f"{waiting} predictions could not be written to {self.directory}: "
                f"{self.last_error}. They are still in memory; fix the cause and call "
                "flush() again before the process exits."
            ) from self.last_error

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _extend(self, batch: list[Mapping[str, Any] | pa.Table]) -> None:
        with self._lock:
            if self._closed:
                raise PredictionLogClosedError(
                    f"The prediction log at {self.directory} is closed; open a new "
                    "PredictionLog to keep logging predictions."
                )
            if batch and not self._buffer:
                self._oldest = time.monotonic()
            rows = sum(item.num_rows if isinstance(item, pa.Table) else 1 for item in batch)
            self._buffer.extend(batch)
            self._waiting += rows
            self.appended += rows
            full = self._waiting >= self.flush_rows
        if full:
            self._wake.set()

    def _run(self) -> None:
        # The first Parquet write loads much of Arrow's writer (~0.2 s): do it now, before
        # traffic, rather than during the first flush under load.
        pq.write_table(SCHEMA.empty_table(), io.BytesIO())
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            if not self._stop.is_set():
                self.flush()

    def _to_table(
        self, records: list[Mapping[str, Any] | pa.Table]
    ) -> tuple[list[Mapping[str, Any] | pa.Table], pa.Table]:
        good: list[Mapping[str, Any] | pa.Table] = []
        rows: list[tuple[Any, ...]] = []
        tables: list[pa.Table] = []
        for index, record in enumerate(records):
            if index % YIELD_EVERY == YIELD_EVERY - 1:
                time.sleep(0)  # let the serving thread run: a flush never holds it up for long
            if isinstance(record, pa.Table):
                tables.append(record)
                good.append(record)
                continue
            try:
                rows.append(_row(record, self.model))
            except (KeyError, TypeError, ValueError) as exc:
                self.rejected += 1
                self.last_error = exc
            else:
                good.append(record)
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in SCHEMA.names]
        arrays = [
            pa.array(column, type=field.type) for column, field in zip(columns, SCHEMA, strict=True)
        ]
        table = pa.Table.from_arrays(arrays, schema=SCHEMA)
        return good, pa.concat_tables([table, *tables]) if tables else table

    def _write(self, table: pa.Table) -> None:
        folder = self.directory / "segments" / datetime.now(UTC).strftime("%Y-%m-%d")
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"{self._sequence:010d}-{uuid.uuid4().hex}.parquet"
        _write_segment(table, final)
        self._sequence += 1


def _write_segment(table: pa.Table, final: Path) -> None:
    staged = final.with_name(final.name + ".tmp")
    try:
        with open(staged, "wb") as handle:
            pq.write_table(table, handle, compression="zstd")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(staged, final)
    finally:
        staged.unlink(missing_ok=True)
    folder = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def _next_sequence(segments: Path) -> int:
    numbers = [int(path.name.split("-", 1)[0]) for path in segments.glob("*/*.parquet")]
    return max(numbers, default=-1) + 1


def _row(record: Mapping[str, Any], default_model: str) -> tuple[Any, ...]:
    entity_key = record.get("entity_key")
    return (
        str(record["request_id"]),
        _epoch_us(record["ts"]),
        str(record.get("model", default_model)),
        str(record["model_version"]),
        None if entity_key is None else str(entity_key),
        bool(record.get("shadow", False)),
        float(record["score"]),
        _int64(int(record["decision"])),
        float(record["latency_ms"]),
        _json_of(record, "inputs"),
        _json_of(record, "features"),
    )


def _json_of(record: Mapping[str, Any], field: str) -> str:
    """``record[field + "_json"]`` when the caller encoded it, else ``record[field]`` as
    compact JSON (``{}`` when absent)."""
    encoded = record.get(f"{field}_json")
    if isinstance(encoded, str):
        return encoded
    return json.dumps(record.get(field, {}), separators=(",", ":"), default=_iso)


def _iso(value: Any) -> str:
    """Times as ISO 8601 (``2026-01-01T00:00:00+00:00``, as polars writes them), else str."""
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _epoch_us(ts: Any) -> int:
    if isinstance(ts, datetime):
        aware = ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
        return (aware - _EPOCH) // _MICROSECOND
    if isinstance(ts, int) and not isinstance(ts, bool):
        return _int64(ts)
    raise TypeError(f"ts must be a UTC datetime or epoch microseconds (got {ts!r})")


def _int64(value: int) -> int:
    if not -(2**63) <= value < 2**63:
        raise ValueError(f"{value} does not fit in a 64-bit integer column")
    return value


def read_log(
    directory: Path,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    model: str | None = None,
) -> pl.LazyFrame:
    """All logged predictions, lazily, optionally within ``[since, until)`` and for one model.

    Args:
        directory: The folder a ``PredictionLog`` writes to.
        since: First prediction time included (a naive datetime is taken as UTC).
        until: First prediction time excluded.
        model: Only this model's predictions.

    Returns:
        A LazyFrame with the log's columns; empty when nothing was flushed yet.
    """
    segments = Path(directory) / "segments"
    if not any(segments.glob("*/*.parquet")):
        frame = pl.LazyFrame(pl.from_arrow(SCHEMA.empty_table()))
    else:
        frame = pl.scan_parquet(str(segments / "*" / "*.parquet"), hive_partitioning=False)
    if since is not None:
        frame = frame.filter(pl.col("ts") >= _utc(since))
    if until is not None:
        frame = frame.filter(pl.col("ts") < _utc(until))
    if model is not None:
        frame = frame.filter(pl.col("model") == model)
    return frame


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def join_labels(
    log: pl.LazyFrame,
    labels: pl.LazyFrame,
    *,
    on: str | tuple[str, str] = "request_id",
    tolerance: timedelta | str | None = None,
) -> pl.LazyFrame:
    """Attach labels to predictions, all kept in their order, unlabelled ones with nulls.

    With ``on="request_id"`` (any single column), a left join; when a key has several
    labels, the last one in ``labels`` wins (a correction appended later).

    With ``on=("entity_key", "ts")``, both frames carry both columns, the label's
    ``ts`` being the time of the event it labels. A prediction gets the label of its
    entity with the latest ``ts`` at or before the prediction's (an as-of join,
    backward), at most ``tolerance`` earlier; set one, or a prediction inherits the
    label of an older event of the same entity. The label's time is kept as
    ``label_ts``; label times are cast to the log's type (naive ones taken as UTC).
    Other shared column names get the suffix ``_label``.
    """
    if isinstance(on, str):
        latest = labels.unique(subset=on, keep="last", maintain_order=True)
        return log.join(latest, on=on, how="left", suffix="_label", maintain_order="left")
    key, time_column = on
    label_time = f"label_{time_column}"
    dtype = log.collect_schema()[time_column]  # naive or ns label times compare as the log's
    events = labels.with_columns(pl.col(time_column).cast(dtype))
    events = events.with_columns(pl.col(time_column).alias(label_time)).sort(time_column)
    order = "__prediction_order"
    joined = (
        log.with_row_index(order)
        .sort(time_column)
        .join_asof(
            events,
            on=time_column,
            by=key,
            strategy="backward",
            tolerance=tolerance,
            suffix="_label",
        )
    )
    return joined.sort(order).drop(order)
