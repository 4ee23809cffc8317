"""HTTP serving, side by side: shipyard, MLflow 3.17.2, BentoML 1.4.40 and a no-op ceiling.

Reproduce (from the repository root; the recorded figures used ``--duration 60``)::

    .venv/bin/python benchmarks/serving.py --repeats 3 --duration 60
    .venv/bin/python benchmarks/report_serving.py

A full run as recorded takes about 21 minutes (5 servers x 3 starts x ~80 s), plus about
2 minutes of venv installs the first time. A quick run (about 1.5 minutes):
``.venv/bin/python benchmarks/serving.py --repeats 1 --duration 5``.

What it does:

* One model for every server: scikit-learn ``LogisticRegression`` fitted on 5,000 generated
  rows of 20 float features (``f0`` .. ``f19``, seed ``SEED``), pickled once by this harness.
  Every venv has the same scikit-learn (``SKLEARN``), so the pickle loads everywhere; the first
  answer of each server is checked against the harness's own ``predict_proba``.
* Servers, one at a time, each in its own process group on 127.0.0.1, one worker each:

  - ``shipyard``: the model registered in a fresh shipyard project and exported with
    ``sample=`` (``peer_scripts/serving_servers.py shipyard-export``), then served from the
    export folder with the prediction log on and input validation on:
    ``shipyard serve <export> --host 127.0.0.1 --port P --log-dir D`` (working directory: the
    project). ``SHIPYARD_CLI = False`` (one line) swaps in the stand-in
    ``serving_servers.py shipyard-serve``, which builds the app by hand in-process
    (``ServedModel`` + ``create_app`` + ``PredictionLog`` + ``uvicorn.run``), for measuring the
    app without the CLI. After each start the logged rows are counted from the log's Parquet
    segments. The export has no gated threshold, so the CLI warns and serves with 0.5.
  - ``shipyard_nolog``: the same with ``--no-log`` (the logging cost is the throughput lost).
  - ``mlflow``: ``mlflow.sklearn.save_model`` (``pyfunc_predict_fn="predict_proba"``, a
    signature, ``pip_requirements``), then ``mlflow models serve -m DIR --env-manager local
    -h 127.0.0.1 -p P -w 1``.
  - ``bentoml``: ``peer_scripts/serving_bento_service.py`` (``@bentoml.service(workers=1)``,
    one ``@bentoml.api`` taking ``rows: list[list[float]]``), ``bentoml serve``.
  - ``noop``: a raw ASGI app under uvicorn answering a constant JSON: the ceiling of this
    machine, where the client and the server share the same 2 cores.

* The load generator (``peer_scripts/serving_load.py``) is a separate process in its own venv
  (``benchmarks/.venvs/loadgen``, aiohttp): closed loop, bounded in time and in count, TCP_NODELAY
  checked on a live socket. Each server gets the same rows in its own protocol: shipyard
  ``POST /predict`` with one JSON object of 20 named floats (a list of 1,000 objects for the
  batch scenario); MLflow ``POST /invocations`` ``{"dataframe_split": ...}``; BentoML
  ``POST /predict`` ``{"rows": [[...]]}``.
* Per server start (a repeat): startup (spawn to the first 200 from the readiness endpoint:
  shipyard ``/ready``, MLflow ``/ping``, BentoML ``/readyz``, polled every 10 ms), then three
  scenarios: ``c1`` (one row, concurrency 1), ``c32`` (one row, concurrency 32, ``--duration``
  seconds), ``rows1000`` (1,000 rows a request, concurrency ``ROWS_CONCURRENCY``); then
  SIGTERM to the process group, SIGKILL after ``STOP_TIMEOUT_S``. Servers are stopped on any
  failure too (``finally``, ``atexit`` and SIGINT/SIGTERM handlers).
* ``--repeats`` starts of each server (round robin, the order rotated each repeat); figures are
  medians with every sample kept; ratios are shipyard / peer of the medians.
* shipyard is measured as committed (``src/shipyard`` extracted at HEAD, put first on
  ``PYTHONPATH`` of its processes) unless ``--working-tree``.

Setup facts (found while installing; the code applies them):

* MLflow 3.17.2 (3.18.0 does not install: its ``mlflow-skinny`` pin is missing) brings
  scikit-learn 1.9.1, the same as ours. ``mlflow models serve --env-manager local`` starts
  ``uvicorn`` by name (found on ``PATH``), so the venv's ``bin`` goes first on ``PATH``; it
  defaults to 1 uvicorn worker (``-w``/``MLFLOW_MODELS_WORKERS``; ``-w 1`` is passed). The
  sklearn flavor's pyfunc calls ``predict`` unless ``pyfunc_predict_fn="predict_proba"``;
  ``pip_requirements`` skips requirement inference. ``MLFLOW_DISABLE_TELEMETRY=true`` and
  ``DO_NOT_TRACK=true`` keep it off the network.
* BentoML 1.4.40 (with ``scikit-learn==1.9.1`` pinned beside it) installs in about 30 s and
  serves a class decorated with ``@bentoml.service`` straight from a module in the working
  directory (``bentoml serve module:Class``), no bento build needed. ``BENTOML_DO_NOT_TRACK=true``
  turns its usage tracking off. ``bentoml serve`` is a supervisor with child processes, so it
  is started in its own process group and the whole group is signalled.
* aiohttp (``benchmarks/.venvs/loadgen``) sets TCP_NODELAY on every client socket itself.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import datetime as dt
import http.client
import json
import os
import pickle
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import sklearn
from peers import ensure_venv, installed_version, parse_result
from sklearn.linear_model import LogisticRegression
from snapshot import git_state, snapshot_src

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
WORK_DIR = BENCH_DIR / ".work" / "serving"
SCRIPTS_DIR = BENCH_DIR / "peer_scripts"
DEFAULT_OUT = BENCH_DIR / "results" / "serving.json"
SERVERS_SCRIPT = SCRIPTS_DIR / "serving_servers.py"
LOAD_SCRIPT = SCRIPTS_DIR / "serving_load.py"
BENTO_SCRIPT = SCRIPTS_DIR / "serving_bento_service.py"
OUR_PYTHON = REPO_DIR / ".venv" / "bin" / "python"

# One-line switch: True once `shipyard serve` exists (it is then run from .venv/bin/shipyard).
SHIPYARD_CLI = True

SEED = 20261129
FEATURES = [f"f{i}" for i in range(20)]
TRAIN_ROWS = 5000
SAMPLE_ROWS = 200
BATCH_ROWS = 1000
ROWS_CONCURRENCY = 2
C32 = 32
SKLEARN = "1.9.1"
HOST = "127.0.0.1"
STARTUP_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 10.0
POLL_S = 0.01
SCORE_TOLERANCE = 1e-6  # room for an ONNX-served model computing in float32
LOAD_TIMEOUT_MARGIN_S = 120.0

VENVS: dict[str, list[str]] = {
    "mlflow": ["mlflow==3.17.2"],
    "bentoml": ["bentoml==1.4.40", f"scikit-learn=={SKLEARN}"],
    "loadgen": ["aiohttp==3.14.5"],
}
QUIET_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "BENTOML_DO_NOT_TRACK": "true",
}
SERVERS = ["shipyard", "shipyard_nolog", "mlflow", "bentoml", "noop"]
LABELS = {
    "shipyard": "shipyard, prediction log on",
    "shipyard_nolog": "shipyard, --no-log",
    "mlflow": "MLflow 3.17.2 `mlflow models serve`",
    "bentoml": "BentoML 1.4.40 `bentoml serve`",
    "noop": "no-op ASGI app (ceiling)",
}
READY_PATH = {
    "shipyard": "/ready",
    "shipyard_nolog": "/ready",
    "mlflow": "/ping",
    "bentoml": "/readyz",
    "noop": "/ready",
}
PREDICT_PATH = {
    "shipyard": "/predict",
    "shipyard_nolog": "/predict",
    "mlflow": "/invocations",
    "bentoml": "/predict",
    "noop": "/predict",
}
PROTOCOL = {
    "shipyard": "shipyard",
    "shipyard_nolog": "shipyard",
    "mlflow": "mlflow",
    "bentoml": "bentoml",
    "noop": "shipyard",
}
SCENARIOS = ["c1", "c32", "rows1000"]
DEFINITIONS = {
    "startup_s": "From spawning the server process to the first 200 answer of its readiness "
    "endpoint (shipyard /ready, MLflow /ping, BentoML /readyz), polled every 10 ms from the "
    "harness. Includes interpreter start, imports and model loading.",
    "c1": "One row per request, concurrency 1 (closed loop, one keep-alive connection): "
    "after {warmup_c1} untimed requests, at most {c1_requests} requests or {c1_duration} s. "
    "p50/p99 are of the client-side latency of each 2xx answer (send to last body byte).",
    "c32": "One row per request, 32 concurrent closed-loop clients on 32 connections: after "
    "{warmup_c32} untimed requests, {duration} s (at most {c32_requests} requests). req/s = 2xx "
    "answers / elapsed; errors = non-2xx answers and connection errors or timeouts.",
    "rows1000": "1,000 rows per request, concurrency {rows_concurrency}: after {warmup_rows} "
    "untimed requests, at most {rows_requests} requests or {rows_duration} s. rows/s = 1,000 "
    "x 2xx answers / elapsed.",
    "logging_cost": "1 - (c32 req/s with the prediction log on) / (c32 req/s with --no-log), "
    "from the medians; the same for rows1000 rows/s.",
}

LIVE: dict[int, subprocess.Popen] = {}


# --------------------------------------------------------------------------- model and data


def make_data() -> dict[str, Any]:
    """Fit the model, write its pickle, the sample and every request body; return references."""
    rng = np.random.default_rng(SEED)
    weights = rng.normal(size=len(FEATURES))
    x = rng.normal(size=(TRAIN_ROWS, len(FEATURES)))
    y = (x @ weights + rng.logistic(size=TRAIN_ROWS) > 0).astype(np.int64)
    model = LogisticRegression(max_iter=1000).fit(x, y)
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    (WORK_DIR / "model.pkl").write_bytes(pickle.dumps(model))
    sample = pl.DataFrame(rng.normal(size=(SAMPLE_ROWS, len(FEATURES))), schema=FEATURES)
    sample.write_parquet(WORK_DIR / "sample.parquet")
    single = rng.normal(size=(1, len(FEATURES)))
    batch = rng.normal(size=(BATCH_ROWS, len(FEATURES)))
    bodies = WORK_DIR / "bodies"
    bodies.mkdir(exist_ok=True)
    for protocol in ("shipyard", "mlflow", "bentoml"):
        for rows, name in ((single, "1"), (batch, str(BATCH_ROWS))):
            (bodies / f"{protocol}_{name}.json").write_text(json.dumps(body(protocol, rows)))
    return {
        "single_score": float(model.predict_proba(single)[0, 1]),
        "batch_scores_head": model.predict_proba(batch[:3])[:, 1].tolist(),
        "train_accuracy": float(model.score(x, y)),
    }


def body(protocol: str, rows: np.ndarray) -> Any:
    """The request body carrying ``rows`` in ``protocol``."""
    values = [[float(v) for v in row] for row in rows]
    if protocol == "shipyard":
        records = [dict(zip(FEATURES, row, strict=True)) for row in values]
        return records[0] if len(records) == 1 else records
    if protocol == "mlflow":
        return {"dataframe_split": {"columns": FEATURES, "data": values}}
    return {"rows": values}


def body_file(server: str, rows: int) -> Path:
    """The request body file of ``server`` for ``rows`` rows."""
    return WORK_DIR / "bodies" / f"{PROTOCOL[server]}_{rows}.json"


def first_score(server: str, text: str | None) -> float | None:
    """The first score in a server's answer (None for the no-op or an unreadable answer)."""
    if server == "noop" or not text:
        return None
    try:
        data = json.loads(text)
        if PROTOCOL[server] == "shipyard":
            return float(data["predictions"][0]["score"])
        if server == "mlflow":
            first = data["predictions"][0]
            return float(first[1] if isinstance(first, list) else first["1"])
        return float(data[0])
    except (ValueError, KeyError, IndexError, TypeError):
        return None


