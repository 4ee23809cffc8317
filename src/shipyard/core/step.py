"""``@step``: a Python function whose outputs become artifacts.

Called inside a ``@pipeline`` function, a step does not run: it adds itself to
the pipeline's graph and returns placeholders for its outputs. Called anywhere
else it is the plain function. Outputs are named by the return annotation:

    @step
    def split(df: pl.DataFrame) -> tuple[Annotated[pl.DataFrame, "train"],
                                         Annotated[pl.DataFrame, "test"]]: ...

or by a ``NamedTuple`` return type; otherwise a step has one output, ``output``.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, overload

from shipyard.errors import PipelineDefinitionError

DEFAULT_OUTPUT = "output"


@dataclass(frozen=True)
class OutputSpec:
    """One named output of a step and its annotated type (``Any`` if none)."""

    name: str
    annotation: Any


class Step:
    """A step: the function, its options and its declared outputs.

    Options are recorded as given; the cache key hashes them with the code.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        cache: bool = True,
        retries: int = 0,
        materializer: str | dict[str, str] | None = None,
    ) -> None:
        if not callable(fn) or inspect.isclass(fn):
            raise PipelineDefinitionError(f"@step decorates a function, got {fn!r}.")
        if not isinstance(retries, int) or retries < 0:
            raise PipelineDefinitionError(f"retries must be an integer >= 0, got {retries!r}.")
        self.fn = fn
        self.__shipyard_fn__ = fn
        self.name = name or fn.__name__
        self.cache = cache
        self.retries = retries
        self.materializer = materializer
        self.signature = inspect.signature(fn)
        functools.update_wrapper(self, fn)
        self._outputs: tuple[OutputSpec, ...] | None = None

    @property
    def import_path(self) -> str:
        """``module:qualname``, how another process finds this step."""
        return f"{self.fn.__module__}:{self.fn.__qualname__}"

    @property
    def outputs(self) -> tuple[OutputSpec, ...]:
        """The step's outputs, from its return annotation (read once, when first needed)."""
        if self._outputs is None:
            self._outputs = _output_specs(self.fn)
        return self._outputs

    def materializer_for(self, output: str) -> str | None:
        """The materializer the user named for ``output``, if any."""
        if isinstance(self.materializer, dict):
            return self.materializer.get(output)
        return self.materializer

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from shipyard.core.pipeline import current_builder

        builder = current_builder()
        if builder is None:
            return self.fn(*args, **kwargs)
        return builder.add(self, args, kwargs)

    def __repr__(self) -> str:
        return f"<step {self.name} ({self.import_path})>"


@overload
def step(fn: Callable[..., Any], /) -> Step: ...
@overload
def step(
    *,
    name: str | None = None,
    cache: bool = True,
    retries: int = 0,
    materializer: str | dict[str, str] | None = None,
) -> Callable[[Callable[..., Any]], Step]: ...


def step(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    cache: bool = True,
    retries: int = 0,
    materializer: str | dict[str, str] | None = None,
) -> Step | Callable[[Callable[..., Any]], Step]:
    """Make a function a pipeline step.

    Args:
        fn: the function (when used as ``@step`` without parentheses).
        name: the step's name in runs (default: the function's name).
        cache: reuse outputs of an identical earlier step run (same code closure,
            parameters, inputs and package versions).
        retries: how many times to run the step again after it raises.
        materializer: a materializer name for every output, or a dict from output
            name to materializer name (e.g. ``"pickle"``, which must be named to be used).
    """

    def wrap(function: Callable[..., Any]) -> Step:
        return Step(function, name=name, cache=cache, retries=retries, materializer=materializer)

    return wrap(fn) if fn is not None else wrap


def _output_specs(fn: Callable[..., Any]) -> tuple[OutputSpec, ...]:
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # annotations naming things only importable for type checkers
        hints = {}
    annotation = hints.get("return", Any)
    fields = getattr(annotation, "_fields", None)
    if isinstance(annotation, type) and issubclass(annotation, tuple) and fields:
        types = typing.get_type_hints(annotation)
        return tuple(OutputSpec(f, types.get(f, Any)) for f in fields)
    if typing.get_origin(annotation) is tuple:
        members = typing.get_args(annotation)
        names = [n for n in (_annotated_name(m) for m in members) if n]
        if members and len(names) == len(members):
            _check_unique(fn, names)
            return tuple(
                OutputSpec(n, _strip_annotated(m)) for n, m in zip(names, members, strict=True)
            )
    name = _annotated_name(annotation)
    return (OutputSpec(name or DEFAULT_OUTPUT, _strip_annotated(annotation)),)


def _annotated_name(annotation: Any) -> str | None:
    if typing.get_origin(annotation) is typing.Annotated:
        for extra in annotation.__metadata__:
            if isinstance(extra, str):
                return extra
    return None


def _strip_annotated(annotation: Any) -> Any:
    if typing.get_origin(annotation) is typing.Annotated:
        return typing.get_args(annotation)[0]
    return annotation


def _check_unique(fn: Callable[..., Any], names: list[str]) -> None:
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise PipelineDefinitionError(
            f"Step {fn.__name__!r} names the output(s) {duplicates} more than once. "
            "Give each output of a step its own name."
        )
