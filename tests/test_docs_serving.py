"""docs/serving.md tells the truth, checked against real servers on 127.0.0.1.

The page's feature definitions are run and materialized into a real online store; a
model over them is served by two uvicorn servers (one open, one with a token). Then:
every curl command is run by bash and its answer compared with the JSON block under it
(``"<...>"`` strings stand for any string, ``# answers NNN`` gives the status); every
Python block runs, in order, as one script, and prints what is written next to it; the
option tables are the CLI's options; the metrics table is what ``/metrics`` exposes.

Marks before a block: ``<!-- docs-test: skip ... -->`` (not run), ``after shutdown`` (run
once the servers stopped and flushed the log), ``timeout`` and ``not ready`` (the
answers of a slow and of a not yet started server).

The served model is built as ``load_served`` builds a registered one (``signature_of``
over the project's feature store, then ``_served``), with a hand-written rule in place of
a fitted estimator, so that the scores on the page are short numbers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import runpy
import subprocess
import time
import warnings
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import typer

from shipyard.cli._app import app as cli_app
from shipyard.core.project import Project
from shipyard.features import Entity, FeatureStore, FeatureView, RequestFeatures
from shipyard.serving.app import create_app
from shipyard.serving.log import PredictionLog
from shipyard.serving.model import ServedModel, _served, signature_of
from tests.conftest import REPO
from tests.serving.live import running

with warnings.catch_warnings():
    from starlette.exceptions import StarletteDeprecationWarning

    warnings.filterwarnings(
        "ignore", "Using `httpx` with `starlette.testclient`", StarletteDeprecationWarning
    )
    from starlette.testclient import TestClient

DOC = REPO / "docs" / "serving.md"
DOC_ADDRESS = "127.0.0.1:8000"
TOKEN = "docs-token"
MARK = "<!-- docs-test:"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
PRINTED = re.compile(r"^print\(.*\)  # (.*)$", re.MULTILINE)
STATUS = re.compile(r"# answers (\d{3})\s*$")
INPUTS = ["amount", "count_7d", "amount_vs_usual", "account_age_days"]
TRAINING_TYPES: dict[str, pl.DataType] = {"amount": pl.Float64(), "account_age_days": pl.Int64()}


@dataclass
class Block:
    lang: str
    code: str
    mark: str  # what follows "docs-test:" in the comment just before, or ""


@dataclass
class Servers:
    open: str
    guarded: str
    log_dir: Path


class Rule:
    """A stand-in for a fitted classifier: a readable score of the four inputs."""

    def predict_proba(self, matrix: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        amount, count, ratio, age = np.nan_to_num(matrix.astype(np.float64)).T
        positive = (0.02 + 0.02 * count + 0.1 * ratio + 0.25 * (age < 30)).round(4)
        del amount  # the rule ignores it; the model still takes it as an input
        return np.column_stack([1 - positive, positive])


def rule_scores(frame: pl.DataFrame) -> np.ndarray[Any, Any]:
    """What the served model's score function does: the positive class's probability."""
    scores: np.ndarray[Any, Any] = Rule().predict_proba(frame.select(INPUTS).to_numpy())[:, 1]
    return scores


def blocks(text: str) -> list[Block]:
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip().splitlines()
        mark = ""
        if before and before[-1].startswith(MARK):
            mark = before[-1][len(MARK) :].removesuffix("-->").strip()
        found.append(Block(match.group(1), match.group(2), mark))
    return found


def is_definitions(block: Block) -> bool:
    return block.lang == "python" and "FeatureView(" in block.code


def curl_examples(text: str) -> list[tuple[str, Block | None]]:
    """Each runnable shell block with curl, and the JSON block answering it (or None)."""
    found = blocks(text)
    examples = []
    for position, block in enumerate(found):
        if block.lang != "bash" or "curl " not in block.code or block.mark:
            continue
        if "shipyard " in block.code:
            continue
        following = found[position + 1] if position + 1 < len(found) else None
        answer = following if following is not None and following.lang == "json" else None
        examples.append((block.code, answer))
    return examples


def matches(expected: Any, actual: Any) -> bool:
    """Equal, with ``"<...>"`` strings matching any string and floats compared closely."""
    if isinstance(expected, str) and expected.startswith("<") and expected.endswith(">"):
        return isinstance(actual, str)
    if isinstance(expected, float) and isinstance(actual, float):
        return actual == pytest.approx(expected, rel=1e-12)
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and list(expected) == list(actual)
            and all(matches(expected[key], actual[key]) for key in expected)
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(matches(e, a) for e, a in zip(expected, actual, strict=True))
        )
    return type(expected) is type(actual) and bool(expected == actual)


def table_after(text: str, header: str) -> list[list[str]]:
    assert header in text, f"docs/serving.md no longer has the table {header!r}"
    lines = text[text.index(header) :].splitlines()[2:]
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return rows


@pytest.fixture
def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def write_payments(folder: Path) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    folder.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(
        {
            "customer_id": ["c_17", "c_17", "c_17", "c_42"],
            "event_timestamp": [now - dt.timedelta(hours=h) for h in (3, 2, 1, 5)],
            "amount": [40.0, 60.0, 50.0, 15.0],
        }
    ).write_parquet(folder / "payments_1.parquet")


def served_model(project: Project, doc_text: str, tmp_path: Path) -> ServedModel:
    """The page's definitions, materialized, and a model over them as load_served builds it."""
    (definitions,) = [block for block in blocks(doc_text) if is_definitions(block)]
    script = tmp_path / "docs_serving_features.py"  # a file, so the transform has a source
    script.write_text(definitions.code, encoding="utf-8")
    namespace = runpy.run_path(str(script))
    kinds = (Entity, FeatureView, RequestFeatures)
    found = [value for value in namespace.values() if isinstance(value, kinds)]
    write_payments(project.root / "data")
    store = FeatureStore(found, project=project)
    store.materialize()
    signature = signature_of(INPUTS, TRAINING_TYPES, store)
    return _served("fraud", "3", "fraud:3", rule_scores, signature, store, 0.31)


