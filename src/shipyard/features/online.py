"""The online path: materialize the latest values into the online store, read them back
for serving with the same types and ttl as training, and check the two agree (skew)."""

from __future__ import annotations

import datetime as dt
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

from shipyard.errors import DataInputError, FeatureDefinitionError, OnlineStoreError
from shipyard.features._offline import Build
from shipyard.features.view import CREATED, EVENT, FeatureView

if TYPE_CHECKING:
    from shipyard.features.store import FeatureStore, Progress

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
Decoder = Callable[[Any], Any]


# -- materialization ------------------------------------------------------------------


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
    upper = _us(end) if end is not None else _us(dt.datetime.now(dt.UTC))
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
        "watermark": _iso(final.watermark_us if final else None),
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
        else pl.concat_str([pl.col(k).cast(pl.String) for k in keys], separator="\x1f")
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


def _decoder(dtype: pl.DataType) -> Decoder | None:
    if isinstance(dtype, pl.Datetime):
        zone = dt.UTC if dtype.time_zone else None
        return lambda v: (
            None if v is None else (EPOCH + dt.timedelta(microseconds=v)).replace(tzinfo=zone)
        )
    if isinstance(dtype, pl.Duration):
        return lambda v: None if v is None else dt.timedelta(microseconds=v)
    if dtype == pl.Date:
        return lambda v: None if v is None else dt.date(1970, 1, 1) + dt.timedelta(days=v)
    if dtype == pl.Boolean:
        return lambda v: None if v is None else bool(v)
    return None


# -- reading ---------------------------------------------------------------------------


@dataclass
class OnlineFeatures:
    """Online values for a list of entities, in the order they were asked for.

    Attributes:
        entities: the join keys (and request fields) given, by column.
        values: each feature's values, by output name (nulls where there is none).
        status: per view, per entity: ``"found"``, ``"unknown"`` (never materialized for
            that key) or ``"expired"`` (older than the view's ttl, so null).
        views: the view (or request group) of each feature.
    """

    entities: dict[str, list[Any]]
    values: dict[str, list[Any]]
    status: dict[str, list[str]]
    views: dict[str, str]
    event_us: dict[str, list[int | None]] = field(repr=False)
    now_us: int = field(repr=False)

    def to_dict(self) -> dict[str, list[Any]]:
        """Keys and features by column, like Feast's ``to_dict()``."""
        return {**self.entities, **self.values}

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per entity."""
        columns = self.to_dict()
        return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]

    def to_polars(self) -> pl.DataFrame:
        """Keys and features as a DataFrame."""
        return pl.DataFrame(self.to_dict())

    def event_times(self, view: str) -> list[dt.datetime | None]:
        """When each entity's values of ``view`` became true (UTC)."""
        return [
            None if v is None else EPOCH + dt.timedelta(microseconds=v) for v in self.event_us[view]
        ]

    def freshness(self) -> dict[str, list[dt.timedelta | None]]:
        """Per feature, how old each value was when read (None where there is no value)."""
        ages: dict[str, list[dt.timedelta | None]] = {}
        for feature, view in self.views.items():
            stamps = self.event_us.get(view)
            if stamps is None:  # request features are computed now
                ages[feature] = [dt.timedelta(0)] * len(self.values[feature])
            else:
                ages[feature] = [
                    None if v is None else dt.timedelta(microseconds=self.now_us - v)
                    for v in stamps
                ]
        return ages


@dataclass
class _ViewRead:
    view: FeatureView
    columns: list[int]
    names: list[str]
    decoders: list[Decoder | None]
    ttl_us: int | None


@dataclass
class _Plan:
    reads: list[_ViewRead]
    requests: list[tuple[Any, dict[str, str]]]
    keys: list[str]
    views: dict[str, str]
    versions: dict[str, str]
    extra: list[str]  # features read only because request features use them


def read_online(
    store: FeatureStore,
    entities: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
    features: Sequence[str],
    now: dt.datetime | None,
) -> OnlineFeatures:
    """See :meth:`FeatureStore.online_features`."""
    plan = _plan(store, tuple(features))
    columns = _columns(entities)
    count = _count(columns, plan.keys)
    now_us = _us(now) if now is not None else int(time.time() * 1_000_000)
    values: dict[str, list[Any]] = {}
    status: dict[str, list[str]] = {}
    stamps: dict[str, list[int | None]] = {}
    online = store.online
    for read in plan.reads:
        view = read.view
        if online.version(view.name) != plan.versions[view.name]:
            _forget(store, tuple(features))
            _check_state(view, online.state(view.name))
        keys = _encoded(columns, view.keys, count)
        found = online.read(view.name, keys)
        stamps[view.name], status[view.name] = _unpack(found, read, values, now_us)
    for spec, names in plan.requests:
        _request(spec, names, columns, values, plan, count)
    for name in plan.extra:
        del values[name]
    given = {k: list(v) for k, v in columns.items()}
    views = {f: v for f, v in plan.views.items() if f not in plan.extra}
    return OnlineFeatures(given, values, status, views, stamps, now_us)


