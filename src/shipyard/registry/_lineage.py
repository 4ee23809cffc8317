"""What a model was made from, read off the run that trained it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

FEATURE_VIEW_PARAM = "feature_view."  # what FeatureStore.training_frame logs in a step


def run_lineage(run: Any) -> dict[str, Any]:
    """The lineage of a run: the contracts its ingestions checked, the feature view
    versions its training sets used, its params, seed, code version and environment.

    Contracts come from step outputs named ``report`` that carry ``contract_id`` and
    ``contract_version`` (as ``shipyard.contracts.ingest`` saves them); feature views
    from the ``feature_view.<name>`` params steps logged.
    """
    return {
        "run": run.id,
        "pipeline": run.pipeline,
        "params": dict(run.params),
        "seed": run.seed,
        "git_commit": run.git_commit,
        "git_dirty": run.git_dirty,
        "contracts": _contracts(run),
        "feature_views": _feature_views(run),
        "python": run.environment.get("python"),
    }


def _feature_views(run: Any) -> dict[str, Any]:
    views: dict[str, Any] = {}
    for params in run.logged_params.values():
        for key, value in params.items():
            if key.startswith(FEATURE_VIEW_PARAM):
                views[key.removeprefix(FEATURE_VIEW_PARAM)] = value
    return views


def _contracts(run: Any) -> dict[str, str]:
    found: dict[str, str] = {}
    for step_run in run.step_runs.values():
        report = step_run.outputs.get("report")
        if report is None or report.materializer != "json":
            continue
        value = report.load()
        if isinstance(value, dict) and "contract_id" in value and "contract_version" in value:
            found[str(value["contract_id"])] = str(value["contract_version"])
    return found


def input_schema(step_run: Any, features: Sequence[str]) -> dict[str, str] | None:
    """The dtypes of ``features`` in the first input table of ``step_run`` that holds them
    all (from the artifact's preview, which every table materializer records)."""
    for artifact in step_run.inputs.values():
        columns = (artifact.preview or {}).get("columns")
        if isinstance(columns, dict) and all(f in columns for f in features):
            return {f: str(columns[f]) for f in features}
    return None
