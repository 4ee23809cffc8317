"""The reference a model version is monitored against: its training data, profiled once.

:func:`profile_version` reads the table the version was trained on (the input of the step
that returned the model, found through the run's lineage), scores it with the model, and
keeps a :class:`~shipyard.monitoring.profile.ReferenceProfile` of every model input and of
the score in the artifact store. The run that trained the version is tagged with the
profile's digest (``shipyard.profile.<model>.v<version>``), so the profile travels with the
metadata store (SQLite or Postgres) and the artifact store (a folder or object storage), and
monitoring never reads the training data again.

The demo and ``shipyard models register`` profile a version when they register it;
``shipyard monitor`` profiles one that has none the first time it watches it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from shipyard.errors import ArtifactNotFoundError, MonitoringError
from shipyard.monitoring.profile import ReferenceProfile, build_profile

SCORE = "score"
_TAG = "shipyard.profile.{name}.v{version}"


def profile_version(project: Any, ref: str, *, rebuild: bool = False) -> ReferenceProfile:
    """The reference profile of the version ``ref`` (``name@alias``, ``name:3``), built
    and stored on first use.

    Raises:
        MonitoringError: the version has no recorded features or training table to profile.
    """
    from shipyard.registry.registry import Registry

    registry = Registry(project)
    version = registry.get(ref)
    if version.run_id is None:
        raise MonitoringError(
            f"{version.ref} was not registered from a run, so its training data is unknown "
            "and it cannot be profiled. Register it with Registry.register_run(..., features=)."
        )
    tag = _TAG.format(name=version.name, version=version.version)
    if not rebuild and (stored := _stored(project, version.run_id, tag)) is not None:
        return stored
    profile = _build(project, registry, version)
    digest = _store(project, profile)
    project.metadata.set_tags(version.run_id, {tag: digest})
    return profile


def _build(project: Any, registry: Any, version: Any) -> ReferenceProfile:
    from shipyard.core.run import Run

    features = _features(version)
    run = Run.load(project, version.run_id)
    step = next(
        (s for s in run.step_runs.values() if s.id == version.step_run_id),
        None,
    )
    if step is None:
        step = next(
            (
                s
                for s in run.step_runs.values()
                if any(a.id == version.artifact_id for a in s.outputs.values())
            ),
            None,
        )
    frame = None if step is None else _training_table(step, features)
    if frame is None:
        raise MonitoringError(
            f"None of the inputs of the step that trained {version.ref} holds its features "
            f"{features}; the reference profile needs that table. Profile it yourself with "
            "shipyard.monitoring.build_profile(frame) and monitor with that profile."
        )
    model = registry.load(version.ref)
    scores = np.asarray(model.predict_proba(frame.select(features))[:, 1], dtype=np.float64)
    table = frame.select(features).with_columns(pl.Series(SCORE, scores))
    categorical = [c for c in features if _is_categorical(table.schema[c])]
    return build_profile(table, columns=[*features, SCORE], categorical=categorical)


def _features(version: Any) -> list[str]:
    features = version.lineage.get("features")
    if not isinstance(features, list) or not features:
        raise MonitoringError(
            f"{version.ref} has no recorded input features, so there is nothing to profile. "
            "Register it with Registry.register_run(..., features=[...])."
        )
    return [str(f) for f in features]


def _training_table(step: Any, features: Sequence[str]) -> pl.DataFrame | None:
    for artifact in step.inputs.values():
        columns = (artifact.preview or {}).get("columns")
        if isinstance(columns, dict) and all(f in columns for f in features):
            loaded = artifact.load()
            if isinstance(loaded, pl.LazyFrame):
                loaded = loaded.collect()
            if isinstance(loaded, pl.DataFrame):
                return loaded
    return None


def _is_categorical(dtype: pl.DataType) -> bool:
    return dtype in (pl.String, pl.Categorical, pl.Boolean) or isinstance(dtype, pl.Enum)


def _store(project: Any, profile: ReferenceProfile) -> str:
    staged = project.artifacts.staging_path()
    staged.write_text(profile.to_json(), encoding="utf-8")
    stored = project.artifacts.commit(staged)
    return str(stored.digest)


def _stored(project: Any, run_id: str, tag: str) -> ReferenceProfile | None:
    digest = project.metadata.tags(run_id).get(tag)
    if digest is None:
        return None
    try:
        text = project.artifacts.local_path(digest).read_text(encoding="utf-8")
    except ArtifactNotFoundError:
        return None  # the store lost it: profile again
    try:
        return ReferenceProfile.from_json(text)
    except (ValueError, KeyError, TypeError, json.JSONDecodeError):
        return None  # written by an incompatible shipyard: profile again
