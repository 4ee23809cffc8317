"""The ``shipyard`` command line, run as users run it: a real process in a project folder.

Exit codes come from ``shipyard.cli.main()`` (0 ok, 1 the run failed, 2 usage or
configuration error), so every command runs in a subprocess through
``python -m shipyard.cli``; the help texts, which need no project, run in-process.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import typer
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from shipyard.cli._app import app
from shipyard.cli.run import parse_params
from shipyard.config import load_settings

FIXTURE = Path(__file__).parent.parent / "fixtures" / "cli_project"
RUN_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)


Shipyard = Callable[..., Result]


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> Result:
    done = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    return Result(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def env(cli_env: dict[str, str]) -> dict[str, str]:
    # The tests edit the fixture module between commands; stale bytecode must not hide that.
    return {**cli_env, "PYTHONDONTWRITEBYTECODE": "1"}


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    """A copy of the fixture project (pipelines ``tabular`` and ``fragile``)."""
    root = tmp_path / "proj"
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns("__pycache__", ".shipyard"))
    return root


@pytest.fixture
def shipyard(proj: Path, env: dict[str, str]) -> Shipyard:
    """``shipyard(*args, cwd=proj, env={...})``: the command line in a process of its own."""

    def call(*args: str, cwd: Path = proj, **extra_env: str) -> Result:
        return _run([sys.executable, "-m", "shipyard.cli", *args], cwd, {**env, **extra_env})

    return call


def run_json(shipyard: Shipyard, *args: str) -> dict[str, Any]:
    """``shipyard run ... --json`` that must complete; returns the run."""
    result = shipyard("run", *args, "--json")
    assert result.code == 0, result.err
    return result.json  # type: ignore[no-any-return]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1
    path.write_text(text.replace(old, new), encoding="utf-8")


def statuses(run: dict[str, Any]) -> dict[str, str]:
    return {step["name"]: step["status"] for step in run["steps"]}


@dataclass
class History:
    """A project with a few finished runs, shared by the tests that only read it."""

    shipyard: Shipyard
    runs: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    root = tmp_path_factory.mktemp("history") / "proj"
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns("__pycache__", ".shipyard"))
    # What the cli_env fixture gives, for a module-scoped project.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env.update(COLUMNS="200", PYTHONPATH=str(FIXTURE.parents[2] / "src"))

    def call(*args: str) -> Result:
        return _run([sys.executable, "-m", "shipyard.cli", *args], root, env)

    runs = {
        "base": run_json(call, "tabular", "--seed", "3"),
        "rows4": run_json(call, "tabular", "--seed", "3", "-p", "rows=4"),
        "again": run_json(call, "tabular", "--seed", "3"),  # every step cached from base
        "table": run_json(call, "tabular", "-p", "rows=4", "-p", "factor=2.5", "--seed", "99"),
        "markup_a": run_json(call, "tabular", "-p", "label=[/]", "--seed", "1"),
        "markup_b": run_json(call, "tabular", "-p", "label=[red]x", "--seed", "1"),
    }
    failed = call("run", "fragile", "--json")
    assert failed.code == 1, failed.err
    runs["failed"] = failed.json
    return History(call, runs)


# -- help --------------------------------------------------------------------------------------


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("init", "run", "runs", "artifacts", "demo"):
        assert re.search(rf"│ {command} ", result.output), command


@pytest.mark.parametrize(
    ("group", "commands"),
    [("runs", ["list", "show", "diff", "reproduce"]), ("artifacts", ["show", "export", "lineage"])],
)
def test_group_help_lists_its_verbs(group: str, commands: list[str]) -> None:
    result = CliRunner().invoke(app, [group, "--help"])
    assert result.exit_code == 0
    for command in commands:
        assert re.search(rf"│ {command} ", result.output), command


def test_help_of_the_installed_script(tmp_path: Path, env: dict[str, str]) -> None:
    script = shutil.which("shipyard", path=env["PATH"])
    assert script is not None
    result = _run([script, "--help"], tmp_path, env)
    assert result.code == 0
    assert "Usage: shipyard" in result.out
    for command in ("init", "run", "runs", "artifacts", "demo"):
        assert f"│ {command} " in result.out


# -- init --------------------------------------------------------------------------------------


def test_init_writes_a_project_that_runs(tmp_path: Path, env: dict[str, str]) -> None:
    script = shutil.which("shipyard", path=env["PATH"])
    assert script is not None
    root = tmp_path / "new"

    created = _run([script, "init", str(root), "--owner", "team-a"], tmp_path, env)
    assert created.code == 0, created.err
    assert f"Created project new in {root}." in created.out
    assert f"Next: cd {root} && shipyard run hello" in created.out
    assert {p.name for p in root.iterdir()} == {"shipyard.toml", "pipelines.py", ".gitignore"}
    assert ".shipyard/" in (root / ".gitignore").read_text(encoding="utf-8").splitlines()
    settings = load_settings(root, environ={})
    assert (settings.project.name, settings.project.owner) == ("new", "team-a")

    hello = _run([script, "run", "hello"], root, env)
    assert hello.code == 0, hello.err
    assert ": 2 steps" in hello.out
    assert re.search(r"✓ numbers +completed", hello.out)
    assert re.search(r"✓ total +completed", hello.out)
    assert re.search(r"Run [0-9a-f]{8} completed in", hello.out)

    again = _run([script, "init", str(root)], tmp_path, env)
    assert again.code == 2
    assert f"{root / 'shipyard.toml'} already exists" in again.err
    assert again.out == ""


def test_init_in_the_working_directory_keeps_existing_files(
    tmp_path: Path, shipyard: Shipyard
) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "pipelines.py").write_text("# my own\n", encoding="utf-8")

    result = shipyard("init", "--name", "custom", cwd=folder)

    assert result.code == 0, result.err
    assert (folder / "pipelines.py").read_text(encoding="utf-8") == "# my own\n"
    assert load_settings(folder, environ={}).project.name == "custom"


# -- run: parameters ---------------------------------------------------------------------------


def test_params_are_typed_by_the_pipeline_annotations(shipyard: Shipyard) -> None:
    run = run_json(
        shipyard,
        "tabular",
        "-p",
        "rows=5",
        "--param",
        "factor=2",
        "-p",
        "label=7",
        "-p",
        "verbose=yes",
    )

    assert run["params"] == {"rows": 5, "factor": 2.0, "label": "7", "verbose": True}
    assert [type(run["params"][k]) for k in ("rows", "factor", "label", "verbose")] == [
        int,
        float,
        str,
        bool,
    ]
    # The steps got the typed values: 5 rows of 0, 2, 4, 6, 8.
    assert json.loads(run["artifacts"]["summary.output"]["preview"]["value"]) == {
        "label": "7",
        "verbose": True,
        "rows": 5,
        "total": 20.0,
    }
    assert run["metrics"] == {"total": 20.0}


def _typed(rows, ratio, name, on, anything=None, items=()):  # type: ignore[no-untyped-def]
    """Annotations as objects, set below (this module's own are strings)."""


_typed.__annotations__ = {"rows": int, "ratio": float, "name": str, "on": bool, "items": list[int]}


def _stringly(rows: int, ratio: float, name: str, on: bool) -> None:
    """Annotations as strings, as ``from __future__ import annotations`` leaves them."""


@pytest.mark.parametrize("function", [_typed, _stringly])
@pytest.mark.parametrize(
    ("pair", "expected"),
    [
        ("rows=12", 12),
        ("rows=-3", -3),
        ("ratio=0.25", 0.25),
        ("ratio=3", 3.0),
        ("ratio=1e-3", 0.001),
        ("name=42", "42"),
        ("name=", ""),
        ("name=a=b", "a=b"),
        ("on=true", True),
        ("on=Yes", True),
        ("on=1", True),
        ("on=false", False),
        ("on=NO", False),
        ("on=0", False),
    ],
)
def test_parse_params_converts_by_annotation(
    function: Callable[..., Any], pair: str, expected: object
) -> None:
    parsed = parse_params([pair], inspect.signature(function))
    key = pair.split("=", 1)[0]
    assert parsed == {key: expected}
    assert type(parsed[key]) is type(expected)


@pytest.mark.parametrize(
    ("pair", "expected"),
    [
        ("anything=[1, 2]", [1, 2]),
        ('anything={"a": 1}', {"a": 1}),
        ("anything=3", 3),
        ("anything=plain words", "plain words"),
        ("items=[4, 5]", [4, 5]),
    ],
)
def test_parse_params_reads_other_values_as_json_or_text(pair: str, expected: object) -> None:
    assert parse_params([pair], inspect.signature(_typed)) == {pair.split("=")[0]: expected}


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("rows", "expected key=value, got 'rows'"),
        ("=3", "expected key=value, got '=3'"),
        ("rows=1.5", "rows must be int, got '1.5'"),
        ("ratio=fast", "ratio must be float, got 'fast'"),
        ("on=maybe", "on must be true or false, got 'maybe'"),
        ("colour=red", "no parameter 'colour'; its parameters are: rows, ratio, name, on"),
    ],
)
def test_parse_params_rejects_with_the_reason(pair: str, message: str) -> None:
    with pytest.raises(typer.BadParameter) as info:
        parse_params([pair], inspect.signature(_stringly))
    assert message in str(info.value)


