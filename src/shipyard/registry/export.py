"""Export a registered model version to a self-contained folder, and verify such a folder.

The folder holds everything needed to serve and audit the model without the project::

    model.skops          the model, saved with skops (never pickle)
    trusted_types.json   the types the model needs, listed at export time
    model.json           name, version, threshold, input features, objectives, versions
    card.md, card.html   the model card
    requirements.txt     pinned versions of the packages the model is made of
    sample.parquet       the sample rows (feature columns), when a sample is given
    sample_scores.npy    the model's scores on them at export time
    model.onnx           the model as ONNX, when skl2onnx can convert it

Loading checks every type the model file needs against ``trusted_types.json`` *and*
against shipyard's own trusted prefixes, which are never read from the folder.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import os
import shutil
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from shipyard.errors import EvaluationError, ExportError
from shipyard.registry import _onnx, _skops_file
from shipyard.registry._verify import VerifyCheck, VerifyResult, verify
from shipyard.registry.card import model_card

if TYPE_CHECKING:
    from shipyard.registry.registry import ModelVersion, Registry

__all__ = ["VerifyCheck", "VerifyResult", "export_model", "load_export", "verify_export"]

MODEL = "model.skops"
TRUSTED = "trusted_types.json"
FORMAT = "shipyard-model-export"


def export_model(
    registry: Registry,
    ref: str,
    directory: str | os.PathLike[str],
    *,
    sample: pl.DataFrame | None = None,
    features: Sequence[str] | None = None,
) -> Path:
    """Write the version ``ref`` names to ``directory``, all or nothing.

    The files are written to a hidden sibling folder that is renamed to ``directory``
    at the end, so a failure or a crash never leaves a half-written export there.

    Args:
        registry: the registry that holds the model.
        ref: ``name@alias``, ``name:3`` or ``name`` (the latest version).
        directory: the folder to create; it must not exist, or be empty.
        sample: rows to score now and keep, so the export can be verified anywhere.
        features: the model's input columns, in order. Default: the lineage's
            ``features``, else the names the model was fitted with, else the sample's columns.

    Returns:
        The folder written.

    Raises:
        ExportError: ``directory`` exists and is not an empty folder.
        ModelNotFoundError: no such model, version or alias.
        MaterializerError: the model holds types shipyard does not trust.
        EvaluationError: the sample lacks some of the features.
    """
    target = Path(directory)
    _refuse_used(target)
    version = registry.get(ref)
    model = registry.load(version.ref)
    columns = _features(features, version, model, sample)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.{uuid.uuid4().hex}.partial"
    staging.mkdir()
    try:
        _write(staging, registry, version, model, columns, sample)
        _move(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def load_export(directory: str | os.PathLike[str]) -> Any:
    """The model of an export folder, once its needed types pass both trust lists.

    Raises:
        MaterializerError: a needed type is not trusted (it is named), or the model file
            is not a valid skops file.
    """
    folder = Path(directory)
    return _skops_file.load(folder / MODEL, folder / TRUSTED)


def verify_export(
    directory: str | os.PathLike[str], *, onnx_tolerance: float = 1e-5
) -> VerifyResult:
    """Check an export folder: the model file's digest, that it loads with trusted types only,
    that it still gives the sample's recorded scores (within 1e-12), that the pinned
    requirements are installed (a warning when not), and that ONNX agrees within
    ``onnx_tolerance``.

    Raises:
        MaterializerError: the folder is not an export, a type is not trusted (it is named),
            or the model file is not a valid skops file.
    """
    folder = Path(directory)
    return verify(folder, load_export, onnx_tolerance=onnx_tolerance)


# -- writing --------------------------------------------------------------------------


def _refuse_used(target: Path) -> None:
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ExportError(
            f"{target} already exists and is not an empty folder; an export never mixes with "
            "other files. Choose a new folder, or remove this one first."
        )


def _move(staging: Path, target: Path) -> None:
    try:
        os.rename(staging, target)  # replaces an empty folder, refuses a non-empty one
    except OSError as exc:
        raise ExportError(
            f"{target} was filled by someone else during the export; nothing was written. "
            "Choose a new folder."
        ) from exc


def _write(
    folder: Path,
    registry: Registry,
    version: ModelVersion,
    model: Any,
    features: list[str] | None,
    sample: pl.DataFrame | None,
) -> None:
    trusted = _skops_file.save(model, folder / MODEL, folder / TRUSTED)
    scored = None if sample is None or features is None else _score(model, sample, features)
    onnx = _onnx_export(model, features, folder, scored)
    card = model_card(registry, version.ref)
    (folder / "card.md").write_text(card.markdown(), encoding="utf-8")
    (folder / "card.html").write_text(card.html(), encoding="utf-8")
    pins = _skops_file.requirements(folder / MODEL)
    lines = [f"# Packages the model {version.ref} needs, as installed when it was exported."]
    lines += [f"{name}=={pinned}" for name, pinned in pins.items()]
    (folder / "requirements.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    facts = _facts(version, model, features, folder / MODEL, trusted)
    facts["threshold"] = (registry.evaluation(version) or {}).get("threshold", facts["threshold"])
    facts["sample"] = (
        None if scored is None else {"rows": scored[0].height, "file": "sample.parquet"}
    )
    facts["onnx"] = onnx
    text = json.dumps(facts, indent=2, default=str, allow_nan=False)
    (folder / "model.json").write_text(text + "\n", encoding="utf-8")
    if scored is not None:
        scored[0].write_parquet(folder / "sample.parquet")
        np.save(folder / "sample_scores.npy", scored[1], allow_pickle=False)


def _score(
    model: Any, sample: pl.DataFrame, features: list[str]
) -> tuple[pl.DataFrame, np.ndarray]:
    missing = [column for column in features if column not in sample.columns]
    if missing:
        raise EvaluationError(
            f"The sample lacks the model's input columns {missing}; it has {sample.columns}. "
            "Pass rows with every feature, or name the features with features=[...]."
        )
    rows = sample.select(features)
    return rows, np.asarray(model.predict_proba(rows)[:, 1], dtype=np.float64)


def _onnx_export(
    model: Any,
    features: list[str] | None,
    folder: Path,
    scored: tuple[pl.DataFrame, np.ndarray] | None,
) -> dict[str, Any]:
    count = len(features) if features is not None else getattr(model, "n_features_in_", None)
    if count is None:
        return {"available": False, "reason": "the model's input features are not known"}
    rows, scores = (None, None) if scored is None else scored
    matrix = None
    if rows is not None:
        if not all(dtype.is_numeric() or dtype == pl.Boolean for dtype in rows.dtypes):
            reason = f"ONNX input must be numbers; the features are {dict(rows.schema)}"
            return {"available": False, "reason": reason}
        matrix = rows.to_numpy().astype(np.float64)
    return _onnx.export(model, int(count), folder / "model.onnx", matrix, scores)


def _features(
    given: Sequence[str] | None, version: ModelVersion, model: Any, sample: pl.DataFrame | None
) -> list[str] | None:
    for found in (
        given,
        version.lineage.get("features"),
        getattr(model, "feature_names_in_", None),
    ):
        if found is not None and len(found) > 0:
            return [str(column) for column in found]
    return None if sample is None else list(sample.columns)


def _facts(
    version: ModelVersion, model: Any, features: list[str] | None, path: Path, trusted: list[str]
) -> dict[str, Any]:
    evaluation = version.evaluation or {}
    model_type = type(model)
    return {
        "format": FORMAT,
        "format_version": 1,
        "name": version.name,
        "version": version.version,
        "description": version.description,
        "threshold": evaluation.get("threshold"),
        "features": features,
        "objectives": evaluation.get("objectives") or version.lineage.get("objectives"),
        "shipyard_version": md.version("shipyard"),
        "created_at": datetime.now(UTC).isoformat(),
        "registered_at": datetime.fromtimestamp(version.created_at, UTC).isoformat(),
        "run_id": version.run_id,
        "sample": None,
        "artifact_id": version.artifact_id,
        "model": {
            "file": path.name,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "class": f"{model_type.__module__}.{model_type.__qualname__}",
            "trusted_types": TRUSTED,
            "needs": trusted,
        },
    }
