"""The offline store: each feature view's history as time-ordered Parquet partitions in
the artifact store, indexed in the metadata store by view version and source content."""

from __future__ import annotations

import itertools
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
    """Compute the view's rows, sort them by time, and store them as partitions."""
    rows, naive = view.compute(frames)
    data = rows.sort([EVENT, CREATED], nulls_last=False, maintain_order=True).collect()
    _check_complete(view, data)
    partitions = [
        _write(store, data.slice(start, length)) for start, length in _cuts(data, partition_rows)
    ]
    return Build(
        id=uuid.uuid4().hex,
        view=view.name,
        version=view.version,
        fingerprint=fingerprint,
        partitions=tuple(partitions),
        rows=data.height,
        naive=naive,
        created_at=time.time(),
    )


def read_partition(store: ArtifactStore, partition: Partition, columns: list[str]) -> pl.DataFrame:
    """A partition's rows, only the given columns (checked against its digest)."""
    path = store.local_path(partition.digest)
    return pl.read_parquet(path, columns=columns)


def _check_complete(view: FeatureView, data: pl.DataFrame) -> None:
    columns = [*view.keys, EVENT]
    nulls = data.select(pl.col(columns).null_count()).row(0)
    bad = {name: count for name, count in zip(columns, nulls, strict=True) if count}
    if bad:
        named = {(view.timestamp if k == EVENT else view.column_of[k]): n for k, n in bad.items()}
        raise DataInputError(
            f"Feature view {view.name!r}: rows without a key or an event time cannot be placed "
            f"(null counts: {named}). Drop or fill them in the transform, or fix the source."
        )


def _cuts(data: pl.DataFrame, partition_rows: int) -> list[tuple[int, int]]:
    """Slices of about ``partition_rows`` rows that never split one event time."""
    if data.height == 0:
        return []
    times = data[EVENT].cast(pl.Int64)
    cuts = [0]
    target = partition_rows
    while target < data.height:
        # move the cut forward past the rows that share the event time before it
        cut = int(times.search_sorted(times[target - 1], side="right"))
        if cut >= data.height:
            break
        cuts.append(cut)
        target = cut + partition_rows
    cuts.append(data.height)
    return [(a, b - a) for a, b in itertools.pairwise(cuts) if b > a]


def _write(store: ArtifactStore, rows: pl.DataFrame) -> Partition:
    staged = store.staging_path()
    staged.parent.mkdir(parents=True, exist_ok=True)
    rows.write_parquet(staged, compression=COMPRESSION, statistics=True)
    stored = store.commit(staged)
    times = rows[EVENT].cast(pl.Int64)
    return Partition(stored.digest, rows.height, int(times[0]), int(times[-1]))