# --------------------------------------------------------------------------- setup


def shipyard_env(src: Path | None) -> dict[str, str]:
    """Environment for shipyard's processes: the snapshot first on PYTHONPATH when given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env.pop("VIRTUAL_ENV", None)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    else:
        env.pop("PYTHONPATH", None)
    return env


def peer_env(venv_python: Path) -> dict[str, str]:
    """Environment for a peer's process: its venv's bin first on PATH, telemetry off."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")
    }
    env.update(QUIET_ENV)
    env["PATH"] = f"{venv_python.parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> dict:
    """Run a preparation command and return its BENCH_JSON; raise with its output if it fails."""
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return parse_result(done.stdout)


def prepare(pythons: dict[str, Path], src: Path | None) -> dict[str, Path]:
    """Export the model for shipyard and MLflow, lay out BentoML's service; return folders."""
    project = WORK_DIR / "project"
    for stale in (project, WORK_DIR / "shipyard_export", WORK_DIR / "mlflow_model"):
        shutil.rmtree(stale, ignore_errors=True)
    project.mkdir()
    (project / "shipyard.toml").write_text('[project]\nname = "serving-bench"\nowner = "bench"\n')
    model, sample = str(WORK_DIR / "model.pkl"), str(WORK_DIR / "sample.parquet")
    export = WORK_DIR / "shipyard_export"
    run(
        [
            str(OUR_PYTHON),
            str(SERVERS_SCRIPT),
            "shipyard-export",
            "--model",
            model,
            "--sample",
            sample,
            "--out",
            str(export),
        ],
        project,
        shipyard_env(src),
    )
    mlflow_dir = WORK_DIR / "mlflow_model"
    save = [str(SERVERS_SCRIPT), "mlflow-save", "--model", model, "--sample", sample]
    run(
        [str(pythons["mlflow"]), *save, "--out", str(mlflow_dir), "--sklearn-version", SKLEARN],
        WORK_DIR,
        peer_env(pythons["mlflow"]),
    )
    bento = WORK_DIR / "bento"
    bento.mkdir(exist_ok=True)
    shutil.copyfile(BENTO_SCRIPT, bento / BENTO_SCRIPT.name)
    return {"shipyard": export, "mlflow": mlflow_dir, "bentoml": bento}


