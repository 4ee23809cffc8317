"""Runs, step runs and artifacts as users see them, read from the metadata store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.core.executor import ArtifactRef, load_artifact

if TYPE_CHECKING:
    from shipyard.core.project import Project

_MISSING = object()


@dataclass
class Artifact:
    """A stored step output: its content address, type, materializer and preview."""

    id: str
    digest: str
    uri: str
    type_name: str
    materializer: str
    materializer_version: str
    size: int
    preview: dict[str, Any]
    created_at: float
    step_run_id: str | None
    run_id: str | None
    output_name: str
    _project: Project | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_row(cls, row: dict[str, Any], project: Project | None = None) -> Artifact:
        """Build from a metadata store row."""
        return cls(**row, _project=project)

    def load(self) -> Any:
        """Read the value back (its bytes are checked against the digest first)."""
        if self._project is None:
            raise ValueError("This artifact is not attached to a project; load it from a Run.")
        ref = ArtifactRef(self.id, self.digest, self.materializer, self.type_name)
        return load_artifact(self._project.artifacts, ref)


@dataclass
class StepRun:
    """One execution (or cache reuse) of a step within a run."""

    id: str
    name: str
    step: str
    status: str
    cache_key: str | None
    code_hash: str | None
    params: dict[str, Any]
    upstream: list[str]
    started_at: float | None
    ended_at: float | None
    attempts: int
    error: str | None
    traceback: str | None
    cached_from: str | None
    inputs: dict[str, Artifact] = field(default_factory=dict)
    outputs: dict[str, Artifact] = field(default_factory=dict)

    @property
    def seconds(self) -> float | None:
        """How long it took (None until it ended)."""
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at


@dataclass
class Run:
    """One execution of a pipeline: parameters, environment, step runs, metrics, outputs."""

    id: str
    pipeline: str
    project: str
    status: str
    params: dict[str, Any]
    seed: int
    started_at: float
    ended_at: float | None
    git_commit: str | None
    git_dirty: bool | None
    git_diff_hash: str | None
    environment: dict[str, Any]
    error: str | None
    resumed_from: str | None
    host: str | None
    pid: int | None
    step_runs: dict[str, StepRun]
    metric_history: list[dict[str, Any]]
    logged_params: dict[str, dict[str, Any]]
    tags: dict[str, str]
    _returned: Any = field(default=None, repr=False)
    _values: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def load(
        cls,
        project: Project,
        run_id: str,
        *,
        returned: Any = None,
        values: dict[str, Any] | None = None,
    ) -> Run:
        """Read a run and everything it recorded from the project's metadata store."""
        store = project.metadata
        row = store.get_run(run_id)
        step_rows = store.step_runs(row["id"])
        edges = store.edges([r["id"] for r in step_rows])
        artifacts = store.artifacts_by_ids(list({e["artifact_id"] for e in edges}))
        steps = {r["name"]: _step_run(r, edges, artifacts, project) for r in step_rows}
        metrics = _metrics_with_cached(store, row["id"], steps)
        logged: dict[str, dict[str, Any]] = {}
        for param in store.params(row["id"]):
            logged.setdefault(param["step_name"], {})[param["key"]] = param["value"]
        keep = {k: row[k] for k in _RUN_FIELDS}
        return cls(
            **keep,
            environment=row["environment"] or {},
            step_runs=steps,
            metric_history=metrics,
            logged_params=logged,
            tags=store.tags(row["id"]),
            _returned=returned,
            _values=values or {},
        )

    @property
    def seconds(self) -> float | None:
        """Wall time of the run (None while running)."""
        return None if self.ended_at is None else self.ended_at - self.started_at

    @property
    def metrics(self) -> dict[str, float]:
        """The last value logged for each metric, over all steps (and cached steps)."""
        return {m["key"]: m["value"] for m in self.metric_history}

    @property
    def artifacts(self) -> dict[str, Artifact]:
        """Every output of the run, by ``step.output``."""
        return {
            f"{s.name}.{name}": artifact
            for s in self.step_runs.values()
            for name, artifact in s.outputs.items()
        }

    def value(self, ref: str) -> Any:
        """The value of the output ``step.output`` (or ``step`` for single-output steps)."""
        artifacts = self.artifacts
        if ref not in artifacts:
            matches = [k for k in artifacts if k.split(".", 1)[0] == ref]
            if len(matches) != 1:
                raise KeyError(
                    f"No output {ref!r} in run {self.id[:8]}. Outputs: {', '.join(artifacts)}."
                )
            ref = matches[0]
        found = self._values.get(ref, _MISSING)
        return artifacts[ref].load() if found is _MISSING else found

    @property
    def output(self) -> Any:
        """What the pipeline function returned, with step outputs replaced by their values."""
        return _resolve(self._returned, self)


_RUN_FIELDS = (
    "id",
    "pipeline",
    "project",
    "status",
    "params",
    "seed",
    "started_at",
    "ended_at",
    "git_commit",
    "git_dirty",
    "git_diff_hash",
    "error",
    "resumed_from",
    "host",
    "pid",
)


def _metrics_with_cached(
    store: Any, run_id: str, steps: dict[str, StepRun]
) -> list[dict[str, Any]]:
    """The run's metrics, plus those that the step runs it reused from cache had logged."""
    sources = [store.get_step_run(s.cached_from) for s in steps.values() if s.cached_from]
    wanted = {(run_id, None)} | {(src["run_id"], src["name"]) for src in sources}
    rows = store.metrics(sorted({run for run, _ in wanted}))
    return [m for m in rows if m["run_id"] == run_id or (m["run_id"], m["step_name"]) in wanted]


def _step_run(
    row: dict[str, Any],
    edges: list[dict[str, Any]],
    artifacts: dict[str, dict[str, Any]],
    project: Project,
) -> StepRun:
    mine = [e for e in edges if e["step_run_id"] == row["id"]]
    by_role: dict[str, dict[str, Artifact]] = {"input": {}, "output": {}}
    for edge in mine:
        found = artifacts.get(edge["artifact_id"])
        if found is not None:
            by_role[edge["role"]][edge["name"]] = Artifact.from_row(found, project)
    fields = {k: row[k] for k in StepRun.__dataclass_fields__ if k in row}
    return StepRun(**fields, inputs=by_role["input"], outputs=by_role["output"])


def _resolve(returned: Any, run: Run) -> Any:
    from shipyard.core.pipeline import StepOutput

    if isinstance(returned, StepOutput):
        return run.value(returned.ref)
    if isinstance(returned, tuple):
        return tuple(_resolve(v, run) for v in returned)
    if isinstance(returned, list):
        return [_resolve(v, run) for v in returned]
    if isinstance(returned, dict):
        return {k: _resolve(v, run) for k, v in returned.items()}
    return returned
