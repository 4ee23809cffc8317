"""The offline store: each feature view's history as time-ordered Parquet partitions in
the artifact store, indexed in the metadata store by view version and source content."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Final

import polars as pl

from shipyard.errors import DataInputError
from shipyard.features.view import CREATED, EVENT, FeatureView

if TYPE_CHECKING:
    from shipyard.storage.artifacts import ArtifactStore

COMPRESSION: Final = "lz4"
PARTITION_BYTES: Final = 32 * 1024 * 1024  # in memory, so a join holds little at a time


@dataclass(frozen=True)
class Partition:
    """One Parquet object of history: rows sorted by event time, within [min_ns, max_ns]
    (nanoseconds since the epoch, UTC)."""

    digest: str
    rows: int
    min_ns: int
    max_ns: int


@dataclass(frozen=True)
class Build:
    """One computed history of a view: which version, from which data, in which partitions."""

    id: str
    view: str
    version: str
    fingerprint: str
    partitions: tuple[Partition, ...]
    rows: int
    naive: bool
    created_at: float

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Build:
        """From a ``feature_builds`` row of the metadata store."""
        manifest = json.loads(row["manifest"])
        return cls(
            id=row["id"],
            view=row["view"],
            version=row["version"],
            fingerprint=row["fingerprint"],
            partitions=tuple(Partition(**p) for p in manifest["partitions"]),
            rows=row["rows"],
            naive=manifest["naive"],
            created_at=row["created_at"],
        )

    def to_row(self, run_id: str | None) -> dict[str, Any]:
        """The ``feature_builds`` row that records this build."""
        manifest = {"partitions": [asdict(p) for p in self.partitions], "naive": self.naive}
        return {
            "id": self.id,
            "view": self.view,
            "version": self.version,
            "fingerprint": self.fingerprint,
            "manifest": json.dumps(manifest),
            "rows": self.rows,
            "created_at": self.created_at,
            "run_id": run_id,
        }

    @property
    def min_us(self) -> int | None:
        """The earliest event time stored, or None when empty."""
        return self.partitions[0].min_ns // 1000 if self.partitions else None

    @property
    def max_us(self) -> int | None:
        """The latest event time stored, or None when empty."""
        return self.partitions[-1].max_ns // 1000 if self.partitions else None


def build_history(
    view: FeatureView,
    frames: dict[str, pl.LazyFrame],
    fingerprint: str,
    store: ArtifactStore,
    partition_rows: int,
) -> Build:
    """Compute the view's rows, sort them by time, and store them as partitions.

    The computed rows are streamed to a scratch Parquet file first; each partition is
    then one time range of it, read, sorted and written alone, so memory holds one
    partition and the event-time column, not the whole history.
    """
    rows, naive = view.compute(frames)
    scratch = store.staging_path()
    scratch.parent.mkdir(parents=True, exist_ok=True)
    try:
        rows.sink_parquet(scratch, compression=COMPRESSION)
        scan = pl.scan_parquet(scratch)
        _check_complete(view, scan)
        times = scan.select(pl.col(EVENT).cast(pl.Int64)).collect()[EVENT].sort()
        partition_rows = _rows_per_partition(scan.collect_schema(), partition_rows)
        partitions = [
            _write(store, _time_range(scan, low, high))
            for low, high in _ranges(times, partition_rows)
        ]
    finally:
        scratch.unlink(missing_ok=True)
    return Build(
        id=uuid.uuid4().hex,
        view=view.name,
        version=view.version,
        fingerprint=fingerprint,
        partitions=tuple(partitions),
        rows=len(times),
        naive=naive,
        created_at=time.time(),
    )


def _time_range(scan: pl.LazyFrame, low: int, high: int | None) -> pl.DataFrame:
    """The rows with low <= event time < high (no upper bound for None), sorted by time;
    rows tied on both times keep their order."""
    event = pl.col(EVENT).cast(pl.Int64)
    chosen = scan.filter(event >= low if high is None else (event >= low) & (event < high))
    return chosen.collect().sort([EVENT, CREATED], nulls_last=False, maintain_order=True)


def read_partition(store: ArtifactStore, partition: Partition, columns: list[str]) -> pl.DataFrame:
    """A partition's rows, only the given columns, checked against its digest meanwhile
    (hashing in a thread while Polars reads: both release the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    path = store.local_path(partition.digest, verify=False)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="shipyard-verify") as pool:
        verified = pool.submit(store.verify, partition.digest)
        try:
            rows = pl.read_parquet(path, columns=columns)
        finally:
            verified.result()  # a corrupted partition is never returned
    return rows


def _check_complete(view: FeatureView, scan: pl.LazyFrame) -> None:
    columns = [*view.keys, EVENT]
    nulls = scan.select(pl.col(columns).null_count()).collect().row(0)
    bad = {name: count for name, count in zip(columns, nulls, strict=True) if count}
    if bad:
        named = {(view.timestamp if k == EVENT else view.column_of[k]): n for k, n in bad.items()}
        raise DataInputError(
            f"Feature view {view.name!r}: rows without a key or an event time cannot be placed "
            f"(null counts: {named}). Drop or fill them in the transform, or fix the source."
        )


def _rows_per_partition(schema: pl.Schema, most: int) -> int:
    """``most`` rows, or fewer for wide rows, so a partition stays near PARTITION_BYTES."""
    width = sum(_bytes(dtype) for dtype in schema.values())
    return max(1, min(most, PARTITION_BYTES // max(width, 1)))


def _bytes(dtype: pl.DataType) -> int:
    if dtype.is_numeric() or dtype.is_temporal():
        return 8
    return 32  # strings and the rest: a guess at an average width


def _ranges(times: pl.Series, partition_rows: int) -> list[tuple[int, int | None]]:
    """Event-time ranges [low, high) of about ``partition_rows`` rows each (``times`` is
    sorted); one event time never spans two ranges."""
    if times.is_empty():
        return []
    lows = [int(times[0])]
    target = partition_rows
    while target < len(times):
        # the next range starts at the first time after the one before the target row
        cut = int(times.search_sorted(times[target - 1], side="right"))
        if cut >= len(times):
            break
        lows.append(int(times[cut]))
        target = cut + partition_rows
    return [(low, high) for low, high in zip(lows, [*lows[1:], None], strict=True)]


def _write(store: ArtifactStore, rows: pl.DataFrame) -> Partition:
    staged = store.staging_path()
    staged.parent.mkdir(parents=True, exist_ok=True)
    rows.write_parquet(staged, compression=COMPRESSION, statistics=True)
    stored = store.commit(staged)
    times = rows[EVENT].cast(pl.Int64)
    return Partition(stored.digest, rows.height, int(times[0]), int(times[-1]))