def export_facts(folder: Path) -> dict[str, Any]:
    """What the shipyard export holds that decides how it is scored (ONNX when it agrees)."""
    facts = json.loads((folder / "model.json").read_text())
    return {"files": sorted(p.name for p in folder.iterdir()), "onnx": facts.get("onnx")}


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def server_command(
    server: str,
    port: int,
    folders: dict[str, Path],
    pythons: dict[str, Path],
    src: Path | None,
    log_dir: Path,
) -> tuple[list[str], dict[str, str], Path]:
    """The command, environment and working directory that start ``server`` on ``port``."""
    if server in ("shipyard", "shipyard_nolog"):
        logging = ["--no-log"] if server == "shipyard_nolog" else ["--log-dir", str(log_dir)]
        where = [str(folders["shipyard"]), "--host", HOST, "--port", str(port), *logging]
        if SHIPYARD_CLI:
            cmd = [str(OUR_PYTHON.parent / "shipyard"), "serve", *where]
        else:
            cmd = [str(OUR_PYTHON), str(SERVERS_SCRIPT), "shipyard-serve", *where]
        return cmd, shipyard_env(src), WORK_DIR / "project"
    if server == "noop":
        cmd = [str(OUR_PYTHON), str(SERVERS_SCRIPT), "noop", "--host", HOST, "--port", str(port)]
        return cmd, shipyard_env(None), WORK_DIR
    if server == "mlflow":
        python = pythons["mlflow"]
        cmd = [str(python.parent / "mlflow"), "models", "serve", "-m", str(folders["mlflow"])]
        cmd += ["--env-manager", "local", "-h", HOST, "-p", str(port), "-w", "1"]
        return cmd, peer_env(python), WORK_DIR
    python = pythons["bentoml"]
    env = peer_env(python)
    env["SERVING_BENCH_MODEL"] = str(WORK_DIR / "model.pkl")
    module = f"{BENTO_SCRIPT.stem}:Scorer"
    cmd = [str(python.parent / "bentoml"), "serve", module, "--host", HOST, "--port", str(port)]
    return cmd, env, folders["bentoml"]