def _unpack(
    found: list[tuple[int, tuple[Any, ...]] | None],
    read: _ViewRead,
    values: dict[str, list[Any]],
    now_us: int,
) -> tuple[list[int | None], list[str]]:
    outs = [values.setdefault(name, []) for name in read.names]
    stamps: list[int | None] = []
    status: list[str] = []
    oldest = None if read.ttl_us is None else now_us - read.ttl_us
    for item in found:
        if item is None or (oldest is not None and item[0] < oldest):
            stamps.append(None if item is None else item[0])
            status.append("unknown" if item is None else "expired")
            for out in outs:
                out.append(None)
            continue
        event, row = item
        stamps.append(event)
        status.append("found")
        for out, index, decode in zip(outs, read.columns, read.decoders, strict=True):
            value = row[index]
            out.append(value if decode is None else decode(value))
    return stamps, status


def _plan(store: FeatureStore, features: tuple[str, ...]) -> _Plan:
    cache: dict[tuple[str, ...], _Plan] = store.__dict__.setdefault("_online_plans", {})
    plan = cache.get(features)
    if plan is None:
        plan = cache[features] = _make_plan(store, features)
    return plan


def _forget(store: FeatureStore, features: tuple[str, ...]) -> None:
    store.__dict__.get("_online_plans", {}).pop(features, None)


def _make_plan(store: FeatureStore, features: tuple[str, ...]) -> _Plan:
    pairs = store.resolve(features)
    wanted = list(dict.fromkeys([*pairs, *_uses(store, pairs)]))
    reads: list[_ViewRead] = []
    keys: list[str] = []
    views: dict[str, str] = {}
    for name in dict.fromkeys(g for g, _ in wanted if g in store.views):
        view = store.views[name]
        state = store.online.state(name)
        _check_state(view, state)
        assert state is not None
        chosen = [f for g, f in wanted if g == name]
        reads.append(
            _ViewRead(
                view,
                [state.features.index(f) for f in chosen],
                chosen,
                [_decoder(view.schema[f]) for f in chosen],
                None if view.ttl is None else int(view.ttl.total_seconds() * 1_000_000),
            )
        )
        keys += [k for k in view.keys if k not in keys]
        _check_unique(chosen, views, name)
        views.update(dict.fromkeys(chosen, name))
    requests = []
    for group in dict.fromkeys(g for g, _ in pairs if g in store.request_features):
        spec = store.request_features[group]
        chosen = [f for g, f in pairs if g == group]
        requests.append((spec, {f: f for f in chosen}))
        _check_unique(chosen, views, group)
        views.update(dict.fromkeys(chosen, group))
    asked = {f for g, f in pairs if g in store.views}
    extra = [f for g, f in wanted if g in store.views and f not in asked]
    versions = {read.view.name: read.view.version for read in reads}
    return _Plan(reads, requests, keys, views, versions, extra)


def _check_unique(chosen: list[str], taken: dict[str, str], group: str) -> None:
    clash = [f for f in chosen if f in taken and taken[f] != group]
    if clash:
        raise FeatureDefinitionError(
            f"Features {clash} of {group!r} have the same names as features of "
            f"{sorted({taken[f] for f in clash})}; online results are named by feature. Ask for "
            "them in separate calls, or rename one of them."
        )


