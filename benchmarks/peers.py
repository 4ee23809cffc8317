"""Peer benchmarks: ZenML 0.98.0 and MLflow 3.17.2, each measured in its own virtual environment.

Usage::

    python3 benchmarks/peers.py [--repeats 5] [--only zenml|mlflow]
                                [--out benchmarks/results/peers.json]

What it does:

* ``ensure_venv`` creates ``benchmarks/.venvs/<peer>`` with ``python3 -m venv`` and pip, only when
  the venv's marker file (``shipyard-bench-marker.json``, written after a successful install)
  does not list the pinned requirements; re-runs reuse it. pip's output goes to
  ``benchmarks/.venvs/<peer>-pip.log``. Installs are never part of a timed figure.
* The measurement scripts in ``benchmarks/peer_scripts/`` run inside those venvs through
  ``subprocess`` (always with a timeout); each prints one ``BENCH_JSON {...}`` line, parsed here.
* Every figure is repeated (``--repeats``, default 5; the machine has 2 shared cores and is
  noisy) and reported as the median with all samples. Each figure gets a fresh working directory
  ``benchmarks/.work/<peer>/<figure>/`` holding the peer's store.
* SQL statement counts come from separate, untimed probe runs (``--count-sql``) so the
  SQLAlchemy listener never slows a timed sample.

Setup facts (found while installing; the code below applies them):

* ZenML: ``zenml[local]==0.98.0`` is required; plain ``zenml`` fails at the first pipeline run
  asking for the ``local`` extra. No server and no login: the default local SQLite store is used.
  Each store is created by ``zenml init`` in the working directory with ``ZENML_CONFIG_PATH``
  pointing to ``<workdir>/config``. ``ZENML_ANALYTICS_OPT_IN=false`` turns analytics off;
  ``ZENML_DEBUG=false`` and ``ZENML_LOGGING_VERBOSITY=WARN`` keep its console output short (at the
  default INFO level it prints ~17 lines per run: user, stack components, a dashboard hint,
  and a start/finish line per step).
* MLflow: ``mlflow==3.17.2`` installs (3.18.0 does not). The file store is refused unless
  ``MLFLOW_ALLOW_FILE_STORE=true``; it is not used here: tracking goes to a SQLite URI
  ``sqlite:///<workdir>/mlflow.db``. MLflow 3 sends usage telemetry by default, so
  ``MLFLOW_DISABLE_TELEMETRY=true`` and ``DO_NOT_TRACK=true`` are set: the only network is loopback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import inspect
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
VENVS_DIR = BENCH_DIR / ".venvs"
WORK_DIR = BENCH_DIR / ".work"
SCRIPTS_DIR = BENCH_DIR / "peer_scripts"
DEFAULT_OUT = BENCH_DIR / "results" / "peers.json"
MARKER_NAME = "shipyard-bench-marker.json"
JSON_PREFIX = "BENCH_JSON "

INSTALL_TIMEOUT_S = 1800
PROCESS_TIMEOUT_S = 600
WARM_TIMEOUT_S = 1800
METRIC_CALLS = 1000

PEER_REQUIREMENTS: dict[str, list[str]] = {
    "zenml": ["zenml[local]==0.98.0"],
    "mlflow": ["mlflow==3.17.2"],
}
PEER_ENV = {
    "ZENML_ANALYTICS_OPT_IN": "false",
    "ZENML_DEBUG": "false",
    "ZENML_LOGGING_VERBOSITY": "WARN",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
}
DROPPED_ENV = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")


# --------------------------------------------------------------------------- venvs


def venv_python(venv: Path) -> Path:
    """Return the interpreter path inside ``venv``."""
    return venv / "bin" / "python"


def read_marker(venv: Path) -> dict | None:
    """Return the marker written after a successful install, or None if absent or unreadable."""
    try:
        return json.loads((venv / MARKER_NAME).read_text())
    except (OSError, ValueError):
        return None


def ensure_venv(name: str, requirements: list[str]) -> Path:
    """Create ``benchmarks/.venvs/<name>`` with ``requirements`` unless it already has them.

    The venv counts as ready when its marker file lists exactly ``requirements``; otherwise it
    is deleted and rebuilt with ``python3 -m venv`` and pip (output in ``<name>-pip.log``).
    Returns the venv's python.
    """
    venv = VENVS_DIR / name
    marker = read_marker(venv)
    if marker is not None and marker.get("requirements") == requirements:
        return venv_python(venv)
    if venv.exists():
        shutil.rmtree(venv)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = [str(venv_python(venv)), "-m", "pip", "install", "--disable-pip-version-check"]
    with (VENVS_DIR / f"{name}-pip.log").open("w") as log:
        subprocess.run(
            [*pip, *requirements],
            check=True,
            timeout=INSTALL_TIMEOUT_S,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    info = {"requirements": requirements, "install_s": round(time.perf_counter() - start, 1)}
    (venv / MARKER_NAME).write_text(json.dumps(info, indent=2) + "\n")
    return venv_python(venv)


def installed_version(python: Path, distribution: str) -> str:
    """Return the version of ``distribution`` installed for ``python``."""
    code = f"import importlib.metadata as m; print(m.version({distribution!r}))"
    done = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.strip()


# --------------------------------------------------------------------------- processes


def peer_env(workdir: Path) -> dict[str, str]:
    """Environment for a peer process: ours without venv/path overrides, plus ``PEER_ENV``."""
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
    env.update(PEER_ENV)
    env["ZENML_CONFIG_PATH"] = str(workdir / "config")
    return env


def fresh_workdir(peer: str, figure: str) -> Path:
    """Return an empty ``benchmarks/.work/<peer>/<figure>`` directory."""
    workdir = WORK_DIR / peer / figure
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    return workdir


def run_process(cmd: list[str], workdir: Path, timeout: float) -> tuple[float, str]:
    """Run ``cmd`` in ``workdir``; return its wall time and stdout. Raise if it fails."""
    start = time.perf_counter()
    done = subprocess.run(
        cmd, cwd=workdir, env=peer_env(workdir), capture_output=True, text=True, timeout=timeout
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-3000:]
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n{tail}")
    return elapsed, done.stdout


def parse_result(stdout: str) -> dict:
    """Return the JSON of the last ``BENCH_JSON`` line of a peer script's output."""
    lines = [line for line in stdout.splitlines() if line.startswith(JSON_PREFIX)]
    if not lines:
        raise RuntimeError(f"no {JSON_PREFIX.strip()} line in output:\n{stdout[-2000:]}")
    return json.loads(lines[-1][len(JSON_PREFIX) :])