def ready(port: int, path: str) -> bool:
    """True when ``GET path`` answers 200."""
    conn = http.client.HTTPConnection(HOST, port, timeout=2)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def start(cmd: list[str], env: dict[str, str], cwd: Path, log: Path, port: int, path: str):
    """Spawn a server in its own process group; return it and its startup time."""
    with log.open("w") as out:
        began = time.perf_counter()
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    LIVE[proc.pid] = proc
    while True:
        if ready(port, path):
            return proc, time.perf_counter() - began
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}: {log.read_text()[-3000:]}")
        if time.perf_counter() - began > STARTUP_TIMEOUT_S:
            raise RuntimeError(f"not ready after {STARTUP_TIMEOUT_S} s: {log.read_text()[-3000:]}")
        time.sleep(POLL_S)


def stop(proc: subprocess.Popen) -> dict[str, Any]:
    """SIGTERM the server's process group; SIGKILL what is left after ``STOP_TIMEOUT_S``."""
    began = time.perf_counter()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    killed = False
    while group_alive(proc):
        if time.perf_counter() - began > STOP_TIMEOUT_S:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.02)
    proc.wait()
    LIVE.pop(proc.pid, None)
    return {"stop_s": time.perf_counter() - began, "returncode": proc.returncode, "killed": killed}