def test_unknown_param_exits_2_listing_the_parameters(shipyard: Shipyard) -> None:
    result = shipyard("run", "tabular", "-p", "colour=red")
    assert result.code == 2
    assert "the pipeline has no parameter 'colour'" in result.err
    assert "its parameters are: rows, factor, label, verbose" in result.err
    assert "Traceback" not in result.err


def test_bad_int_exits_2_and_records_no_run(shipyard: Shipyard) -> None:
    result = shipyard("run", "tabular", "-p", "rows=three")
    assert result.code == 2
    assert "rows must be int, got 'three'" in result.err
    assert "Traceback" not in result.err
    assert shipyard("runs", "list", "--json").json == []


def test_unknown_pipeline_exits_2_listing_the_pipelines(shipyard: Shipyard) -> None:
    result = shipyard("run", "tabulr")
    assert result.code == 2
    assert "No pipeline named 'tabulr'" in result.err
    assert "Pipelines found in pipelines: fragile, tabular." in result.err


def test_usage_errors_exit_2_without_the_click_package(proj: Path, env: dict[str, str]) -> None:
    # Typer vendors click; shipyard must neither import nor need the `click` package.
    no_click = "import sys; sys.modules['click'] = None; from shipyard.cli import main; main()"
    for args, message in [
        (["run", "tabular", "--bogus"], "No such option: --bogus"),
        (["run", "tabular", "-p", "rows=x"], "rows must be int, got 'x'"),
        (["runs", "show"], "Missing argument"),
    ]:
        result = _run([sys.executable, "-c", no_click, *args], proj, env)
        assert result.code == 2, (args, result.err)
        assert message in result.err
        assert "Traceback" not in result.err


