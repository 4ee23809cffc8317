"""Executors run step tasks; the driver (``runner``) decides what to run and records it.

A ``StepTask`` names everything a worker needs (the step's import path, its
parameters, its inputs as artifact references, the run and seed), so an
executor can hand it to another process or machine: the worker loads the
inputs from the artifact store, runs the step, stores the outputs and sends
back their records. The local executor runs tasks on a thread pool in this
process and also passes values in memory, so nothing is read back that was
just written.
"""

from __future__ import annotations

import hashlib
import random
import sys
import time
import traceback
import uuid
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol, cast

from shipyard.core import materializers
from shipyard.core.context import StepContext, _enter, _leave
from shipyard.core.step import Step
from shipyard.errors import MaterializerError, PipelineDefinitionError
from shipyard.storage.artifacts import ArtifactStore, HashingWriter, StoredObject


@dataclass(frozen=True)
class ArtifactRef:
    """Enough about a stored artifact to load it anywhere."""

    id: str
    digest: str
    materializer: str
    type_name: str


@dataclass
class StepTask:
    """One step run to execute: plain data, so it can travel to another process."""

    run_id: str
    step_run_id: str
    name: str
    step_path: str
    params: dict[str, Any]
    inputs: dict[str, ArtifactRef]
    seed: int
    project_root: str


@dataclass
class StepOutcome:
    """What executing a task produced."""

    status: str
    started_at: float
    ended_at: float
    attempts: int = 1
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    traceback: str | None = None


class Executor(Protocol):
    """Runs step tasks, possibly elsewhere, and hands back futures of their outcomes."""

    def submit(self, task: StepTask, step: Step, values: Mapping[str, Any]) -> Future[StepOutcome]:
        """Start ``task``; ``values`` holds input values already in memory, by parameter."""

    def shutdown(self) -> None:
        """Stop accepting tasks and release workers."""


class LocalExecutor:
    """Runs steps on a pool of threads in this process; independent steps run at once."""

    def __init__(self, store: ArtifactStore, max_workers: int = 4) -> None:
        self._store = store
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="shipyard")

    def submit(self, task: StepTask, step: Step, values: Mapping[str, Any]) -> Future[StepOutcome]:
        return self._pool.submit(execute_step, task, step, self._store, dict(values))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def execute_step(
    task: StepTask, step: Step, store: ArtifactStore, values: dict[str, Any]
) -> StepOutcome:
    """Load missing inputs, run the step (with retries), and store its outputs."""
    started = time.time()
    context = StepContext(
        run_id=task.run_id,
        step_name=task.name,
        step_run_id=task.step_run_id,
        seed=task.seed,
        project_root=Path(task.project_root),
    )
    context._reserved = {spec.name for spec in step.outputs}
    context._saver = lambda name, value, chosen: _artifact_record(
        task, store, name, value, materializers.choose(value, Any, chosen)
    )
    token = _enter(context)
    attempts = 0
    try:
        kwargs = {**task.params, **_load_inputs(task, store, values)}
        while True:
            attempts += 1
            _seed_generators(task.seed)
            try:
                result = step.fn(**kwargs)
                break
            except Exception:
                if attempts > step.retries:
                    raise
                context.logger.warning(
                    "step %s failed, retry %d of %d",
                    task.name,
                    attempts,
                    step.retries,
                    exc_info=True,
                )
        outputs = split_outputs(step, result)
        records = [_store_output(task, step, store, name, value) for name, value in outputs.items()]
    except Exception as exc:
        return StepOutcome(
            status="failed",
            started_at=started,
            ended_at=time.time(),
            attempts=attempts,
            artifacts=context.saved,
            metrics=context.metrics,
            params=context.params,
            error=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(),
        )
    finally:
        _leave(token)
    return StepOutcome(
        status="completed",
        started_at=started,
        ended_at=time.time(),
        attempts=attempts,
        artifacts=context.saved + records,
        values=outputs,
        metrics=context.metrics,
        params=context.params,
    )


