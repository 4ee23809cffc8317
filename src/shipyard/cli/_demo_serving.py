"""The demo's serving step: ``shipyard serve fraud@production`` in its own process, called
through each protocol, its metrics and prediction log read back, then a day batch-scored.

Plain ``http.client`` on one keep-alive connection: the demo needs nothing the base
install lacks, and a downstream team's client would look much the same.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from shipyard.cli._console import console

CALLS = 1000  # rows sent through each protocol
CHUNK = 100  # rows per v2 and MLflow request
METRICS = ("shipyard_requests_total", "shipyard_predictions_total", "shipyard_batch_rows_count")


def show_serving(project: Any, directory: Path, day: Path, ref: str = "fraud@production") -> None:
    """Step 9: serve ``ref``, call it in every protocol, read the log, batch-score ``day``."""
    port = _free_port()
    log_dir = directory / ".shipyard" / "demo-predictions"
    started = time.perf_counter()
    command = [sys.executable, "-m", "shipyard.cli", "serve", ref]
    server = subprocess.Popen(
        [*command, "--port", str(port), "--log-dir", str(log_dir)],
        cwd=directory,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        with _Client(port) as client:
            ready = _wait_ready(client, server, started)
            rows = _requests(day)
            console.print(
                f"\n[bold]9.[/] [bold]shipyard serve {ref}[/] was ready in "
                f"{ready:.1f} s on http://127.0.0.1:{port} (docs at /docs). "
                f"{rows.height} payments of {day.stem.removeprefix('transactions_')}, "
                "sent in each protocol:"
            )
            _call_every_protocol(client, rows)
            _show_metrics(client)
    finally:
        stderr = _stop(server)
    _show_log(log_dir, stderr)
    _batch_score(project, directory, day, ref)


def _call_every_protocol(client: _Client, rows: pl.DataFrame) -> None:
    records = json.loads(rows.write_json())
    latencies, own, flagged = [], [], 0
    for record in records:
        started = time.perf_counter()
        answer = client.post("/predict", record)
        latencies.append(time.perf_counter() - started)
        own.append(answer["predictions"][0]["score"])
        flagged += answer["predictions"][0]["decision"]
    p50 = statistics.median(latencies) * 1000
    p99 = statistics.quantiles(latencies, n=100)[98] * 1000
    console.print(
        f"   POST /predict, one payment a request: p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
        f"{flagged} flagged (online and request features computed on the server)"
    )
    v2 = [
        score
        for chunk in _chunks(rows)
        for score in client.post("/v2/models/fraud/infer", _v2_body(chunk))["outputs"][0]["data"]
    ]
    mlflow = [
        score
        for chunk in _chunks(rows)
        for score in client.post("/invocations", {"dataframe_split": _split(chunk)})["predictions"]
    ]
    gap = max(abs(a - b) for other in (v2, mlflow) for a, b in zip(own, other, strict=True))
    console.print(
        f"   POST /v2/models/fraud/infer and POST /invocations, {CHUNK} payments a request: "
        f"the same scores (largest difference {gap:.1e})."
    )


def _show_metrics(client: _Client) -> None:
    text = client.get("/metrics")
    lines = [
        line
        for line in text.splitlines()
        if line.startswith(METRICS) and 'endpoint="/metrics"' not in line
    ]
    console.print("   GET /metrics (Prometheus), a few lines:")
    for line in lines[:6]:
        console.print(f"     [dim]{line}[/]", highlight=False)


def _show_log(log_dir: Path, stderr: str) -> None:
    from shipyard.serving.log import read_log

    logged = read_log(log_dir).collect()
    decisions = int(logged["decision"].sum()) if logged.height else 0
    console.print(
        f"   SIGTERM: the server drained and flushed its prediction log: {logged.height} "
        f"predictions ({decisions} flagged) in {log_dir.relative_to(log_dir.parents[1])}, "
        "ready to be joined with the chargebacks when they arrive."
    )
    if "Traceback" in stderr:
        console.print(f"   [red]The server reported an error:[/]\n{stderr[-2000:]}")


def _batch_score(project: Any, directory: Path, day: Path, ref: str) -> None:
    from shipyard.serving.batch import score_batch
    from shipyard.serving.model import load_served

    model = load_served(ref, project)
    output = directory / "scores" / f"{day.stem}.parquet"
    summary = score_batch(model, day, output, keep=["transaction_id"], given_features=False)
    console.print(
        f"   shipyard score {ref} {day.relative_to(directory)} "
        f"{output.relative_to(directory)}: {summary.rows} payments in {summary.seconds:.2f} s, "
        f"{summary.positives} flagged, with the same features and threshold as the API."
    )


# -- plumbing -------------------------------------------------------------------------


class _Client:
    """JSON over one keep-alive HTTP/1.1 connection to 127.0.0.1."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection: http.client.HTTPConnection | None = None

    def __enter__(self) -> _Client:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.connection is not None:
            self.connection.close()

    def _connect(self) -> http.client.HTTPConnection:
        if self.connection is None:
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self.connection.connect()
            assert self.connection.sock is not None
            self.connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.connection

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        connection = self._connect()
        headers = {"Content-Type": "application/json"} if body is not None else {}
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        except (ConnectionError, http.client.HTTPException, OSError):
            connection.close()
            self.connection = None
            raise

    def post(self, path: str, payload: Any) -> Any:
        status, body = self.request("POST", path, json.dumps(payload).encode())
        if status != 200:
            raise RuntimeError(f"POST {path} answered {status}: {body.decode()[:500]}")
        return json.loads(body)

    def get(self, path: str) -> str:
        status, body = self.request("GET", path)
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}: {body.decode()[:500]}")
        return body.decode()


