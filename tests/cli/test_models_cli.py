"""``shipyard models …`` and ``shipyard evaluate`` against a real project: two trained
versions of a model, a gate from the project's objectives, promotion, refusal, rollback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from shipyard.cli._app import app
from shipyard.core.project import Project
from shipyard.registry.registry import Registry
from tests.conftest import REPO
from tests.helpers import CLI

pytestmark = pytest.mark.slow  # about 40 s: two training runs and ~30 CLI processes

OBJECTIVES = """
[objectives]
task = "binary"

[objectives.values]
true_positive = 50
false_positive = -10
false_negative = "-(amount + 10)"
true_negative = 0

[[objectives.thresholds]]
metric = "recall"
lower = 0.0

[[objectives.thresholds]]
metric = "roc_auc"
lower = 0.6

[[objectives.thresholds]]
metric = "roc_auc"
change = "absolute"
limit = -0.02

[[objectives.thresholds]]
metric = "value_per_1000"
change = "relative"
limit = -0.02
"""

PIPELINES = """
import polars as pl
from sklearn.linear_model import LogisticRegression

from shipyard import pipeline, step


@step
def train(path: str, flip: bool) -> LogisticRegression:
    frame = pl.read_parquet(path)
    labels = frame["label"].to_numpy()
    if flip:  # a deliberately worse model: it learns the opposite of the truth
        labels = 1 - labels
    return LogisticRegression().fit(frame.select("x1", "x2"), labels)


@pipeline
def training(path: str = "data/train.parquet", flip: bool = False):
    return train(path, flip)
"""


def rows(count: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=count), rng.normal(size=count)
    fraud = rng.random(count) < 1 / (1 + np.exp(-(2 * x1 - x2 - 2)))
    amount = rng.gamma(2.0, 50.0, count).round(2)
    return pl.DataFrame({"x1": x1, "x2": x2, "amount": amount, "label": fraud.astype(np.int8)})


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env.update(PYTHONPATH=str(REPO / "src"), COLUMNS="200", SHIPYARD_ACTOR="ci-bot")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def shipyard(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], cwd=cwd, env=environment(), capture_output=True, text=True, timeout=120
    )


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with fraud:1 (a sound model, its features in its lineage) and fraud:2
    (trained on flipped labels), both from `shipyard run`; no alias, no gate record."""
    root = tmp_path_factory.mktemp("models") / "proj"
    (root / "data").mkdir(parents=True)
    (root / "shipyard.toml").write_text(
        f'[project]\nname = "models-cli"\nowner = "tests"\n{OBJECTIVES}'
    )
    (root / "pipelines.py").write_text(PIPELINES)
    for name, count, seed in (("train", 2000, 1), ("valid", 1000, 2), ("test", 1000, 3)):
        rows(count, seed).write_parquet(root / "data" / f"{name}.parquet")
    artifacts = []
    for params in ([], ["-p", "flip=true"]):
        run = shipyard(root, "run", "training", *params, "--json")
        assert run.returncode == 0, run.stderr
        artifacts.append(as_json(run)["artifacts"]["train.output"]["id"])
    project = Project.discover(root)
    registry = Registry(project)
    registry.register("fraud", artifact_id=artifacts[0], lineage={"features": ["x1", "x2"]})
    registry.register("fraud", artifact_id=artifacts[1], description="flipped labels")
    project.metadata.close()
    return root


@pytest.fixture
def proj(trained: Path, tmp_path: Path) -> Path:
    """A copy of the trained project, so that each test starts from the same registry."""
    return Path(shutil.copytree(trained, tmp_path / "proj"))


def test_list_and_show_describe_the_versions(proj: Path) -> None:
    listed = shipyard(proj, "models", "list")
    shown = shipyard(proj, "models", "show", "fraud:1")
    machine = as_json(shipyard(proj, "models", "list", "--json"))
    detail = as_json(shipyard(proj, "models", "show", "fraud", "--json"))

    assert listed.returncode == 0, listed.stderr
    assert "fraud" in listed.stdout and "2, registered" in listed.stdout
    assert shown.returncode == 0, shown.stderr
    assert "fraud:1" in shown.stdout and "x1, x2" in shown.stdout
    assert "No evaluation recorded." in shown.stdout
    assert "No gate records" in shown.stdout
    [model] = machine
    assert (model["name"], model["latest_version"], model["aliases"]) == ("fraud", 2, {})
    assert detail["version"]["version"] == 2
    assert detail["version"]["description"] == "flipped labels"
    assert (detail["gates"], detail["history"]) == ([], [])


