"""Where an artifact came from and where it went."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipyard.core.project import Project

Node = dict[str, Any]


def lineage(project: Project, artifact_id: str, *, depth: int = 20) -> Node:
    """The artifact with the step runs that made it (recursively) and that used it."""
    store = project.metadata
    artifact = store.get_artifact(artifact_id)
    return {
        "artifact": _artifact_node(artifact),
        "made_by": _producer(store, artifact, depth),
        "used_by": _consumers(store, artifact["id"]),
    }


def _artifact_node(row: dict[str, Any]) -> Node:
    keep = ("id", "digest", "type_name", "materializer", "size", "output_name", "run_id")
    return {k: row[k] for k in keep}


def _step_node(row: dict[str, Any]) -> Node:
    return {k: row[k] for k in ("id", "run_id", "name", "step", "status", "code_hash")}


def _producer(store: Any, artifact: dict[str, Any], depth: int) -> Node | None:
    if not artifact["step_run_id"] or depth <= 0:
        return None
    step_run = store.get_step_run(artifact["step_run_id"])
    edges = [e for e in store.edges([step_run["id"]]) if e["role"] == "input"]
    inputs = store.artifacts_by_ids([e["artifact_id"] for e in edges])
    node = _step_node(step_run)
    node["inputs"] = {
        e["name"]: {
            "artifact": _artifact_node(inputs[e["artifact_id"]]),
            "made_by": _producer(store, inputs[e["artifact_id"]], depth - 1),
        }
        for e in edges
        if e["artifact_id"] in inputs
    }
    return node


def _consumers(store: Any, artifact_id: str) -> list[Node]:
    edges = [e for e in store.edges_of_artifact(artifact_id) if e["role"] == "input"]
    return [{**_step_node(store.get_step_run(e["step_run_id"])), "as": e["name"]} for e in edges]