def _wait_ready(client: _Client, server: subprocess.Popen[bytes], started: float) -> float:
    deadline = started + 60
    while time.perf_counter() < deadline:
        if server.poll() is not None:
            stderr = server.stderr.read().decode() if server.stderr else ""
            raise RuntimeError(f"shipyard serve exited: {stderr[-2000:]}")
        with contextlib.suppress(OSError):  # not listening yet
            if client.request("GET", "/ready")[0] == 200:
                return time.perf_counter() - started
        time.sleep(0.05)
    raise RuntimeError("shipyard serve was not ready within 60 s")


def _stop(server: subprocess.Popen[bytes]) -> str:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    return server.stderr.read().decode() if server.stderr else ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _requests(day: Path) -> pl.DataFrame:
    """A day's payments as a client sends them: the request fields, no label."""
    fields = [
        "customer_id",
        "merchant_id",
        "merchant_category",
        "amount",
        "currency",
        "country",
        "device",
        "channel",
        "account_age_days",
        "event_timestamp",
    ]
    rows = (
        pl.read_parquet(day).drop_nulls(["customer_id"]).filter(pl.col("amount").is_between(0, 1e6))
    )
    return rows.select(fields).head(CALLS)


def _chunks(rows: pl.DataFrame) -> Iterator[pl.DataFrame]:
    return (rows.slice(start, CHUNK) for start in range(0, rows.height, CHUNK))


_V2_TYPES: dict[type[pl.DataType], str] = {
    pl.Float64: "FP64",
    pl.Int64: "INT64",
    pl.String: "BYTES",
    pl.Datetime: "BYTES",
}


def _v2_body(chunk: pl.DataFrame) -> dict[str, Any]:
    """Open Inference Protocol v2: one tensor per column (times as ISO strings)."""
    records = json.loads(chunk.write_json())
    return {
        "inputs": [
            {
                "name": name,
                "shape": [chunk.height],
                "datatype": _V2_TYPES[type(dtype)],
                "data": [row[name] for row in records],
            }
            for name, dtype in chunk.schema.items()
        ]
    }


def _split(chunk: pl.DataFrame) -> dict[str, Any]:
    records = json.loads(chunk.write_json())
    return {"columns": chunk.columns, "data": [[row[c] for c in chunk.columns] for row in records]}
