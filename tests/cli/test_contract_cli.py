"""``shipyard contract …`` as CI uses it: exit codes, JSON, files written."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import polars as pl
import pytest
import yaml

from tests.contracts.test_validation import BASE, frame
from tests.helpers import CLI


def shipyard(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "contract.yaml").write_text(yaml.safe_dump(BASE))
    frame(id=["a", "b", "c", "d"]).write_parquet(tmp_path / "good.parquet")
    frame(amount=[-1.0, 2.0, 3.0, 4.0]).write_parquet(tmp_path / "bad.parquet")
    frame().with_columns(pl.lit(1).alias("surprise")).write_parquet(tmp_path / "drift.parquet")
    (tmp_path / "empty.parquet").write_bytes(b"")
    return tmp_path


def test_check_exit_codes_tell_ci_what_happened(workdir: Path, cli_env: dict[str, str]) -> None:
    good = shipyard(workdir, cli_env, "contract", "check", "contract.yaml", "good.parquet")
    bad = shipyard(workdir, cli_env, "contract", "check", "contract.yaml", "bad.parquet")
    unusable = shipyard(workdir, cli_env, "contract", "check", "contract.yaml", "empty.parquet")

    assert good.returncode == 0, good.stderr
    assert "4 rows in = 4 accepted + 0 quarantined" in good.stdout
    assert bad.returncode == 1
    assert "`amount` must be >= 0: 1 row breaks it (first: -1.0 in row 1)" in bad.stdout
    assert unusable.returncode == 2
    assert "is empty (0 bytes)" in unusable.stderr


def test_check_writes_quarantine_and_html_and_json(workdir: Path, cli_env: dict[str, str]) -> None:
    done = shipyard(
        workdir,
        cli_env,
        "contract",
        "check",
        "contract.yaml",
        "bad.parquet",
        "--quarantine",
        "q.parquet",
        "--report",
        "r.html",
        "--json",
    )
    report = json.loads(done.stdout)

    assert done.returncode == 1
    assert (report["rows_in"], report["rows_accepted"], report["rows_quarantined"]) == (4, 3, 1)
    assert report["counts_add_up"] is True
    quarantined = pl.read_parquet(workdir / "q.parquet")
    assert quarantined["_shipyard_reasons"].to_list() == [["amount.minimum"]]
    html = (workdir / "r.html").read_text().replace("<wbr>", "")
    assert "amount.minimum" in html
    assert "<svg" in html


def test_check_reports_new_columns_as_schema_drift(workdir: Path, cli_env: dict[str, str]) -> None:
    done = shipyard(workdir, cli_env, "contract", "check", "contract.yaml", "drift.parquet")
    assert done.returncode == 0
    assert "Schema drift: columns not in the contract: surprise" in done.stdout


def test_lint_accepts_a_good_contract_and_names_a_broken_element(
    workdir: Path, cli_env: dict[str, str]
) -> None:
    good = shipyard(workdir, cli_env, "contract", "lint", "contract.yaml")
    assert good.returncode == 0, good.stderr
    assert "valid ODCS v3" in good.stdout
    assert "no team" in good.stdout

    broken = dict(
        BASE,
        schema=[
            {
                "name": "t",
                "properties": [
                    {
                        "name": "x",
                        "logicalType": "number",
                        "logicalTypeOptions": {"minimum": 5, "maximum": 1},
                    }
                ],
            }
        ],
    )
    (workdir / "broken.yaml").write_text(yaml.safe_dump(broken))
    bad = shipyard(workdir, cli_env, "contract", "lint", "broken.yaml")
    assert bad.returncode == 2
    assert "schema.t.properties.x.logicalTypeOptions: contradicts itself" in bad.stderr


def test_diff_exits_1_on_a_breaking_change(workdir: Path, cli_env: dict[str, str]) -> None:
    tighter = yaml.safe_load((workdir / "contract.yaml").read_text())
    tighter["version"] = "2.0.0"
    tighter["schema"][0]["properties"][1]["logicalTypeOptions"]["maximum"] = 500
    (workdir / "tighter.yaml").write_text(yaml.safe_dump(tighter))

    same = shipyard(workdir, cli_env, "contract", "diff", "contract.yaml", "contract.yaml")
    breaking = shipyard(
        workdir, cli_env, "contract", "diff", "contract.yaml", "tighter.yaml", "--json"
    )

    assert same.returncode == 0
    assert breaking.returncode == 1
    changes = json.loads(breaking.stdout)
    assert any(c["kind"] == "breaking" and "maximum" in c["path"] for c in changes["changes"])


def test_infer_drafts_a_contract_that_accepts_its_data(
    workdir: Path, cli_env: dict[str, str]
) -> None:
    done = shipyard(
        workdir,
        cli_env,
        "contract",
        "infer",
        "good.parquet",
        "-o",
        "draft.yaml",
        "--name",
        "transactions",
    )
    assert done.returncode == 0, done.stderr
    checked = shipyard(workdir, cli_env, "contract", "check", "draft.yaml", "good.parquet")
    assert checked.returncode == 0, checked.stdout
    again = shipyard(workdir, cli_env, "contract", "infer", "good.parquet", "-o", "draft.yaml")
    assert again.returncode == 2
    assert "exists" in again.stderr