def resolve_step(path: str) -> Step:
    """The step at ``module:qualname``: how a worker in another process finds a task's step.

    Raises:
        PipelineDefinitionError: if the path does not name an importable step.
    """
    import importlib

    module_name, _, qualname = path.partition(":")
    if module_name == "__main__":
        raise PipelineDefinitionError(
            f"Step {qualname!r} is defined in the script being run (__main__), which another "
            "process cannot import. Move it into a module of the project."
        )
    try:
        found: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise PipelineDefinitionError(
            f"Cannot find the step {path!r}: {exc}. Run the worker from the project folder, "
            "with the same code as the driver."
        ) from None
    if isinstance(found, Step):
        return found
    if callable(found):
        return Step(found)
    raise PipelineDefinitionError(f"{path!r} is a {type(found).__name__}, not a step.")


def step_seed(run_seed: int, name: str) -> int:
    """A step's own seed: fixed by the run seed and the step name, whatever the order."""
    digest = hashlib.sha256(f"{run_seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def _seed_generators(seed: int) -> None:
    random.seed(seed)
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed(seed)


def _load_inputs(task: StepTask, store: ArtifactStore, values: dict[str, Any]) -> dict[str, Any]:
    loaded = dict(values)
    for param, ref in task.inputs.items():
        if param not in loaded:
            loaded[param] = load_artifact(store, ref)
    return loaded


def load_artifact(store: ArtifactStore, ref: ArtifactRef) -> Any:
    """Read an artifact's value; its bytes are checked against their digest meanwhile.

    Hashing runs in a thread while the materializer parses the file (both release
    the GIL), so a checked read costs little more than an unchecked one. A value
    is only returned once its bytes are known to be the ones that were stored.
    """
    materializer = materializers.by_name(ref.materializer)
    path = store.local_path(ref.digest, verify=False)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="shipyard-verify") as pool:
        verified = pool.submit(store.verify, ref.digest)
        try:
            value = materializer.load(path, ref.type_name)
        except Exception:
            verified.result()  # a corrupted file explains a failed parse best
            raise
        verified.result()
    return value


def split_outputs(step: Step, result: Any) -> dict[str, Any]:
    """Map a step's return value onto its declared outputs."""
    specs = step.outputs
    if len(specs) == 1:
        return {specs[0].name: result}
    names = [s.name for s in specs]
    if isinstance(result, Mapping) and set(result) == set(names):
        return {n: result[n] for n in names}
    if isinstance(result, tuple) and len(result) == len(specs):
        return dict(zip(names, result, strict=True))
    raise MaterializerError(
        f"Step {step.name!r} declares {len(specs)} outputs {names} but returned "
        f"{type(result).__name__}"
        + (f" of length {len(result)}" if isinstance(result, tuple) else "")
        + f". Return a tuple of {len(specs)} values in that order."
    )


def write_artifact(
    store: ArtifactStore, value: Any, materializer: materializers.Materializer
) -> tuple[StoredObject, materializers.Preview]:
    """Store ``value`` with ``materializer``; returns where it went and its preview.

    A materializer that can write to a stream is hashed on the way to disk; any
    other writes a file that the store then hashes.
    """
    staged = store.staging_path()
    try:
        with HashingWriter(staged) as stream:
            # HashingWriter has the part of BinaryIO that writers use: write, flush, close.
            preview = materializer.save_stream(value, cast(BinaryIO, stream))
        if preview is not None:
            return store.commit(staged, hashed=stream.hashed), preview
        preview = materializer.save(value, staged)
        return store.commit(staged), preview
    finally:
        staged.unlink(missing_ok=True)


def _store_output(
    task: StepTask, step: Step, store: ArtifactStore, name: str, value: Any
) -> dict[str, Any]:
    spec = next(s for s in step.outputs if s.name == name)
    materializer = materializers.choose(value, spec.annotation, step.materializer_for(name))
    return _artifact_record(task, store, name, value, materializer)


def _artifact_record(
    task: StepTask,
    store: ArtifactStore,
    name: str,
    value: Any,
    materializer: materializers.Materializer,
) -> dict[str, Any]:
    stored, preview = write_artifact(store, value, materializer)
    return {
        "id": uuid.uuid4().hex,
        "digest": stored.digest,
        "uri": stored.uri,
        "type_name": materializers.qualified_name(type(value)),
        "materializer": materializer.name,
        "materializer_version": materializer.version,
        "size": stored.size,
        "preview": preview,
        "created_at": time.time(),
        "step_run_id": task.step_run_id,
        "run_id": task.run_id,
        "output_name": name,
    }