def test_pipeline_by_module_and_attribute(shipyard: Shipyard) -> None:
    run = run_json(shipyard, "pipelines:tabular", "-p", "rows=2")
    assert (run["pipeline"], run["status"], run["params"]["rows"]) == ("tabular", "completed", 2)


# -- run: outcomes -----------------------------------------------------------------------------


def test_run_json_is_the_whole_run(shipyard: Shipyard) -> None:
    result = shipyard("run", "tabular", "--seed", "17", "--json")

    assert result.code == 0, result.err
    run = result.json  # all of stdout is one JSON document
    assert RUN_ID.match(run["id"])
    assert (run["pipeline"], run["status"], run["seed"]) == ("tabular", "completed", 17)
    assert [step["name"] for step in run["steps"]] == ["table", "summary"]
    assert all(RUN_ID.match(step["id"]) for step in run["steps"])
    assert statuses(run) == {"table": "completed", "summary": "completed"}
    table, summary = run["steps"]
    assert summary["inputs"] == {"frame": table["outputs"]["output"]}
    assert sorted(run["artifacts"]) == ["summary.output", "table.output"]
    assert run["artifacts"]["table.output"]["preview"]["rows"] == 3
    assert run["metrics"] == {"total": 3.0}


def test_failed_step_exits_1_names_the_step_and_how_to_resume(
    proj: Path, shipyard: Shipyard
) -> None:
    failed = shipyard("run", "fragile")

    assert failed.code == 1
    run_id = re.search(r"Run ([0-9a-f]{8}) failed in", failed.out)
    assert run_id is not None, failed.out
    assert re.search(r"✓ start +completed", failed.out)
    assert re.search(r"✗ explode +failed", failed.out)
    assert "explode failed: ValueError: boom: [value] must be <= 0, got 2" in failed.out
    resume = f"shipyard run fragile --resume {run_id.group(1)}"
    assert f"Fix the cause, then continue with: {resume}" in failed.out

    # Following the advice works: fix the step, resume, and the finished step is reused.
    edit(proj / "pipelines.py", "if value > 0:", "if value > 100:")
    resumed = shipyard(*resume.split()[1:], "--json")
    assert resumed.code == 0, resumed.err
    assert resumed.json["resumed_from"].startswith(run_id.group(1))
    assert statuses(resumed.json) == {"start": "cached", "explode": "completed"}