def run_script(
    python: Path, script: str, args: list[str], workdir: Path, timeout: float = PROCESS_TIMEOUT_S
) -> tuple[float, dict]:
    """Run a copy of ``peer_scripts/<script>`` placed in ``workdir``; return wall time and JSON.

    The copy is needed because ZenML resolves step sources relative to its repository root (the
    working directory) and refuses a pipeline file outside it, as a user's project file would
    be inside their project.
    """
    target = workdir / script
    if not target.exists():
        shutil.copyfile(SCRIPTS_DIR / script, target)
    cmd = [str(python), str(target), *args]
    spawn_wall = time.time()
    elapsed, stdout = run_process(cmd, workdir, timeout)
    result = parse_result(stdout)
    result["harness_spawn_wall"], result["harness_exit_wall"] = spawn_wall, time.time()
    return elapsed, result


# --------------------------------------------------------------------------- figures


def figure(samples: list[float], definition: Callable, **extra) -> dict:
    """Bundle samples with their median, spread and the definition (the docstring of the
    function that measured them) as one figure of the results file."""
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "samples": samples,
        "unit": "s",
        "definition": " ".join(inspect.cleandoc(definition.__doc__ or "").split()),
        **extra,
    }


def median_of(values: list[float]) -> float:
    """Median of ``values``; a small alias so extras read clearly."""
    return statistics.median(values)


