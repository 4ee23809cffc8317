"""When steps fail, processes die or users press Ctrl-C: nothing finished is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from shipyard import pipeline, step
from shipyard.core.heartbeat import detect_crashed
from shipyard.core.project import Project
from shipyard.core.run import Run
from shipyard.errors import PipelineDefinitionError, StepFailedError
from shipyard.storage.artifacts import sha256_file
from tests.helpers import CLI

_state = {"fail": True, "flaky_left": 0, "calls": 0}


@step
def source(n: int) -> int:
    return n


@step
def fragile(x: int) -> int:
    if _state["fail"]:
        raise ValueError(f"upstream sent {x}, expected an even number")
    return x * 10


@step
def after_fragile(x: int) -> int:
    return x + 1


@step
def independent(n: int) -> str:
    return f"ok {n}"


@pipeline
def branching(n: int = 3):
    value = source(n)
    return after_fragile(fragile(value)), independent(n)


@pytest.fixture(autouse=True)
def reset_state() -> None:
    _state.update(fail=True, flaky_left=0, calls=0)


def test_a_failing_step_skips_its_dependents_and_keeps_the_rest(project: Project) -> None:
    with pytest.raises(StepFailedError, match="step 'fragile' raised ValueError") as caught:
        branching()

    run: Run = caught.value.run  # type: ignore[attr-defined]
    assert caught.value.step == "fragile"
    assert run.status == "failed"
    assert {n: s.status for n, s in run.step_runs.items()} == {
        "source": "completed",
        "fragile": "failed",
        "after_fragile": "skipped",
        "independent": "completed",
    }
    failed = run.step_runs["fragile"]
    assert failed.error == "ValueError: upstream sent 3, expected an even number"
    assert "raise ValueError" in (failed.traceback or "")
    assert run.value("source") == 3
    assert run.value("independent") == "ok 3"
    assert f"--resume {run.id[:8]}" in str(caught.value)


def test_resume_reuses_finished_steps_and_runs_the_rest(project: Project) -> None:
    failed = branching.run(raise_on_failure=False)
    _state["fail"] = False

    resumed = branching.run(resume=failed.id[:8])

    assert resumed.status == "completed"
    assert resumed.resumed_from == failed.id
    assert resumed.seed == failed.seed
    assert resumed.step_runs["source"].cached_from == failed.step_runs["source"].id
    assert {n: s.status for n, s in resumed.step_runs.items()} == {
        "source": "cached",
        "fragile": "completed",
        "after_fragile": "completed",
        "independent": "cached",
    }
    assert resumed.output == (31, "ok 3")


def test_resume_reuses_steps_even_when_caching_is_off(project: Project) -> None:
    failed = branching.run(raise_on_failure=False, cache=False)
    _state["fail"] = False
    resumed = branching.run(resume=failed.id, cache=False)
    assert resumed.step_runs["source"].status == "cached"


def test_only_failed_crashed_or_cancelled_runs_can_be_resumed(project: Project) -> None:
    _state["fail"] = False
    done = branching()
    with pytest.raises(PipelineDefinitionError, match="is completed; only a failed"):
        branching.run(resume=done.id)


def test_resume_keeps_the_parameters_of_the_run(project: Project) -> None:
    failed = branching.run(params={"n": 5}, raise_on_failure=False)
    with pytest.raises(PipelineDefinitionError, match="keeps its parameters"):
        branching.run(params={"n": 6}, resume=failed.id)


@step(retries=2)
def flaky() -> str:
    _state["calls"] += 1
    if _state["flaky_left"] > 0:
        _state["flaky_left"] -= 1
        raise ConnectionError("upstream API timed out")
    return "fine"


@pipeline
def with_retries():
    return flaky()


def test_retries_run_a_failing_step_again(project: Project) -> None:
    _state["flaky_left"] = 2
    run = with_retries.run(cache=False)
    assert run.output == "fine"
    assert run.step_runs["flaky"].attempts == 3


def test_retries_give_up_after_the_last_attempt(project: Project) -> None:
    _state["flaky_left"] = 5
    run = with_retries.run(cache=False, raise_on_failure=False)
    assert run.status == "failed"
    assert run.step_runs["flaky"].attempts == 3
    assert _state["calls"] == 3


# -- whole processes: SIGKILL and Ctrl-C -----------------------------------------------

SLOW_PROJECT = """
import os
import time
from pathlib import Path

import numpy as np
import polars as pl
from shipyard import pipeline, step