def test_failed_run_as_json_exits_1(shipyard: Shipyard) -> None:
    result = shipyard("run", "fragile", "--json")
    assert result.code == 1
    run = result.json
    assert run["status"] == "failed"
    assert statuses(run) == {"start": "completed", "explode": "failed"}
    assert run["steps"][1]["error"] == "ValueError: boom: [value] must be <= 0, got 2"


def test_no_cache_reruns_every_step(shipyard: Shipyard) -> None:
    first = run_json(shipyard, "tabular")
    cached = run_json(shipyard, "tabular")
    fresh = run_json(shipyard, "tabular", "--no-cache")

    assert statuses(first) == {"table": "completed", "summary": "completed"}
    assert statuses(cached) == {"table": "cached", "summary": "cached"}
    assert [s["cached_from"] for s in cached["steps"]] == [s["id"] for s in first["steps"]]
    assert statuses(fresh) == {"table": "completed", "summary": "completed"}
    assert [s["cached_from"] for s in fresh["steps"]] == [None, None]
    assert fresh["metrics"] == cached["metrics"] == first["metrics"] == {"total": 3.0}


# -- runs list / show --------------------------------------------------------------------------


@pytest.fixture
def three_runs(shipyard: Shipyard) -> list[str]:
    """Ids of: tabular (completed), tabular rows=4 (completed), fragile (failed), oldest first."""
    ids = [run_json(shipyard, "tabular")["id"], run_json(shipyard, "tabular", "-p", "rows=4")["id"]]
    failed = shipyard("run", "fragile", "--json")
    assert failed.code == 1
    return [*ids, failed.json["id"]]


@pytest.mark.slow
def test_runs_list_table_json_and_filters(shipyard: Shipyard, three_runs: list[str]) -> None:
    first, second, failed = three_runs

    table = shipyard("runs", "list")
    assert table.code == 0
    rows = [line for line in table.out.splitlines() if re.match(r"│ [0-9a-f]{8} ", line)]
    assert [row.split()[1] for row in rows] == [failed[:8], second[:8], first[:8]]
    assert [row.split()[5] for row in rows] == ["failed", "completed", "completed"]
    assert "factor=1.0, label=base, rows=4, verbose=False" in rows[1]

    listed = shipyard("runs", "list", "--json").json
    assert [r["id"] for r in listed] == [failed, second, first]
    assert [r["status"] for r in listed] == ["failed", "completed", "completed"]
    assert listed[1]["params"] == {"rows": 4, "factor": 1.0, "label": "base", "verbose": False}

    only_failed = shipyard("runs", "list", "--status", "failed", "--json").json
    assert [(r["id"], r["pipeline"]) for r in only_failed] == [(failed, "fragile")]
    failed_table = shipyard("runs", "list", "--status", "failed").out
    assert failed[:8] in failed_table
    assert first[:8] not in failed_table
    assert second[:8] not in failed_table

    assert [r["id"] for r in shipyard("runs", "list", "--pipeline", "tabular", "--json").json] == [
        second,
        first,
    ]
    assert [r["id"] for r in shipyard("runs", "list", "--limit", "1", "--json").json] == [failed]
    none = shipyard("runs", "list", "--status", "crashed")
    assert none.code == 0
    assert "No runs match --status crashed" in none.out