def group_alive(proc: subprocess.Popen) -> bool:
    """True while the server's process group has a process (the leader reaped as it exits)."""
    proc.poll()
    try:
        os.killpg(proc.pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_all(*_: Any) -> None:
    """Stop every server still running (atexit and signal handler)."""
    for proc in list(LIVE.values()):
        stop(proc)


def load(
    python: Path,
    server: str,
    port: int,
    rows: int,
    concurrency: int,
    duration: float,
    max_requests: int,
    warmup: int,
) -> dict[str, Any]:
    """Run the load generator against ``server`` once and return its result."""
    cmd = [
        str(python),
        str(LOAD_SCRIPT),
        "--url",
        f"http://{HOST}:{port}{PREDICT_PATH[server]}",
        "--body",
        str(body_file(server, rows)),
        "--concurrency",
        str(concurrency),
        "--duration",
        str(duration),
        "--max-requests",
        str(max_requests),
        "--warmup",
        str(warmup),
        "--rows",
        str(rows),
    ]
    done = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=duration + LOAD_TIMEOUT_MARGIN_S,
        env=peer_env(python),
    )
    if done.returncode != 0:
        raise RuntimeError(f"load generator exited {done.returncode}: {done.stderr[-3000:]}")
    return parse_result(done.stdout)


def logged_rows(log_dir: Path) -> int:
    """Rows in the prediction log's Parquet segments."""
    files = sorted(log_dir.rglob("*.parquet"))
    return pl.scan_parquet(files).select(pl.len()).collect().item() if files else 0


