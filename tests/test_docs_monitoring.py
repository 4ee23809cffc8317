"""docs/monitoring.md tells the truth: its walkthrough's commands run verbatim in a small
project shaped like the fraud demo, its Python blocks run in order in that project and
print the ```text block shown under them, and its TOML table and drift table agree with
the code.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import re
import runpy
import shlex
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder
from typer.testing import CliRunner

from shipyard import pipeline, step
from shipyard.cli._app import app
from shipyard.core.project import Project
from shipyard.monitoring.drift import DEFAULT_THRESHOLDS
from shipyard.monitoring.gating import gate_version
from shipyard.monitoring.settings import parse_settings
from shipyard.registry.registry import Registry
from shipyard.serving.log import PredictionLog
from tests.conftest import REPO, write_project
from tests.test_docs_evaluation import fences, runnable, section, slug

DOC = REPO / "docs" / "monitoring.md"
MARK = "<<<docs-test block {}>>>"
LINK = re.compile(r"\]\(([^)#\s]+\.md)(?:#([^)\s]+))?\)")
FEATURES = ["amount", "merchant_category"]
START = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
MONITORING = """
[objectives]
task = "binary"
[objectives.values]
false_negative = "-(amount + 15)"
false_positive = -5.0

[monitoring]
model = "fraud@production"
every = "7d"
label = "is_chargeback"
label_key = "transaction_id"
min_label_coverage = 0.8

[[monitoring.alerts]]
name = "input-drift"
when = "dataset_drift is true"
severity = "warning"

[[monitoring.alerts]]
name = "value-drop"
when = "performance.value_per_1000 < -1000"
severity = "error"
"""


def _payments(rows: int, seed: int, shift: float = 0.0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(3.5 + shift, 1.0, rows)
    risk = 1 / (1 + np.exp(-(np.log(amount) - 5.0)))
    return pl.DataFrame(
        {
            "amount": amount,
            "merchant_category": rng.choice(["grocery", "travel", "online"], rows),
            "is_chargeback": (rng.random(rows) < risk).astype(np.int8),
        }
    )


@step(cache=False)
def training_rows() -> pl.DataFrame:
    return _payments(3000, 0)


@step(cache=False)
def train_model(rows: pl.DataFrame) -> Pipeline:
    shape = make_column_transformer(
        (FunctionTransformer(np.log1p), ["amount"]),
        (OneHotEncoder(handle_unknown="ignore"), ["merchant_category"]),
    )
    model = make_pipeline(shape, LogisticRegression())
    return model.fit(rows.select(FEATURES).to_pandas(), rows["is_chargeback"].to_numpy())


@pipeline
def training() -> Any:
    return train_model(training_rows())


def _demo_like(root: Path) -> None:
    """fraud@production gated and promoted, six weeks of logged payments (amounts shifting
    from the fourth week), and the first four weeks' chargebacks in a file."""
    project = Project.discover(root)
    try:
        registry = Registry(project)
        version = registry.register_run("fraud", training(), step="train_model", features=FEATURES)
        gated = gate_version(
            project, version, _payments(2000, 1), label="is_chargeback", features=FEATURES
        )
        registry.promote("fraud", version.version, reason="docs test", gate_id=gated.gate_id)
        model = registry.load("fraud@production")
        labels = []
        folder = project.settings.state_dir / "predictions" / "fraud"
        with PredictionLog(folder, model="fraud") as log:
            for day in range(42):
                batch = _payments(300, 100 + day, 0.0 if day < 21 else 0.6 * (day - 20) / 21)
                scores = model.predict_proba(batch.select(FEATURES))[:, 1]
                for i, (row, score) in enumerate(
                    zip(batch.iter_rows(named=True), scores, strict=True)
                ):
                    rid = f"tx-{day:02d}-{i:03d}"
                    log.append(
                        {
                            "request_id": rid,
                            "ts": START + dt.timedelta(days=day, seconds=i * 280),
                            "model_version": "1",
                            "score": float(score),
                            "decision": int(score >= 0.5),
                            "latency_ms": 3.0 + i % 7,
                            "inputs": {k: row[k] for k in FEATURES},
                        }
                    )
                    if day < 28:
                        labels.append(
                            {"transaction_id": rid, "is_chargeback": row["is_chargeback"]}
                        )
        (root / "data").mkdir()
        pl.DataFrame(labels).write_parquet(root / "data" / "chargebacks_2026-04-27.parquet")
    finally:
        project.metadata.close()