def test_runs_list_without_runs(shipyard: Shipyard) -> None:
    result = shipyard("runs", "list")
    assert result.code == 0
    assert "No runs yet. Start one with: shipyard run PIPELINE" in result.out


def test_runs_show_by_prefix(history: History) -> None:
    run = history.runs["table"]

    shown = history.shipyard("runs", "show", run["id"][:6])

    assert shown.code == 0, shown.err
    out = shown.out
    assert f"Run {run['id']}  pipeline tabular  completed" in out
    assert "params factor=2.5, label=base, rows=4, verbose=False   seed 99" in out
    assert re.search(r"│ table +│ completed +│", out)
    assert re.search(r"│ summary +│ completed +│ .* │ frame +│ output +│", out)
    assert re.search(r"│ total +│ 15 +│ 1× +│", out)  # 2.5 * (0 + 1 + 2 + 3)
    table_id = run["artifacts"]["table.output"]["id"][:8]
    assert re.search(rf"│ table.output +│ {table_id} +│ DataFrame .*│ 4 rows × 2 columns", out)
    assert "summary.output" in out
    assert "packages " in out
    assert "polars=" in out


def test_runs_show_json(history: History) -> None:
    run = history.runs["base"]

    shown = history.shipyard("runs", "show", run["id"][:8], "--json")

    assert shown.code == 0, shown.err
    data = shown.json
    assert data["id"] == run["id"]
    assert (data["seed"], data["params"]["rows"]) == (3, 3)
    assert [s["name"] for s in data["steps"]] == ["table", "summary"]
    assert data["metrics"] == {"total": 3.0}
    packages = data["environment"]["packages"]
    assert set(packages) >= {"polars", "shipyard"}
    assert packages["polars"] == pl.__version__
    assert data["artifacts"]["table.output"]["materializer"] == "polars.parquet"


def test_runs_show_failed_run_shows_the_traceback(history: History) -> None:
    failed = history.runs["failed"]
    shown = history.shipyard("runs", "show", failed["id"][:8])
    assert shown.code == 0
    assert f"Run {failed['id']}  pipeline fragile  failed" in shown.out
    assert "explode failed:" in shown.out
    assert re.search(
        r"│ explode +│ failed +│ .*│ ValueError: boom: \[value\] must be <= 0, got 2 +│", shown.out
    )
    assert 'raise ValueError(f"boom: [value] must be <= 0, got {value}")' in shown.out


def test_values_that_look_like_markup_are_shown_as_they_are(history: History) -> None:
    shipyard = history.shipyard
    a, b = history.runs["markup_a"], history.runs["markup_b"]

    listed = shipyard("runs", "list")
    assert listed.code == 0, listed.err
    assert "label=[/], rows=3" in listed.out
    assert "label=[red]x, rows=3" in listed.out
    shown = shipyard("runs", "show", a["id"])
    assert shown.code == 0, shown.err
    assert "params factor=1.0, label=[/], rows=3, verbose=False" in shown.out
    diff = shipyard("runs", "diff", a["id"], b["id"])
    assert diff.code == 0, diff.err
    assert re.search(r"│ param +│ label +│ \[/\] +│ \[red\]x +│", diff.out)


@pytest.mark.parametrize("command", [["show"], ["reproduce"], ["diff", "0" * 32]])
def test_unknown_run_id_exits_2(history: History, command: list[str]) -> None:
    result = history.shipyard("runs", *command, "feedbeef")
    assert result.code == 2
    assert "No run matches" in result.err
    assert "shipyard runs list" in result.err
    assert "Traceback" not in result.err


# -- runs diff / reproduce ---------------------------------------------------------------------