def one_start(
    server: str,
    repeat: int,
    args: argparse.Namespace,
    folders: dict[str, Path],
    pythons: dict[str, Path],
    src: Path | None,
    reference: dict[str, Any],
) -> dict[str, Any]:
    """Start ``server``, measure startup and the three scenarios, stop it (always)."""
    port = free_port()
    log_dir = WORK_DIR / "predictions" / f"{server}-{repeat}"
    shutil.rmtree(log_dir, ignore_errors=True)
    cmd, env, cwd = server_command(server, port, folders, pythons, src, log_dir)
    logs = WORK_DIR / "logs"
    logs.mkdir(exist_ok=True)
    load_python = pythons["loadgen"]
    result: dict[str, Any] = {"repeat": repeat, "command": cmd}
    proc, result["startup_s"] = start(
        cmd, env, cwd, logs / f"{server}-{repeat}.log", port, READY_PATH[server]
    )
    try:
        result["loadavg_before"] = list(os.getloadavg())
        result["c1"] = load(
            load_python, server, port, 1, 1, args.c1_duration, args.c1_requests, args.warmup_c1
        )
        result["c32"] = load(
            load_python, server, port, 1, C32, args.duration, args.c32_requests, args.warmup_c32
        )
        result["rows1000"] = load(
            load_python,
            server,
            port,
            BATCH_ROWS,
            ROWS_CONCURRENCY,
            args.rows_duration,
            args.rows_requests,
            args.warmup_rows,
        )
        result["loadavg_after"] = list(os.getloadavg())
        if server.startswith("shipyard"):
            result["metrics_text"] = metrics_excerpt(port)
    finally:
        result["stop"] = stop(proc)
    got = first_score(server, result["c1"]["first_body"])
    result["score_check"] = {
        "expected": reference["single_score"],
        "got": got,
        "abs_diff": None if got is None else abs(got - reference["single_score"]),
        "agrees": None if got is None else abs(got - reference["single_score"]) < SCORE_TOLERANCE,
    }
    if server == "shipyard":
        sent = sum(result[s]["requests"] + result[s]["warmup"] for s in SCENARIOS[:2])
        sent += (result["rows1000"]["requests"] + result["rows1000"]["warmup"]) * BATCH_ROWS
        result["log_check"] = {"rows_logged": logged_rows(log_dir), "rows_sent_2xx_at_most": sent}
    return result


