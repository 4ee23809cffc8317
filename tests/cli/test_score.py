"""``shipyard score`` against a real project: a registered model scores a file, JSON, the
prediction log, and exit code 2 with the message for input that breaks the contract."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.linear_model import LogisticRegression

from shipyard import pipeline, step
from shipyard.core.project import Project
from shipyard.registry.registry import Registry
from shipyard.serving.log import read_log
from tests.helpers import CLI


def rows(seed: int, count: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=count)
    return pl.DataFrame(
        {
            "payment_id": [f"p{i}" for i in range(count)],
            "amount": rng.uniform(1, 200, count),
            "x1": x1,
            "label": (x1 + rng.normal(scale=0.5, size=count) > 0).astype(np.int64),
        }
    )


@step(cache=False)
def fit_model() -> LogisticRegression:
    data = rows(0, 300)
    return LogisticRegression().fit(data.select("amount", "x1"), data["label"].to_numpy())


@pipeline
def training():  # type: ignore[no-untyped-def]
    return fit_model()


@pytest.fixture
def model(project: Project) -> LogisticRegression:
    """Version 1 of model 'fraud' in the project; the fitted model itself is returned."""
    artifact = training().step_runs["fit_model"].outputs["output"]
    Registry(project).register(
        "fraud",
        artifact_id=artifact.id,
        evaluation={"threshold": 0.4},
        lineage={"input_schema": {"amount": "Float64", "x1": "Float64"}},
    )
    return Registry(project).load("fraud:1")  # type: ignore[no-any-return]


def shipyard(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "score", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_score_writes_the_registered_models_scores_and_decisions(
    project_dir: Path, model: LogisticRegression, cli_env: dict[str, str]
) -> None:
    frame = rows(5, 100)
    frame.write_parquet(project_dir / "in.parquet")

    done = shipyard(
        project_dir,
        cli_env,
        "fraud:1",
        "in.parquet",
        "out/scores.csv",
        "--keep",
        "payment_id",
        "--chunk-rows",
        "30",
        "--json",
    )

    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert {k: summary[k] for k in ("model", "version", "rows", "chunks", "files", "kept")} == {
        "model": "fraud",
        "version": "1",
        "rows": 100,
        "chunks": 4,
        "files": 1,
        "kept": ["payment_id"],
    }
    out = pl.read_csv(project_dir / "out" / "scores.csv")
    expected = model.predict_proba(frame.select("amount", "x1"))[:, 1]
    assert out["payment_id"].to_list() == frame["payment_id"].to_list()
    np.testing.assert_allclose(out["score"].to_numpy(), expected, rtol=1e-12)
    assert out["decision"].to_list() == (expected >= 0.4).tolist()
    assert summary["positives"] == int((expected >= 0.4).sum())


def test_score_prints_a_summary_and_logs_when_asked(
    project_dir: Path, model: LogisticRegression, cli_env: dict[str, str]
) -> None:
    rows(6, 20).write_parquet(project_dir / "in.parquet")

    done = shipyard(
        project_dir,
        cli_env,
        "fraud:1",
        "in.parquet",
        "out.parquet",
        "--keep",
        "payment_id",
        "--log",
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Scored 20 rows of 1 file(s) with fraud version 1 in ")
    assert done.stdout.rstrip().endswith("Wrote out.parquet; logged 20 predictions.")
    logged = read_log(project_dir / ".shipyard" / "predictions" / "fraud").collect()
    assert sorted(logged["request_id"].to_list()) == sorted(f"p{i}" for i in range(20))


def test_score_exits_2_with_the_message_for_a_bad_value_and_writes_nothing(
    project_dir: Path, model: LogisticRegression, cli_env: dict[str, str]
) -> None:
    frame = rows(7, 10).with_columns(pl.col("x1").cast(pl.String))
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 4).then(pl.lit("n/a")).otherwise("x1").alias("x1")
    )
    frame.write_csv(project_dir / "in.csv")

    done = shipyard(project_dir, cli_env, "fraud:1", "in.csv", "out.parquet")

    assert done.returncode == 2
    assert done.stdout == ""
    message = " ".join(done.stderr.split())
    assert message == (
        "error: in.csv: column 'x1', row 4 (counting from 0, header excluded): expected a "
        "number (Float64), got 'n/a'. Fix or remove those rows, or convert the column to "
        "Float64, and run again."
    )
    assert not (project_dir / "out.parquet").exists()


def test_score_exits_2_for_an_unknown_model_or_missing_input(
    project_dir: Path, model: LogisticRegression, cli_env: dict[str, str]
) -> None:
    rows(8, 3).write_parquet(project_dir / "in.parquet")

    unknown = shipyard(project_dir, cli_env, "nope:1", "in.parquet", "out.parquet")
    missing = shipyard(project_dir, cli_env, "fraud:1", "none-*.parquet", "out.parquet")
    given = shipyard(
        project_dir, cli_env, "fraud:1", "in.parquet", "out.parquet", "--features", "bogus"
    )

    assert (unknown.returncode, missing.returncode, given.returncode) == (2, 2, 2)
    assert "nope" in unknown.stderr
    assert "No input files match 'none-*.parquet'" in " ".join(missing.stderr.split())
    assert "bogus" in given.stderr
