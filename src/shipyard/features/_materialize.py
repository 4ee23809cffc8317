"""Materialization: the latest values per entity, from the offline history into the
online store, incrementally, one partition per transaction."""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Any

import polars as pl

from shipyard.errors import FeatureDefinitionError
from shipyard.features._offline import Build
from shipyard.features._time import iso_of, us_of
from shipyard.features.entity import KEY_SEPARATOR
from shipyard.features.view import CREATED, EVENT, FeatureView

if TYPE_CHECKING:
    from shipyard.features.store import FeatureStore, Progress


def materialize_view(
    store: FeatureStore,
    view: FeatureView,
    build: Build,
    start: dt.datetime | None,
    end: dt.datetime | None,
    progress: Progress | None,
) -> dict[str, Any]:
    """Write the latest row per entity with an event time in (watermark, end] (or
    [start, end]), one partition per transaction, moving the watermark with each.

    When the history was rebuilt since the last materialization (new source data), the
    partitions from the first one that changed are written again, so rows that arrived
    late, with event times at or before the watermark, reach the online store too.
    """
    began = time.perf_counter()
    online = store.online
    state = online.state(view.name)
    reset = state is None or state.version != build.version or state.features != view.features
    if reset:
        online.reset(view.name, build.version, view.features)
    watermark = None if reset or state is None else state.watermark_us
    lower = _lower(watermark, start)
    if start is None:
        lower = _since_changed(store, view, build, lower)
    upper = us_of(end) if end is not None else us_of(dt.datetime.now(dt.UTC))
    parts = [
        p
        for p in build.partitions
        if (lower is None or p.max_ns // 1000 > lower) and p.min_ns // 1000 <= upper
    ]
    columns = [*view.keys, EVENT, CREATED, *view.features]
    rows_read = rows_written = 0
    if progress is not None:
        progress(view.name, 0, len(parts))
    for done, partition in enumerate(parts, start=1):
        chunk = store.read_partition(partition, columns).filter(_between(lower, upper))
        latest = chunk.group_by(list(view.keys), maintain_order=True).last()
        rows_read += chunk.height
        rows_written += online.write(
            view.name, encode_rows(view, latest), min(upper, partition.max_ns // 1000)
        )
        if progress is not None:
            progress(view.name, done, len(parts))
    if build.max_us is not None:
        online.write(view.name, [], min(upper, build.max_us))
    final = online.state(view.name)
    store.project.metadata.record_materialization(
        {
            "view": view.name,
            "online_url": online.url,
            "build_id": build.id,
            "version": build.version,
            "watermark_us": final.watermark_us if final else None,
            "created_at": time.time(),
        }
    )
    return {
        "view": view.name,
        "version": build.version,
        "rebuilt": reset,
        "partitions": len(parts),
        "rows_read": rows_read,
        "rows_written": rows_written,
        "entities": final.rows if final else 0,
        "watermark": iso_of(final.watermark_us if final else None),
        "seconds": time.perf_counter() - began,
    }


def _since_changed(
    store: FeatureStore, view: FeatureView, build: Build, lower: int | None
) -> int | None:
    """``lower``, moved back to the first partition that differs from the last build
    materialized into this online store (partitions are content-addressed)."""
    metadata = store.project.metadata
    last = metadata.last_materialization(view.name, store.online.url)
    if lower is None or last is None or last["build_id"] == build.id:
        return lower
    row = metadata.get_feature_build(last["build_id"])
    old = {p.digest for p in Build.from_row(row).partitions} if row else set()
    changed = next((p for p in build.partitions if p.digest not in old), None)
    return lower if changed is None else min(lower, changed.min_ns // 1000 - 1)


def encode_rows(
    view: FeatureView, frame: pl.DataFrame
) -> list[tuple[str, int, int, tuple[Any, ...]]]:
    """Rows for the online store: encoded key, event and created µs, plain values."""
    if frame.height == 0:
        return []
    keys = list(view.keys)
    odd = [k for k in keys if not (frame.schema[k].is_integer() or frame.schema[k] == pl.String)]
    if odd:
        raise FeatureDefinitionError(
            f"Feature view {view.name!r}: the online store keys entities by integer or string "
            f"join keys; {odd} are {[str(frame.schema[k]) for k in odd]}. Cast them in the "
            "transform (e.g. to pl.String)."
        )
    key = (
        pl.col(keys[0]).cast(pl.String)
        if len(keys) == 1
        else pl.concat_str([pl.col(k).cast(pl.String) for k in keys], separator=KEY_SEPARATOR)
    )
    head = frame.select(
        key.alias("k"),
        (pl.col(EVENT).cast(pl.Int64) // 1000),
        (pl.col(CREATED).cast(pl.Int64) // 1000).fill_null(0),
    )
    values = frame.select(_plain(name, dtype) for name, dtype in view.schema.items()).rows()
    return [(k, e, c, v) for (k, e, c), v in zip(head.rows(), values, strict=True)]


def _plain(name: str, dtype: pl.DataType) -> pl.Expr:
    column = pl.col(name)
    if isinstance(dtype, pl.Datetime):
        return column.dt.cast_time_unit("us").cast(pl.Int64)
    if isinstance(dtype, pl.Duration):
        return column.dt.cast_time_unit("us").cast(pl.Int64)
    if dtype == pl.Date:
        return column.cast(pl.Int32).cast(pl.Int64)
    if dtype == pl.Boolean:
        return column.cast(pl.Int64)
    if isinstance(dtype, pl.Categorical | pl.Enum):
        return column.cast(pl.String)
    if dtype.is_numeric() or dtype == pl.String:
        return column
    raise FeatureDefinitionError(
        f"The feature {name!r} is a {dtype}, which the online store cannot hold; online "
        "features are numbers, strings, booleans, dates, datetimes and durations."
    )


def _lower(watermark: int | None, start: dt.datetime | None) -> int | None:
    """Rows strictly after this time are written (None: from the beginning)."""
    return watermark if start is None else us_of(start) - 1  # an explicit start backfills


def _between(lower: int | None, upper: int) -> pl.Expr:
    time_us = pl.col(EVENT).cast(pl.Int64) // 1000
    return (time_us <= upper) if lower is None else (time_us > lower) & (time_us <= upper)