def _uses(store: FeatureStore, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    refs = [
        ref
        for g, _ in pairs
        if g in store.request_features
        for ref in store.request_features[g].uses
    ]
    return store.resolve(refs) if refs else []


def _check_state(view: FeatureView, state: Any) -> None:
    if state is None:
        raise OnlineStoreError(
            f"Feature view {view.name!r} has not been materialized into the online store. "
            f"Run `shipyard features materialize {view.name}`."
        )
    if state.version != view.version:
        raise OnlineStoreError(
            f"Feature view {view.name!r} was materialized with version {state.version}, but "
            f"its definition is now version {view.version}; serving the old values would "
            f"skew. Run `shipyard features materialize {view.name}` to rewrite them."
        )


def _request(
    spec: Any,
    names: dict[str, str],
    columns: dict[str, Sequence[Any]],
    values: dict[str, list[Any]],
    plan: _Plan,
    count: int,
) -> None:
    data: dict[str, Any] = {k: list(v) for k, v in columns.items() if k in spec.request_schema}
    for ref in spec.uses:
        feature = ref.partition(":")[2]
        data[feature] = values[feature]
    frame = pl.DataFrame(data) if data else pl.DataFrame({"__n": [0] * count}).drop("__n")
    computed = spec.compute(frame)
    for feature, out in names.items():
        values[out] = computed[feature].to_list()


def _columns(
    entities: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
) -> dict[str, Sequence[Any]]:
    if isinstance(entities, Mapping):
        return {k: v if isinstance(v, list | tuple) else [v] for k, v in entities.items()}
    records = list(entities)
    names = list(dict.fromkeys(k for r in records for k in r))
    return {name: [r.get(name) for r in records] for name in names}


def _count(columns: Mapping[str, Sequence[Any]], keys: list[str]) -> int:
    missing = [k for k in keys if k not in columns]
    if missing:
        raise DataInputError(
            f"The entities lack the join key(s) {missing}; the requested features are looked "
            f"up by {keys}. Give them, e.g. {{{missing[0]!r}: [...]}}."
        )
    for key in keys:
        if any(value is None for value in columns[key]):
            raise DataInputError(
                f"The join key {key!r} is missing (None) for some entities; every entity "
                "needs a value for every join key."
            )
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise DataInputError(
            f"The entity columns have different lengths {sorted(lengths)}; give one value per "
            "entity in every column."
        )
    return lengths.pop() if lengths else 0


def _encoded(columns: Mapping[str, Sequence[Any]], keys: Sequence[str], count: int) -> list[str]:
    if len(keys) == 1:
        return [str(v) for v in columns[keys[0]]]
    parts = [columns[k] for k in keys]
    return ["\x1f".join(str(p[i]) for p in parts) for i in range(count)]


# -- skew ------------------------------------------------------------------------------


def skew(store: FeatureStore, view_name: str, sample: int, seed: int) -> dict[str, Any]:
    """Recompute a sample of online values from the offline history and compare."""
    view = store.view(view_name)
    state = store.online.state(view.name)
    _check_state(view, state)
    assert state is not None
    build = store.build([view.name])[view.name]
    expected = _latest_as_of(store, view, build, state.watermark_us)
    chosen = sorted(
        random.Random(seed).sample(range(expected.height), min(sample, expected.height))
    )
    rows = expected[chosen]
    encoded = encode_rows(view, rows)
    found = store.online.read(view.name, [r[0] for r in encoded])
    mismatches: list[dict[str, Any]] = []
    for (key, event, _, offline), online in zip(encoded, found, strict=True):
        if online is None:
            mismatches.append({"key": key, "feature": None, "offline": "present", "online": None})
            continue
        if online[0] != event:
            mismatches.append(
                {
                    "key": key,
                    "feature": "event_time",
                    "offline": _iso(event),
                    "online": _iso(online[0]),
                }
            )
        for name, a, b in zip(view.features, offline, online[1], strict=True):
            if not _same(a, b):
                mismatches.append({"key": key, "feature": name, "offline": a, "online": b})
    return {
        "view": view.name,
        "version": view.version,
        "watermark": _iso(state.watermark_us),
        "entities_offline": expected.height,
        "entities_online": state.rows,
        "sampled": len(chosen),
        "mismatches": mismatches,
    }


def _latest_as_of(
    store: FeatureStore, view: FeatureView, build: Build, watermark: int | None
) -> pl.DataFrame:
    columns = [*view.keys, EVENT, CREATED, *view.features]
    latest: pl.DataFrame | None = None
    for partition in build.partitions:
        if watermark is None or partition.min_ns // 1000 > watermark:
            break
        rows = store.read_partition(partition, columns).filter(
            pl.col(EVENT).cast(pl.Int64) // 1000 <= watermark
        )
        if latest is not None:
            rows = pl.concat([latest, rows], how="vertical_relaxed")
        latest = rows.group_by(list(view.keys), maintain_order=True).last()
    return latest if latest is not None else pl.DataFrame(schema=dict.fromkeys(columns, pl.Null))


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return (a is None or (isinstance(a, float) and math.isnan(a))) and (
            b is None or (isinstance(b, float) and math.isnan(b))
        )
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return bool(a == b)


# -- time ------------------------------------------------------------------------------


def _us(value: dt.datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _iso(us: int | None) -> str | None:
    return None if us is None else (EPOCH + dt.timedelta(microseconds=us)).isoformat()


def _lower(watermark: int | None, start: dt.datetime | None) -> int | None:
    """Rows strictly after this time are written (None: from the beginning)."""
    return watermark if start is None else _us(start) - 1  # an explicit start backfills


def _between(lower: int | None, upper: int) -> pl.Expr:
    time_us = pl.col(EVENT).cast(pl.Int64) // 1000
    return (time_us <= upper) if lower is None else (time_us > lower) & (time_us <= upper)