def test_unknown_references_exit_2_and_list_what_exists(proj: Path) -> None:
    no_model = shipyard(proj, "models", "show", "fruad")
    no_version = shipyard(proj, "models", "promote", "fraud:9")
    no_alias = shipyard(
        proj, "evaluate", "fraud@staging", "--data", "data/test.parquet", "--label", "label"
    )
    no_features = shipyard(
        proj, "evaluate", "fraud:2", "--data", "data/test.parquet", "--label", "label"
    )

    assert no_model.returncode == 2
    assert "No model named 'fruad' is registered. Registered models: fraud." in no_model.stderr
    assert no_version.returncode == 2
    assert "has no version 9. It has versions 1 to 2" in no_version.stderr
    assert no_alias.returncode == 2
    assert "has no alias 'staging'" in no_alias.stderr
    assert no_features.returncode == 2
    assert "--features a,b,c" in no_features.stderr
    assert "x1, x2, amount" in no_features.stderr


def test_the_gate_decides_promotion_and_force_and_rollback_are_audited(proj: Path) -> None:
    test_rows = ("--data", "data/test.parquet", "--validation", "data/valid.parquet")
    first = shipyard(
        proj, "evaluate", "fraud:1", *test_rows, "--label", "label", "--report", "out/fraud-1.html"
    )

    assert first.returncode == 0, first.stderr
    assert "no baseline: fraud@production is not set" in first.stdout
    assert "gate passed: 2 checks, 2 skipped" in first.stdout
    assert "value / 1,000 at 0.5" in first.stdout
    assert "<!DOCTYPE html>" in (proj / "out" / "fraud-1.html").read_text()
    [gate] = as_json(shipyard(proj, "models", "show", "fraud:1", "--json"))["gates"]
    assert gate["passed"] and gate["record"]["evaluation"]["threshold"] > 0
    assert f"--gate {gate['id']}" in first.stdout

    promoted = shipyard(proj, "models", "promote", "fraud:1", "--gate", gate["id"], "--json")
    assert promoted.returncode == 0, promoted.stderr
    assert as_json(promoted)["version"] == 1 and as_json(promoted)["gate_id"] == gate["id"]

    worse = shipyard(
        proj, "evaluate", "fraud:2", *test_rows, "--label", "label", "--features", "x1,x2", "--json"
    )
    assert worse.returncode == 1, worse.stderr
    report = as_json(worse)
    assert report["baseline"]["model"] == "fraud:1"
    assert report["gate"]["baseline"] == "fraud@production (fraud:1)"
    failed = {(c["kind"], c["metric"]) for c in report["gate"]["checks"] if not c["passed"]}
    assert {("value", "roc_auc"), ("change", "roc_auc")} <= failed
    shown = shipyard(proj, "models", "show", "fraud:2")
    assert "evaluation (gate" in shown.stdout and "failed" in shown.stdout

    refused = shipyard(proj, "models", "promote", "fraud:2")
    assert refused.returncode == 1
    assert "refused:" in refused.stderr and "failed, so it cannot be promoted" in refused.stderr
    assert "--force --reason" in refused.stderr
    no_reason = shipyard(proj, "models", "promote", "fraud:2", "--force")
    assert no_reason.returncode == 2
    forced = shipyard(
        proj, "models", "promote", "fraud:2", "--force", "--reason", "incident 42: [hotfix]"
    )
    assert forced.returncode == 0, forced.stderr
    assert "1 → 2 (forced: incident 42: [hotfix])" in forced.stdout

    back = shipyard(proj, "models", "rollback", "fraud", "--reason", "worse", "--json")
    assert back.returncode == 0, back.stderr
    assert (as_json(back)["action"], as_json(back)["version"]) == ("rollback", 1)
    history = as_json(shipyard(proj, "models", "show", "fraud:1", "--json"))["history"]
    assert [(e["action"], e["version"], e["forced"], e["reason"], e["actor"]) for e in history] == [
        ("set", 1, False, "", "ci-bot"),
        ("moved", 2, True, "incident 42: [hotfix]", "ci-bot"),
        ("rollback", 1, False, "worse", "ci-bot"),
    ]
    [model] = as_json(shipyard(proj, "models", "list", "--json"))
    assert model["aliases"] == {"production": 1}


