"""The plumbing of batch scoring: read ahead in a thread, stream tables to one file."""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from shipyard.errors import DataInputError
from shipyard.serving._batch_input import CSV, PARQUET

T = TypeVar("T")


def output_kind(target: Path) -> str:
    suffix = target.suffix.lower()
    if suffix in PARQUET:
        return "parquet"
    if suffix in CSV:
        return "csv"
    raise DataInputError(
        f"{target}: cannot write '{suffix or 'no suffix'}' files; name OUTPUT .parquet or .csv."
    )


def prefetch(items: Iterator[T]) -> Generator[T, None, None]:
    """``items``, each read in a background thread while the previous one is scored."""
    ready: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        ready.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ready.put(("done", None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            ready.put(("error", exc))

    thread = threading.Thread(target=produce, name="batch-scoring-reader", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = ready.get()
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        while thread.is_alive():
            try:
                ready.get_nowait()
            except queue.Empty:
                thread.join(0.05)


class Writer:
    """Streams tables to one Parquet or CSV file, opened at the first table."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path, self.kind = path, kind
        self._writer: pq.ParquetWriter | pacsv.CSVWriter | None = None
        self._schema: pa.Schema | None = None

    @property
    def opened(self) -> bool:
        return self._writer is not None

    def write(self, table: pa.Table) -> None:
        if self._writer is None:
            self._schema = table.schema
            if self.kind == "parquet":
                self._writer = pq.ParquetWriter(self.path, table.schema, compression="zstd")
            else:
                self._writer = pacsv.CSVWriter(self.path, table.schema)
        elif table.schema != self._schema:
            assert self._schema is not None
            try:
                table = table.cast(self._schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise DataInputError(
                    f"the kept columns changed type between input files ({table.schema} "
                    f"against {self._schema}): {exc}. Score the files separately."
                ) from exc
        self._writer.write_table(table)

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._writer is not None:
            self._writer.close()