def test_runs_diff_lists_param_and_metric_changes(history: History) -> None:
    shipyard = history.shipyard
    a, b = history.runs["base"], history.runs["rows4"]

    as_json = shipyard("runs", "diff", a["id"][:8], b["id"][:8], "--json")

    assert as_json.code == 0, as_json.err
    assert as_json.json == {
        "a": a["id"],
        "b": b["id"],
        "changes": [
            {"what": "param", "name": "rows", "a": 3, "b": 4},
            {"what": "metric", "name": "total", "a": 3.0, "b": 6.0},
        ],
    }
    table = shipyard("runs", "diff", a["id"], b["id"])
    assert table.code == 0
    assert re.search(r"│ param +│ rows +│ 3 +│ 4 +│", table.out)
    assert re.search(r"│ metric +│ total +│ 3.0 +│ 6.0 +│", table.out)


def test_runs_diff_of_identical_runs(history: History) -> None:
    shipyard = history.shipyard
    a, b = history.runs["base"], history.runs["again"]
    assert statuses(b) == {"table": "cached", "summary": "cached"}

    result = shipyard("runs", "diff", a["id"], b["id"])

    assert result.code == 0
    assert result.out.strip() == f"Runs {a['id'][:8]} and {b['id'][:8]} do not differ."
    assert shipyard("runs", "diff", a["id"], b["id"], "--json").json["changes"] == []