def test_a_failed_gate_lists_the_failing_checks_first(proj: Path) -> None:
    shipyard(proj, "models", "promote", "fraud:1", "--force", "--reason", "first model")

    worse = shipyard(
        proj,
        "evaluate",
        "fraud:2",
        "--data",
        "data/test.parquet",
        "--label",
        "label",
        "--features",
        "x1,x2",
        "--no-record",
    )

    assert worse.returncode == 1, worse.stderr
    lines = worse.stdout.splitlines()
    verdicts = [line for line in lines if "✗ failed" in line or "✓ passed" in line]
    failing = [line for line in verdicts if "✗ failed" in line]
    assert any("value roc_auc" in line for line in failing)
    assert any("change roc_auc" in line for line in failing)
    assert verdicts == [*failing, *(line for line in verdicts if line not in failing)]
    assert "value recall" in verdicts[-1]  # declared first, passed: listed after the failures
    assert "gate failed against fraud@production (fraud:1):" in worse.stdout
    assert "not recorded (--no-record)" in worse.stdout
    assert as_json(shipyard(proj, "models", "show", "fraud:2", "--json"))["gates"] == []


def test_card_export_and_verify(proj: Path) -> None:
    printed = shipyard(proj, "models", "card", "fraud:1")
    files = shipyard(proj, "models", "card", "fraud:1", "--html", "out/c.html", "--md", "out/c.md")
    card = as_json(shipyard(proj, "models", "card", "fraud:1", "--json"))
    exported = shipyard(
        proj, "models", "export", "fraud:1", "out/bundle", "--sample", "data/test.parquet", "--json"
    )
    again = shipyard(proj, "models", "export", "fraud:1", "out/bundle")
    verified = shipyard(proj, "models", "verify", "out/bundle")
    scores = proj / "out" / "bundle" / "sample_scores.npy"
    np.save(scores, np.load(scores) + 0.01, allow_pickle=False)
    tampered = shipyard(proj, "models", "verify", "out/bundle", "--json")
    not_export = shipyard(proj, "models", "verify", "data")

    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.startswith("# Model card: fraud:1")
    assert files.returncode == 0, files.stderr
    assert (proj / "out" / "c.md").read_text() == printed.stdout
    assert "<html" in (proj / "out" / "c.html").read_text()
    assert (card["name"], card["version"], card["lineage"]["features"]) == (
        "fraud",
        1,
        ["x1", "x2"],
    )
    assert exported.returncode == 0, exported.stderr
    bundle = as_json(exported)
    assert {"model.skops", "model.json", "card.md", "sample.parquet"} <= set(bundle["files"])
    assert (bundle["model"]["features"], bundle["model"]["sample"]["rows"]) == (["x1", "x2"], 1000)
    assert again.returncode == 2
    assert "already exists and is not an empty folder" in again.stderr
    assert verified.returncode == 0, verified.stderr
    assert "✓ sample scores" in verified.stdout and "export verified" in verified.stdout
    assert tampered.returncode == 1
    result = as_json(tampered)
    assert not result["ok"]
    [check] = [c for c in result["checks"] if c["name"] == "sample scores"]
    assert not check["passed"] and "1000 of 1000 scores differ" in check["detail"]
    assert not_export.returncode == 2
    assert "is not a model export" in not_export.stderr


def test_register_takes_the_model_of_a_run_with_its_lineage(proj: Path) -> None:
    runs = as_json(shipyard(proj, "runs", "list", "--json"))
    first = min(runs, key=lambda r: r["started_at"])["id"]
    done = shipyard(
        proj,
        "models",
        "register",
        "churn",
        "--run",
        first[:8],
        "--step",
        "train",
        "--features",
        "x1,x2",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    version = as_json(done)
    assert (version["name"], version["version"]) == ("churn", 1)
    assert version["lineage"]["features"] == ["x1", "x2"]
    assert version["lineage"]["params"]["flip"] is False
    assert version["lineage"]["run"] == first

    wrong = shipyard(proj, "models", "register", "churn", "--run", first[:8], "--step", "fit")
    assert wrong.returncode == 2
    assert "has no output 'output' of a step 'fit'" in wrong.stderr + wrong.stdout


def test_help_lists_the_commands() -> None:
    models = CliRunner().invoke(app, ["models", "--help"])
    evaluate = CliRunner().invoke(app, ["evaluate", "--help"])

    assert models.exit_code == 0
    for verb in ("list", "show", "promote", "rollback", "card", "export", "verify"):
        assert f"│ {verb} " in models.output, verb
    assert evaluate.exit_code == 0
    for option in ("--data", "--label", "--features", "--against", "--report", "--no-record"):
        assert option in evaluate.output, option