def measure_import(python: Path, module: str, peer: str, repeats: int) -> dict:
    """import_s: the time `import <module>` adds to a fresh Python process.

    Measured as the wall time of `python -c "import <module>"` minus the wall time of
    `python -c "pass"`, both started from the harness with subprocess in the peer's venv. The
    two commands alternate; one untimed run of each comes first (so .pyc files and the OS file
    cache are warm, as for a user's second command). Each sample is the difference of one pair;
    the figure is the median of the pairs.
    """
    workdir = fresh_workdir(peer, "import_s")
    bare = [str(python), "-c", "pass"]
    loaded = [str(python), "-c", f"import {module}"]
    run_process(bare, workdir, PROCESS_TIMEOUT_S)
    run_process(loaded, workdir, PROCESS_TIMEOUT_S)
    bare_s, loaded_s = [], []
    for _ in range(repeats):
        bare_s.append(run_process(bare, workdir, PROCESS_TIMEOUT_S)[0])
        loaded_s.append(run_process(loaded, workdir, PROCESS_TIMEOUT_S)[0])
    diffs = [b - a for a, b in zip(bare_s, loaded_s, strict=True)]
    return figure(
        diffs,
        measure_import,
        python_pass_median_s=median_of(bare_s),
        python_import_median_s=median_of(loaded_s),
    )


def zenml_store(python: Path, name: str) -> Path:
    """Return a fresh working directory holding a new, initialized ZenML repository and store."""
    workdir = fresh_workdir("zenml", name)
    run_process([str(python.parent / "zenml"), "init"], workdir, PROCESS_TIMEOUT_S)
    return workdir


def zenml_run3_new_process(python: Path, repeats: int, cached: bool) -> dict:
    """run3_new_process_s / run3_new_process_cached_s: one pipeline run as a whole new process.

    Whole-process wall time (measured by the harness around subprocess) of a new Python
    process that imports zenml, defines a 3-step pipeline of trivial steps (a returns 1,
    b doubles it, c adds the two) and runs it once. The ZenML repository and store already
    exist (`zenml init` in a new working directory, ZENML_CONFIG_PATH under it) and the
    pipeline already ran once there, untimed. Uncached variant: caching disabled, every step
    executes. Cached variant: caching enabled after an untimed cached run warmed the cache, so
    every step of a timed run is a cache hit (checked from the run's step statuses).
    """
    name = "run3_new_process_cached_s" if cached else "run3_new_process_s"
    workdir = zenml_store(python, name)
    args = ["run3", "--cache", "on" if cached else "off"]
    run_script(python, "zenml_core.py", args, workdir)
    walls, inner = [], []
    for _ in range(repeats):
        wall, result = run_script(python, "zenml_core.py", args, workdir)
        walls.append(wall)
        inner.append(result)
    _, probe = run_script(python, "zenml_core.py", [*args, "--count-sql"], workdir)
    return figure(
        walls,
        zenml_run3_new_process,
        startup_median_s=median_of([r["wall_start"] - r["harness_spawn_wall"] for r in inner]),
        inner_import_median_s=median_of([r["import_s"] for r in inner]),
        inner_run_median_s=median_of([r["run_s"] for r in inner]),
        shutdown_median_s=median_of([r["harness_exit_wall"] - r["wall_emit"] for r in inner]),
        step_statuses=[r["statuses"] for r in inner],
        sql_per_run=probe["sql"],
    )


def zenml_cached_rerun_warm(python: Path, repeats: int) -> dict:
    """cached_rerun_warm_s: a fully cached re-run of the 3-step pipeline in a warm process.

    In one process (new store): run the 3-step pipeline once with caching on (untimed; it
    executes the steps and fills the cache), then time each of `repeats` further runs with
    caching on, from the pipeline call to its return. Every step of those runs must be a cache
    hit (step statuses are recorded). The figure is the median of those runs.
    """
    workdir = zenml_store(python, "cached_rerun_warm_s")
    args = ["cached-rerun", "--repeats", str(repeats)]
    _, result = run_script(python, "zenml_core.py", args, workdir, WARM_TIMEOUT_S)
    _, probe = run_script(
        python, "zenml_core.py", ["cached-rerun", "--repeats", "1", "--count-sql"], workdir
    )
    return figure(
        result["samples"],
        zenml_cached_rerun_warm,
        warmup_statuses=result["warmup_statuses"],
        step_statuses=result["statuses"],
        sql_per_run=probe["sql_per_run"],
    )


