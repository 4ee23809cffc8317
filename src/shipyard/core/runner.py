"""Running a pipeline: record the run, schedule its steps, reuse cached results.

The driver here owns the metadata store: it decides which step runs next,
looks up the cache, hands tasks to the executor and records each outcome in
one transaction. Steps whose inputs failed are skipped; independent branches
go on. A heartbeat marks the run alive, so a killed process is detected as
crashed by the next command.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.core import environment
from shipyard.core._closure import closure_of
from shipyard.core.cache import cache_key, code_hash
from shipyard.core.executor import (
    ArtifactRef,
    LocalExecutor,
    StepOutcome,
    StepTask,
    step_seed,
)
from shipyard.core.heartbeat import Heartbeat, detect_crashed
from shipyard.core.pipeline import Dag, Invocation, Pipeline
from shipyard.core.project import Project
from shipyard.errors import (
    ArtifactCorruptedError,
    ArtifactNotFoundError,
    PipelineDefinitionError,
    StepFailedError,
)

if TYPE_CHECKING:
    from shipyard.core.run import Run
    from shipyard.storage.metadata import MetadataStore

logger = logging.getLogger(__name__)

FINISHED = ("completed", "cached")
RESUMABLE = ("failed", "crashed", "cancelled")


@dataclass(frozen=True)
class RunEvent:
    """Progress of a run, for live displays."""

    kind: str  # run_started | step_started | step_finished | run_finished
    run_id: str
    step: str | None = None
    status: str | None = None
    seconds: float | None = None
    steps: tuple[str, ...] = ()
    error: str | None = None


Listener = Callable[[RunEvent], None]


def run_pipeline(
    pipeline: Pipeline,
    *,
    params: dict[str, Any],
    cache: bool,
    resume: str | None,
    seed: int | None,
    project: Project | None,
    listener: Listener | None,
    raise_on_failure: bool,
) -> Run:
    """Run ``pipeline`` and return its ``Run`` (see ``Pipeline.run``)."""
    from shipyard.core.run import Run

    project = project or Project.discover()
    store = project.metadata
    detect_crashed(store)
    resumed_from = None
    if resume is not None:
        resumed_from, params, seed = _resume_settings(store, pipeline, resume, params, seed)
    params = pipeline.bind_params(params)
    if seed is None:
        seed = project.settings.seed if project.settings.seed is not None else _fresh_seed()
    dag = pipeline.build(params)
    _restore_ctrl_c()
    driver = _Driver(project, pipeline, dag, params, seed, cache, resumed_from, listener)
    status = driver.drive()
    run = Run.load(project, driver.run_id, returned=dag.returned, values=driver.values)
    if status != "completed" and raise_on_failure:
        failed = next((s for s in run.step_runs.values() if s.status == "failed"), None)
        message = f"Run {run.id} of pipeline {pipeline.name!r} {status}"
        if failed is not None:
            message += f": step {failed.name!r} raised {failed.error}"
        error = StepFailedError(
            message + f". See `shipyard runs show {run.id[:8]}`; fix the cause and "
            f"continue with `shipyard run {pipeline.name} --resume {run.id[:8]}`.",
            run_id=run.id,
            step=failed.name if failed else "",
        )
        error.run = run  # type: ignore[attr-defined]
        raise error
    return run


def _restore_ctrl_c() -> None:
    """Give Ctrl-C back to Python if a native library took it over.

    Polars installs its own SIGINT handler when imported, which holds Python's
    KeyboardInterrupt back until the running step ends. The run must be
    cancellable at once, so Python's handler is put back (main thread only).
    """
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _fresh_seed() -> int:
    return random.SystemRandom().randrange(2**31)


def _resume_settings(
    store: MetadataStore, pipeline: Pipeline, run_id: str, params: dict[str, Any], seed: int | None
) -> tuple[str, dict[str, Any], int]:
    old = store.get_run(run_id)
    if old["pipeline"] != pipeline.name:
        raise PipelineDefinitionError(
            f"Run {old['id'][:8]} is a run of pipeline {old['pipeline']!r}, not "
            f"{pipeline.name!r}. Resume it with `shipyard run {old['pipeline']} --resume ...`."
        )
    if old["status"] not in RESUMABLE:
        raise PipelineDefinitionError(
            f"Run {old['id'][:8]} is {old['status']}; only a failed, crashed or cancelled run "
            "can be resumed. To run it again use `shipyard runs reproduce`."
        )
    changed = {k: v for k, v in params.items() if old["params"].get(k) != v}
    if changed:
        raise PipelineDefinitionError(
            f"Resuming run {old['id'][:8]} keeps its parameters {old['params']}; got different "
            f"values for {sorted(changed)}. Drop --param to resume, or start a new run."
        )
    if seed is not None and seed != old["seed"]:
        raise PipelineDefinitionError(
            f"Resuming run {old['id'][:8]} keeps its seed {old['seed']}; got {seed}."
        )
    return old["id"], dict(old["params"]), int(old["seed"])


@dataclass
class _Tracked:
    invocation: Invocation
    step_run_id: str
    status: str = "pending"
    refs: dict[str, ArtifactRef] = field(default_factory=dict)


class _Driver:
    def __init__(
        self,
        project: Project,
        pipeline: Pipeline,
        dag: Dag,
        params: dict[str, Any],
        seed: int,
        cache: bool,
        resumed_from: str | None,
        listener: Listener | None,
    ) -> None:
        self.project = project
        self.store = project.metadata
        self.pipeline = pipeline
        self.order = dag.order()
        self.params = params
        self.seed = seed
        self.cache = cache
        self.resumed_from = resumed_from
        self.listener = listener or (lambda event: None)
        self.run_id = uuid.uuid4().hex
        self.values: dict[str, Any] = {}
        self.tracked = {inv.name: _Tracked(inv, uuid.uuid4().hex) for inv in self.order}

    # -- the run's life ------------------------------------------------------------

    def drive(self) -> str:
        self._record_start()
        env_thread = threading.Thread(target=self._record_environment, daemon=True)
        env_thread.start()
        heartbeat = Heartbeat(self.store, self.run_id)
        executor = LocalExecutor(self.project.artifacts, self.project.settings.max_workers)
        status = "failed"
        try:
            status = self._schedule(executor)
        except KeyboardInterrupt:
            status = "cancelled"
            raise
        except BaseException as exc:
            self.store.update_run(self.run_id, error=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            executor.shutdown()
            heartbeat.stop()
            env_thread.join()
            self._record_end(status)
        return status

    def _record_start(self) -> None:
        now = time.time()
        self.store.create_run(
            {
                "id": self.run_id,
                "pipeline": self.pipeline.name,
                "project": self.project.settings.project.name,
                "status": "running",
                "params": self.params,
                "seed": self.seed,
                "started_at": now,
                "heartbeat_at": now,
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "resumed_from": self.resumed_from,
            }
        )
        self.store.create_step_runs(
            [
                {
                    "id": t.step_run_id,
                    "run_id": self.run_id,
                    "name": name,
                    "step": t.invocation.step.import_path,
                    "status": "pending",
                    "params": t.invocation.params,
                    "upstream": t.invocation.upstream,
                    "attempts": 0,
                }
                for name, t in self.tracked.items()
            ]
        )
        self.listener(RunEvent("run_started", self.run_id, steps=tuple(self.tracked)))

    def _record_environment(self) -> None:
        packages: dict[str, str] = {}
        for tracked in self.tracked.values():
            packages.update(closure_of(tracked.invocation.step.fn).packages)
        root = self.project.root
        self.environment = {**environment.git_state(root)}
        self.environment["environment"] = environment.environment(root, packages)

    def _record_end(self, status: str) -> None:
        now = time.time()
        for tracked in self.tracked.values():
            if tracked.status in ("pending", "running"):
                final = "cancelled" if status == "cancelled" else "skipped"
                self.store.update_step_run(tracked.step_run_id, status=final, ended_at=now)
        extra = getattr(self, "environment", {})
        self.store.update_run(self.run_id, status=status, ended_at=now, **extra)
        self.listener(RunEvent("run_finished", self.run_id, status=status))

    # -- scheduling ------------------------------------------------------------------

    def _schedule(self, executor: LocalExecutor) -> str:
        running: dict[Future[StepOutcome], _Tracked] = {}
        while True:
            for tracked in self._ready():
                if self._upstream_broken(tracked):
                    self._skip(tracked)
                elif not self._reuse(tracked):
                    running[self._submit(executor, tracked)] = tracked
            if not running:
                if not self._ready():
                    break
                continue
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                self._finish(running.pop(future), future.result())
        ok = all(t.status in FINISHED for t in self.tracked.values())
        return "completed" if ok else "failed"

    def _ready(self) -> list[_Tracked]:
        return [
            t
            for t in self.tracked.values()
            if t.status == "pending"
            and all(
                self.tracked[u].status not in ("pending", "running") for u in t.invocation.upstream
            )
        ]

    def _upstream_broken(self, tracked: _Tracked) -> bool:
        return any(self.tracked[u].status not in FINISHED for u in tracked.invocation.upstream)

    def _skip(self, tracked: _Tracked) -> None:
        tracked.status = "skipped"
        self.store.update_step_run(tracked.step_run_id, status="skipped", ended_at=time.time())
        self.listener(RunEvent("step_finished", self.run_id, tracked.invocation.name, "skipped"))

    def _inputs(self, tracked: _Tracked) -> dict[str, ArtifactRef]:
        return {
            param: self.tracked[out.invocation.name].refs[out.spec.name]
            for param, out in tracked.invocation.inputs.items()
        }

    def _submit(self, executor: LocalExecutor, tracked: _Tracked) -> Future[StepOutcome]:
        inv = tracked.invocation
        tracked.status = "running"
        self.store.update_step_run(
            tracked.step_run_id,
            status="running",
            started_at=time.time(),
            cache_key=cache_key(inv.step, inv.params, self._inputs(tracked)),
            code_hash=code_hash(inv.step),
        )
        self.listener(RunEvent("step_started", self.run_id, inv.name))
        task = StepTask(
            run_id=self.run_id,
            step_run_id=tracked.step_run_id,
            name=inv.name,
            step_path=inv.step.import_path,
            params=inv.params,
            inputs=self._inputs(tracked),
            seed=step_seed(self.seed, inv.name),
            project_root=str(self.project.root),
        )
        values = {
            param: self.values[out.ref]
            for param, out in inv.inputs.items()
            if out.ref in self.values
        }
        return executor.submit(task, inv.step, values)

    # -- outcomes ----------------------------------------------------------------------

    def _finish(self, tracked: _Tracked, outcome: StepOutcome) -> None:
        inv = tracked.invocation
        tracked.status = outcome.status
        for record in outcome.artifacts:
            tracked.refs[record["output_name"]] = _ref(record)
        for name, value in outcome.values.items():
            self.values[f"{inv.name}.{name}"] = value
        self.store.finish_step_run(
            tracked.step_run_id,
            {
                "status": outcome.status,
                "started_at": outcome.started_at,
                "ended_at": outcome.ended_at,
                "attempts": outcome.attempts,
                "error": outcome.error,
                "traceback": outcome.traceback,
            },
            artifacts=outcome.artifacts,
            lineage=self._edges(tracked),
            metrics=outcome.metrics,
            params=self._param_rows(inv, outcome.params),
        )
        seconds = outcome.ended_at - outcome.started_at
        self.listener(
            RunEvent(
                "step_finished", self.run_id, inv.name, outcome.status, seconds, error=outcome.error
            )
        )

    def _reuse(self, tracked: _Tracked) -> bool:
        """Reuse a finished identical step run (the cache, or the resumed run); True if so."""
        inv = tracked.invocation
        use_cache = self.cache and inv.step.cache
        if not use_cache and self.resumed_from is None:
            return False
        started = time.time()
        key = cache_key(inv.step, inv.params, self._inputs(tracked))
        source = None
        if self.resumed_from is not None:
            source = self.store.find_cached(key, run_id=self.resumed_from)
        if source is None and use_cache:
            source = self.store.find_cached(key)
        outputs = self._stored_outputs(source) if source else None
        if source is None or outputs is None:
            return False
        tracked.status = "cached"
        tracked.refs = {name: _ref(row) for name, row in outputs.items()}
        self.store.finish_step_run(
            tracked.step_run_id,
            {
                "status": "cached",
                "cache_key": key,
                "code_hash": code_hash(inv.step),
                "cached_from": source["cached_from"] or source["id"],
                "started_at": started,
                "ended_at": time.time(),
            },
            lineage=self._edges(tracked),
            params=self._param_rows(inv, {}),
        )
        self.listener(
            RunEvent("step_finished", self.run_id, inv.name, "cached", time.time() - started)
        )
        return True

    def _stored_outputs(self, source: dict[str, Any]) -> dict[str, dict[str, Any]] | None:
        """The output artifacts of a finished step run, if all are still stored."""
        edges = [e for e in self.store.edges([source["id"]]) if e["role"] == "output"]
        rows = self.store.artifacts_by_ids([e["artifact_id"] for e in edges])
        outputs = {e["name"]: rows[e["artifact_id"]] for e in edges if e["artifact_id"] in rows}
        if len(outputs) != len(edges):
            return None
        for row in outputs.values():
            try:  # reuse only bytes that are still what was stored
                self.project.artifacts.verify(row["digest"])
            except (ArtifactNotFoundError, ArtifactCorruptedError) as exc:
                logger.warning(
                    "not reusing %s of step run %s: %s", row["output_name"], source["id"][:8], exc
                )
                return None
        return outputs

    def _edges(self, tracked: _Tracked) -> list[dict[str, Any]]:
        edges = [
            {
                "step_run_id": tracked.step_run_id,
                "role": "input",
                "name": param,
                "artifact_id": ref.id,
            }
            for param, ref in self._inputs(tracked).items()
        ]
        edges += [
            {
                "step_run_id": tracked.step_run_id,
                "role": "output",
                "name": name,
                "artifact_id": ref.id,
            }
            for name, ref in tracked.refs.items()
        ]
        return edges

    def _param_rows(self, inv: Invocation, logged: dict[str, Any]) -> list[dict[str, Any]]:
        values = {**inv.params, **logged}
        return [
            {"run_id": self.run_id, "step_name": inv.name, "key": k, "value": v}
            for k, v in values.items()
        ]


def _ref(record: dict[str, Any]) -> ArtifactRef:
    return ArtifactRef(record["id"], record["digest"], record["materializer"], record["type_name"])
