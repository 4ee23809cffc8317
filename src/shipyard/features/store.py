"""The feature store: one set of definitions, point-in-time training sets from the
offline history, and the same features online for serving.

    store = FeatureStore.from_project()
    train = store.training_frame(labels, features=["customer_windows", "merchant_risk:cb_rate"])
    store.materialize()
    store.online_features({"customer_id": ["c_00017"]}, features=["customer_windows"])
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import polars as pl

from shipyard.errors import FeatureDefinitionError, FeatureNotFoundError
from shipyard.features import _offline
from shipyard.features._join import ROW, join_view
from shipyard.features._offline import Build
from shipyard.features._time import is_naive
from shipyard.features._training import (
    as_frame,
    check_zones,
    current_run,
    describe_view,
    keys_like,
    log_lineage,
    output_names,
    prepared,
    uses_as_named,
)
from shipyard.features.entity import Entity
from shipyard.features.source import Source
from shipyard.features.view import FeatureView, RequestFeatures

if TYPE_CHECKING:
    from shipyard.core.project import Project
    from shipyard.features.online import OnlineFeatures
    from shipyard.storage.online import OnlineStore

logger = logging.getLogger("shipyard.features")
Definition = Entity | FeatureView | RequestFeatures
Progress = Callable[[str, int, int], None]


class FeatureStore:
    """Entities, feature views and request features, with their offline and online stores.

    Args:
        definitions: the entities, feature views and request feature groups.
        project: whose artifact store keeps the history, whose metadata store indexes it,
            and whose ``[stores] online`` serves it (default: the project around the
            working directory).
        online: an online store to use instead of the project's.
    """

    def __init__(
        self,
        definitions: Iterable[Definition],
        *,
        project: Project | None = None,
        online: OnlineStore | None = None,
    ) -> None:
        self.entities: dict[str, Entity] = {}
        self.views: dict[str, FeatureView] = {}
        self.request_features: dict[str, RequestFeatures] = {}
        for item in definitions:
            self._add(item)
        self._project = project
        self._online = online
        self._builds: dict[tuple[str, str, str], Build] = {}
        self._reader: Any = None

    @classmethod
    def from_project(cls, project: Project | None = None) -> FeatureStore:
        """The store of every definition in the modules that ``[features] definitions`` names."""
        from shipyard.features._discover import definitions_of

        if project is None:
            from shipyard.core.project import Project

            project = Project.discover()
        return cls(definitions_of(project), project=project)

    # -- definitions -------------------------------------------------------------------

    def _add(self, item: Definition) -> None:
        kinds = (self.entities, self.views, self.request_features)
        if isinstance(item, Entity):
            table: dict[str, Any] = self.entities
        elif isinstance(item, FeatureView):
            table = self.views
            for entity in item.entities:
                self.entities.setdefault(entity.name, entity)
        elif isinstance(item, RequestFeatures):
            table = self.request_features
        else:
            raise FeatureDefinitionError(
                f"A feature store holds Entity, FeatureView and RequestFeatures objects, got "
                f"{type(item).__name__}: {item!r}."
            )
        if any(
            item.name in t and t[item.name] is not item for t in kinds if t is not self.entities
        ):
            raise FeatureDefinitionError(
                f"Two definitions are named {item.name!r}. Names of feature views and request "
                "feature groups must be unique in a project."
            )
        table[item.name] = item

    @property
    def project(self) -> Project:
        """The project whose stores this feature store uses."""
        if self._project is None:
            from shipyard.core.project import Project

            self._project = Project.discover()
        return self._project

    @property
    def online(self) -> OnlineStore:
        """The online store (the project's ``[stores] online`` unless one was given)."""
        if self._online is None:
            from shipyard.storage.online import open_online_store

            self._online = open_online_store(self.project.settings.online_url, self.project.root)
        return self._online

    def view(self, name: str) -> FeatureView:
        """A feature view by name."""
        if name not in self.views:
            raise FeatureNotFoundError(
                f"No feature view named {name!r}. Feature views: "
                f"{', '.join(sorted(self.views)) or 'none'}."
            )
        return self.views[name]

    def resolve(self, features: Sequence[str]) -> list[tuple[str, str]]:
        """``["view:feature", "view", ...]`` as (group, feature) pairs; every one checked."""
        if isinstance(features, str):
            features = [features]
        pairs: list[tuple[str, str]] = []
        for ref in features:
            group, _, name = ref.partition(":")
            owner = self.views.get(group) or self.request_features.get(group)
            if owner is None or (name and name not in owner.schema):
                raise FeatureNotFoundError(_unknown(ref, self.views, self.request_features))
            pairs += [(group, name)] if name else [(group, f) for f in owner.features]
        if not pairs:
            raise FeatureNotFoundError("No features were requested; name at least one.")
        return list(dict.fromkeys(pairs))

    # -- the offline store -------------------------------------------------------------

    def build(
        self,
        views: Sequence[str] | None = None,
        *,
        sources: Mapping[str, pl.DataFrame | pl.LazyFrame] | None = None,
    ) -> dict[str, Build]:
        """Bring each view's stored history up to date with its definition and sources.

        A build is reused while the view's version and its sources' content are
        unchanged; otherwise the history is recomputed and stored anew.
        """
        names = list(self.views) if views is None else list(views)
        return {name: self._build(self.view(name), sources or {}) for name in names}

    def _build(self, view: FeatureView, overrides: Mapping[str, Any]) -> Build:
        frames, fingerprint = self._resolve_sources(view, overrides)
        version = view.version
        cached = self._builds.get((view.name, version, fingerprint))
        if cached is not None:
            return cached
        row = self.project.metadata.find_feature_build(view.name, version, fingerprint)
        if row is not None and self._stored(Build.from_row(row)):
            build = Build.from_row(row)
        else:
            build = _offline.build_history(
                view,
                frames,
                fingerprint,
                self.project.artifacts,
                self.project.settings.partition_rows,
            )
            self.project.metadata.record_feature_build(build.to_row(current_run()))
            logger.info("built %s v%s: %d rows", view.name, version, build.rows)
        self._builds[view.name, version, fingerprint] = build
        return build

    def _stored(self, build: Build) -> bool:
        return all(self.project.artifacts.exists(p.digest) for p in build.partitions)

    def _resolve_sources(
        self, view: FeatureView, overrides: Mapping[str, Any]
    ) -> tuple[dict[str, pl.LazyFrame], str]:
        import hashlib

        frames: dict[str, pl.LazyFrame] = {}
        digest = hashlib.sha256()
        for name, source in sorted(view.sources.items()):
            given = overrides.get(name)
            found = (Source.frame(given, name=name) if given is not None else source).resolve(
                self._project if given is not None else self.project
            )
            frames[name] = found.scan
            digest.update(f"{name}={found.fingerprint};".encode())
        return frames, digest.hexdigest()

    def latest_builds(self) -> dict[str, Build]:
        """The newest stored build of every view, whatever its version."""
        rows = self.project.metadata.latest_feature_builds()
        return {name: Build.from_row(row) for name, row in rows.items()}

    def read_partition(self, partition: _offline.Partition, columns: list[str]) -> pl.DataFrame:
        """One partition of history (only ``columns``)."""
        return _offline.read_partition(self.project.artifacts, partition, columns)

    # -- training sets -----------------------------------------------------------------

    def training_frame(
        self,
        entity_rows: pl.DataFrame | pl.LazyFrame | Any,
        features: Sequence[str],
        *,
        timestamp: str = "event_timestamp",
        sources: Mapping[str, pl.DataFrame | pl.LazyFrame] | None = None,
        full_names: bool = False,
    ) -> pl.DataFrame:
        """The entity rows, in their order, with every feature as of each row's time.

        For each row at time ``t`` and each view: the latest feature row of that entity
        with ``t - ttl <= event time <= t``, the later created time winning ties; nulls
        where there is none. Request features are then computed from the row's fields.

        Args:
            entity_rows: entity keys, ``timestamp`` and anything else (labels, request
                fields); a Polars or pandas frame.
            features: ``"view:feature"``, or a view or request group name for all of it.
            timestamp: the column holding each row's time.
            sources: frames to use instead of the views' sources, by source name.
            full_names: name columns ``view__feature`` instead of ``feature``.

        Inside a running step, the versions of the views used are logged as params
        (``feature_view.<name>``), so the run's lineage names them.
        """
        rows = as_frame(entity_rows)
        pairs = self.resolve(features)
        names = output_names(pairs, rows.columns, full_names)
        needed = self._with_uses(pairs)
        entity = prepared(rows, timestamp)
        naive = is_naive(rows.schema[timestamp])
        used: dict[str, str] = {}
        for view_name in dict.fromkeys(g for g, _ in needed if g in self.views):
            view = self.views[view_name]
            build = self._build(view, sources or {})
            check_zones(view, build, naive, timestamp)
            wanted = {
                f: names.get((view_name, f), f"__use__{view_name}__{f}")
                for g, f in needed
                if g == view_name
            }
            entity = join_view(
                keys_like(entity, view, self),
                build,
                view.keys,
                wanted,
                {f: view.schema[f] for f in wanted},
                view.ttl,
                self.read_partition,
            )
            used[view_name] = f"{build.version} (build {build.id[:8]}, {build.rows} rows)"
        entity = entity.sort(ROW)
        entity = self._request_features(entity, pairs, names)
        log_lineage(used)
        # the caller's own columns as given (keys were cast to join), then the features
        return rows.hstack(entity.select(names[p] for p in pairs))

    def _with_uses(self, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        extra = []
        for group, _ in pairs:
            for ref in getattr(self.request_features.get(group), "uses", ()):
                extra += self.resolve([ref])
        return list(dict.fromkeys([*pairs, *extra]))

    def _request_features(
        self, frame: pl.DataFrame, pairs: list[tuple[str, str]], names: dict[tuple[str, str], str]
    ) -> pl.DataFrame:
        for group in dict.fromkeys(g for g, _ in pairs if g in self.request_features):
            spec = self.request_features[group]
            inputs = frame.with_columns(uses_as_named(spec, names))
            computed = spec.compute(inputs)
            wanted = {f: names[group, f] for g, f in pairs if g == group}
            frame = frame.with_columns(
                computed.select(pl.col(f).alias(o) for f, o in wanted.items())
            )
        return frame

    # -- status ------------------------------------------------------------------------

    def describe(self, names: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Each view's definition, its stored history and its online state, JSON-able.

        ``needs`` lists what is out of date: ``"build"`` (the newest history was
        computed by another version of the definition), ``"materialize"`` (the online
        store holds another version, or nothing).
        """
        chosen = [self.view(n) for n in names] if names is not None else list(self.views.values())
        builds = self.latest_builds()
        online = self.online.views()
        return [
            describe_view(view, builds.get(view.name), online.get(view.name)) for view in chosen
        ]

    # -- the online store --------------------------------------------------------------

    def materialize(
        self,
        views: Sequence[str] | None = None,
        *,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        progress: Progress | None = None,
    ) -> list[dict[str, Any]]:
        """Write the latest values per entity into the online store, incrementally.

        Each view resumes from its watermark (the latest event time already written),
        one history partition per transaction, so an interrupted run is completed by
        running again, without duplicates or gaps. A view whose definition changed is
        rewritten from scratch. ``start``/``end`` bound the event times (``end``
        defaults to now).
        """
        from shipyard.features._materialize import materialize_view

        names = list(self.views) if views is None else list(views)
        return [
            materialize_view(
                self, self.view(name), self._build(self.view(name), {}), start, end, progress
            )
            for name in names
        ]

    def online_features(
        self,
        entities: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
        features: Sequence[str],
        *,
        now: dt.datetime | Sequence[dt.datetime] | None = None,
    ) -> OnlineFeatures:
        """The latest values of ``features`` for each entity, with their event times.

        ``entities`` maps each join key (and request field) to a list of values, or is a
        list of records. Values older than the view's ttl are returned as null with the
        status ``"expired"``; an entity the store has never seen gives nulls with the
        status ``"unknown"``. Age is measured at ``now``: one time for every entity
        (default: the current time), or one time per entity (each event's own time).
        Request features are computed by the same function as in training.
        """
        from shipyard.features.online import read_online

        return read_online(self, entities, features, now)

    def skew(self, view: str, *, sample: int = 100, seed: int = 0) -> dict[str, Any]:
        """Recompute ``sample`` entities' online values from the offline history and list
        every mismatch (``"mismatches"``: key, feature, offline and online values).

        The expected value of an entity is its latest history row at or before the
        view's watermark, so a correct materialization has no mismatch at all.
        """
        from shipyard.features._skew import skew

        return skew(self, view, sample, seed)


def _unknown(
    ref: str, views: Mapping[str, FeatureView], groups: Mapping[str, RequestFeatures]
) -> str:
    known = [f"{v.name}:{f}" for v in views.values() for f in v.features]
    known += [f"{g.name}:{f}" for g in groups.values() for f in g.features]
    return (
        f"No feature {ref!r}. Refer to features as 'view:feature' or to a whole view by its "
        f"name. Defined: {', '.join(known) or 'none'}."
    )
