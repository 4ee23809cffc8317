"""``@pipeline``: a function that wires steps into a graph, and running it.

Calling the pipeline function builds the graph: each step call inside it
records an *invocation* and returns placeholders (``StepOutput``) for the
outputs, which later step calls take as inputs. The pipeline's parameters are
its function's parameters. Calling the decorated pipeline runs the graph and
returns a ``Run``.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.core.step import OutputSpec, Step
from shipyard.errors import PipelineDefinitionError

if TYPE_CHECKING:
    from shipyard.core.project import Project
    from shipyard.core.run import Run
    from shipyard.core.runner import Listener

_builder: ContextVar[DagBuilder | None] = ContextVar("shipyard_dag_builder", default=None)


def current_builder() -> DagBuilder | None:
    """The graph being built right now, if a pipeline function is running."""
    return _builder.get()


@dataclass(frozen=True, eq=False)
class StepOutput:
    """A placeholder for an output of a step invocation, while a pipeline is built."""

    invocation: Invocation
    spec: OutputSpec

    @property
    def ref(self) -> str:
        """``invocation.output``, how runs and the CLI name this output."""
        return f"{self.invocation.name}.{self.spec.name}"

    def __bool__(self) -> bool:
        raise PipelineDefinitionError(
            f"The output {self.ref} was used as a value while the pipeline was being built "
            "(in an `if`, a comparison or arithmetic). Step outputs exist only once the step "
            "has run: move that logic into a step that takes the output as an input."
        )

    def __iter__(self) -> Iterator[Any]:
        raise PipelineDefinitionError(
            f"The output {self.ref} was unpacked or iterated while the pipeline was being "
            "built. To return several outputs from a step, name them in its return "
            'annotation: -> tuple[Annotated[T, "a"], Annotated[U, "b"]].'
        )


@dataclass(eq=False)
class Invocation:
    """One call of a step inside a pipeline: its inputs, parameters and outputs."""

    name: str
    step: Step
    inputs: dict[str, StepOutput] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    outputs: tuple[StepOutput, ...] = ()

    @property
    def upstream(self) -> list[str]:
        """Names of the invocations whose outputs this one takes, in order, once each."""
        return list(dict.fromkeys(o.invocation.name for o in self.inputs.values()))


@dataclass
class Dag:
    """The invocations of one pipeline call and what the pipeline returned."""

    invocations: dict[str, Invocation]
    returned: Any = None

    def order(self) -> list[Invocation]:
        """Invocations in an order where each comes after what it takes (Kahn's algorithm)."""
        waiting = {name: set(inv.upstream) for name, inv in self.invocations.items()}
        for name, upstream in waiting.items():
            unknown = upstream - set(self.invocations)
            if unknown:
                raise PipelineDefinitionError(
                    f"Step {name!r} takes an output of {sorted(unknown)}, which is not part of "
                    "this pipeline: a step output can only be used in the pipeline call that "
                    "made it, after the step call that makes it."
                )
        ordered: list[Invocation] = []
        ready = [n for n, up in waiting.items() if not up]
        while ready:
            name = ready.pop(0)
            ordered.append(self.invocations[name])
            for other, upstream in waiting.items():
                if name in upstream:
                    upstream.discard(name)
                    if not upstream and other not in ready and other not in _names(ordered):
                        ready.append(other)
        if len(ordered) != len(self.invocations):
            stuck = sorted(set(self.invocations) - _names(ordered))
            raise PipelineDefinitionError(
                f"The pipeline has a cycle through the steps {stuck}: each waits for another's "
                "output. Break the cycle so that data flows one way."
            )
        return ordered


def _names(invocations: list[Invocation]) -> set[str]:
    return {inv.name for inv in invocations}


class DagBuilder:
    """Collects step invocations while a pipeline function runs."""

    def __init__(self) -> None:
        self.invocations: dict[str, Invocation] = {}

    def add(self, step: Step, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        name = self._unique_name(step.name)
        try:
            bound = step.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise PipelineDefinitionError(f"Calling step {step.name!r}: {exc}.") from None
        bound.apply_defaults()
        invocation = Invocation(name, step)
        for param, value in bound.arguments.items():
            kind = step.signature.parameters[param].kind
            if kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                raise PipelineDefinitionError(
                    f"Step {step.name!r} takes *args or **kwargs; steps need named parameters "
                    "so that each input can be recorded and cached."
                )
            self._bind(invocation, param, value)
        invocation.outputs = tuple(StepOutput(invocation, spec) for spec in step.outputs)
        self.invocations[name] = invocation
        if len(invocation.outputs) == 1:
            return invocation.outputs[0]
        return tuple(invocation.outputs)

    def _bind(self, invocation: Invocation, param: str, value: Any) -> None:
        if isinstance(value, StepOutput):
            if self.invocations.get(value.invocation.name) is not value.invocation:
                raise PipelineDefinitionError(
                    f"Step {invocation.name!r} takes {value.ref} as {param!r}, but that output "
                    "was made in another pipeline call. Call the producing step inside this "
                    "pipeline, before the step that uses its output."
                )
            invocation.inputs[param] = value
            return
        if _contains_output(value):
            raise PipelineDefinitionError(
                f"Step {invocation.name!r} got a list or dict of step outputs for {param!r}. "
                "Pass each output as its own parameter, or combine them in a step."
            )
        try:
            json.dumps(value, sort_keys=True)
        except (TypeError, ValueError):
            raise PipelineDefinitionError(
                f"Step {invocation.name!r} got {type(value).__name__} for {param!r}. Parameters "
                "must be JSON-able (numbers, strings, lists, dicts) so that they can be recorded "
                "and cached; make larger values in a step and pass its output instead."
            ) from None
        invocation.params[param] = value

    def _unique_name(self, base: str) -> str:
        if base not in self.invocations:
            return base
        number = 2
        while f"{base}_{number}" in self.invocations:
            number += 1
        return f"{base}_{number}"


def _contains_output(value: Any) -> bool:
    if isinstance(value, StepOutput):
        return True
    if isinstance(value, Mapping):
        return any(_contains_output(v) for v in value.values())
    if isinstance(value, (list, tuple, set)):
        return any(_contains_output(v) for v in value)
    return False


@contextmanager
def _building() -> Iterator[DagBuilder]:
    if _builder.get() is not None:
        raise PipelineDefinitionError(
            "A pipeline was called while another pipeline was being built. Call its steps "
            "directly instead of nesting pipelines."
        )
    builder = DagBuilder()
    token = _builder.set(builder)
    try:
        yield builder
    finally:
        _builder.reset(token)


class Pipeline:
    """A pipeline: the wiring function and its parameters."""

    def __init__(self, fn: Callable[..., Any], *, name: str | None = None) -> None:
        self.fn = fn
        self.__shipyard_fn__ = fn
        self.name = name or fn.__name__
        self.signature = inspect.signature(fn)

    @property
    def import_path(self) -> str:
        """``module:qualname``, how another process finds this pipeline."""
        return f"{self.fn.__module__}:{self.fn.__qualname__}"

    def bind_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The full parameter set: ``params`` over the function's defaults, checked."""
        try:
            bound = self.signature.bind(**params)
        except TypeError as exc:
            names = ", ".join(self.signature.parameters) or "(none)"
            raise PipelineDefinitionError(
                f"Pipeline {self.name!r}: {exc}. Its parameters are: {names}."
            ) from None
        bound.apply_defaults()
        return dict(bound.arguments)

    def build(self, params: Mapping[str, Any]) -> Dag:
        """Run the wiring function to get the graph (no step runs)."""
        with _building() as builder:
            returned = self.fn(**params)
        dag = Dag(builder.invocations, returned)
        if not dag.invocations:
            raise PipelineDefinitionError(
                f"Pipeline {self.name!r} calls no steps. Call @step functions inside it."
            )
        dag.order()
        return dag

    def run(
        self,
        *,
        params: Mapping[str, Any] | None = None,
        cache: bool = True,
        resume: str | None = None,
        seed: int | None = None,
        project: Project | None = None,
        listener: Listener | None = None,
        raise_on_failure: bool = True,
    ) -> Run:
        """Run the pipeline and return its ``Run``.

        Args:
            params: values for the pipeline function's parameters.
            cache: reuse cached step outputs (steps with ``cache=False`` never are).
            resume: the id of a failed or crashed run to continue: its finished steps
                are reused when their code and inputs are unchanged.
            seed: the random seed (default: the project's, or a fresh one).
            project: the project to record the run in (default: found from the cwd).
            listener: called with progress events (used by the CLI's live view).
            raise_on_failure: raise ``StepFailedError`` when the run fails.
        """
        from shipyard.core.runner import run_pipeline

        return run_pipeline(
            self,
            params=dict(params or {}),
            cache=cache,
            resume=resume,
            seed=seed,
            project=project,
            listener=listener,
            raise_on_failure=raise_on_failure,
        )

    def __call__(self, **params: Any) -> Run:
        return self.run(params=params)

    def __repr__(self) -> str:
        return f"<pipeline {self.name} ({self.import_path})>"


def pipeline(fn: Callable[..., Any] | None = None, /, *, name: str | None = None) -> Any:
    """Make a function a pipeline: its body wires steps; calling it runs them.

    Args:
        fn: the wiring function (when used as ``@pipeline`` without parentheses).
        name: the pipeline's name in runs and on the CLI (default: the function's name).
    """

    def wrap(function: Callable[..., Any]) -> Pipeline:
        return Pipeline(function, name=name)

    return wrap(fn) if fn is not None else wrap