@pytest.fixture
def model(project: Project, doc_text: str, tmp_path: Path) -> Iterator[ServedModel]:
    found = served_model(project, doc_text, tmp_path)
    yield found
    features = found.features
    store = getattr(features, "store", None)
    if store is not None:
        store.online.close()


@pytest.fixture
def servers(project: Project, model: ServedModel) -> Iterator[Servers]:
    log_dir = Path(project.settings.state_dir) / "predictions" / "fraud"
    log = PredictionLog(log_dir, model="fraud", flush_seconds=0.1)
    with ExitStack() as stack:
        open_address = stack.enter_context(running(create_app(model, log=log)))
        guarded = stack.enter_context(running(create_app(model, token=TOKEN)))
        yield Servers(open_address, guarded, log_dir)


def run_shell(command: str, address: str, status: bool, home: Path) -> tuple[str, int | None]:
    env = {**os.environ, "SHIPYARD_API_TOKEN": TOKEN}
    if status:  # curl reads -w from the config file: the status after the body
        (home / ".curlrc").write_text('write-out = "\\n%{http_code}"\n', encoding="utf-8")
        env["CURL_HOME"] = str(home)
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command.replace(DOC_ADDRESS, address)],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, f"{command}\nfailed: {done.stderr}"
    if not status:
        return done.stdout, None
    body, _, code = done.stdout.rpartition("\n")
    return body, int(code)


@pytest.mark.slow
def test_every_curl_example_answers_what_the_page_shows(
    servers: Servers, doc_text: str, tmp_path: Path
) -> None:
    examples = curl_examples(doc_text)
    checked = 0
    for command, answer in examples:
        address = servers.guarded if "Authorization" in command else servers.open
        expected_status = STATUS.search(command.strip())
        body, status = run_shell(command, address, expected_status is not None, tmp_path)
        if expected_status is not None:
            assert status == int(expected_status[1]), f"{command}\nanswered {status}: {body}"
        if answer is None:
            continue
        expected, actual = json.loads(answer.code), json.loads(body)
        assert matches(expected, actual), f"{command}\nanswered:\n{json.dumps(actual, indent=2)}"
        checked += 1
    assert checked == 20
    assert len(examples) == checked + 1  # /metrics | grep: only its exit code is checked


