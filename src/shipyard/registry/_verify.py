"""The checks of ``verify_export``: what an export folder promises, measured again."""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from shipyard.errors import MaterializerError
from shipyard.registry import _onnx

SCORE_TOLERANCE = 1e-12  # the same model on the same rows: only float noise may differ


@dataclass(frozen=True)
class VerifyCheck:
    """One thing checked about an export.

    Attributes:
        name: what was checked: "model file", "model loads", "sample scores",
            "requirements", "onnx".
        passed: whether it holds.
        detail: what was measured, and what to do when it does not hold.
        warning: a check that does not fail the export when it does not hold.
    """

    name: str
    passed: bool
    detail: str
    warning: bool = False


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of ``verify_export``.

    Attributes:
        ok: every check passed, warnings aside.
        checks: every check, in the order run.
        max_abs_difference_onnx: the largest gap between the ONNX and the skops scores on
            the sample, measured now (None without ONNX file, sample or runtime).
    """

    ok: bool
    checks: tuple[VerifyCheck, ...]
    max_abs_difference_onnx: float | None = None

    def summary(self) -> str:
        """One line per check, failed ones marked."""
        marks = {(True, False): "ok", (True, True): "ok", (False, True): "warn"}
        lines = [
            f"{marks.get((c.passed, c.warning), 'FAIL'):>4}  {c.name}: {c.detail}"
            for c in self.checks
        ]
        return "\n".join([f"export {'verified' if self.ok else 'FAILED'}", *lines])


def verify(folder: Path, load: Callable[[Path], Any], *, onnx_tolerance: float) -> VerifyResult:
    """Run every check on ``folder``; ``load`` reads its model with the trust checks."""
    meta = _meta(folder)
    checks = [_digest(folder, meta)]
    model = load(folder)
    needs = len((meta.get("model") or {}).get("needs") or [])
    detail = f"a {type(model).__name__}; {needs} type(s) beyond skops' defaults, all trusted"
    checks.append(VerifyCheck("model loads", True, detail))
    sample = _sample(folder, meta)
    scored = None
    if sample is not None:
        rows, recorded = sample
        scored = rows, np.asarray(model.predict_proba(rows)[:, 1], dtype=np.float64)
        checks.append(_scores(scored[1], recorded))
    checks.append(_requirements(folder / "requirements.txt"))
    difference = None
    if (meta.get("onnx") or {}).get("available"):
        check, difference = _onnx_check(folder, scored, onnx_tolerance)
        checks.append(check)
    ok = all(check.passed or check.warning for check in checks)
    return VerifyResult(ok=ok, checks=tuple(checks), max_abs_difference_onnx=difference)


def _meta(folder: Path) -> dict[str, Any]:
    try:
        meta = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MaterializerError(
            f"{folder} is not a model export: its model.json cannot be read ({exc}). Write "
            "one with shipyard.registry.export.export_model()."
        ) from exc
    if not isinstance(meta, dict) or meta.get("format") != "shipyard-model-export":
        raise MaterializerError(f"{folder / 'model.json'} is not a shipyard model export.")
    return meta


def _digest(folder: Path, meta: Mapping[str, Any]) -> VerifyCheck:
    path = folder / "model.skops"
    expected = (meta.get("model") or {}).get("sha256")
    try:
        found = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise MaterializerError(f"{path} cannot be read: {exc}.") from exc
    if found == expected:
        return VerifyCheck("model file", True, f"sha256 {found[:12]}… as recorded")
    detail = (
        f"sha256 {found[:12]}…, but model.json records {str(expected)[:12]}…: the file "
        "changed after export"
    )
    return VerifyCheck("model file", False, detail)


def _sample(folder: Path, meta: Mapping[str, Any]) -> tuple[pl.DataFrame, np.ndarray] | None:
    if not meta.get("sample"):
        return None
    try:
        rows = pl.read_parquet(folder / "sample.parquet")
        scores = np.load(folder / "sample_scores.npy", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise MaterializerError(
            f"{folder} records a sample, but it cannot be read ({exc}). Export the model again."
        ) from exc
    features = meta.get("features") or rows.columns
    return rows.select(features), np.asarray(scores, dtype=np.float64)


def _scores(found: np.ndarray, expected: np.ndarray) -> VerifyCheck:
    if found.shape != expected.shape:
        detail = f"{found.shape[0]} scores for {expected.shape[0]} recorded ones"
        return VerifyCheck("sample scores", False, detail)
    gaps = np.abs(found - expected)
    worst = float(np.max(gaps, initial=0.0))
    off = int(np.count_nonzero(~(gaps <= SCORE_TOLERANCE)))
    if off == 0:
        detail = f"{len(found)} rows, max abs difference {worst:.3g} (tolerance 1e-12)"
        return VerifyCheck("sample scores", True, detail)
    detail = (
        f"{off} of {len(found)} scores differ from sample_scores.npy, by up to {worst:.6g}: "
        "the model or the recorded scores changed after export"
    )
    return VerifyCheck("sample scores", False, detail)


def _requirements(path: Path) -> VerifyCheck:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return VerifyCheck("requirements", False, f"{path.name} is missing", warning=True)
    pins = [line.split("==", 1) for line in lines if "==" in line and not line.startswith("#")]
    problems = []
    for name, pinned in pins:
        try:
            installed = md.version(name.strip())
        except md.PackageNotFoundError:
            installed = None
        if installed != pinned.strip():
            problems.append(f"{name.strip()} pinned {pinned.strip()}, installed {installed}")
    if problems:
        return VerifyCheck("requirements", False, "; ".join(problems), warning=True)
    return VerifyCheck("requirements", True, f"all {len(pins)} pins match the installed versions")


def _onnx_check(
    folder: Path, scored: tuple[pl.DataFrame, np.ndarray] | None, tolerance: float
) -> tuple[VerifyCheck, float | None]:
    """ONNX against the skops model's scores now (not the recorded ones: each check
    answers one question)."""
    path = folder / "model.onnx"
    if not path.is_file():
        return VerifyCheck("onnx", False, "model.json records model.onnx, which is missing"), None
    if scored is None:
        return VerifyCheck("onnx", False, "no sample to compare scores on", warning=True), None
    rows, expected = scored
    try:
        found = _onnx.run(path, rows.to_numpy().astype(np.float64))
    except ImportError:
        detail = "onnxruntime is not installed: pip install 'shipyard[onnx]'"
        return VerifyCheck("onnx", False, detail, warning=True), None
    except Exception as exc:  # ONNX Runtime raises its own errors for a damaged file
        return VerifyCheck("onnx", False, f"ONNX Runtime cannot run model.onnx: {exc}"), None
    difference = _onnx.max_abs_difference(found, expected)
    passed = difference <= tolerance
    detail = (
        f"max abs difference {difference:.3g} on {len(expected)} rows (tolerance {tolerance:g})"
    )
    return VerifyCheck("onnx", passed, detail), difference
