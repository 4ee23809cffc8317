"""Retraining that monitoring triggers: run the training pipeline, then the gate.

A retrained candidate is registered, profiled, and gated against the model it would
replace, on the rows ``[monitoring.retrain] test`` names, exactly as ``shipyard evaluate``
gates one. It is promoted only when that gate passes (and ``promote`` is on); a candidate
never goes straight to production.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from shipyard.errors import MonitoringError
from shipyard.monitoring.settings import Retrain


def retrain(
    project: Any,
    ref: str,
    config: Retrain,
    *,
    since: dt.datetime,
    until: dt.datetime,
    label: str,
    triggered_by: Sequence[str],
    listener: Any = None,
) -> dict[str, Any]:
    """Train a candidate for the model behind ``ref``, gate it against ``ref``, and promote
    it when the gate passes. Returns what happened (the ``retrain`` part of a monitor
    result)."""
    from shipyard.monitoring.gating import gate_version
    from shipyard.monitoring.reference import profile_version
    from shipyard.registry.registry import Registry

    registry = Registry(project)
    current = registry.get(ref)
    params = config.params_for(since, until)
    run = project.pipeline(config.pipeline).run(
        params=params, project=project, listener=listener, raise_on_failure=False
    )
    done: dict[str, Any] = {
        "triggered_by": list(triggered_by),
        "pipeline": config.pipeline,
        "params": params,
        "run_id": run.id,
        "status": run.status,
        "candidate": None,
        "gate": None,
        "promoted": False,
    }
    if run.status != "completed":
        return done
    features = [str(f) for f in current.lineage.get("features", [])]
    candidate = registry.register_run(
        current.name,
        run,
        step=config.step,
        output=config.output,
        features=features or None,
        lineage={"retrained_by": list(triggered_by), "replaces": current.ref},
        description=f"Retrained by shipyard monitor ({', '.join(triggered_by)}).",
    )
    profile_version(project, candidate.ref)
    done["candidate"] = candidate.ref
    alias = ref.partition("@")[2] or "production"
    gated = gate_version(
        project,
        candidate,
        _test_rows(run, config),
        label=config.label or label,
        features=features,
        against=alias,
        context={"data": f"run {run.id[:8]}: {config.test}", "retrained_by": list(triggered_by)},
    )
    done["gate"] = {
        "passed": gated.gate.passed,
        "summary": gated.gate.summary(),
        "candidate": _headline(gated.evaluation),
        "production": _headline(gated.baseline_evaluation),
    }
    if gated.gate.passed and config.promote:
        registry.promote(
            current.name,
            candidate.version,
            alias=alias,
            reason=f"shipyard monitor --retrain: {', '.join(triggered_by)}; passed the gate",
            gate_id=gated.gate_id,
        )
        done["promoted"] = True
    return done


def _headline(evaluation: Any) -> dict[str, Any] | None:
    """The figures a person compares first: value, recall, precision, ROC AUC."""
    if evaluation is None:
        return None
    overall = evaluation.metrics.get("overall", {})
    keys = ("value_per_1000", "recall", "precision", "roc_auc")
    return {k: overall[k] for k in keys if k in overall}


def _test_rows(run: Any, config: Retrain) -> Any:
    step, _, output = config.test.partition(".")
    if not config.test or step not in run.step_runs or output not in run.step_runs[step].outputs:
        outputs = {s: sorted(r.outputs) for s, r in run.step_runs.items()}
        raise MonitoringError(
            f"[monitoring.retrain] test is {config.test!r}, but the run {run.id[:8]} has no "
            f"such output; its steps and outputs are {outputs}. Name the rows the gate "
            'scores the candidate on, e.g. test = "split_by_time.test".'
        )
    return run.step_runs[step].outputs[output].load()
