"""``shipyard demo`` trains the fraud model end to end, and every step is on record."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.helpers import CLI

STEPS = [
    "ingest",
    "load_labels",
    "build_training_set",
    "split_by_time",
    "train_model",
    "evaluate",
]


def shipyard(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 300):
    return subprocess.run(
        [*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.slow
def test_the_demo_trains_the_fraud_model_and_records_every_step(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    demo = tmp_path / "demo"
    done = shipyard(
        ["demo", str(demo), "--days", "45", "--rows-per-day", "2000", "--weeks", "4"],
        tmp_path,
        cli_env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "45 daily batches" in done.stdout
    # The broken delivery is explained and its bad rows quarantined; the renamed column of
    # the newest delivery is caught.
    assert "must be > 0" in done.stdout
    assert "FAILED the contract" in done.stdout
    assert "was it renamed?" in done.stdout
    assert "completed" in done.stdout
    # The first model passes the gate and goes to production; the weaker one is refused.
    assert "Promoted fraud:1 to production" in done.stdout
    assert "gate failed against fraud@production (fraud:1)" in done.stdout
    assert "Promotion refused" in done.stdout
    card = (demo / "reports" / "fraud-1-card.html").read_text()
    assert "production" in card and "payments-ml" in card
    assert "Gate" in (demo / "reports" / "fraud-1-evaluation.html").read_text()
    assert len(list((demo / "data").glob("transactions_*.parquet"))) == 45 + 4 * 7  # + replayed

    # Weeks in production: the cron runs alert once per episode, the chargebacks reveal the
    # value drop, and retraining runs the pipeline and the gate.
    assert "unknown-values fired" in done.stdout and "input-drift fired" in done.stdout
    assert "value-drop" in done.stdout and "Retraining (value-drop)" in done.stdout
    assert "gate" in done.stdout.split("Retraining (value-drop)")[1]
    assert "Monitoring" in (demo / "reports" / "monitoring.html").read_text()

    listed = json.loads(shipyard(["runs", "list", "--json"], demo, cli_env).stdout)
    training = [r for r in listed if r["pipeline"] == "training"]
    # the model that went to production, the weaker candidate the gate refused, and the
    # candidate that monitoring retrained
    assert [r["status"] for r in training] == ["completed"] * 3
    assert {r["pipeline"] for r in listed} == {"training", "deliveries"}
    first = min(training, key=lambda r: r["started_at"])
    shown = json.loads(shipyard(["runs", "show", first["id"][:8], "--json"], demo, cli_env).stdout)
    assert [s["name"] for s in shown["steps"]] == STEPS
    assert {s["status"] for s in shown["steps"]} == {"completed"}
    assert shown["metrics"]["roc_auc"] > 0.85
    assert shown["artifacts"]["train_model.output"]["materializer"] == "skops"
    assert shown["environment"]["packages"]["scikit-learn"]

    again = json.loads(shipyard(["run", "training", "--json"], demo, cli_env).stdout)
    statuses = {s["name"]: s["status"] for s in again["steps"]}
    # Loaders always read the files; what follows is a cache hit. (The replayed weeks'
    # chargebacks joined the label feed, so the training set is rebuilt, to equal bytes.)
    assert statuses == {
        **dict.fromkeys(STEPS, "cached"),
        "ingest": "completed",
        "load_labels": "completed",
        "build_training_set": statuses["build_training_set"],
    }
    assert again["metrics"]["roc_auc"] == shown["metrics"]["roc_auc"]
