"""The cache notices what changes a result, and only that."""

from __future__ import annotations

import importlib
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.core._closure import _strip_docstrings, closure_of
from shipyard.core.project import Project

HELPERS = '''
"""Helpers of the test project."""

FACTOR = 2


def scale(x):
    """Multiply by the factor."""
    return x * FACTOR
'''

STEPS = """
from shipyard import pipeline, step
import helpers


@step
def load(n: int) -> int:
    return n


@step
def transform(x: int) -> int:
    # uses a helper from another module of the project
    return helpers.scale(x)


@pipeline
def flow(n: int = 3):
    return transform(load(n))
"""


@pytest.fixture
def modules(project_dir: Path) -> Iterator[Callable[..., ModuleType]]:
    """Write the test project's modules; returns a function that (re)imports ``steps``."""
    sys.path.insert(0, str(project_dir))
    (project_dir / "helpers.py").write_text(HELPERS)
    (project_dir / "steps.py").write_text(STEPS)

    def load(helpers: str | None = None, steps: str | None = None) -> ModuleType:
        for name, text in (("helpers", helpers), ("steps", steps)):
            if text is not None:
                path = project_dir / f"{name}.py"
                path.write_text(text)
                _bump_mtime(path)
        for name in ("helpers", "steps"):
            sys.modules.pop(name, None)
        return importlib.import_module("steps")

    yield load
    sys.path.remove(str(project_dir))
    for name in ("helpers", "steps"):
        sys.modules.pop(name, None)


def _bump_mtime(path: Path) -> None:
    later = time.time() + 5
    import os

    os.utime(path, (later, later))


def statuses(run: object) -> dict[str, str]:
    return {name: s.status for name, s in run.step_runs.items()}  # type: ignore[attr-defined]


def test_a_second_identical_run_is_all_cache_hits(project: Project, modules) -> None:
    steps = modules()
    first = steps.flow()
    second = steps.flow()

    assert statuses(first) == {"load": "completed", "transform": "completed"}
    assert statuses(second) == {"load": "cached", "transform": "cached"}
    assert second.output == 6
    assert second.step_runs["transform"].cached_from == first.step_runs["transform"].id
    assert second.step_runs["transform"].outputs["output"].id == (
        first.step_runs["transform"].outputs["output"].id
    )


def test_editing_a_helper_in_another_module_invalidates_the_step(project, modules) -> None:
    modules().flow()
    steps = modules(helpers=HELPERS.replace("return x * FACTOR", "return x * FACTOR + 1"))
    run = steps.flow()

    assert statuses(run) == {"load": "cached", "transform": "completed"}
    assert run.output == 7


def test_changing_a_module_constant_the_helper_reads_invalidates(project, modules) -> None:
    modules().flow()
    run = modules(helpers=HELPERS.replace("FACTOR = 2", "FACTOR = 3")).flow()

    assert statuses(run)["transform"] == "completed"
    assert run.output == 9


def test_a_helper_rebound_in_a_live_process_invalidates_without_any_file_change(
    project, modules
) -> None:
    steps = modules()
    steps.flow()
    helpers = sys.modules["helpers"]
    original = helpers.scale

    def scale(x):  # what re-running a notebook cell that redefines the helper does
        return x * 10

    helpers.scale = scale
    try:
        run = steps.flow()
    finally:
        helpers.scale = original
    assert statuses(run)["transform"] == "completed"
    assert run.output == 30


def test_comments_docstrings_and_formatting_do_not_invalidate(project, modules) -> None:
    modules().flow()
    reworded = HELPERS.replace('"""Multiply by the factor."""', '"""Scale x up."""  # note')
    reworded = reworded.replace("return x * FACTOR", "return (x *\n            FACTOR)")
    steps_text = STEPS.replace("# uses a helper from another module of the project", "# hi")
    run = modules(helpers=reworded, steps=steps_text).flow()

    assert statuses(run) == {"load": "cached", "transform": "cached"}


def test_a_different_parameter_misses_only_where_it_flows(project, modules) -> None:
    steps = modules()
    steps.flow(n=3)
    run = steps.flow(n=4)

    assert statuses(run) == {"load": "completed", "transform": "completed"}


def test_same_output_content_from_a_changed_step_keeps_downstream_cached(project, modules):
    steps = modules()
    steps.flow(n=3)
    changed = STEPS.replace("    return n\n", "    return n + 0\n")
    run = modules(steps=changed).flow(n=3)

    # load's code changed, so it ran again; it produced the same bytes, so transform hit.
    assert statuses(run) == {"load": "completed", "transform": "cached"}


def test_no_cache_and_cache_false_run_every_step(project, modules) -> None:
    steps = modules()
    steps.flow()
    assert set(statuses(steps.flow.run(cache=False)).values()) == {"completed"}

    uncached = STEPS.replace("@step\ndef transform", "@step(cache=False)\ndef transform")
    steps = modules(steps=uncached)
    steps.flow()
    assert statuses(steps.flow())["transform"] == "completed"


def test_a_deleted_cached_object_is_recomputed_not_loaded(project, modules) -> None:
    steps = modules()
    first = steps.flow()
    digest = first.step_runs["transform"].outputs["output"].digest
    path = project.artifacts.object_path(digest)  # type: ignore[attr-defined]
    path.chmod(0o644)
    path.unlink()

    run = steps.flow()
    assert statuses(run) == {"load": "cached", "transform": "completed"}
    assert run.output == 6
    assert path.exists()


def test_package_versions_reached_by_the_step_are_part_of_the_closure() -> None:
    import polars as pl

    def uses_polars() -> object:
        return pl.DataFrame()

    assert closure_of(uses_polars).packages == {"polars": pl.__version__}


def _source(body: str) -> str:
    return textwrap.dedent(f'''
        def f(x):
            """doc"""
            {body}
    ''')


@settings(max_examples=50, deadline=None)
@given(
    comment=st.text(alphabet=st.characters(blacklist_categories=["Cc", "Cs"]), max_size=30),
    doc=st.text(alphabet="abc xyz", max_size=30),
)
def test_comments_and_docstrings_never_change_the_hash(comment: str, doc: str) -> None:
    base = _strip_docstrings(_source("return x + 1"))
    varied = _source(f"return x + 1  # {comment}").replace('"""doc"""', repr(doc))
    assert _strip_docstrings(varied) == base


@settings(max_examples=50, deadline=None)
@given(a=st.integers(), b=st.integers())
def test_different_code_always_changes_the_hash(a: int, b: int) -> None:
    same = _strip_docstrings(_source(f"return x + {a}")) == _strip_docstrings(
        _source(f"return x + {b}")
    )
    assert same == (a == b)


def test_a_helper_imported_inside_the_step_body_is_followed(project, modules) -> None:
    local_import = STEPS.replace(
        "    return helpers.scale(x)", "    from helpers import scale\n\n    return scale(x)"
    )
    modules(steps=local_import).flow()
    run = modules(
        helpers=HELPERS.replace("return x * FACTOR", "return x * FACTOR * 10"), steps=local_import
    ).flow()

    assert statuses(run)["transform"] == "completed"
    assert run.output == 60


def test_a_package_imported_inside_the_step_body_is_recorded_before_it_is_imported() -> None:
    def lazy_numpy() -> object:
        import numpy

        return numpy.zeros(1)

    import numpy

    assert closure_of(lazy_numpy).packages == {"numpy": numpy.__version__}
