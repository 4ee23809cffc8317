"""The online path, read side: the latest values from the online store, with the same
types and ttl as training, and request features computed by the training function."""

from __future__ import annotations

import datetime as dt
import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

from shipyard._utils.frames import by_rows
from shipyard.errors import DataInputError, FeatureDefinitionError, OnlineStoreError
from shipyard.features._time import EPOCH, us_of
from shipyard.features.entity import KEY_SEPARATOR
from shipyard.features.view import FeatureView

if TYPE_CHECKING:
    from shipyard.features.store import FeatureStore

Decoder = Callable[[Any], Any]


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
    now_us: int | list[int] = field(repr=False)  # one time for all entities, or one each

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
                    None if v is None else dt.timedelta(microseconds=now - v)
                    for v, now in zip(stamps, self._nows(len(stamps)), strict=True)
                ]
        return ages

    def _nows(self, count: int) -> list[int]:
        return self.now_us if isinstance(self.now_us, list) else [self.now_us] * count


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
    dtypes: dict[str, pl.DataType] = field(default_factory=dict)  # of the features read


def read_online(
    store: FeatureStore,
    entities: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
    features: Sequence[str],
    now: dt.datetime | Sequence[dt.datetime] | None,
) -> OnlineFeatures:
    """See :meth:`FeatureStore.online_features`."""
    plan = _plan(store, tuple(features))
    columns = _columns(entities)
    count = _count(columns, plan.keys)
    now_us = _now_us(now, count)
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


def _now_us(now: dt.datetime | Sequence[dt.datetime] | None, count: int) -> int | list[int]:
    """When each entity is read, in µs: one time for all, or one per entity."""
    if now is None:
        return int(time.time() * 1_000_000)
    if isinstance(now, dt.datetime):
        return us_of(now)
    nows = [us_of(moment) for moment in now]
    if len(nows) != count:
        raise DataInputError(
            f"now gives {len(nows)} times for {count} entities; give one time, or one per entity"
        )
    return nows


def _unpack(
    found: list[tuple[int, tuple[Any, ...]] | None],
    read: _ViewRead,
    values: dict[str, list[Any]],
    now_us: int | list[int],
) -> tuple[list[int | None], list[str]]:
    outs = [values.setdefault(name, []) for name in read.names]
    stamps: list[int | None] = []
    status: list[str] = []
    ttl = read.ttl_us
    nows = now_us if isinstance(now_us, list) else itertools.repeat(now_us)
    for item, now in zip(found, nows, strict=False):  # nows may repeat one time forever
        if item is None or (ttl is not None and item[0] < now - ttl):
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
    dtypes = {name: read.view.schema[name] for read in reads for name in read.names}
    return _Plan(reads, requests, keys, views, versions, extra, dtypes)


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
    data: dict[str, Any] = {k: v for k, v in columns.items() if k in spec.request_schema}
    schema: dict[str, Any] = {k: spec.request_schema[k] for k in data}
    for ref in spec.uses:
        feature = ref.partition(":")[2]
        data[feature] = values[feature]
        schema[feature] = plan.dtypes.get(feature)
    frame = _request_frame(data, schema) if data else _no_fields(count)
    computed = spec.compute(frame)
    for feature, out in names.items():
        values[out] = computed[feature].to_list()


def _no_fields(count: int) -> pl.DataFrame:
    """``count`` rows of no column, for a group that reads no request field."""
    return pl.DataFrame({"__n": [0] * count}).drop("__n")


def _request_frame(data: dict[str, Any], schema: dict[str, Any]) -> pl.DataFrame:
    """The request fields as typed, built by rows (a few rows are the common case). Values
    of other types are left for ``compute`` to convert or refuse with its message."""
    fast = by_rows(data, schema)
    return fast if fast is not None else pl.DataFrame({k: list(v) for k, v in data.items()})


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
    return [KEY_SEPARATOR.join(str(p[i]) for p in parts) for i in range(count)]
