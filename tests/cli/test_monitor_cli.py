"""``shipyard labels ingest`` and ``shipyard monitor`` as a user runs them: a subprocess in a
project with a served model's week of traffic in its prediction log, alerts POSTed to a real
HTTP receiver on 127.0.0.1, and the mistakes a user makes answered with exit code 2."""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import CLI
from tests.monitoring.conftest import DAYS, MODEL, PER_DAY, SHIFT_DAY, World, build_world

SINCE, UNTIL = "2026-03-02", "2026-03-08"
RANGE = ["--since", SINCE, "--until", UNTIL]
MONITORING = f"""
[monitoring]
model = "{MODEL}@production"
label_key = "transaction_id"

[[monitoring.alerts]]
name = "amount-drift"
when = "drift.amount.drifted is true"
severity = "error"
description = "Payments no longer look like the training data."
"""
BODY_KEYS = {
    "schema",
    "project",
    "model",
    "alert",
    "severity",
    "status",
    "when",
    "value",
    "at",
    "episode",
    "message",
    "retrain",
}


@pytest.fixture
def world(project_dir: Path) -> Iterator[World]:
    found = build_world(project_dir, MONITORING)
    yield found
    if found.project._metadata is not None:
        found.project._metadata.close()


def shipyard(
    env: dict[str, str], cwd: Path, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def configure(world: World, extra: str) -> None:
    """Append ``extra`` to the project's ``[monitoring]`` settings."""
    world.reopen(MONITORING + extra)


class Receiver:
    """An HTTP server on 127.0.0.1 that records each POST and answers with the next status
    of ``answers`` (200 once they run out)."""

    def __init__(self, answers: list[int] | None = None) -> None:
        self.answers = list(answers or [])
        self.requests: list[tuple[int, dict[str, str], dict[str, Any]]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = receiver.answers.pop(0) if receiver.answers else 200
                receiver.requests.append((status, dict(self.headers), body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                """Quiet: the test reads what arrived, not the server's log."""

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts?token=s3cret"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def accepted(self) -> list[dict[str, Any]]:
        return [body for status, _, body in self.requests if status == 200]


@contextlib.contextmanager
def silent_listener() -> Iterator[str]:
    """A URL whose server takes connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/alerts"


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/alerts"


# -- labels ingest -------------------------------------------------------------------------


def test_labels_ingest_prints_stored_duplicates_and_unknown_ids(
    world: World, cli_env: dict[str, str]
) -> None:
    first_day = world.traffic.head(PER_DAY).select("transaction_id", "label")
    lines = [f"{tx},{label}" for tx, label in first_day.iter_rows()]
    lines += [lines[0], "tx-nobody-1,1", "tx-nobody-2,0"]
    source = world.root / "chargebacks.csv"
    source.write_text("transaction_id,label\n" + "\n".join(lines) + "\n", encoding="utf-8")
    shown = shipyard(cli_env, world.root, "labels", "ingest", str(source))
    assert shown.returncode == 0, shown.stderr
    assert f"Stored {PER_DAY + 2:,} labels for payments from {source}" in shown.stdout
    assert "1 identical duplicates kept once" in shown.stdout
    assert "2 ids not in the prediction log" in shown.stdout
    assert "tx-nobody-1" in shown.stdout
    again = shipyard(cli_env, world.root, "labels", "ingest", str(source), "--json")
    assert again.returncode == 0, again.stderr
    counts = json.loads(again.stdout)
    assert counts["model"] == MODEL
    assert (counts["stored"], counts["duplicates"], counts["unknown"]) == (PER_DAY + 2, 1, 2)
    assert counts["unchanged"] == PER_DAY + 2 and counts["updated"] == 0
    # the labels now give realised performance for the first day
    result = shipyard(cli_env, world.root, "monitor", *RANGE, "--json", "--no-notify")
    windows = json.loads(result.stdout)["windows"]
    assert windows[0]["performance"]["labelled"] == PER_DAY
    assert windows[1]["performance"] is None


def test_labels_ingest_of_a_missing_file_or_column_exits_2(
    world: World, cli_env: dict[str, str]
) -> None:
    missing = shipyard(cli_env, world.root, "labels", "ingest", "nowhere.csv")
    assert missing.returncode == 2 and "No label file at nowhere.csv" in missing.stderr
    source = world.root / "labels.csv"
    source.write_text("id,label\ntx-0302-0,1\n", encoding="utf-8")
    wrong = shipyard(cli_env, world.root, "labels", "ingest", str(source))
    assert wrong.returncode == 2 and "'transaction_id'" in wrong.stderr
    escape = shipyard(
        cli_env, world.root, "labels", "ingest", str(source), "--model", "../../elsewhere"
    )
    assert escape.returncode == 2 and "is not a valid model name" in escape.stderr
    assert not (world.root.parent / "elsewhere").exists()


# -- monitor -------------------------------------------------------------------------------


def test_monitor_json_report_and_exit_code(world: World, cli_env: dict[str, str]) -> None:
    report = world.root / "out" / "monitor.html"
    done = shipyard(cli_env, world.root, "monitor", *RANGE, "--json", "--report", str(report))
    assert done.returncode == 1, done.stderr  # the error alert fires on the shifted days
    result = json.loads(done.stdout)
    assert result["schema"] == "shipyard.monitor/v1" and result["exit_code"] == 1
    assert {"project", "model", "version", "ref", "generated_at", "every", "since", "until"} <= set(
        result
    )
    assert {"reference", "promotion", "threshold", "log", "labels", "windows"} <= set(result)
    assert {"alerts", "firing", "retrain"} <= set(result)
    assert (result["ref"], result["every"]) == (f"{MODEL}@production", "1d")
    assert result["since"].startswith(SINCE) and result["until"].startswith(UNTIL)
    assert len(result["windows"]) == DAYS
    window_keys = {"start", "end", "rows", "drift", "score", "contract", "performance"}
    for window in result["windows"]:
        assert window_keys | {"estimated", "slo", "signals"} <= set(window)
    drifted = result["windows"][SHIFT_DAY]["drift"]["columns"]["amount"]
    assert drifted["drifted"] is True and drifted["method"] == "ks"
    assert [(a["alert"], a["status"]) for a in result["alerts"]] == [("amount-drift", "fired")]
    assert result["firing"][0]["severity"] == "error"
    page = report.read_text(encoding="utf-8")
    assert page.lstrip().lower().startswith("<!doctype html") and "payments@production" in page
    # the alert went to the project's alert log; a second run does not send it again
    alert_log = world.project.settings.state_dir / "monitoring" / "alerts.jsonl"
    assert [json.loads(line)["status"] for line in alert_log.read_text().splitlines()] == ["fired"]
    rich = shipyard(cli_env, world.root, "monitor", *RANGE)
    assert rich.returncode == 1, rich.stderr
    assert "1 alert(s) firing" in rich.stdout and "amount-drift" in rich.stdout
    assert "no traffic" in rich.stdout  # the empty day
    assert len(alert_log.read_text().splitlines()) == 1


def test_monitor_exits_0_when_nothing_fires(world: World, cli_env: dict[str, str]) -> None:
    done = shipyard(cli_env, world.root, "monitor", "--since", SINCE, "--until", "2026-03-05")
    assert done.returncode == 0, done.stderr
    assert "No alert is firing." in done.stdout


def test_monitor_usage_mistakes_exit_2_with_a_message(
    world: World, cli_env: dict[str, str]
) -> None:
    since = shipyard(cli_env, world.root, "monitor", "--since", "last tuesday")
    assert since.returncode == 2
    assert "--since" in since.stderr and "ISO date" in since.stderr
    window = shipyard(cli_env, world.root, "monitor", *RANGE, "--window", "daily")
    assert window.returncode == 2 and "'daily'" in window.stderr
    unknown = shipyard(cli_env, world.root, "monitor", "nosuch@production", *RANGE)
    assert unknown.returncode == 2 and "nosuch" in unknown.stderr
    assert "Traceback" not in unknown.stderr


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ('every = "daily"\n', "every"),
        ("drift_share = 1.5\n", "drift_share"),
        ('windwo = "1d"\n', "windwo"),
    ],
)
def test_a_monitoring_mistake_in_shipyard_toml_exits_2_naming_the_key(
    world: World, cli_env: dict[str, str], extra: str, named: str
) -> None:
    # keys of the [monitoring] table itself go before its sub-tables
    text = MONITORING.replace(
        'label_key = "transaction_id"\n', f'label_key = "transaction_id"\n{extra}'
    )
    world.reopen(text)
    done = shipyard(cli_env, world.root, "monitor", *RANGE)
    assert done.returncode == 2
    assert named in done.stderr and "[monitoring]" in done.stderr
    assert "Traceback" not in done.stderr


# -- the webhook ---------------------------------------------------------------------------


def test_the_fired_alert_is_posted_to_the_webhook_with_the_documented_body(
    world: World, cli_env: dict[str, str]
) -> None:
    with Receiver() as receiver:
        configure(world, f'\n[monitoring.webhook]\nurl = "{receiver.url}"\n')
        done = shipyard(cli_env, world.root, "monitor", *RANGE, "--json")
        assert done.returncode == 1, done.stderr
        again = shipyard(cli_env, world.root, "monitor", *RANGE, "--json")
        assert again.returncode == 1, again.stderr
    assert len(receiver.requests) == 1  # the second run finds it firing: nothing is sent
    _, headers, body = receiver.requests[0]
    assert set(body) == BODY_KEYS
    assert body["schema"] == "shipyard.alert/v1"
    assert (body["project"], body["model"]) == ("monitored", MODEL)
    assert (body["alert"], body["severity"], body["status"]) == ("amount-drift", "error", "fired")
    assert body["when"] == "drift.amount.drifted is true" and body["value"] is True
    assert body["episode"] == "amount-drift#1" and body["retrain"] is False
    assert body["at"].startswith(UNTIL)
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Shipyard-Delivery"] == "amount-drift#1:fired"
    assert "s3cret" not in done.stdout + done.stderr


def test_a_webhook_that_answers_500_first_still_gets_the_alert_once(
    world: World, cli_env: dict[str, str]
) -> None:
    with Receiver(answers=[500]) as receiver:
        configure(world, f'\n[monitoring.webhook]\nurl = "{receiver.url}"\n')
        done = shipyard(cli_env, world.root, "monitor", *RANGE, "--json")
    assert done.returncode == 1, done.stderr
    assert [status for status, _, _ in receiver.requests] == [500, 200]
    assert [body["episode"] for body in receiver.accepted()] == ["amount-drift#1"]
    deliveries = {headers["X-Shipyard-Delivery"] for _, headers, _ in receiver.requests}
    assert deliveries == {"amount-drift#1:fired"}  # a receiver can drop the duplicate


def test_a_webhook_nobody_listens_on_is_reported_and_does_not_fail_monitoring(
    world: World, cli_env: dict[str, str]
) -> None:
    configure(world, f'\n[monitoring.webhook]\nurl = "{closed_port_url()}"\nretries = 1\n')
    done = shipyard(cli_env, world.root, "monitor", *RANGE, "--json")
    assert done.returncode == 1, done.stderr  # the alert's exit code, not a crash
    assert json.loads(done.stdout)["firing"][0]["alert"] == "amount-drift"
    assert "alert amount-drift (fired) was not delivered after 2 attempt(s)" in done.stderr
    assert "could not be reached" in done.stderr


@pytest.mark.slow
def test_a_webhook_that_never_answers_does_not_block_monitoring(
    world: World, cli_env: dict[str, str]
) -> None:
    """Unbounded, 4 attempts of 3 s plus the backoff would take 15 s; the CLI waits 5 s."""
    with silent_listener() as url:
        configure(world, f'\n[monitoring.webhook]\nurl = "{url}"\ntimeout = 3\nretries = 3\n')
        started = time.monotonic()
        done = shipyard(cli_env, world.root, "monitor", *RANGE, "--json", timeout=60)
        elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["alerts"][0]["status"] == "fired"
    assert elapsed < 13, elapsed