def metrics_excerpt(port: int) -> str:
    """shipyard's /metrics lines about batches and request durations (for where time goes)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    except OSError as exc:
        return f"unavailable: {exc}"
    finally:
        conn.close()
    keep = ("_sum", "_count", "log")
    return "\n".join(
        line
        for line in text.splitlines()
        if not line.startswith("#") and any(k in line for k in keep)
    )[:6000]


# --------------------------------------------------------------------------- figures


def figure(samples: list[float | None]) -> dict[str, Any]:
    """Median, min, max and every sample (None samples are kept but not counted)."""
    known = [s for s in samples if s is not None]
    return {
        "median": statistics.median(known) if known else None,
        "min": min(known) if known else None,
        "max": max(known) if known else None,
        "samples": samples,
    }


SCENARIO_FIGURES = {
    "c1": ("p50_ms", "p99_ms", "req_per_s", "errors", "requests"),
    "c32": ("req_per_s", "p50_ms", "p99_ms", "errors", "requests"),
    "rows1000": ("rows_per_s", "p50_ms", "p99_ms", "errors", "requests"),
}


def summarize(starts: list[dict[str, Any]]) -> dict[str, Any]:
    """Figures of one server over its starts (failed starts count as missing samples)."""
    ok = [s for s in starts if "error" not in s]
    out: dict[str, Any] = {
        "startup_s": figure([s["startup_s"] for s in ok]),
        "failed_starts": [s["error"] for s in starts if "error" in s],
    }
    for scenario, keys in SCENARIO_FIGURES.items():
        out[scenario] = {k: figure([s[scenario][k] for s in ok if scenario in s]) for k in keys}
        out[scenario]["tcp_nodelay"] = sorted(
            {str(s[scenario]["tcp_nodelay"]) for s in ok if scenario in s}
        )
        out[scenario]["total_errors"] = sum(s[scenario]["errors"] for s in ok if scenario in s)
    out["score_agrees"] = [s["score_check"]["agrees"] for s in ok]
    return out


def median_of(results: dict[str, Any], server: str, scenario: str, key: str) -> float | None:
    """A median figure, or None when the server was not measured."""
    found = results["servers"].get(server)
    if not found:
        return None
    if scenario == "startup_s":
        return found["startup_s"]["median"]
    return found[scenario][key]["median"]


def ratios(results: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """shipyard / peer for every headline figure (medians)."""
    heads = [
        ("c1", "p50_ms"),
        ("c1", "p99_ms"),
        ("c1", "req_per_s"),
        ("c32", "req_per_s"),
        ("c32", "p99_ms"),
        ("rows1000", "rows_per_s"),
        ("startup_s", "median"),
    ]
    out: dict[str, dict[str, float | None]] = {}
    for peer in ("mlflow", "bentoml", "noop", "shipyard_nolog"):
        row = {}
        for scenario, key in heads:
            ours = median_of(results, "shipyard", scenario, key)
            theirs = median_of(results, peer, scenario, key)
            name = scenario if scenario == "startup_s" else f"{scenario}.{key}"
            row[name] = None if ours is None or not theirs else ours / theirs
        out[peer] = row
    return out


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets for shipyard (log on unless said), each judged from the medians."""

    def med(server: str, scenario: str, key: str) -> float | None:
        return median_of(results, server, scenario, key)

    found = results["servers"].get("shipyard")
    c32_errors = None if not found else found["c32"]["total_errors"]
    on, off = med("shipyard", "c32", "req_per_s"), med("shipyard_nolog", "c32", "req_per_s")
    cost = None if on is None or not off else 1 - on / off
    rows = [
        (
            "c1.p50_ms",
            "single row, concurrency 1: p50 < 1.2 ms",
            med("shipyard", "c1", "p50_ms"),
            lambda v: v < 1.2,
        ),
        (
            "c1.p99_ms",
            "single row, concurrency 1: p99 < 3 ms",
            med("shipyard", "c1", "p99_ms"),
            lambda v: v < 3.0,
        ),
        (
            "c32.req_per_s",
            "single row, concurrency 32: >= 1,300 req/s",
            med("shipyard", "c32", "req_per_s"),
            lambda v: v >= 1300,
        ),
        (
            "c32.p99_ms",
            "single row, concurrency 32: p99 < 50 ms",
            med("shipyard", "c32", "p99_ms"),
            lambda v: v < 50,
        ),
        (
            "c32.errors",
            "single row, concurrency 32: zero errors (all repeats)",
            c32_errors,
            lambda v: v == 0,
        ),
        (
            "rows1000.rows_per_s",
            "1,000-row requests: >= 175,000 rows/s",
            med("shipyard", "rows1000", "rows_per_s"),
            lambda v: v >= 175_000,
        ),
        ("logging_cost", "prediction log costs < 10% of c32 throughput", cost, lambda v: v < 0.10),
        (
            "startup_s",
            "startup (spawn to first 200 on /ready) < 2 s",
            med("shipyard", "startup_s", ""),
            lambda v: v < 2.0,
        ),
    ]
    return [
        {"figure": f, "target": t, "measured": v, "met": None if v is None else bool(check(v))}
        for f, t, v, check in rows
    ]


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="c32 seconds")
    parser.add_argument("--servers", nargs="+", choices=SERVERS, default=SERVERS)
    parser.add_argument("--c1-requests", type=int, default=2000)
    parser.add_argument("--c1-duration", type=float, default=10.0)
    parser.add_argument("--c32-requests", type=int, default=500_000)
    parser.add_argument("--rows-requests", type=int, default=300)
    parser.add_argument("--rows-duration", type=float, default=10.0)
    parser.add_argument("--warmup-c1", type=int, default=200)
    parser.add_argument("--warmup-c32", type=int, default=640)
    parser.add_argument("--warmup-rows", type=int, default=10)
    parser.add_argument("--working-tree", action="store_true")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    """Set up, measure every server ``--repeats`` times round robin, write the JSON file."""
    args = parse_args(argv)
    began = time.perf_counter()
    atexit.register(stop_all)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: sys.exit(130))
    meta: dict[str, Any] = {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "harness_python": platform.python_version(),
        "repeats": args.repeats,
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "rows_concurrency": ROWS_CONCURRENCY,
        "shipyard_command": "shipyard serve (CLI)"
        if SHIPYARD_CLI
        else "stand-in "
        "peer_scripts/serving_servers.py shipyard-serve (create_app + PredictionLog + uvicorn)",
        "loadavg_start": list(os.getloadavg()),
    }
    git = git_state(args.working_tree)
    src = None if args.working_tree else snapshot_src(git["commit"], WORK_DIR)
    meta["git"] = git
    pythons = {name: ensure_venv(name, reqs) for name, reqs in VENVS.items()}
    meta["setup_venvs_s"] = time.perf_counter() - began
    reference = make_data()
    folders = prepare(pythons, src)
    meta["setup_s"] = time.perf_counter() - began
    meta["versions"] = {
        "scikit-learn (ours)": sklearn.__version__,
        "mlflow": installed_version(pythons["mlflow"], "mlflow"),
        "scikit-learn (mlflow venv)": installed_version(pythons["mlflow"], "scikit-learn"),
        "bentoml": installed_version(pythons["bentoml"], "bentoml"),
        "scikit-learn (bentoml venv)": installed_version(pythons["bentoml"], "scikit-learn"),
        "aiohttp (loadgen venv)": installed_version(pythons["loadgen"], "aiohttp"),
        "uvicorn (ours)": installed_version(OUR_PYTHON, "uvicorn"),
        "starlette (ours)": installed_version(OUR_PYTHON, "starlette"),
    }
    meta["shipyard_export"] = export_facts(folders["shipyard"])
    meta["requirements"] = VENVS
    meta["env"] = QUIET_ENV
    starts: dict[str, list[dict[str, Any]]] = {s: [] for s in args.servers}
    for repeat in range(args.repeats):
        order = (
            args.servers[repeat % len(args.servers) :] + args.servers[: repeat % len(args.servers)]
        )
        for server in order:
            print(f"repeat {repeat + 1}/{args.repeats}: {server} ...", flush=True)
            try:
                found = one_start(server, repeat, args, folders, pythons, src, reference)
            except (RuntimeError, subprocess.SubprocessError, OSError, KeyError, ValueError) as exc:
                found = {"repeat": repeat, "error": str(exc)[-3000:]}
                print(f"  FAILED: {str(exc)[-500:]}", flush=True)
            else:
                print(
                    f"  startup {found['startup_s']:.2f} s, c1 p50 {found['c1']['p50_ms']:.2f} ms "
                    f"p99 {found['c1']['p99_ms']:.2f} ms, c32 {found['c32']['req_per_s']:.0f} "
                    f"req/s p99 {found['c32']['p99_ms']:.1f} ms err {found['c32']['errors']}, "
                    f"1000 rows {found['rows1000']['rows_per_s']:,.0f} rows/s",
                    flush=True,
                )
            starts[server].append(found)
    meta["loadavg_end"] = list(os.getloadavg())
    meta["total_s"] = time.perf_counter() - began
    defs = {
        k: v.format(
            warmup_c1=args.warmup_c1,
            c1_requests=args.c1_requests,
            c1_duration=args.c1_duration,
            warmup_c32=args.warmup_c32,
            duration=args.duration,
            c32_requests=args.c32_requests,
            rows_concurrency=ROWS_CONCURRENCY,
            warmup_rows=args.warmup_rows,
            rows_requests=args.rows_requests,
            rows_duration=args.rows_duration,
        )
        for k, v in DEFINITIONS.items()
    }
    results: dict[str, Any] = {
        "meta": meta,
        "reference": reference,
        "definitions": defs,
        "labels": LABELS,
        "servers": {s: summarize(v) for s, v in starts.items()},
        "starts": starts,
    }
    results["ratios"] = ratios(results)
    results["targets"] = targets(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    for target in results["targets"]:
        print(f"{target['figure']:<22} {target['target']:<55} {target['measured']} {target['met']}")
    print(f"total {meta['total_s']:.0f} s; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