@step
def first() -> int:
    return 1


@step
def big(x: int) -> pl.DataFrame:
    marker = Path(os.environ["MARKER"])
    if marker.exists():
        return pl.DataFrame({"x": [x]})
    marker.write_text("writing")
    # Large enough that writing it takes a while: the test kills the process meanwhile.
    rng = np.random.default_rng(0)
    return pl.DataFrame({f"c{i}": rng.random(3_000_000) for i in range(12)})


@step
def last(frame: pl.DataFrame) -> int:
    return frame.height


@pipeline
def heavy():
    return last(big(first()))


@step
def sleepy() -> int:
    Path(os.environ["MARKER"]).write_text("sleeping")
    time.sleep(60)
    return 1


@pipeline
def slow():
    return sleepy()
"""


@pytest.fixture
def slow_project(project_dir: Path, cli_env: dict[str, str]) -> tuple[Path, dict[str, str]]:
    (project_dir / "pipelines.py").write_text(SLOW_PROJECT)
    cli_env["MARKER"] = str(project_dir / "marker")
    return project_dir, cli_env


def _wait_for(condition: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def _staged_bytes(root: Path) -> int:
    staging = root / ".shipyard" / "artifacts" / "staging"
    if not staging.is_dir():
        return 0
    return sum(p.stat().st_size for p in staging.iterdir() if p.is_file())


@pytest.mark.slow
def test_sigkill_while_writing_an_artifact_leaves_no_partial_object(
    slow_project: tuple[Path, dict[str, str]],
) -> None:
    root, env = slow_project
    child = subprocess.Popen(
        [*CLI, "run", "heavy"],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_for(lambda: (root / "marker").exists() and _staged_bytes(root) > 1_000_000)
    child.kill()
    child.wait()

    project = Project.discover(root)
    store = project.metadata
    [run_row] = store.list_runs()
    assert run_row["status"] == "running"  # nobody has looked yet
    assert detect_crashed(store) == [run_row["id"]]
    crashed = Run.load(project, run_row["id"])
    assert crashed.status == "crashed"
    assert f"process {run_row['pid']}" in (crashed.error or "")
    assert crashed.step_runs["first"].status == "completed"
    assert crashed.step_runs["big"].status == "crashed"
    # Every artifact record points at a whole object whose bytes match its digest.
    for artifact in store.all_artifacts():
        path = project.artifacts.local_path(artifact["digest"])
        assert sha256_file(path) == (artifact["digest"], artifact["size"])
    assert {a["output_name"] for a in store.all_artifacts()} == {"output"}

    resumed = subprocess.run(
        [*CLI, "run", "heavy", "--resume", run_row["id"][:8], "--json"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    import json

    summary = json.loads(resumed.stdout)
    assert summary["resumed_from"] == run_row["id"]
    assert [(s["name"], s["status"]) for s in summary["steps"]] == [
        ("first", "cached"),
        ("big", "completed"),
        ("last", "completed"),
    ]


@pytest.mark.slow
def test_ctrl_c_marks_the_run_cancelled(slow_project: tuple[Path, dict[str, str]]) -> None:
    root, env = slow_project
    # A shell's background jobs ignore SIGINT, and children inherit that: restore it.
    child = subprocess.Popen(
        [*CLI, "run", "slow"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    _wait_for(lambda: (root / "marker").exists())
    interrupted = time.monotonic()
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=90)

    assert time.monotonic() - interrupted < 15  # did not wait for the 60 s step
    assert child.returncode == 130
    assert "Interrupted" in stderr
    store = Project.discover(root).metadata
    [run_row] = store.list_runs()
    assert run_row["status"] == "cancelled"
    assert [s["status"] for s in store.step_runs(run_row["id"])] == ["cancelled"]


def test_a_run_whose_heartbeat_stopped_is_marked_crashed(project: Project) -> None:
    _state["fail"] = False
    run = branching()
    store = project.metadata
    store.update_run(run.id, status="running", host="elsewhere", heartbeat_at=time.time() - 3600)

    assert detect_crashed(store) == [run.id]
    assert store.get_run(run.id)["error"].startswith("crashed: no heartbeat for")


def test_a_live_run_on_this_host_is_left_alone(project: Project) -> None:
    _state["fail"] = False
    run = branching()
    store = project.metadata
    store.update_run(run.id, status="running", pid=os.getpid(), heartbeat_at=time.time())
    assert detect_crashed(store) == []