def zenml_per_step_overhead(python: Path, repeats: int) -> dict[str, dict]:
    """per_step_overhead_s, marginal_step_s, run3_warm_uncached_s, run20_warm_uncached_s.

    In one warm process (new store), caching off: after one untimed run of each pipeline,
    alternate timed runs of the 3-step pipeline (t3) and of a 20-step linear pipeline of
    trivial steps (a, then 19 steps adding 1; t20), `repeats` times each, each timed from the
    pipeline call to its return. per_step_overhead_s = median of t20/20. marginal_step_s =
    median of (t20 - t3)/17 over the paired runs: the cost of one more step once the per-run
    fixed cost is paid. run3_warm_uncached_s and run20_warm_uncached_s are the medians of t3
    and t20.
    """
    workdir = zenml_store(python, "per_step_overhead_s")
    args = ["steps", "--repeats", str(repeats)]
    _, result = run_script(python, "zenml_core.py", args, workdir, WARM_TIMEOUT_S)
    _, probe = run_script(
        python, "zenml_core.py", ["steps", "--repeats", "1", "--count-sql"], workdir
    )
    t3, t20 = result["t3_samples"], result["t20_samples"]
    sql = {"sql_per_run_3": probe["sql_per_run_3"], "sql_per_run_20": probe["sql_per_run_20"]}
    return {
        "per_step_overhead_s": figure([t / 20 for t in t20], zenml_per_step_overhead, **sql),
        "marginal_step_s": figure(
            [(b - a) / 17 for a, b in zip(t3, t20, strict=True)], zenml_per_step_overhead
        ),
        "run3_warm_uncached_s": figure(t3, zenml_per_step_overhead),
        "run20_warm_uncached_s": figure(
            t20, zenml_per_step_overhead, last_statuses=result["last_statuses"]
        ),
    }


def zenml_log_metric(python: Path, repeats: int) -> dict:
    """log_metric_1000_s (ZenML): 1,000 `log_metadata` calls inside one step.

    ZenML 0.98 has no step-indexed metric series; its per-step logging API is
    `zenml.log_metadata(metadata={...})`, which, called inside a step, attaches key/values to
    the running step (and its run) in the store. In one warm process (new store; one untimed
    pipeline run of 10 calls first), each sample is one uncached pipeline run whose single step
    calls `log_metadata(metadata={"m": float(i)})` for i in 0..999; the step itself times the
    loop. The figure is the median of those loop times; per_call_s is that divided by 1,000.
    """
    workdir = zenml_store(python, "log_metric_1000_s")
    args = ["log-metadata", "--repeats", str(repeats), "--calls", str(METRIC_CALLS)]
    _, result = run_script(python, "zenml_core.py", args, workdir, WARM_TIMEOUT_S)
    probe_args = ["log-metadata", "--repeats", "1", "--calls", str(METRIC_CALLS), "--count-sql"]
    _, probe = run_script(python, "zenml_core.py", probe_args, workdir, WARM_TIMEOUT_S)
    samples = result["samples"]
    return figure(
        samples,
        zenml_log_metric,
        api="zenml.log_metadata(metadata={'m': float(i)})",
        per_call_s=median_of(samples) / METRIC_CALLS,
        pipeline_run_median_s=median_of(result["pipeline_run_s"]),
        sql_per_run=probe["sql_per_run"],
    )


def mlflow_log_metric(python: Path, repeats: int) -> dict:
    """log_metric_1000_s (MLflow): 1,000 `mlflow.log_metric` calls inside one started run.

    Each sample is a new process in a new, empty working directory: it creates a new SQLite
    tracking store (`sqlite:///<workdir>/mlflow.db`, schema migrations included) and one
    experiment, starts a run, and times only the loop of 1,000
    `mlflow.log_metric("m", i, step=i)` calls (store creation and start/end of the run are
    excluded). The figure is the median; per_call_s is that divided by 1,000.
    """
    samples, prepare = [], []
    for index in range(repeats):
        workdir = fresh_workdir("mlflow", f"log_metric_1000_s/{index}")
        _, result = run_script(python, "mlflow_core.py", ["log-metric"], workdir)
        samples.append(result["elapsed_s"])
        prepare.append(result["prepare_store_s"])
    workdir = fresh_workdir("mlflow", "log_metric_1000_s/probe")
    _, probe = run_script(python, "mlflow_core.py", ["log-metric", "--count-sql"], workdir)
    return figure(
        samples,
        mlflow_log_metric,
        per_call_s=median_of(samples) / METRIC_CALLS,
        prepare_store_median_s=median_of(prepare),
        sql_per_call=probe["sql_per_call"],
    )