@pytest.mark.slow
def test_runs_reproduce_same_params_and_seed_and_warns_about_code(
    proj: Path, shipyard: Shipyard
) -> None:
    original = run_json(shipyard, "tabular", "-p", "rows=4", "-p", "label=orig", "--seed", "11")

    same = shipyard("runs", "reproduce", original["id"][:8], "--json")
    assert same.code == 0, same.err
    data = same.json
    assert data["original"] == original["id"]
    assert data["changes"] == []
    again = data["run"]
    assert again["id"] != original["id"]
    assert (again["params"], again["seed"]) == (original["params"], 11)
    assert statuses(again) == {"table": "completed", "summary": "completed"}  # not from cache

    edit(proj / "pipelines.py", "return value * factor", "return value * factor + 1")
    warned = shipyard("runs", "reproduce", original["id"][:8])
    assert warned.code == 0, warned.err
    warnings = [line for line in warned.out.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, warned.out
    assert warnings[0].startswith("warning: code step table was ")
    new_id = re.search(
        rf"Run ([0-9a-f]{{8}}) reproduced {original['id'][:8]}: completed", warned.out
    )
    assert new_id is not None, warned.out
    new = shipyard("runs", "show", new_id.group(1), "--json").json
    assert (new["params"], new["seed"]) == (original["params"], 11)
    assert new["metrics"] == {"total": 10.0}  # (0 + 1 + 2 + 3) + 4 with the edited helper

    as_json = shipyard("runs", "reproduce", original["id"], "--json").json
    assert [(c["what"], c["name"]) for c in as_json["changes"]] == [("code", "step table")]


def test_reproduce_a_failed_run_exits_1(shipyard: Shipyard) -> None:
    failed = shipyard("run", "fragile", "--seed", "2", "--json").json
    result = shipyard("runs", "reproduce", failed["id"][:8], "--json")
    assert result.code == 1
    assert (result.json["run"]["status"], result.json["run"]["seed"]) == ("failed", 2)


# -- artifacts ---------------------------------------------------------------------------------


@pytest.fixture
def tabular_run(shipyard: Shipyard) -> dict[str, Any]:
    """A run of its own, for tests that damage its artifacts."""
    return run_json(shipyard, "tabular", "-p", "rows=4", "-p", "factor=2.5")


EXPECTED_TABLE = pl.DataFrame({"id": [0, 1, 2, 3], "value": [0.0, 2.5, 5.0, 7.5]})


def test_artifacts_show_previews_a_dataframe(history: History) -> None:
    shipyard = history.shipyard
    artifact = history.runs["table"]["artifacts"]["table.output"]

    shown = shipyard("artifacts", "show", artifact["id"][:8])

    assert shown.code == 0, shown.err
    out = shown.out
    assert f"Artifact {artifact['id']}  output of step run" in out
    assert "type polars.dataframe.frame.DataFrame  materializer polars.parquet v" in out
    assert f"sha256 {artifact['digest']}" in out
    assert "\n4 rows\n" in out
    assert re.search(r"┃ id +┃ value +┃", out)
    assert re.search(r"┃ Int64 +┃ Float64 +┃", out)
    cells = [line.split() for line in out.splitlines() if re.match(r"│ \d", line)]
    assert cells == [["│", str(i), "│", str(v), "│"] for i, v in EXPECTED_TABLE.iter_rows()]

    as_json = shipyard("artifacts", "show", artifact["id"], "--json").json
    assert (as_json["id"], as_json["output_name"]) == (artifact["id"], "output")
    assert as_json["preview"]["rows"] == 4
    assert as_json["preview"]["columns"] == {"id": "Int64", "value": "Float64"}


def test_artifacts_export_writes_readable_parquet(tmp_path: Path, history: History) -> None:
    shipyard = history.shipyard
    artifact_id = history.runs["table"]["artifacts"]["table.output"]["id"]
    out_dir = tmp_path / "exported"
    out_dir.mkdir()

    into_folder = shipyard("artifacts", "export", artifact_id[:8], str(out_dir))

    assert into_folder.code == 0, into_folder.err
    written = out_dir / f"output-{artifact_id[:8]}.parquet"
    assert f"Wrote {written}" in into_folder.out
    assert [p.name for p in out_dir.iterdir()] == [written.name]
    assert_frame_equal(pl.read_parquet(written), EXPECTED_TABLE)

    named = tmp_path / "deep" / "er" / "table.parquet"
    to_file = shipyard("artifacts", "export", artifact_id, str(named))
    assert to_file.code == 0, to_file.err
    assert_frame_equal(pl.read_parquet(named), EXPECTED_TABLE)


def test_artifacts_lineage(history: History) -> None:
    shipyard = history.shipyard
    run = history.runs["table"]
    run_id = run["id"]
    table_id = run["artifacts"]["table.output"]["id"]
    summary_id = run["artifacts"]["summary.output"]["id"]

    of_table = shipyard("artifacts", "lineage", table_id[:8], "--json")
    assert of_table.code == 0, of_table.err
    graph = of_table.json
    assert graph["artifact"]["id"] == table_id
    assert (graph["made_by"]["name"], graph["made_by"]["run_id"]) == ("table", run_id)
    assert graph["made_by"]["inputs"] == {}
    assert [(u["name"], u["as"], u["run_id"]) for u in graph["used_by"]] == [
        ("summary", "frame", run_id)
    ]

    of_summary = shipyard("artifacts", "lineage", summary_id[:8], "--json").json
    assert of_summary["made_by"]["name"] == "summary"
    frame = of_summary["made_by"]["inputs"]["frame"]
    assert frame["artifact"]["id"] == table_id
    assert frame["made_by"]["name"] == "table"
    assert of_summary["used_by"] == []

    tree = shipyard("artifacts", "lineage", summary_id[:8]).out
    assert f"made by step summary in run {run_id[:8]} (completed)" in tree
    assert f"frame ← output {table_id[:8]} (polars.dataframe.frame.DataFrame)" in tree
    assert f"made by step table in run {run_id[:8]} (completed)" in tree
    used = shipyard("artifacts", "lineage", table_id[:8]).out
    assert "used by" in used
    assert f"summary (as frame) in run {run_id[:8]}" in used


def test_corrupted_or_deleted_object_is_not_exported(
    tmp_path: Path, shipyard: Shipyard, tabular_run: dict[str, Any]
) -> None:
    artifact_id = tabular_run["artifacts"]["table.output"]["id"]
    stored = Path(shipyard("artifacts", "show", artifact_id, "--json").json["uri"])
    stored.chmod(0o644)
    stored.write_bytes(stored.read_bytes() + b"junk")
    target = tmp_path / "out.parquet"

    corrupted = shipyard("artifacts", "export", artifact_id, str(target))
    assert corrupted.code == 2
    assert f"The object {stored.parent.name}" in corrupted.err
    assert "is corrupted" in corrupted.err
    assert "for inspection" in corrupted.err
    assert not target.exists()
    assert not stored.exists()  # set aside, so that the next identical write restores it

    again = shipyard("artifacts", "export", artifact_id, str(target))
    assert again.code == 2
    assert "was found corrupted and moved to" in again.err

    shutil.rmtree(stored.parents[2] / "corrupted")
    deleted = shipyard("artifacts", "export", artifact_id, str(target))
    assert deleted.code == 2
    assert "was deleted outside shipyard" in deleted.err
    assert not target.exists()


def test_a_corrupted_output_is_not_reused_from_cache(shipyard: Shipyard) -> None:
    first = run_json(shipyard, "tabular")
    artifact_id = first["artifacts"]["table.output"]["id"]
    stored = Path(shipyard("artifacts", "show", artifact_id, "--json").json["uri"])
    stored.chmod(0o644)
    stored.write_bytes(stored.read_bytes() + b"junk")

    again = run_json(shipyard, "tabular")

    assert statuses(again)["table"] == "completed"
    exported = shipyard("artifacts", "export", again["artifacts"]["table.output"]["id"], "t.pq")
    assert exported.code == 0, exported.err


@pytest.mark.parametrize("command", ["show", "lineage"])
def test_unknown_artifact_exits_2(history: History, command: str) -> None:
    result = history.shipyard("artifacts", command, "feedbeef")
    assert result.code == 2
    assert "No artifact matches 'feedbeef'" in result.err


# -- outside a project -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["run", "hello"],
        ["runs", "list"],
        ["runs", "show", "abc"],
        ["runs", "diff", "a", "b"],
        ["runs", "reproduce", "abc"],
        ["artifacts", "show", "abc"],
        ["artifacts", "export", "abc", "out"],
        ["artifacts", "lineage", "abc"],
    ],
)
def test_project_commands_outside_a_project_exit_2(
    tmp_path: Path, shipyard: Shipyard, command: list[str]
) -> None:
    nowhere = (tmp_path / "nowhere").resolve()
    nowhere.mkdir()
    result = shipyard(*command, cwd=nowhere)
    assert result.code == 2
    assert f"No shipyard.toml in {nowhere}" in result.err
    assert "Run `shipyard init`" in result.err
    assert "Traceback" not in result.err


