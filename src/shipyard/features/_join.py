"""Point-in-time joins: each entity row gets, per view, the latest feature row of its
entity with ``t - ttl <= event time <= t`` (ties: the later created time), else nulls.

The history is read one partition at a time. Entity rows are cut at partition
boundaries, and each slice is joined (Polars ``join_asof``, backward) against its
partition plus a snapshot of the latest row per entity from the partitions before
it, so memory holds one partition and one row per entity, never the whole history.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Sequence

import polars as pl

from shipyard.features._offline import Build, Partition
from shipyard.features.view import CREATED, EVENT

TIME = "__shipyard_t"  # the entity rows' time, UTC ns, sorted
ROW = "__shipyard_row"  # the entity rows' input order

Reader = Callable[[Partition, list[str]], pl.DataFrame]


def join_view(
    entity: pl.DataFrame,
    build: Build,
    keys: Sequence[str],
    features: dict[str, str],
    dtypes: dict[str, pl.DataType],
    ttl: dt.timedelta | None,
    read: Reader,
) -> pl.DataFrame:
    """``entity`` (sorted by ``TIME``) with the ``features`` (stored name -> output name,
    with their dtypes) of one view as of each row's time; rows keep their order."""
    columns = [*keys, EVENT, CREATED, *features]
    needed = _needed(build.partitions, entity, ttl)
    if not needed:
        nulls = [pl.lit(None, dtype=dtypes[name]).alias(out) for name, out in features.items()]
        return entity.with_columns(nulls)
    bounds = _slices(entity, [p.min_ns for p in needed[1:]])
    snapshot: pl.DataFrame | None = None
    joined = []
    for partition, (offset, length) in zip(needed, bounds, strict=True):
        history = read(partition, columns).rename(features)
        if length:
            rows = entity.slice(offset, length)
            joined.append(_asof_with_snapshot(rows, history, snapshot, keys, ttl))
        if partition is not needed[-1]:
            latest = _latest(history, keys)
            snapshot = latest if snapshot is None else _latest(pl.concat([snapshot, latest]), keys)
        del history  # one partition in memory at a time
    result = pl.concat(joined, how="vertical_relaxed") if len(joined) > 1 else joined[0]
    return result.drop(EVENT, CREATED)


def _asof_with_snapshot(
    rows: pl.DataFrame,
    history: pl.DataFrame,
    snapshot: pl.DataFrame | None,
    keys: Sequence[str],
    ttl: dt.timedelta | None,
) -> pl.DataFrame:
    """Join against the partition; rows it has no match for, against the snapshot of the
    partitions before (all older, so a match in the partition always wins)."""
    matched = _asof(rows, history, keys, ttl)
    if snapshot is None or snapshot.height == 0:
        return matched
    missing = matched.filter(pl.col(EVENT).is_null())
    if missing.height == 0:
        return matched
    earlier = _asof(missing.select(rows.columns), snapshot, keys, ttl)
    found = matched.filter(pl.col(EVENT).is_not_null())
    return pl.concat([found, earlier], how="vertical_relaxed").sort(TIME, maintain_order=True)


def _needed(
    partitions: Sequence[Partition], entity: pl.DataFrame, ttl: dt.timedelta | None
) -> list[Partition]:
    """The partitions that can hold a match: none after the last row, none older than the
    ttl allows. Without a ttl every earlier partition may hold an entity's latest row."""
    if entity.height == 0:
        return []
    times = entity[TIME].cast(pl.Int64)
    first, last = int(times[0]), int(times[-1])
    oldest = first - _micros(ttl) * 1000 if ttl is not None else None
    return [p for p in partitions if p.min_ns <= last and (oldest is None or p.max_ns >= oldest)]


def _slices(entity: pl.DataFrame, starts: list[int]) -> list[tuple[int, int]]:
    """Cut the (time-sorted) entity rows at the partitions' start times."""
    times = entity[TIME].cast(pl.Int64)
    cuts = [0, *(int(times.search_sorted(s, side="left")) for s in starts), entity.height]
    return [(a, b - a) for a, b in itertools.pairwise(cuts)]


def _asof(
    rows: pl.DataFrame, history: pl.DataFrame, keys: Sequence[str], ttl: dt.timedelta | None
) -> pl.DataFrame:
    differ = [
        pl.col(k).cast(history.schema[k]) for k in keys if rows.schema[k] != history.schema[k]
    ]
    if differ:
        rows = rows.with_columns(differ)
    return rows.join_asof(
        history.set_sorted(EVENT),
        left_on=TIME,
        right_on=EVENT,
        by=list(keys),
        strategy="backward",
        tolerance=ttl,
        check_sortedness=False,
    )


def _latest(history: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    """The newest row of each entity (history is sorted by event then created time)."""
    latest = history.group_by(list(keys), maintain_order=True).last()
    return latest.select(history.columns).sort([EVENT, CREATED], nulls_last=False)


def _micros(delta: dt.timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
