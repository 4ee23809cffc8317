"""Building and running pipelines: wiring, outputs, params, metrics, concurrency."""

from __future__ import annotations

import threading
import time
from typing import Annotated, NamedTuple

import numpy as np
import polars as pl
import pytest

from shipyard import Run, get_context, pipeline, step
from shipyard.core.project import Project
from shipyard.errors import MaterializerError, PipelineDefinitionError, ShipyardError


@step
def number(n: int) -> int:
    return n


@step
def double(x: int) -> int:
    return 2 * x


@step
def add(a: int, b: int) -> int:
    return a + b


@pipeline
def arithmetic(n: int = 3):
    a = number(n)
    return add(a, double(a))


def test_a_pipeline_runs_its_steps_in_order_and_returns_a_run(project: Project) -> None:
    run = arithmetic(n=5)

    assert isinstance(run, Run)
    assert run.status == "completed"
    assert run.output == 15
    assert list(run.step_runs) == ["number", "double", "add"]
    assert {s.status for s in run.step_runs.values()} == {"completed"}
    assert run.params == {"n": 5}
    assert run.step_runs["add"].upstream == ["number", "double"]


def test_defaults_of_the_pipeline_function_are_its_parameters(project: Project) -> None:
    assert arithmetic().params == {"n": 3}


def test_unknown_pipeline_parameter_lists_the_known_ones(project: Project) -> None:
    with pytest.raises(PipelineDefinitionError, match=r"parameters are: n"):
        arithmetic(m=1)


def test_a_step_called_outside_a_pipeline_is_the_plain_function() -> None:
    assert double(21) == 42


def test_a_run_can_be_read_back_from_the_store(project: Project) -> None:
    run = arithmetic(n=2)
    again = Run.load(project, run.id[:10])

    assert again.id == run.id
    assert again.value("add") == 6
    assert again.step_runs["double"].inputs["x"].id == run.step_runs["number"].outputs["output"].id


@step
def split(
    frame: pl.DataFrame,
) -> tuple[Annotated[pl.DataFrame, "head"], Annotated[pl.DataFrame, "tail"]]:
    return frame.head(2), frame.tail(1)


@step
def make_frame(rows: int) -> pl.DataFrame:
    return pl.DataFrame({"x": list(range(rows)), "label": [f"r{i}" for i in range(rows)]})


@step
def count(frame: pl.DataFrame) -> int:
    return frame.height


@pipeline
def frames(rows: int = 4):
    head, tail = split(make_frame(rows))
    return count(head), count(tail)


def test_named_outputs_are_separate_artifacts(project: Project) -> None:
    run = frames()

    assert run.output == (2, 1)
    outputs = run.step_runs["split"].outputs
    assert set(outputs) == {"head", "tail"}
    assert outputs["head"].preview["rows"] == 2
    assert outputs["head"].preview["columns"] == {"x": "Int64", "label": "String"}
    assert run.value("split.tail").to_dict(as_series=False) == {"x": [3], "label": ["r3"]}
    assert run.step_runs["count_2"].inputs["frame"].id == outputs["tail"].id


class Stats(NamedTuple):
    mean: float
    values: np.ndarray


@step
def stats(n: int) -> Stats:
    values = np.arange(n, dtype=np.float64)
    return Stats(float(values.mean()), values)


@pipeline
def numpy_pipeline(n: int = 5):
    return stats(n)


def test_a_named_tuple_return_type_names_the_outputs(project: Project) -> None:
    run = numpy_pipeline()

    outputs = run.step_runs["stats"].outputs
    assert {name: a.materializer for name, a in outputs.items()} == {
        "mean": "json",
        "values": "numpy.npy",
    }
    assert run.value("stats.mean") == 2.0
    np.testing.assert_array_equal(outputs["values"].load(), np.arange(5.0))


@step
def logs(steps: int) -> int:
    context = get_context()
    for i in range(steps):
        context.log_metric("loss", 1.0 / (i + 1), step=i)
    context.log_param("optimizer", "sgd")
    context.logger.info("logged %d", steps)
    return context.seed


@pipeline
def logging_pipeline(steps: int = 3):
    return logs(steps)


def test_metrics_and_params_logged_in_a_step_are_recorded(project: Project) -> None:
    run = logging_pipeline(steps=4)

    assert run.metrics == {"loss": 0.25}
    assert [m["step"] for m in run.metric_history] == [0, 1, 2, 3]
    assert run.logged_params["logs"] == {"steps": 4, "optimizer": "sgd"}


def test_get_context_outside_a_step_says_where_it_works() -> None:
    with pytest.raises(ShipyardError, match="outside a running step"):
        get_context()


def test_the_seed_is_recorded_and_fixes_each_steps_seed(project: Project) -> None:
    first = logging_pipeline.run(params={"steps": 1}, seed=1234, cache=False)
    second = logging_pipeline.run(params={"steps": 1}, seed=1234, cache=False)
    other = logging_pipeline.run(params={"steps": 1}, seed=99, cache=False)

    assert first.seed == 1234
    assert first.output == second.output != other.output


_barrier = threading.Barrier(2, timeout=10)


@step(cache=False)
def meet(label: str) -> str:
    _barrier.wait()  # both branches must be running at the same time to pass
    return label


