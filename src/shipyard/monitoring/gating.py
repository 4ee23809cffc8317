"""Gate a registered version: score it and the model behind ``NAME@ALIAS`` on the same rows,
now, check the objectives, and record the decision on the candidate.

Shared by ``shipyard evaluate``, the demo and the retraining that monitoring triggers (a
retrained candidate goes through this gate, never straight to production). It needs both
the evaluation and the registry layers, which stay independent of each other, so it lives
above them, in the monitoring layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Gated:
    """What gating one candidate found."""

    candidate: Any  # ModelVersion
    baseline: Any | None  # the ModelVersion behind NAME@ALIAS, if it is set
    target: str  # NAME@ALIAS
    evaluation: Any  # the candidate's Evaluation
    baseline_evaluation: Any | None
    gate: Any  # GateRecord
    gate_id: str | None  # the recorded gate, unless record=False


def gate_version(
    project: Any,
    candidate: Any,
    rows: Any,
    *,
    label: str,
    features: list[str],
    against: str = "production",
    validation: Any = None,
    record: bool = True,
    context: Mapping[str, Any] | None = None,
) -> Gated:
    """Evaluate ``candidate`` and ``NAME@against`` on ``rows``, gate, and record the gate
    (with both evaluations, the features, the label and ``context``) unless ``record`` is off."""
    from shipyard.evaluation.evaluate import evaluate
    from shipyard.evaluation.gate import run_gate
    from shipyard.evaluation.objectives import Objectives
    from shipyard.registry.registry import Registry

    registry = Registry(project)
    objectives = Objectives.from_project(project)
    baseline = _baseline(registry, candidate.name, against)
    target = f"{candidate.name}@{against}"

    def judged(version: Any, inputs: list[str]) -> Any:
        model = registry.load(version.ref)
        return evaluate(
            model,
            rows,
            objectives,
            features=inputs,
            label=label,
            validation=validation,
            name=version.ref,
        )

    mine = judged(candidate, features)
    theirs = None if baseline is None else judged(baseline, baseline_features(baseline, features))
    gate = run_gate(
        objectives,
        mine.metrics,
        None if theirs is None else theirs.metrics,
        baseline_name=None if baseline is None else f"{target} ({baseline.ref})",
    )
    gate_id = None
    if record:
        kept = {
            **gate.to_dict(),
            "against": target,
            "baseline_version": None if baseline is None else baseline.version,
            **dict(context or {}),
            "features": features,
            "label": label,
            "evaluation": compact(mine),
            "baseline_evaluation": None if theirs is None else compact(theirs),
        }
        gate_id = registry.record_gate(candidate.name, candidate.version, kept, passed=gate.passed)
    return Gated(candidate, baseline, target, mine, theirs, gate, gate_id)


def baseline_features(baseline: Any, columns: list[str]) -> list[str]:
    """The baseline's own inputs when its lineage names them (it may use other features)."""
    recorded = baseline.lineage.get("features")
    return [str(c) for c in recorded] if isinstance(recorded, list) and recorded else columns


def compact(evaluation: Any) -> dict[str, Any]:
    """An evaluation without its curves: what a gate record keeps."""
    kept = evaluation.to_dict()
    kept.pop("curves", None)
    return dict(kept)


def _baseline(registry: Any, name: str, alias: str) -> Any:
    from shipyard.errors import ModelNotFoundError

    try:
        return registry.get(f"{name}@{alias}")
    except ModelNotFoundError:
        return None