# -- settings reach the command line ------------------------------------------------------------


def test_environment_settings_reach_the_run(proj: Path, shipyard: Shipyard) -> None:
    run = shipyard(
        "run", "tabular", "--json",
        SHIPYARD_RUNS_SEED="123",
        SHIPYARD_STORES_METADATA="sqlite:///elsewhere/meta.db",
    )  # fmt: skip
    assert run.code == 0, run.err
    assert run.json["seed"] == 123
    assert (proj / "elsewhere" / "meta.db").is_file()
    assert shipyard("runs", "list", "--json").json == []  # the default store has no runs
    moved = shipyard(
        "runs", "list", "--json", SHIPYARD_STORES_METADATA="sqlite:///elsewhere/meta.db"
    )
    assert [r["id"] for r in moved.json] == [run.json["id"]]


def test_bad_environment_setting_exits_2_naming_the_variable(shipyard: Shipyard) -> None:
    result = shipyard("runs", "list", SHIPYARD_EXECUTOR_MAX_WORKERS="many")
    assert result.code == 2
    assert "Environment variable SHIPYARD_EXECUTOR_MAX_WORKERS must be an integer" in result.err
    assert "got 'many'" in result.err


def test_project_dir_variable_from_anywhere(tmp_path: Path, proj: Path, shipyard: Shipyard) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = run_json(shipyard, "tabular")
    listed = shipyard("runs", "list", "--json", cwd=elsewhere, SHIPYARD_PROJECT_DIR=str(proj))
    assert listed.code == 0, listed.err
    assert [r["id"] for r in listed.json] == [run["id"]]


def test_broken_config_exits_2_with_file_and_line(proj: Path, shipyard: Shipyard) -> None:
    (proj / "shipyard.toml").write_text(
        '[project]\nname = "p"\n[executor]\nmax_workers = "four"\n', encoding="utf-8"
    )
    result = shipyard("run", "tabular")
    assert result.code == 2
    assert f"{proj / 'shipyard.toml'}:4: [executor] max_workers must be an integer" in result.err
    assert "got 'four' (a str)" in result.err
