"""Ingestion as a step, and releasing quarantined rows after a fix."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pytest

from shipyard import pipeline
from shipyard.contracts.ingest import ingest
from shipyard.contracts.release import release_quarantine
from shipyard.core.project import Project
from shipyard.errors import DataInputError, StepFailedError
from tests.contracts.test_validation import BASE, frame
from tests.helpers import CLI


@pytest.fixture
def deliveries(project_dir: Path) -> Path:
    import yaml

    (project_dir / "contract.yaml").write_text(yaml.safe_dump(BASE))
    data = project_dir / "data"
    data.mkdir()
    frame(id=["a1", "a2", "a3", "a4"]).write_parquet(data / "day1.parquet")
    frame(id=["b1", "b2", "b3", "b4"], amount=[-1.0, 2.0, 3.0, 4.0]).write_parquet(
        data / "day2.parquet"
    )
    frame(id=["c1", "c2", "c3", "c4"]).rename({"amount": "amount_value"}).write_parquet(
        data / "day3.parquet"
    )
    return project_dir


@pipeline
def ingestion(strict: bool = True):
    return ingest("data/day*.parquet", "contract.yaml", fail_on_batch_error=strict)


def test_each_delivery_is_its_own_batch_and_the_others_flow_on(
    project: Project, deliveries: Path
) -> None:
    run = ingestion(strict=False)

    accepted = run.output
    assert sorted(accepted["id"].to_list()) == ["a1", "a2", "a3", "a4", "b2", "b3", "b4"]
    step_run = run.step_runs["ingest"]
    report = step_run.outputs["report"].load()
    assert (report["rows_in"], report["rows_accepted"], report["rows_quarantined"]) == (12, 7, 5)
    assert report["batches_failed"] == 1
    quarantine = step_run.outputs["quarantine"].load()
    assert quarantine.height == 5
    assert set(quarantine["_shipyard_contract_version"]) == {"1.0.0"}
    assert quarantine.filter(pl.col("id") == "b1")["_shipyard_reasons"].to_list() == [
        ["amount.minimum"]
    ]
    assert run.metrics["rows_quarantined"] == 5


def test_a_failed_batch_fails_the_run_and_keeps_report_and_quarantine(
    project: Project, deliveries: Path
) -> None:
    with pytest.raises(StepFailedError, match="1 of 3 deliveries failed contract") as caught:
        ingestion()
    step_run = caught.value.run.step_runs["ingest"]  # type: ignore[attr-defined]
    assert step_run.status == "failed"
    assert "column `amount` is required but missing" in (step_run.error or "")
    assert step_run.outputs["quarantine"].load().height == 5
    assert step_run.outputs["report"].load()["batches_failed"] == 1


def test_no_delivery_found_is_explained(project: Project, deliveries: Path) -> None:
    @pipeline
    def nothing():
        return ingest("data/none-*.parquet", "contract.yaml")

    run = nothing.run(raise_on_failure=False)
    assert "No delivery found" in (run.step_runs["ingest"].error or "")
    assert DataInputError.__name__ in (run.step_runs["ingest"].error or "")


def test_released_rows_pass_and_the_rest_stay_quarantined(tmp_path: Path) -> None:
    import yaml

    strict = tmp_path / "strict.yaml"
    strict.write_text(yaml.safe_dump(BASE))
    loose = dict(BASE, version="1.1.0")
    loose["schema"] = [dict(BASE["schema"][0])]
    loose["schema"][0]["properties"] = [dict(p) for p in BASE["schema"][0]["properties"]]
    loose["schema"][0]["properties"][1] = {
        "name": "amount",
        "logicalType": "number",
        "required": True,
        "logicalTypeOptions": {"minimum": -10},
    }
    fixed = tmp_path / "fixed.yaml"
    fixed.write_text(yaml.safe_dump(loose))
    from shipyard.contracts import Contract

    bad = frame(amount=[-1.0, -50.0, 2.0, 3.0])
    quarantine = tmp_path / "quarantine.parquet"
    Contract.load(strict).validate(
        bad, accepted_path=tmp_path / "ok.parquet", quarantine_path=quarantine
    )
    assert pl.read_parquet(quarantine).height == 2

    outcome = release_quarantine(quarantine, fixed, tmp_path / "released.parquet")

    assert (outcome["rows_in"], outcome["released"], outcome["remaining"]) == (2, 1, 1)
    assert pl.read_parquet(tmp_path / "released.parquet")["amount"].to_list() == [-1.0]
    assert pl.read_parquet(quarantine)["amount"].to_list() == [-50.0]
    with pytest.raises(DataInputError, match="exists; release into a new file"):
        release_quarantine(quarantine, fixed, tmp_path / "released.parquet")


def test_release_from_a_quarantine_artifact_by_id(
    project: Project, deliveries: Path, cli_env: dict[str, str]
) -> None:
    run = ingestion(strict=False)
    artifact = run.step_runs["ingest"].outputs["quarantine"].id
    shutil.copy(deliveries / "contract.yaml", deliveries / "same.yaml")
    done = subprocess.run(
        [
            *CLI,
            "contract",
            "release",
            artifact[:8],
            "--contract",
            "same.yaml",
            "--into",
            "released.parquet",
            "--json",
        ],
        cwd=deliveries,
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    outcome = json.loads(done.stdout)
    assert done.returncode == 1  # rows remain: nothing was fixed
    assert (outcome["rows_in"], outcome["released"], outcome["remaining"]) == (5, 0, 5)
    assert outcome["remaining_path"] is None  # an artifact is never rewritten