@pipeline
def two_branches():
    return meet("left"), meet("right")


def test_independent_steps_run_at_the_same_time(project: Project) -> None:
    assert two_branches().output == ("left", "right")


@pipeline
def uses_output_as_bool(n: int = 1):
    value = number(n)
    if value:
        double(value)


def test_using_an_output_as_a_value_while_building_explains_why(project: Project) -> None:
    with pytest.raises(PipelineDefinitionError, match="move that logic into a step"):
        uses_output_as_bool()


_leaked = {}


@pipeline
def leaks():
    _leaked["out"] = number(1)


@pipeline
def uses_leaked():
    double(_leaked["out"])


def test_an_output_from_another_pipeline_call_is_refused(project: Project) -> None:
    leaks()
    with pytest.raises(PipelineDefinitionError, match="made in another pipeline call"):
        uses_leaked()


class Opaque:
    """A type no materializer knows."""


@pipeline
def passes_object():
    double(Opaque())


def test_a_parameter_that_is_not_json_is_refused(project: Project) -> None:
    with pytest.raises(PipelineDefinitionError, match="must be JSON-able"):
        passes_object()


@pipeline
def no_steps():
    return 1


def test_a_pipeline_without_steps_is_refused(project: Project) -> None:
    with pytest.raises(PipelineDefinitionError, match="calls no steps"):
        no_steps()


def test_a_cycle_is_reported_with_the_steps_in_it() -> None:
    from shipyard.core.pipeline import Dag, Invocation, StepOutput

    a, b = Invocation("a", double), Invocation("b", double)
    a.outputs = (StepOutput(a, double.outputs[0]),)
    b.outputs = (StepOutput(b, double.outputs[0]),)
    a.inputs["x"], b.inputs["x"] = b.outputs[0], a.outputs[0]
    with pytest.raises(PipelineDefinitionError, match=r"cycle through the steps \['a', 'b'\]"):
        Dag({"a": a, "b": b}).order()


@step
def returns_object() -> object:
    return Opaque()


@pipeline
def unstorable():
    returns_object()


def test_an_output_without_materializer_names_the_type_and_the_fix(project: Project) -> None:
    run = unstorable.run(raise_on_failure=False)

    step_run = run.step_runs["returns_object"]
    assert run.status == "failed"
    assert "test_pipeline.Opaque" in (step_run.error or "")
    assert "register_materializer" in (step_run.error or "")
    assert isinstance(step_run.traceback, str)


@step
def two_outputs() -> tuple[Annotated[int, "a"], Annotated[int, "b"]]:
    return (1, 2, 3)  # type: ignore[return-value]


@pipeline
def wrong_arity():
    two_outputs()


def test_returning_the_wrong_number_of_outputs_is_explained(project: Project) -> None:
    run = wrong_arity.run(raise_on_failure=False)
    assert "declares 2 outputs ['a', 'b'] but returned tuple of length 3" in (
        run.step_runs["two_outputs"].error or ""
    )
    from shipyard.core.executor import split_outputs

    with pytest.raises(MaterializerError):
        split_outputs(two_outputs, (1, 2, 3))


def test_per_step_overhead_is_recorded_in_step_timings(project: Project) -> None:
    started = time.time()
    run = arithmetic.run(params={"n": 1}, cache=False)
    for step_run in run.step_runs.values():
        assert step_run.started_at is not None and step_run.ended_at is not None
        assert started <= step_run.started_at <= step_run.ended_at <= time.time()


def test_a_step_is_found_again_by_its_import_path() -> None:
    from shipyard.core.executor import resolve_step

    assert double.import_path == "tests.core.test_pipeline:double"
    assert resolve_step(double.import_path) is double


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("__main__:train", "cannot import"),
        ("tests.core.test_pipeline:missing", "Cannot find the step"),
        ("no_such_module_here:train", "Cannot find the step"),
        ("tests.core.test_pipeline:_leaked", "is a dict, not a step"),
    ],
)
def test_an_import_path_that_names_no_step_is_explained(path: str, message: str) -> None:
    from shipyard.core.executor import resolve_step

    with pytest.raises(PipelineDefinitionError, match=message):
        resolve_step(path)


@step
def saves_then_fails(n: int) -> int:
    get_context().save("evidence", {"seen": n})
    raise ValueError("the batch is broken")


@pipeline
def keeps_evidence(n: int = 2):
    return saves_then_fails(n)


def test_an_artifact_saved_by_a_step_is_kept_even_when_it_then_fails(project: Project) -> None:
    run = keeps_evidence.run(raise_on_failure=False)

    step_run = run.step_runs["saves_then_fails"]
    assert step_run.status == "failed"
    assert step_run.outputs["evidence"].load() == {"seen": 2}


@step
def saves_twice() -> int:
    context = get_context()
    context.save("a", 1)
    with pytest.raises(ShipyardError, match="not used yet by this step"):
        context.save("a", 2)
    with pytest.raises(ShipyardError, match=r"its outputs are \['output'\]"):
        context.save("output", 3)
    return 0


@pipeline
def saving_names():
    return saves_twice()


def test_saved_artifact_names_must_be_new(project: Project) -> None:
    assert saving_names().output == 0
