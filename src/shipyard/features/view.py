"""Feature views (features computed from a source, as of event times) and request-time
features (computed from the fields of a request), each defined once for training and serving."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from shipyard.errors import DataInputError, FeatureDefinitionError
from shipyard.features.entity import Entity, check_name
from shipyard.features.source import Source

if TYPE_CHECKING:
    import polars as pl

EVENT = "__event_ts"  # the normalized event time in stored history (UTC, ns)
CREATED = "__created_ts"  # the normalized created time, for ties on EVENT


class FeatureView:
    """A named set of features computed by one function from one source, with event times.

    Args:
        name: the view's name; features are referred to as ``"name:feature"``.
        entities: the entities the view's rows are about (their join keys identify a row).
        source: where the rows come from; or a mapping of names to sources, passed to
            ``transform`` as keyword arguments.
        schema: every feature column and its Polars dtype; checked on every build.
        timestamp: the event-time column of the transform's output: when the values became
            true. A training row at time ``t`` sees the latest row with this time ``<= t``.
        created_timestamp: optional column that breaks ties between rows of one entity
            at the same event time: the later created wins.
        ttl: how old a value may be and still be used (``t - ttl <= event time``); None
            for no limit. Applied the same way in training sets and online reads.
        transform: a Polars function from the source frame(s) (LazyFrames) to the feature
            rows; None to take the source's columns as they are.
        join_keys: entity join key -> column name in the transform's output, where they differ.
        description, owner: for people and model cards.

    A view's :attr:`version` hashes its definition and its transform's code closure,
    so any change to either is noticed and flags the stored history as stale.
    """

    def __init__(
        self,
        name: str,
        *,
        entities: Sequence[Entity],
        source: Source | Mapping[str, Source],
        schema: Mapping[str, Any],
        timestamp: str = "event_timestamp",
        created_timestamp: str | None = None,
        ttl: dt.timedelta | None = None,
        transform: Callable[..., Any] | None = None,
        join_keys: Mapping[str, str] | None = None,
        description: str = "",
        owner: str = "",
    ) -> None:
        self.name = check_name("feature view", name)
        self.entities = tuple(_entities(name, entities))
        self.sources = _sources(name, source)
        self.schema: dict[str, pl.DataType] = _schema(name, schema)
        self.timestamp = timestamp
        self.created_timestamp = created_timestamp
        self.ttl = _ttl(name, ttl)
        self.transform = transform
        self.column_of = {key: key for entity in self.entities for key in entity.join_keys}
        self.column_of.update(_key_map(name, join_keys or {}, self.column_of))
        self.description = description
        self.owner = owner
        self._check_names()

    def __repr__(self) -> str:
        return f"FeatureView({self.name!r}, features={list(self.schema)!r})"

    @property
    def features(self) -> tuple[str, ...]:
        """The feature names, in schema order."""
        return tuple(self.schema)

    @property
    def keys(self) -> tuple[str, ...]:
        """The join key columns of the view's entities (entity names, not source names)."""
        return tuple(self.column_of)

    def recipe(self) -> dict[str, Any]:
        """The definition that :attr:`version` hashes."""
        from shipyard.core.cache import function_hash

        return {
            "name": self.name,
            "entities": [entity.recipe() for entity in self.entities],
            "sources": {name: src.recipe() for name, src in sorted(self.sources.items())},
            "schema": {name: str(dtype) for name, dtype in self.schema.items()},
            "timestamp": self.timestamp,
            "created_timestamp": self.created_timestamp,
            "ttl_us": None if self.ttl is None else _micros(self.ttl),
            "join_keys": self.column_of,
            "transform": None if self.transform is None else function_hash(self.transform),
        }

    @property
    def version(self) -> str:
        """A short hash of the definition, transform code included."""
        text = json.dumps(self.recipe(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def __shipyard_version__(self) -> str:
        """What a step's cache key records of a view it uses: its version."""
        return self.version

    def compute(self, frames: Mapping[str, pl.LazyFrame]) -> tuple[pl.LazyFrame, bool]:
        """The view's rows from its sources' frames: transform, rename keys, check schema.

        Returns the rows (keys, ``__event_ts`` in UTC, ``__created_ts``, the features),
        lazily, and whether the transform's event times were naive (no time zone).
        """
        import polars as pl

        if self.transform is None:
            produced = next(iter(frames.values()))
        elif len(self.sources) == 1 and not _keyword_source(self.sources):
            produced = self.transform(next(iter(frames.values())))
        else:
            produced = self.transform(**frames)
        if isinstance(produced, pl.DataFrame):
            produced = produced.lazy()
        if not isinstance(produced, pl.LazyFrame):
            raise FeatureDefinitionError(
                f"The transform of feature view {self.name!r} must return a Polars DataFrame "
                f"or LazyFrame, got {type(produced).__name__}. Return the feature rows."
            )
        return self._conform(produced)

    def _conform(self, frame: pl.LazyFrame) -> tuple[pl.LazyFrame, bool]:
        import polars as pl

        from shipyard.features._time import is_naive, to_utc

        schema = frame.collect_schema()
        self._check_output(schema)
        what = f"The timestamp {self.timestamp!r} of feature view {self.name!r}"
        created = (
            to_utc(pl.col(self.created_timestamp), schema[self.created_timestamp], what=what)
            if self.created_timestamp
            else pl.lit(None, dtype=pl.Datetime("ns", "UTC"))
        )
        rows = frame.select(
            *(pl.col(column).alias(key) for key, column in self.column_of.items()),
            to_utc(pl.col(self.timestamp), schema[self.timestamp], what=what).alias(EVENT),
            created.alias(CREATED),
            *(pl.col(name) for name in self.schema),
        )
        return rows, is_naive(schema[self.timestamp])

    def _check_output(self, schema: pl.Schema) -> None:
        arrived = ", ".join(f"{n}: {t}" for n, t in schema.items())
        needed = [*self.column_of.values(), self.timestamp]
        needed += [self.created_timestamp] if self.created_timestamp else []
        missing = [c for c in [*needed, *self.schema] if c not in schema]
        if missing:
            raise FeatureDefinitionError(
                f"Feature view {self.name!r}: the transform's output lacks {missing}. It must "
                f"have the key column(s) {list(self.column_of.values())}, the timestamp "
                f"{self.timestamp!r} and the features {list(self.schema)}; it has {arrived}. "
                "Fix the transform or the view's schema."
            )
        wrong = [
            f"{name} is {schema[name]}, expected {dtype}"
            for name, dtype in self.schema.items()
            if schema[name] != dtype
        ]
        if wrong:
            raise FeatureDefinitionError(
                f"Feature view {self.name!r}: the transform's output breaks the declared "
                f"schema: {'; '.join(wrong)}. Cast in the transform (.cast(...)) or change "
                "the schema, which also changes the view's version."
            )

    def _check_names(self) -> None:
        clash = set(self.schema) & ({*self.keys, EVENT, CREATED})
        if clash:
            raise FeatureDefinitionError(
                f"Feature view {self.name!r}: {sorted(clash)} are both features and keys (or "
                "reserved names). Rename the features."
            )


class RequestFeatures:
    """Features computed at request time from the request's fields (and view features),
    by one Polars function that training and serving both call.

    Args:
        name: the group's name; features are referred to as ``"name:feature"``.
        request_schema: the request fields the function reads, with their Polars dtypes.
        schema: the features it returns, with their dtypes.
        transform: ``fn(frame: pl.DataFrame) -> pl.DataFrame``; ``frame`` holds the request
            fields and the ``uses`` features; the result has one row per input row.
        uses: view features (``"view:feature"``) the function also reads.
    """

    def __init__(
        self,
        name: str,
        *,
        request_schema: Mapping[str, Any],
        schema: Mapping[str, Any],
        transform: Callable[[pl.DataFrame], pl.DataFrame],
        uses: Sequence[str] = (),
        description: str = "",
    ) -> None:
        self.name = check_name("request feature group", name)
        self.request_schema = _schema(name, request_schema)
        self.schema = _schema(name, schema)
        self.transform = transform
        self.uses = tuple(uses)
        self.description = description

    def __repr__(self) -> str:
        return f"RequestFeatures({self.name!r}, features={list(self.schema)!r})"

    @property
    def features(self) -> tuple[str, ...]:
        """The feature names, in schema order."""
        return tuple(self.schema)

    @property
    def version(self) -> str:
        """A short hash of the definition, transform code included."""
        from shipyard.core.cache import function_hash

        recipe = {
            "name": self.name,
            "request": {k: str(v) for k, v in self.request_schema.items()},
            "schema": {k: str(v) for k, v in self.schema.items()},
            "uses": self.uses,
            "transform": function_hash(self.transform),
        }
        return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def __shipyard_version__(self) -> str:
        """What a step's cache key records of a group it uses: its version."""
        return self.version

    def compute(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Run the function on ``frame`` and check what it returns."""
        import polars as pl

        present = set(frame.columns)
        missing = [c for c in self.request_schema if c not in present]
        if missing:
            raise FeatureDefinitionError(
                f"Request features {self.name!r} need the request fields {missing}; the rows "
                f"given have {frame.columns}. Add them to the entity rows or the request."
            )
        casts = [
            pl.col(name).cast(dtype)
            for name, dtype in self.request_schema.items()
            if frame.schema[name] != dtype
        ]
        try:
            typed = frame.with_columns(casts) if casts else frame
        except pl.exceptions.PolarsError as exc:
            given = {name: str(frame.schema[name]) for name in self.request_schema}
            raise DataInputError(
                f"Request features {self.name!r}: the request fields must convert to "
                f"{ {k: str(v) for k, v in self.request_schema.items()} }, got {given} "
                f"({str(exc).splitlines()[0]}). Send values of those types."
            ) from None
        produced = self.transform(typed)
        if not isinstance(produced, pl.DataFrame) or produced.height != frame.height:
            got = produced.height if isinstance(produced, pl.DataFrame) else type(produced).__name__
            raise FeatureDefinitionError(
                f"The transform of request features {self.name!r} must return a Polars "
                f"DataFrame with one row per input row ({frame.height}), got {got}."
            )
        _check_dtypes(self.name, produced.schema, self.schema)
        if produced.columns == list(self.schema):
            return produced
        return produced.select(list(self.schema))


def _check_dtypes(name: str, schema: Mapping[str, Any], expected: Mapping[str, Any]) -> None:
    problems = [
        f"{col} is missing" if col not in schema else f"{col} is {schema[col]}, expected {dtype}"
        for col, dtype in expected.items()
        if col not in schema or schema[col] != dtype
    ]
    if problems:
        raise FeatureDefinitionError(
            f"{name!r}: the transform's output breaks the declared schema: "
            f"{'; '.join(problems)}. Fix the transform or the schema."
        )


def _entities(view: str, entities: Sequence[Entity]) -> list[Entity]:
    found = list(entities)
    if not found or not all(isinstance(e, Entity) for e in found):
        raise FeatureDefinitionError(
            f"Feature view {view!r} needs entities=[Entity(...), ...], got {entities!r}."
        )
    return found


def _sources(view: str, source: Source | Mapping[str, Source]) -> dict[str, Source]:
    found = {source.name: source} if isinstance(source, Source) else dict(source)
    if not found or not all(isinstance(s, Source) for s in found.values()):
        raise FeatureDefinitionError(
            f"Feature view {view!r} needs source=Source.parquet(...) (or another Source), or "
            f"a mapping of names to Sources, got {source!r}."
        )
    if isinstance(source, Mapping):
        found = {name: _named(name, src) for name, src in source.items()}
    return found


def _named(name: str, source: Source) -> Source:
    return (
        source if source.name == name else Source(source.kind, source.location, name, source._frame)
    )


def _keyword_source(sources: Mapping[str, Source]) -> bool:
    return len(sources) > 1


def _schema(owner: str, schema: Mapping[str, Any]) -> dict[str, pl.DataType]:
    import polars as pl

    if not isinstance(schema, Mapping) or not schema:
        raise FeatureDefinitionError(
            f"{owner!r} needs schema={{'feature': pl.Float64, ...}}, got {schema!r}."
        )
    found: dict[str, pl.DataType] = {}
    for column, dtype in schema.items():
        is_class = isinstance(dtype, type) and issubclass(dtype, pl.DataType)
        if not isinstance(column, str) or not (is_class or isinstance(dtype, pl.DataType)):
            raise FeatureDefinitionError(
                f"{owner!r}: schema entry {column!r}: {dtype!r} must map a column name to a "
                "Polars dtype such as pl.Float64."
            )
        found[column] = dtype() if is_class else dtype
    return found


def _ttl(view: str, ttl: dt.timedelta | None) -> dt.timedelta | None:
    if ttl is not None and (not isinstance(ttl, dt.timedelta) or ttl <= dt.timedelta(0)):
        raise FeatureDefinitionError(
            f"Feature view {view!r}: ttl must be a positive datetime.timedelta or None, "
            f"got {ttl!r}."
        )
    return ttl


def _key_map(view: str, join_keys: Mapping[str, str], known: Mapping[str, str]) -> dict[str, str]:
    unknown = [key for key in join_keys if key not in known]
    if unknown:
        raise FeatureDefinitionError(
            f"Feature view {view!r}: join_keys maps {unknown}, which are not join keys of its "
            f"entities ({list(known)}). Map each entity key to the column that holds it."
        )
    return dict(join_keys)


def _micros(delta: dt.timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