@pytest.fixture(scope="module")
def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = write_project(
        tmp_path_factory.mktemp("monitoring-doc") / "shipyard-demo",
        name="fraud-detection",
        extra=MONITORING,
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        for name in list(os.environ):
            if name.startswith("SHIPYARD_"):
                patch.delenv(name)
        _demo_like(root)
        yield root


def _commands(text: str) -> list[list[str]]:
    """The walkthrough's shipyard commands, but `shipyard demo` (the fixture stands in)."""
    walkthrough = section(text, "2. Five minutes with the fraud demo")
    (bash,) = [f.body for f in fences(walkthrough) if f.lang == "bash"]
    lines = [shlex.split(line) for line in bash.splitlines() if line.startswith("shipyard ")]
    return [words[1:] for words in lines if words[1:2] != ["demo"]]


def _glob(words: list[str]) -> list[str]:
    return [p for w in words for p in (sorted(str(g) for g in Path().glob(w)) if "*" in w else [w])]


@pytest.fixture(scope="module")
def walked(demo: Path, doc_text: str) -> list[Any]:
    runner = CliRunner()
    return [
        runner.invoke(app, _glob(words), env={"COLUMNS": "160"}) for words in _commands(doc_text)
    ]


def test_the_walkthrough_runs_and_exits_as_the_page_says(walked: list[Any], demo: Path) -> None:
    ingest, monitored = walked
    assert ingest.exit_code == 0, ingest.output
    assert "Stored 8,400 labels for fraud" in ingest.output
    assert monitored.exit_code == 1, monitored.output  # an error alert fires: exit 1
    for shown in ("window", "value/1000", "est.", "alert(s) firing", "value-drop"):
        assert shown in monitored.output
    report = (demo / "reports" / "monitoring.html").read_text(encoding="utf-8")
    for heading in ("Drift", "Scores", "Performance", "Business value", "Windows"):
        assert f"<h2>{heading}" in report


def test_every_block_prints_the_output_shown_under_it(
    walked: list[Any], demo: Path, doc_text: str
) -> None:
    blocks = runnable(doc_text)
    script = demo / "docs_monitoring_example.py"
    script.write_text(
        "\n".join(f"print({MARK.format(i)!r})\n{code}" for i, (code, _) in enumerate(blocks)),
        encoding="utf-8",
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        namespace = runpy.run_path(str(script))
    printed = re.split(r"^<<<docs-test block \d+>>>\n", out.getvalue(), flags=re.M)[1:]
    assert len(printed) == len(blocks) >= 5
    for index, (shown_text, (_, shown)) in enumerate(zip(printed, blocks, strict=True)):
        if shown:
            assert shown_text == shown, f"block {index + 1} printed something else"
    assert namespace["result"].exit_code == 1
    assert (demo / "reports" / "monitoring-api.html").is_file()
    namespace["project"].metadata.close()


def test_the_monitoring_table_is_valid_and_lists_every_key(doc_text: str) -> None:
    tables = [f.body for f in fences(doc_text) if f.lang == "toml"]
    (table,) = tables
    raw = tomllib.loads(table)["monitoring"]
    settings = parse_settings(raw, environ={"FRAUD_ALERT_WEBHOOK": "https://hooks.example.com/x"})
    assert settings.retrain is not None and settings.retrain.label == "is_fraud"
    assert settings.drift.rules["amount"].method == "psi"
    keys = section(doc_text, "3. The `[monitoring]` table")
    for key in raw:
        assert f"| `{key}" in keys, key


def test_the_drift_defaults_are_the_codes(doc_text: str) -> None:
    drift = section(doc_text, '4. Drift: which test, and when it says "drifted"')
    for method, threshold in DEFAULT_THRESHOLDS.items():
        assert f"`{method}`" in drift
        assert str(threshold) in drift


def test_the_links_resolve(doc_text: str) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "(docs/monitoring.md)" in readme
    links = LINK.findall(doc_text)
    assert any(target == "benchmarks.md" and anchor for target, anchor in links)
    for target, anchor in links:
        page = DOC.parent / target
        assert page.is_file(), target
        if anchor:
            headings = re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), re.M)
            assert anchor in {slug(h) for h in headings}, f"{target}#{anchor}"