@pytest.mark.slow
def test_the_python_examples_run_and_print_what_the_page_shows(
    servers: Servers, doc_text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runnable = [
        block
        for block in blocks(doc_text)
        if block.lang == "python" and not is_definitions(block) and not block.mark
    ]
    after = [block for block in blocks(doc_text) if block.mark == "after shutdown"]
    live = tmp_path / "docs_serving_calls.py"
    live.write_text(
        "\n".join(block.code for block in runnable).replace(DOC_ADDRESS, servers.open),
        encoding="utf-8",
    )
    namespace = runpy.run_path(str(live))
    time.sleep(0.3)  # the log flushes every 0.1 s; the page reads it after a shutdown
    later = tmp_path / "docs_serving_log.py"
    later.write_text("\n".join(block.code for block in after), encoding="utf-8")
    runpy.run_path(str(later), init_globals=namespace)

    expected = [c for b in runnable + after for c in PRINTED.findall(b.code)]
    printed = capsys.readouterr().out.splitlines()
    assert len(expected) == 7
    assert printed == expected


def test_the_slow_and_the_unready_answers_are_the_servers(
    model: ServedModel, doc_text: str
) -> None:
    def slow(frame: pl.DataFrame) -> np.ndarray[Any, Any]:
        time.sleep(0.5)
        return model.score(frame)

    record = {"customer_id": "c_17", "amount": 120.0, "account_age_days": 400}
    marked = {b.mark: json.loads(b.code) for b in blocks(doc_text) if b.lang == "json" and b.mark}
    slow_model = dataclasses.replace(model, score=slow)
    with TestClient(create_app(slow_model, timeout_s=0.25)) as client:
        timed_out = client.post("/predict", json=record)
    unready = TestClient(create_app(model)).post("/predict", json=record)  # no lifespan

    assert timed_out.status_code == unready.status_code == 503
    assert timed_out.json() == marked["timeout"]
    assert unready.json() == marked["not ready"]


def cli_options(command: str) -> dict[str, Any]:
    """Each option of ``shipyard COMMAND`` (both names of a flag) and its parameter."""
    group = typer.main.get_command(cli_app)
    params = group.commands[command].params  # type: ignore[attr-defined]
    return {
        name: param
        for param in params
        for name in (*param.opts, *param.secondary_opts)
        if name.startswith("--") and name != "--help"
    }


def test_the_option_tables_are_the_clis_options(doc_text: str) -> None:
    for command, header in (
        ("serve", "| option | default | meaning |\n| --- | --- | --- |\n| `--host`"),
        ("score", "| option | default | meaning |\n| --- | --- | --- |\n| `MODEL`"),
    ):
        options = cli_options(command)
        table = table_after(doc_text, header)
        named = {name for row in table for name in re.findall(r"--[\w-]+", row[0])}
        assert named == set(options), command
        for row in table:
            names = re.findall(r"--[\w-]+", row[0])
            if not names or not row[1].startswith("`"):
                continue
            param, shown = options[names[0]], row[1].strip("`")
            default = param.default
            if isinstance(default, bool):
                assert shown == names[0 if default else 1], row
            elif default is not None and not isinstance(default, list):
                assert shown == str(getattr(default, "value", default)), row


def test_the_metrics_table_is_what_the_server_exposes(
    model: ServedModel, doc_text: str, tmp_path: Path
) -> None:
    log = PredictionLog(tmp_path / "predictions", model="fraud")
    with TestClient(create_app(model, log=log, shadow=model)) as client:
        client.post("/predict", json={"customer_id": "c_17", "amount": 1.0, "account_age_days": 9})
        text = client.get("/metrics").text
        for _ in range(100):  # the shadow model scores after the answer
            if "shipyard_shadow_predictions_total{" in text:
                break
            time.sleep(0.02)
            text = client.get("/metrics").text
    exposed = dict(re.findall(r"^# TYPE (shipyard_\w+) (\w+)$", text, re.MULTILINE))
    exposed = {
        name: kind
        for name, kind in exposed.items()
        if not name.endswith("_created")  # prometheus_client's creation times
    }
    table = table_after(doc_text, "| metric | type | labels | what it counts |")
    documented = {row[0].strip("`"): row[1] for row in table}
    assert documented == exposed
    for row in table:
        labels = re.findall(r"`(\w+)`", row[2])
        name = row[0].strip("`")
        series = re.findall(rf"^{name}(?:_total|_bucket)?\{{([^}}]*)\}}", text, re.MULTILINE)
        got = {re.sub(r"=.*", "", pair) for line in series for pair in line.split(",")}
        assert got - {"le"} == set(labels), name
