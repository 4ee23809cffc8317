"""What a server serves: a registered model (or an export folder) made ready to answer requests.

:func:`load_served` turns ``name@alias``, ``name:3`` or an export folder into a
:class:`ServedModel`: the model object, its threshold, and the *request contract*, the
fields a client sends. That contract is derived, never written by hand:

* the model's input columns come from the version's lineage (``features``), the
  export's ``model.json``, or the names the model was fitted with;
* each input column that a feature view or a request feature group of the project
  produces is computed on the server, from the online store and the request, by the
  same definitions training used (see :class:`Signature`);
* every other input column is a request field, typed as it was in the training data
  (``input_schema``, recorded by ``Registry.register_run``; an export's sample);
* the join keys of the views used, and the fields the request features read, are
  request fields too.

Rules a client can rely on (also in docs/serving.md):

* an entity the online store has never seen, or whose values are older than the
  view's ttl, gets nulls for that view's features; the model sees missing values,
  as it did in training for a first payment;
* a request feature's timestamp field may be omitted: it is then the time the
  request arrived; each row's view values are aged from that row's timestamp (the
  event being scored), so a row gets the same features alone or in any batch;
* every other field is required and must have the contract's type.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import polars as pl

from shipyard._utils.frames import by_rows
from shipyard.errors import ModelNotFoundError, ServingError

if TYPE_CHECKING:
    from shipyard.core.project import Project
    from shipyard.features.store import FeatureStore

__all__ = [
    "AliasWatcher",
    "ServedModel",
    "Signature",
    "Watcher",
    "dtype_of",
    "load_served",
    "signature_of",
]

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.5
_DATETIME = re.compile(r"Datetime\(time_unit='(ms|us|ns)', time_zone=(None|'[^']*')\)")
_SIMPLE: dict[str, pl.DataType] = {
    "Boolean": pl.Boolean(),
    "String": pl.String(),
    "Utf8": pl.String(),
    "Categorical": pl.String(),
    "Date": pl.Date(),
    "Float32": pl.Float32(),
    "Float64": pl.Float64(),
    **{
        f"{kind}{bits}": getattr(pl, f"{kind}{bits}")()
        for kind in ("Int", "UInt")
        for bits in (8, 16, 32, 64)
    },
}


@dataclass(frozen=True)
class ServedModel:
    """A model ready to serve: its identity, request contract and score function.

    Attributes:
        name: The model's name, as clients address it (``/v2/models/{name}``).
        version: The served version.
        schema: The request contract, column name to polars dtype.
        optional: Columns that may be missing or null.
        score: The probability of the positive class for each row of an enriched frame.
        threshold: A row's decision is ``score >= threshold``.
        features: Turns request rows into the same rows plus every model input column
            computed on the server (online features, request features); None when the
            request already holds every input.
        inputs: The model's input columns, in order.
        keys: The entity key columns of the request (what the log keeps as entity key).
        ref: What was loaded: ``name:version`` or an export folder.
        check: Lists what keeps the model from answering now (``/ready`` calls it).
    """

    name: str
    version: str
    schema: Mapping[str, pl.DataType]
    optional: frozenset[str]
    score: Callable[[pl.DataFrame], np.ndarray[Any, Any]]
    threshold: float
    features: Callable[[pl.DataFrame], pl.DataFrame] | None = None
    inputs: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    ref: str = ""
    check: Callable[[], list[str]] | None = None

    def problems(self) -> list[str]:
        """Why the model cannot answer now (an online store without its features), or []."""
        return [] if self.check is None else self.check()


@dataclass(frozen=True)
class Signature:
    """How request fields become the model's inputs.

    Attributes:
        inputs: The model's input columns, in order.
        request: The request contract: field name to dtype.
        optional: Request fields that may be omitted.
        refs: Feature store references (``group:feature``) computed on the server.
        computed: Each computed input column and its dtype.
        keys: Entity join keys among the request fields.
        clock: Datetime request fields that default to the arrival time.
    """

    inputs: tuple[str, ...]
    request: dict[str, pl.DataType]
    optional: frozenset[str] = frozenset()
    refs: tuple[str, ...] = ()
    computed: dict[str, pl.DataType] = field(default_factory=dict)
    keys: tuple[str, ...] = ()
    clock: tuple[str, ...] = ()


def dtype_of(text: str) -> pl.DataType:
    """The polars dtype ``str(dtype)`` printed, for the types a request can carry.

    Raises:
        ServingError: a type a JSON request cannot carry (lists, structs...).
    """
    if text in _SIMPLE:
        return _SIMPLE[text]
    match = _DATETIME.fullmatch(text)
    if match:
        zone = None if match[2] == "None" else match[2].strip("'")
        return pl.Datetime(match[1], zone)  # type: ignore[arg-type]
    raise ServingError(
        f"cannot serve an input of type {text}; a request field must be a number, an "
        "integer, a string, a boolean, a date or a datetime"
    )


def signature_of(
    inputs: Sequence[str],
    input_schema: Mapping[str, pl.DataType],
    store: FeatureStore | None,
    *,
    views: Sequence[str] = (),
) -> Signature:
    """Derive the request contract of a model taking ``inputs``.

    Args:
        inputs: The model's input columns, in order.
        input_schema: Their dtypes in the training data (at least the columns no
            feature view or request group produces).
        store: The project's feature definitions, or None when there are none.
        views: The feature views the training set was built from (the lineage's
            ``feature_views``); they win when several views produce one column name.

    Raises:
        ServingError: an input column nobody produces and whose type is unknown, or
            one produced by several views the lineage does not tell apart.
    """
    producers = _producers(store, views) if store is not None else {}
    refs = [f"{producers[c][0]}:{c}" for c in inputs if c in producers]
    computed = {c: producers[c][1] for c in inputs if c in producers}
    raw = [c for c in inputs if c not in producers]
    unknown = [c for c in raw if c not in input_schema]
    if unknown:
        raise ServingError(
            f"the types of the model inputs {unknown} are unknown, and no feature view or "
            "request group produces them; register the model with "
            "Registry.register_run(..., features=[...]) from a step that takes the training "
            "frame, or pass lineage={'input_schema': {column: dtype}}"
        )
    request = {c: input_schema[c] for c in raw}
    keys: dict[str, pl.DataType] = {}
    clock: list[str] = []
    if store is not None and refs:
        for group, _ in store._with_uses(store.resolve(refs)):
            if group in store.views:
                view = store.views[group]
                for entity in view.entities:
                    for key in entity.join_keys:
                        column = view.column_of[key]
                        keys[column] = entity.dtypes[key] or pl.String()
            else:
                for name, dtype in store.request_features[group].request_schema.items():
                    request.setdefault(name, dtype)
                    if isinstance(dtype, pl.Datetime):
                        clock.append(name)
    for key, dtype in keys.items():
        request.setdefault(key, dtype)
    clock = [c for c in dict.fromkeys(clock) if c not in inputs]
    return Signature(
        inputs=tuple(inputs),
        request=request,
        optional=frozenset(clock),
        refs=tuple(refs),
        computed=computed,
        keys=tuple(keys),
        clock=tuple(clock),
    )


def _producers(store: FeatureStore, views: Sequence[str]) -> dict[str, tuple[str, pl.DataType]]:
    """Each column a view or request group produces: (group, dtype); lineage views first."""
    found: dict[str, list[tuple[str, pl.DataType]]] = {}
    groups: dict[str, Any] = {**store.views, **store.request_features}
    for name, group in groups.items():
        for column, dtype in group.schema.items():
            found.setdefault(column, []).append((name, dtype))
    chosen: dict[str, tuple[str, pl.DataType]] = {}
    for column, owners in found.items():
        if len(owners) > 1:
            preferred = [o for o in owners if o[0] in views or o[0] in store.request_features]
            if len(preferred) != 1:
                names = sorted(o[0] for o in owners)
                raise ServingError(
                    f"the model input {column!r} is produced by {names}, and the model's "
                    "lineage does not say which one it was trained on; rename one of them"
                )
            owners = preferred
        chosen[column] = owners[0]
    return chosen


# -- loading ------------------------------------------------------------------------


def load_served(
    ref: str | Path,
    project: Project | None = None,
    *,
    store: FeatureStore | None = None,
) -> ServedModel:
    """The model ``ref`` names, ready to serve.

    Args:
        ref: ``name@alias``, ``name:3``, ``name`` (the latest version), or the path of a
            folder ``shipyard models export`` wrote.
        project: The project whose registry and feature store to use; needed for a
            registry reference, optional for an export folder (its features are then
            read from this project's online store).
        store: The feature store to use (default: the project's, when it defines any).

    Raises:
        ModelNotFoundError: no such model, version, alias or export folder.
        ServingError: the model's inputs cannot be served (see :func:`signature_of`).
    """
    path = Path(ref)
    if (path / "model.json").is_file():
        return _from_export(path, project, store)
    if project is None:
        raise ModelNotFoundError(
            f"{str(ref)!r} is not an export folder (no model.json in it), and there is no "
            "project to look it up in; run inside a shipyard project or pass its folder"
        )
    return _from_registry(str(ref), project, store)


def _from_registry(ref: str, project: Project, store: FeatureStore | None) -> ServedModel:
    from shipyard.registry.registry import Registry

    registry = Registry(project)
    version = registry.get(ref)
    model = registry.load(version.ref)
    lineage = version.lineage
    inputs = _inputs(lineage.get("features"), model, ref)
    schema = {c: dtype_of(t) for c, t in (lineage.get("input_schema") or {}).items()}
    store = store if store is not None else _project_store(project)
    signature = signature_of(inputs, schema, store, views=list(lineage.get("feature_views") or {}))
    evaluation = registry.evaluation(version) or {}
    threshold = _threshold(evaluation.get("threshold"), version.ref)
    score = _fast_scorer(model, signature.inputs)
    return _served(
        version.name, str(version.version), version.ref, score, signature, store, threshold
    )


def _from_export(folder: Path, project: Project | None, store: FeatureStore | None) -> ServedModel:
    """An export folder's model. With an ONNX model that reproduces the scores recorded
    at export, the skops model is never loaded: no scikit-learn import, a faster start."""
    from shipyard.registry.export import load_export

    facts = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    model = None if facts.get("features") else load_export(folder)
    inputs = _inputs(facts.get("features"), model, str(folder))
    sample = folder / "sample.parquet"
    schema = dict(pl.read_parquet_schema(sample)) if sample.is_file() else {}
    if store is None and project is not None:
        store = _project_store(project)
    signature = signature_of(inputs, schema, store)
    score = _onnx_scorer(folder, facts, inputs) if not signature.refs else None
    if score is None:
        rows = pl.read_parquet(sample).head(256) if sample.is_file() else None
        found = model if model is not None else load_export(folder)
        score = _fast_scorer(found, inputs, rows)
    threshold = _threshold(facts.get("threshold"), str(folder))
    name, version = str(facts["name"]), str(facts["version"])
    return _served(name, version, str(folder), score, signature, store, threshold)


def _project_store(project: Project) -> FeatureStore | None:
    """The project's feature store, or None when it defines no view or request group."""
    from shipyard.features.store import FeatureStore

    store = FeatureStore.from_project(project)
    return store if store.views or store.request_features else None


def _inputs(listed: Any, model: Any, ref: str) -> list[str]:
    for found in (listed, getattr(model, "feature_names_in_", None)):
        if found is not None and len(found) > 0:
            return [str(column) for column in found]
    raise ServingError(
        f"{ref}: the model's input columns are unknown; register it with "
        "Registry.register_run(..., features=[...]) or fit it on a named frame"
    )


def _threshold(value: Any, ref: str) -> float:
    if value is None:
        logger.warning(
            "%s has no gated threshold (no evaluation or gate records one); serving with %s",
            ref,
            DEFAULT_THRESHOLD,
        )
        return DEFAULT_THRESHOLD
    return float(value)


def _served(
    name: str,
    version: str,
    ref: str,
    score: Callable[[pl.DataFrame], np.ndarray[Any, Any]],
    signature: Signature,
    store: FeatureStore | None,
    threshold: float,
) -> ServedModel:
    enricher = _Enricher(store, signature) if signature.refs or signature.clock else None
    return ServedModel(
        check=None if enricher is None else enricher.problems,
        name=name,
        version=version,
        schema=signature.request,
        optional=signature.optional,
        score=score,
        threshold=threshold,
        features=enricher,
        inputs=signature.inputs,
        keys=signature.keys,
        ref=ref,
    )


def _fast_scorer(
    model: Any, inputs: Sequence[str], check: pl.DataFrame | None = None
) -> Callable[[pl.DataFrame], np.ndarray[Any, Any]]:
    """The compiled tree scorer for requests of a few rows when the model is one it
    reproduces exactly (checked now, on ``check`` and on edge cases), else scikit-learn."""
    from shipyard.serving._trees import compile_scorer

    compiled = compile_scorer(model, inputs, check=check)
    return compiled if compiled is not None else _sklearn_scorer(model, inputs)


def _sklearn_scorer(
    model: Any, inputs: Sequence[str]
) -> Callable[[pl.DataFrame], np.ndarray[Any, Any]]:
    """``predict_proba``'s positive column, on a frame when the model was fitted on one
    (it checks the names), else on a float matrix (faster for a row or two)."""
    columns = list(inputs)
    named = getattr(model, "feature_names_in_", None) is not None or _has_column_transformer(model)

    def score(frame: pl.DataFrame) -> np.ndarray[Any, Any]:
        matrix: Any = frame.select(columns) if named else _matrix(frame, columns)
        return np.asarray(model.predict_proba(matrix)[:, 1], dtype=np.float64)

    return score


def _matrix(frame: pl.DataFrame, columns: list[str]) -> np.ndarray[Any, Any]:
    """``columns`` of ``frame`` as a float64 matrix (nulls as NaN). A request's few rows go
    through Python tuples: a polars ``select`` of 20 columns alone costs ~70 µs."""
    fast = _tuples_matrix(frame, columns) if frame.height <= ROWS_BY_ROW else None
    if fast is not None:
        return fast
    return frame.select(columns).to_numpy().astype(np.float64)


def _tuples_matrix(frame: pl.DataFrame, columns: list[str]) -> np.ndarray[Any, Any] | None:
    """The matrix through Python tuples; None for a missing or non-numeric column (the
    polars path then says what is wrong)."""
    position = {name: index for index, name in enumerate(frame.columns)}
    try:
        at = [position[name] for name in columns]
        return np.array([[row[i] for i in at] for row in frame.rows()], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        return None


def _has_column_transformer(model: Any) -> bool:
    steps = getattr(model, "steps", None) or []
    return any(type(step).__name__ == "ColumnTransformer" for _, step in steps)


def _onnx_scorer(
    folder: Path, facts: Mapping[str, Any], inputs: Sequence[str]
) -> Callable[[pl.DataFrame], np.ndarray[Any, Any]] | None:
    """ONNX Runtime's scores when the export has an ONNX model that gives the same
    decisions as the skops model on the export's sample; None otherwise."""
    onnx = facts.get("onnx") or {}
    sample = folder / "sample.parquet"
    if not onnx.get("available") or not sample.is_file():
        return None
    if importlib.util.find_spec("onnxruntime") is None:
        return None
    from shipyard.registry import _onnx

    session = _onnx.session(folder / str(onnx["file"]))
    columns = list(inputs)
    rows = pl.read_parquet(sample).select(columns)
    threshold = float(facts.get("threshold") or DEFAULT_THRESHOLD)
    expected = np.load(folder / "sample_scores.npy", allow_pickle=False)
    scores = session(rows.to_numpy().astype(np.float64))
    if not np.array_equal(scores >= threshold, expected >= threshold):
        logger.warning(
            "%s: ONNX Runtime's decisions differ from the model's on the export sample; "
            "serving the skops model",
            folder,
        )
        return None

    def score(frame: pl.DataFrame) -> np.ndarray[Any, Any]:
        return session(_matrix(frame, columns))

    return score


class _Enricher:
    """Request rows -> the same rows plus the computed model inputs (online store lookups
    and request features, by the feature store's own read path)."""

    def __init__(self, store: FeatureStore | None, signature: Signature) -> None:
        self.store = store
        self.signature = signature
        self.asked = [c for c in signature.request if c not in signature.computed]

    def __call__(self, frame: pl.DataFrame) -> pl.DataFrame:
        columns = frame.to_dict(as_series=False)
        schema: dict[str, Any] = dict(frame.schema)
        arrived = datetime.now(UTC)
        for name in self.signature.clock:
            given = columns.get(name) or [None] * frame.height
            columns[name] = [arrived if value is None else value for value in given]
            schema[name] = self.signature.request[name]
        if self.signature.refs and self.store is not None:
            asked = {c: columns[c] for c in self.asked if c in columns}
            now = self._now(columns)
            values = self.store.online_features(asked, self.signature.refs, now=now).values
            for name, dtype in self.signature.computed.items():
                columns[name] = values[name]
                schema[name] = dtype
        return _frame(columns, schema, frame.height)

    def problems(self) -> list[str]:
        """Feature views the online store cannot serve as this model was trained on them."""
        if self.store is None or not self.signature.refs:
            return []
        pairs = self.store._with_uses(self.store.resolve(self.signature.refs))
        found = []
        for name in dict.fromkeys(group for group, _ in pairs if group in self.store.views):
            fix = f"run `shipyard features materialize {name}`"
            try:
                stored = self.store.online.version(name)
            except Exception as exc:  # a store that cannot be read is the answer itself
                return [f"the online store cannot be read: {exc}"]
            if stored is None:
                found.append(f"feature view {name!r} is not in the online store; {fix}")
            elif stored != self.store.views[name].version:
                found.append(
                    f"the online store holds another definition of feature view {name!r}; {fix}"
                )
        return found

    def _now(self, columns: Mapping[str, list[Any]]) -> list[datetime] | None:
        """When each row happened, which ttl is measured from: its own timestamp field
        (filled with the arrival time where missing), so a row's features never depend on
        the rows scored with it; None (the current time) for a model without one."""
        for name in self.signature.clock:
            return columns[name]
        return None


ROWS_BY_ROW = 64  # up to this many rows, a frame is built faster row by row


def _frame(
    columns: Mapping[str, list[Any]], schema: Mapping[str, Any], height: int
) -> pl.DataFrame:
    """A frame of these typed columns: by rows for a request's few rows (a few times
    faster), by columns for larger ones."""
    fast = by_rows(columns, schema) if height <= ROWS_BY_ROW else None
    if fast is not None:
        return fast
    return pl.DataFrame(
        [
            pl.Series(name, values, dtype=schema[name], strict=False)
            for name, values in columns.items()
        ]
    )


# -- hot reload ---------------------------------------------------------------------


class Watcher(Protocol):
    """Tells a running server when to serve other models (see ``create_app(watcher=)``)."""

    interval_s: float

    def check(self) -> tuple[ServedModel, ServedModel | None] | None:
        """The models to serve now (primary, shadow), or None when nothing changed.

        Called from a worker thread; may load models (slow) but must not raise for a
        transient problem it can retry next time.
        """


class AliasWatcher:
    """Follows ``name@alias`` (and optionally ``name@shadow``) in a project's registry.

    Each check reads the aliases (one small query); when one moved, the version it
    points to now is loaded, checked on one row when ``probe`` is given, and returned.

    Args:
        project: The project whose registry to read.
        name: The model's name.
        alias: The alias the server follows (``production``).
        shadow_alias: The alias of the shadow model, or None for no shadow.
        interval_s: Seconds between checks.
        served: The versions the server started with (primary, shadow).
    """

    def __init__(
        self,
        project: Project,
        name: str,
        alias: str,
        *,
        shadow_alias: str | None,
        interval_s: float,
        served: tuple[str, str | None],
    ) -> None:
        self.project = project
        self.name = name
        self.alias = alias
        self.shadow_alias = shadow_alias
        self.interval_s = interval_s
        self.served = served
        self._loaded: dict[str, ServedModel] = {}

    def targets(self) -> tuple[str, str | None]:
        """The versions the aliases point to now (shadow: None when unset)."""
        from shipyard.registry.registry import Registry

        aliases = Registry(self.project).aliases(self.name)
        if self.alias not in aliases:
            raise ModelNotFoundError(
                f"the alias {self.name}@{self.alias} was removed; serving on the last version"
            )
        shadow = None if self.shadow_alias is None else aliases.get(self.shadow_alias)
        return str(aliases[self.alias]), None if shadow is None else str(shadow)

    def check(self) -> tuple[ServedModel, ServedModel | None] | None:
        """New (primary, shadow) models when either alias moved, else None."""
        primary, shadow = self.targets()
        if (primary, shadow) == self.served:
            return None
        models = (self._load(primary), None if shadow is None else self._load(shadow))
        self.served = (primary, shadow)
        self._loaded = {m.version: m for m in models if m is not None}
        return models

    def _load(self, version: str) -> ServedModel:
        found = self._loaded.get(version)
        if found is None:
            found = load_served(f"{self.name}:{version}", self.project)
        return found
