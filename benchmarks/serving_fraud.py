"""The fraud demo's model served by ``shipyard serve``: single-row latency with the online store
and request-time features computed on the server, beside the plain model of serving.py.

What one request does on the server: check the payment against the request contract, read
the customer's and the merchant's features from the SQLite online store (three views),
compute the request features with the training code (Polars), score the gradient-boosted
trees, apply the gated threshold, log the prediction, answer.

Setup (untimed, once): ``shipyard demo`` into ``benchmarks/.work/serving_fraud/demo`` (30 days
of 2,000 payments), which trains, gates, promotes and materializes the online store. Then,
for each of ``--repeats`` fresh server processes: the time from spawn to the first 200 on
``/ready``, then ``--calls`` payments of one day, one at a time on one keep-alive
connection (TCP_NODELAY), after 200 warm-up calls; p50 and p99 of the client-side latency.
The client is this process (plain ``http.client``), on the same 2 cores as the server.

Usage::

    .venv/bin/python benchmarks/serving_fraud.py [--repeats 3] [--calls 2000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WORK = BENCH / ".work" / "serving_fraud"
DEMO = WORK / "demo"
OUT = BENCH / "results" / "serving_fraud.json"
PYTHON = REPO / ".venv" / "bin" / "python"
TARGET_P50_MS = 2.0


def build_demo() -> None:
    if (DEMO / ".shipyard").exists() and any((DEMO / "scores").glob("*.parquet")):
        return
    if DEMO.exists():
        subprocess.run(["rm", "-rf", str(DEMO)], check=True)
    WORK.mkdir(parents=True, exist_ok=True)
    command = [str(PYTHON), "-m", "shipyard.cli", "demo", str(DEMO), "--days", "30"]
    subprocess.run(
        [*command, "--rows-per-day", "2000"],
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=1800,
    )


def one_start(calls: int) -> dict[str, Any]:
    sys.path.insert(0, str(REPO / "src"))
    from shipyard.cli._demo_serving import _Client, _free_port, _requests, _wait_ready

    day = sorted((DEMO / "data").glob("transactions_*.parquet"))[-2]
    rows = json.loads(_requests(day).write_json())
    port = _free_port()
    log_dir = WORK / "predictions" / str(port)
    started = time.perf_counter()
    command = [str(PYTHON), "-m", "shipyard.cli", "serve", "fraud@production"]
    server = subprocess.Popen(
        [*command, "--port", str(port), "--log-dir", str(log_dir)],
        cwd=DEMO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    try:
        with _Client(port) as client:
            startup = _wait_ready(client, server, started)
            for record in rows[:200]:
                client.post("/predict", record)
            latencies = []
            for index in range(calls):
                record = rows[index % len(rows)]
                began = time.perf_counter()
                client.post("/predict", record)
                latencies.append(time.perf_counter() - began)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    return {
        "startup_s": startup,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": statistics.quantiles(latencies, n=100)[98] * 1000,
        "calls": calls,
        "load_after": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    build_demo()
    starts = [one_start(args.calls) for _ in range(args.repeats)]
    result = {
        "starts": starts,
        "median": {
            key: statistics.median(s[key] for s in starts)
            for key in ("startup_s", "p50_ms", "p99_ms")
        },
        "target_p50_ms": TARGET_P50_MS,
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO
        ).stdout.strip(),
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.platform()}, {os.cpu_count()} cores",
    }
    OUT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result["median"], indent=2))


if __name__ == "__main__":
    main()
