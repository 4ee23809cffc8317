"""``shipyard features …`` against a real project: tables, JSON, exit codes."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
import subprocess
from pathlib import Path

import polars as pl
import pytest

from tests.helpers import CLI

DEFINITIONS = """
import datetime as dt

import polars as pl

from shipyard.features import Entity, FeatureView, RequestFeatures, Source

customer = Entity("customer", join_keys={"customer_id": pl.Int64})

spend = FeatureView(
    "spend",
    entities=[customer],
    source=Source.parquet("data/f.parquet"),
    schema={"amount": pl.Float64, "n_tx": pl.Int64},
    timestamp="ts",
    ttl=dt.timedelta(days=3650),
    join_keys={"customer_id": "cust"},
    description="What customers spend.",
    owner="risk",
)


def _ratio(frame):
    return frame.select((pl.col("amount_now") / pl.col("amount")).alias("ratio"))


ratio = RequestFeatures(
    "ratio",
    request_schema={"amount_now": pl.Float64},
    schema={"ratio": pl.Float64},
    transform=_ratio,
    uses=["spend:amount"],
)
"""


def shipyard(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "features", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "data").mkdir(parents=True)
    (root / "shipyard.toml").write_text(
        '[project]\nname = "feat"\nowner = "tests"\n\n[features]\ndefinitions = ["features"]\n'
    )
    (root / "features.py").write_text(DEFINITIONS)
    pl.DataFrame(
        {
            "cust": [17, 2, 17, 3],
            "ts": [dt.datetime(2026, 1, day) for day in (1, 2, 3, 4)],
            "amount": [1.0, 2.5, 3.0, 4.0],
            "n_tx": [1, 1, 2, 1],
        }
    ).write_parquet(root / "data" / "f.parquet")
    return root


def test_list_says_what_each_view_needs(proj: Path, cli_env: dict[str, str]) -> None:
    text = shipyard(proj, cli_env, "list")
    machine = shipyard(proj, cli_env, "list", "--json")

    assert text.returncode == 0, text.stderr
    assert "spend" in text.stdout
    assert "customer (customer_id)" in text.stdout
    assert "3650 d" in text.stdout
    assert "build, materialize" in text.stdout
    [view] = json.loads(machine.stdout)
    assert view["features"] == {"amount": "Float64", "n_tx": "Int64"}
    assert view["needs"] == ["build", "materialize"]
    assert view["offline"] is None


def test_show_prints_the_definition_and_an_unknown_view_exits_2(
    proj: Path, cli_env: dict[str, str]
) -> None:
    shown = shipyard(proj, cli_env, "show", "spend")
    unknown = shipyard(proj, cli_env, "show", "spent")

    assert shown.returncode == 0, shown.stderr
    for expected in ("What customers spend.", "customer_id (source column cust)", "Float64"):
        assert expected in shown.stdout
    assert "f = parquet:data/f.parquet" in shown.stdout
    assert "not materialized" in shown.stdout
    assert "shipyard features materialize spend" in shown.stdout
    assert unknown.returncode == 2
    assert "No feature view named 'spent'. Feature views: spend." in unknown.stderr


def test_materialize_summarizes_then_resumes_from_the_watermark(
    proj: Path, cli_env: dict[str, str]
) -> None:
    first = shipyard(proj, cli_env, "materialize")
    again = shipyard(proj, cli_env, "materialize", "spend", "--json")
    listed = shipyard(proj, cli_env, "list", "--json")

    assert first.returncode == 0, first.stderr
    assert "rows written" in first.stdout
    assert "2026-01-04 00:00:00" in first.stdout
    [result] = json.loads(again.stdout)
    assert (result["rebuilt"], result["rows_read"], result["entities"]) == (False, 0, 3)
    [view] = json.loads(listed.stdout)
    assert view["needs"] == []
    assert view["online"]["entities"] == 3


def test_bad_input_exits_2_with_what_was_expected(proj: Path, cli_env: dict[str, str]) -> None:
    bad_end = shipyard(proj, cli_env, "materialize", "--end", "2026-13-01")
    unknown = shipyard(proj, cli_env, "materialize", "spend", "nope")
    bad_key = shipyard(proj, cli_env, "get", "spend", "--key", "customer_id=c_1")

    assert bad_end.returncode == 2
    assert "2026-02-01T00:00:00" in bad_end.stderr
    assert "'2026-13-01'" in bad_end.stderr
    assert unknown.returncode == 2
    assert "No feature view named 'nope'" in unknown.stderr
    assert not (proj / ".shipyard" / "online.db").exists()  # nothing written before the check
    assert bad_key.returncode == 2
    assert "customer_id is Int64" in bad_key.stderr


def test_get_reads_online_values_for_found_and_unknown_entities(
    proj: Path, cli_env: dict[str, str]
) -> None:
    assert shipyard(proj, cli_env, "materialize").returncode == 0
    keys = ("--key", "customer_id=017", "--key", "customer_id=99")
    machine = shipyard(
        proj, cli_env, "get", "spend", "ratio", *keys, "--field", "amount_now=6", "--json"
    )
    text = shipyard(proj, cli_env, "get", "spend:amount", *keys)

    assert machine.returncode == 0, machine.stderr
    got = json.loads(machine.stdout)
    assert got["values"] == {
        "customer_id": [17, 99],
        "amount_now": [6.0, 6.0],
        "amount": [3.0, None],
        "n_tx": [2, None],
        "ratio": [2.0, None],
    }
    assert got["status"] == {"spend": ["found", "unknown"]}
    assert got["event_times"]["spend"][0].startswith("2026-01-03 00:00:00")
    assert got["age_seconds"]["amount"][1] is None
    assert text.returncode == 0, text.stderr
    rows = [line for line in text.stdout.splitlines() if "spend:amount" in line]
    assert "customer_id=17" in rows[0] and "3.0" in rows[0] and "found" in rows[0]
    assert "customer_id=99" in rows[1] and "null" in rows[1] and "unknown" in rows[1]


def test_skew_exits_1_when_the_online_store_was_tampered_with(
    proj: Path, cli_env: dict[str, str]
) -> None:
    assert shipyard(proj, cli_env, "materialize").returncode == 0
    clean = shipyard(proj, cli_env, "skew", "spend")
    table = f"fv_spend_{hashlib.sha256(b'spend').hexdigest()[:8]}"
    with sqlite3.connect(proj / ".shipyard" / "online.db") as conn:
        conn.execute(f'UPDATE "{table}" SET f0 = 999.5 WHERE entity_key = ?', ("17",))
    conn.close()
    skewed = shipyard(proj, cli_env, "skew", "spend", "--sample", "10")
    machine = shipyard(proj, cli_env, "skew", "spend", "--json")

    assert clean.returncode == 0, clean.stderr
    assert "sampled 3 of 3 entities" in clean.stdout
    assert "match" in clean.stdout
    assert skewed.returncode == 1, skewed.stderr
    row = next(line for line in skewed.stdout.splitlines() if "999.5" in line)
    assert "17" in row and "amount" in row and "3.0" in row
    assert "1 mismatch(es)" in skewed.stdout
    assert machine.returncode == 1
    assert json.loads(machine.stdout)["mismatches"] == [
        {"key": "17", "feature": "amount", "offline": 3.0, "online": 999.5}
    ]
