"""The parts of a training set: entity rows checked and prepared, output names, the
time zones of both sides, and the lineage a step records."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import polars as pl

from shipyard.errors import DataInputError, FeatureDefinitionError
from shipyard.features._join import ROW, TIME
from shipyard.features._offline import Build
from shipyard.features._time import to_utc
from shipyard.features.view import FeatureView, RequestFeatures

if TYPE_CHECKING:
    from shipyard.features.store import FeatureStore


def as_frame(rows: Any) -> pl.DataFrame:
    if isinstance(rows, pl.LazyFrame):
        return rows.collect()
    if isinstance(rows, pl.DataFrame):
        return rows
    if type(rows).__module__.startswith("pandas"):
        converted: pl.DataFrame = pl.from_pandas(rows)
        return converted
    raise DataInputError(
        f"Entity rows must be a Polars or pandas DataFrame, got {type(rows).__name__}."
    )


def output_names(
    pairs: list[tuple[str, str]], existing: Sequence[str], full: bool
) -> dict[tuple[str, str], str]:
    names = {(g, f): f"{g}__{f}" if full else f for g, f in pairs}
    seen: dict[str, tuple[str, str]] = {}
    for pair, name in names.items():
        if name in existing or name in seen:
            other = (
                f"the entity rows' column {name!r}"
                if name in existing
                else f"{seen[name][0]}:{name}"
            )
            raise FeatureDefinitionError(
                f"The feature {pair[0]}:{pair[1]} would be named {name!r}, like {other}. Pass "
                "full_names=True to name columns view__feature, or rename the column."
            )
        seen[name] = pair
    return names


def prepared(rows: pl.DataFrame, timestamp: str) -> pl.DataFrame:
    if timestamp not in rows.columns:
        times = [c for c, t in rows.schema.items() if isinstance(t, pl.Datetime) or t == pl.Date]
        raise DataInputError(
            f"The entity rows have no timestamp column {timestamp!r}; each row needs the "
            f"time to get features as of. Time columns there: {times or 'none'}. Pass "
            "timestamp='<column>' or add the column."
        )
    what = f"The entity rows' timestamp {timestamp!r}"
    time = to_utc(pl.col(timestamp), rows.schema[timestamp], what=what)
    entity = rows.with_row_index(ROW).with_columns(time.alias(TIME))
    nulls = entity[TIME].null_count()
    if nulls:
        raise DataInputError(
            f"{what} is null in {nulls} of {rows.height} rows; a row without a time cannot "
            "be joined point-in-time. Drop or fill those rows."
        )
    return entity.sort(TIME, maintain_order=True)


def check_zones(view: FeatureView, build: Build, naive: bool, timestamp: str) -> None:
    if build.rows and build.naive != naive:
        rows = f"the entity rows' {timestamp!r}"
        source = f"feature view {view.name}'s {view.timestamp!r}"
        has, lacks = (rows, source) if not naive else (source, rows)
        raise DataInputError(
            f"Naive and time-zone-aware timestamps are mixed: {has} carries a time zone and "
            f"{lacks} does not. Make both aware, e.g. pl.col(...).dt.replace_time_zone('UTC'), "
            "so times compare correctly."
        )


def keys_like(entity: pl.DataFrame, view: FeatureView, store: FeatureStore) -> pl.DataFrame:
    missing = [k for k in view.keys if k not in entity.columns]
    if missing:
        raise DataInputError(
            f"Feature view {view.name!r} is joined on {list(view.keys)}, but the entity rows "
            f"lack {missing}. Add the key column(s) to the entity rows."
        )
    casts = []
    for entity_def in view.entities:
        for key, dtype in entity_def.dtypes.items():
            if dtype is not None and entity.schema[key] != dtype:
                casts.append(pl.col(key).cast(dtype))
    try:
        return entity.with_columns(casts) if casts else entity
    except pl.exceptions.InvalidOperationError as exc:
        raise DataInputError(
            f"The entity rows' keys {list(view.keys)} do not convert to the entity's types: {exc}"
        ) from None


def uses_as_named(spec: RequestFeatures, names: dict[tuple[str, str], str]) -> list[pl.Expr]:
    exprs = []
    for ref in spec.uses:
        group, _, feature = ref.partition(":")
        column = names.get((group, feature), f"__use__{group}__{feature}")
        exprs.append(pl.col(column).alias(feature))
    return exprs


def current_run() -> str | None:
    from shipyard.core.context import _current

    context = _current.get()
    return None if context is None else context.run_id


def log_lineage(used: Mapping[str, str]) -> None:
    from shipyard.core.context import _current

    context = _current.get()
    if context is not None:
        for name, version in used.items():
            context.log_param(f"feature_view.{name}", version)


def describe_view(view: FeatureView, build: Build | None, state: Any) -> dict[str, Any]:
    """A view's definition, its newest history and its online state, JSON-able."""
    from shipyard.features._time import iso_of as _iso

    version = view.version
    needs = []
    if build is None or build.version != version:
        needs.append("build")
    if state is None or state.version != version:
        needs.append("materialize")
    offline = None
    if build is not None:
        offline = {
            "version": build.version,
            "build": build.id,
            "rows": build.rows,
            "partitions": len(build.partitions),
            "from": _iso(build.min_us),
            "to": _iso(build.max_us),
        }
    online = None
    if state is not None:
        online = {
            "version": state.version,
            "entities": state.rows,
            "watermark": _iso(state.watermark_us),
        }
    return {
        "name": view.name,
        "version": version,
        "entities": [e.name for e in view.entities],
        "keys": dict(view.column_of),
        "features": {name: str(dtype) for name, dtype in view.schema.items()},
        "timestamp": view.timestamp,
        "created_timestamp": view.created_timestamp,
        "ttl_seconds": None if view.ttl is None else view.ttl.total_seconds(),
        "sources": {name: f"{src.kind}:{src.location}" for name, src in view.sources.items()},
        "description": view.description,
        "owner": view.owner,
        "offline": offline,
        "online": online,
        "needs": needs,
    }