def guarded(name: str, measure: Callable[[], dict]) -> dict:
    """Run one measurement; on failure return a null figure carrying the error instead."""
    print(f"  measuring {name} ...", flush=True)
    try:
        return measure()
    except (RuntimeError, subprocess.SubprocessError, OSError, KeyError, ValueError) as exc:
        return {"median": None, "samples": [], "error": str(exc)[-2000:]}


def run_zenml(python: Path, repeats: int) -> dict[str, dict]:
    """Measure every ZenML figure."""
    figures = {
        "import_s": guarded("import_s", lambda: measure_import(python, "zenml", "zenml", repeats)),
        "run3_new_process_s": guarded(
            "run3_new_process_s", lambda: zenml_run3_new_process(python, repeats, cached=False)
        ),
        "run3_new_process_cached_s": guarded(
            "run3_new_process_cached_s",
            lambda: zenml_run3_new_process(python, repeats, cached=True),
        ),
        "cached_rerun_warm_s": guarded(
            "cached_rerun_warm_s", lambda: zenml_cached_rerun_warm(python, repeats)
        ),
    }
    steps = guarded("per_step_overhead_s", lambda: zenml_per_step_overhead(python, repeats))
    figures.update(steps if "error" not in steps else {"per_step_overhead_s": steps})
    figures["log_metric_1000_s"] = guarded(
        "log_metric_1000_s", lambda: zenml_log_metric(python, repeats)
    )
    return figures


def run_mlflow(python: Path, repeats: int) -> dict[str, dict]:
    """Measure every MLflow figure."""
    return {
        "import_s": guarded(
            "import_s", lambda: measure_import(python, "mlflow", "mlflow", repeats)
        ),
        "log_metric_1000_s": guarded(
            "log_metric_1000_s", lambda: mlflow_log_metric(python, repeats)
        ),
    }


RUNNERS: dict[str, Callable[[Path, int], dict[str, dict]]] = {
    "zenml": run_zenml,
    "mlflow": run_mlflow,
}


# --------------------------------------------------------------------------- report


def fmt(value: float | None) -> str:
    """Format seconds compactly (4 significant digits), or ``-`` for a missing value."""
    return "-" if value is None else f"{value:.4g}"


def print_table(results: dict) -> None:
    """Print one line per figure: peer, figure, median and all samples (seconds)."""
    print(f"\n{'peer':<7} {'figure':<27} {'median s':>10}  samples (s)")
    for peer, data in results["peers"].items():
        for name, fig in data["figures"].items():
            samples = ", ".join(fmt(s) for s in fig.get("samples", []))
            line = f"{peer:<7} {name:<27} {fmt(fig.get('median')):>10}  [{samples}]"
            if fig.get("error"):
                line += f"  ERROR: {fig['error'].strip().splitlines()[-1]}"
            print(line)
    meta = results["meta"]
    print(f"\ntotal {meta['total_s']:.1f} s (venv setup {meta['setup_s']:.1f} s)")


def machine_meta(repeats: int) -> dict:
    """Describe the run: when, where, how many repeats, load at the start."""
    return {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "harness_python": platform.python_version(),
        "repeats": repeats,
        "loadavg_start": list(os.getloadavg()),
    }


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description="Benchmark ZenML and MLflow in their own venvs.")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", choices=sorted(PEER_REQUIREMENTS))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    """Set up the venvs, measure each peer, print the table and write the JSON file."""
    args = parse_args(argv)
    start = time.perf_counter()
    peers = [args.only] if args.only else list(PEER_REQUIREMENTS)
    meta = machine_meta(args.repeats)
    pythons = {peer: ensure_venv(peer, PEER_REQUIREMENTS[peer]) for peer in peers}
    meta["setup_s"] = time.perf_counter() - start
    results: dict = {"meta": meta, "peers": {}}
    for peer in peers:
        python = pythons[peer]
        print(f"{peer}: {python}", flush=True)
        results["peers"][peer] = {
            "version": installed_version(python, peer),
            "requirements": PEER_REQUIREMENTS[peer],
            "venv_install_s": (read_marker(python.parent.parent) or {}).get("install_s"),
            "figures": RUNNERS[peer](python, args.repeats),
        }
    meta["loadavg_end"] = list(os.getloadavg())
    meta["total_s"] = time.perf_counter() - start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
