"""Shipyard side of the core benchmarks, with the same figure definitions as ``peers.py``.

Usage::

    .venv/bin/python benchmarks/shipyard_core.py [--repeats 5] [--only FIGURE [--note WHY]]
                                                 [--out benchmarks/results/shipyard_core.json]

What it does:

* Every figure gets a fresh project in ``benchmarks/.work/shipyard/<figure>/`` (git-ignored):
  ``shipyard.toml`` (``[project] name = "bench"``), the ``pipelines.py`` below and a
  ``.gitignore``, committed to a git repository of its own, as a user's project would be. (The
  git state shipyard records with every run is then read from that small repository, not from
  the enclosing shipyard repository, whose uncommitted changes other people keep editing.)
* Whole-process figures time the ``shipyard`` console script of the repo's ``.venv`` from the
  harness, around ``subprocess``, like ``peers.py`` does. Warm-process figures and the 1 GB
  artifact run this file again as ``shipyard_core.py worker <command>`` in a subprocess (with
  the project folder as working directory); the worker prints one ``BENCH_JSON {...}`` line.
* Each figure is repeated (``--repeats``, default 5) and reported as the median with all
  samples, the definition (the docstring of the function that measured it), the load average
  before and after, its target and whether the target is met.
* ``--only FIGURE`` measures one figure (or group of figures) again and merges it into the
  existing results file, noting the re-run (with ``--note``, why) under ``meta.reruns``;
  ``benchmarks/report.py`` shows those notes.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import gc
import json
import os
import re
import resource
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from peers import (
    DROPPED_ENV,
    JSON_PREFIX,
    METRIC_CALLS,
    PROCESS_TIMEOUT_S,
    WARM_TIMEOUT_S,
    figure,
    fmt,
    fresh_workdir,
    machine_meta,
    median_of,
    parse_result,
)

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
VENV_BIN = REPO_DIR / ".venv" / "bin"
VENV_PYTHON = VENV_BIN / "python"
SHIPYARD_SCRIPT = VENV_BIN / "shipyard"
DEFAULT_OUT = BENCH_DIR / "results" / "shipyard_core.json"
TOOL = "shipyard"

CONCURRENT_PROCESSES = 8
CONCURRENT_REPEATS = 3
ARTIFACT_MIN_REPEATS = 3
ARTIFACT_ROWS = 12_500_000
ARTIFACT_SEED = 20_240_101
ARTIFACT_TIMEOUT_S = 3600
ARTIFACT_VARIANTS = ("plain_default", "plain_lz4", "shipyard")
PACKAGES = ("shipyard", "polars", "pyarrow", "sqlalchemy", "numpy", "typer", "rich")
TABLE_TYPE = "polars.dataframe.frame.DataFrame"
STEP_LINE = re.compile(r"^\s+\S\s+(\S+)\s+(completed|cached|failed|skipped|cancelled)\b")

PROJECT_TOML = '[project]\nname = "bench"\n'
GITIGNORE = ".shipyard/\n__pycache__/\n*.out\n*.err\n"
PIPELINES_PY = '''\
"""Benchmark pipelines: the trivial steps of benchmarks/peer_scripts/zenml_core.py."""

import time

from shipyard import get_context, pipeline, step

LOOP_SECONDS: list[float] = []


@step
def a(n: int) -> int:
    """Trivial first step: return an int (the pipeline parameter n, 1 by default)."""
    return n


@step
def b(x: int) -> int:
    """Trivial second step: double the input."""
    return 2 * x


@step
def c(x: int, y: int) -> int:
    """Trivial third step: add the two inputs."""
    return x + y


@step
def inc(x: int) -> int:
    """Trivial chain step for the 20-step pipeline: add one."""
    return x + 1


@step
def log_many(calls: int) -> None:
    """Call get_context().log_metric("m", i, step=i) `calls` times; record the loop's time."""
    start = time.perf_counter()
    for i in range(calls):
        get_context().log_metric("m", i, step=i)
    LOOP_SECONDS.append(time.perf_counter() - start)


@pipeline
def three(n: int = 1):
    """a -> b, and c(a, b): three trivial steps."""
    x = a(n)
    y = b(x)
    c(x, y)


@pipeline
def twenty(n: int = 1):
    """a followed by 19 inc steps: a linear chain of 20 trivial steps."""
    x = a(n)
    for _ in range(19):
        x = inc(x)


@pipeline
def metrics(calls: int = 1000):
    """One step that logs `calls` metric values."""
    log_many(calls)
'''


# --------------------------------------------------------------------------- processes


def shipyard_env() -> dict[str, str]:
    """Environment for a shipyard process: ours without venv/path and ``SHIPYARD_*`` overrides."""
    return {
        key: value
        for key, value in os.environ.items()
        if key not in DROPPED_ENV and not key.startswith("SHIPYARD_")
    }


def run_process(
    cmd: list[str], workdir: Path, timeout: float = PROCESS_TIMEOUT_S
) -> tuple[float, str, str]:
    """Run ``cmd`` in ``workdir``; return its wall time, stdout and stderr. Raise if it fails."""
    start = time.perf_counter()
    done = subprocess.run(
        cmd, cwd=workdir, env=shipyard_env(), capture_output=True, text=True, timeout=timeout
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-3000:]
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n{tail}")
    return elapsed, done.stdout, done.stderr


def run_worker(command: str, args: list[str], workdir: Path, timeout: float) -> dict:
    """Run ``shipyard_core.py worker <command> <args>`` in ``workdir``; return its JSON."""
    cmd = [str(VENV_PYTHON), str(Path(__file__).resolve()), "worker", command, *args]
    _, stdout, _ = run_process(cmd, workdir, timeout)
    return parse_result(stdout)


def new_project(name: str) -> Path:
    """Return a fresh project folder ``benchmarks/.work/shipyard/<name>``, its files committed."""
    workdir = fresh_workdir(TOOL, name)
    (workdir / "shipyard.toml").write_text(PROJECT_TOML)
    (workdir / "pipelines.py").write_text(PIPELINES_PY)
    (workdir / ".gitignore").write_text(GITIGNORE)
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    for args in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "benchmark project"]):
        run_process([*git, *args], workdir)
    return workdir


def shipyard_cli(args: list[str], workdir: Path) -> tuple[float, str, str]:
    """Run the ``shipyard`` console script of the repo's venv; return wall time and output."""
    return run_process([str(SHIPYARD_SCRIPT), *args], workdir)


def step_statuses(stdout: str) -> dict[str, int]:
    """Count the step lines ``shipyard run`` printed, by status."""
    found = [m.group(2) for m in map(STEP_LINE.match, stdout.splitlines()) if m]
    return dict(collections.Counter(found))


def store_runs(workdir: Path) -> list[dict[str, Any]]:
    """Every run recorded in the project's SQLite store, oldest first (read untimed)."""
    with sqlite3.connect(workdir / ".shipyard" / "metadata.db") as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute("SELECT status, started_at, ended_at FROM runs ORDER BY started_at")
        return [dict(row) for row in rows]


def import_profile(args: list[str], workdir: Path, top: int = 8) -> dict[str, float]:
    """Seconds of the slowest top-level imports of one untimed ``python -X importtime`` run."""
    cmd = [str(VENV_PYTHON), "-X", "importtime", *args]
    done = subprocess.run(
        cmd, cwd=workdir, env=shipyard_env(), capture_output=True, text=True, timeout=120
    )
    totals: dict[str, float] = {}
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if line.startswith("import time:") and len(parts) == 3 and parts[1].strip().isdigit():
            name = parts[2]
            if not name.startswith("  ") and name.strip():
                totals[name.strip()] = int(parts[1]) / 1e6
    ranked = sorted(totals.items(), key=lambda item: -item[1])[:top]
    return {"all_top_level_s": round(sum(totals.values()), 4), **dict(ranked)}


# --------------------------------------------------------------------------- figures


def measure_import(repeats: int) -> dict[str, dict]:
    """import_s: the time `import <module>` adds to a fresh Python process.

    Measured as the wall time of `python -c "import <module>"` minus the wall time of
    `python -c "pass"`, both started from the harness with subprocess with the repo's .venv
    python. The two commands alternate; one untimed run of each comes first (so .pyc files
    and the OS file cache are warm, as for a user's second command). Each sample is the
    difference of one pair; the figure is the median of the pairs.
    """
    workdir = fresh_workdir(TOOL, "import_s")
    bare = [str(VENV_PYTHON), "-c", "pass"]
    loaded = [str(VENV_PYTHON), "-c", "import shipyard"]
    run_process(bare, workdir)
    run_process(loaded, workdir)
    bare_s, loaded_s = [], []
    for _ in range(repeats):
        bare_s.append(run_process(bare, workdir)[0])
        loaded_s.append(run_process(loaded, workdir)[0])
    diffs = [b - a for a, b in zip(bare_s, loaded_s, strict=True)]
    fig = figure(
        diffs,
        measure_import,
        python_pass_median_s=median_of(bare_s),
        python_import_median_s=median_of(loaded_s),
        import_profile_s=import_profile(["-c", "import shipyard"], workdir),
    )
    return {"import_s": fig}


def measure_help(repeats: int) -> dict[str, dict]:
    """help_s: whole-process wall time of `shipyard --help`.

    The `shipyard` console script of the repo's .venv, started from the harness with
    subprocess (the wall time is measured by the harness around subprocess). One untimed run
    comes first; the figure is the median of `repeats` timed runs.
    """
    workdir = fresh_workdir(TOOL, "help_s")
    shipyard_cli(["--help"], workdir)
    samples = [shipyard_cli(["--help"], workdir)[0] for _ in range(repeats)]
    profile = import_profile(["-m", "shipyard.cli", "--help"], workdir)
    return {"help_s": figure(samples, measure_help, import_profile_s=profile)}


def measure_run3_new_process(repeats: int, cached: bool) -> dict[str, dict]:
    """run3_new_process_s / run3_new_process_cached_s: one pipeline run as a whole new process.

    Whole-process wall time (measured by the harness around subprocess) of `shipyard run
    three`, the console script of the repo's .venv: a new process that imports shipyard,
    loads the project's pipelines.py defining a 3-step pipeline of trivial steps (a returns 1,
    b doubles it, c adds the two) and runs it once. The project and its store already exist
    (shipyard.toml and pipelines.py in a new working directory) and the pipeline already ran
    once there, untimed. Uncached variant: caching disabled (`--no-cache`), every step
    executes. Cached variant: caching enabled after an untimed cached run warmed the cache, so
    every step of a timed run is a cache hit (checked from the step lines the command prints).
    """
    name = "run3_new_process_cached_s" if cached else "run3_new_process_s"
    workdir = new_project(name)
    args = ["run", "three"] if cached else ["run", "three", "--no-cache"]
    shipyard_cli(args, workdir)
    expected = {"cached" if cached else "completed": 3}
    walls, statuses, spawns, exits = [], [], [], []
    for _ in range(repeats):
        spawns.append(time.time())
        wall, stdout, _ = shipyard_cli(args, workdir)
        exits.append(time.time())
        walls.append(wall)
        statuses.append(step_statuses(stdout))
        if statuses[-1] != expected:
            raise RuntimeError(f"expected steps {expected}, the run printed:\n{stdout}")
    timed = store_runs(workdir)[-repeats:]
    profile = import_profile(["-m", "shipyard.cli", *args], workdir)
    return {
        name: figure(
            walls,
            measure_run3_new_process,
            startup_to_run_start_median_s=median_of(
                [r["started_at"] - s for r, s in zip(timed, spawns, strict=True)]
            ),
            run_recorded_median_s=median_of([r["ended_at"] - r["started_at"] for r in timed]),
            run_end_to_exit_median_s=median_of(
                [e - r["ended_at"] for r, e in zip(timed, exits, strict=True)]
            ),
            step_statuses=statuses,
            import_profile_s=profile,
        )
    }


def measure_cached_rerun_warm(repeats: int) -> dict[str, dict]:
    """cached_rerun_warm_s: a fully cached re-run of the 3-step pipeline in a warm process.

    In one process (new store): run the 3-step pipeline once with caching on (untimed; it
    executes the steps and fills the cache), then time each of `repeats` further runs with
    caching on, from the pipeline call to its return (`Pipeline.run(params=...,
    cache=True, project=...)`). Every step of those runs must be a cache hit (step statuses
    are recorded). The figure is the median of those runs.
    """
    workdir = new_project("cached_rerun_warm_s")
    result = run_worker("cached-rerun", ["--repeats", str(repeats)], workdir, WARM_TIMEOUT_S)
    if any(s != {"cached": 3} for s in result["statuses"]):
        raise RuntimeError(f"not every step was a cache hit: {result['statuses']}")
    return {
        "cached_rerun_warm_s": figure(
            result["samples"],
            measure_cached_rerun_warm,
            warmup_statuses=result["warmup_statuses"],
            step_statuses=result["statuses"],
        )
    }


def measure_per_step_overhead(repeats: int) -> dict[str, dict]:
    """per_step_overhead_s, marginal_step_s, run3_warm_uncached_s, run20_warm_uncached_s.

    In one warm process (new store), caching off: after one untimed run of each pipeline,
    alternate timed runs of the 3-step pipeline (t3) and of a 20-step linear pipeline of
    trivial steps (a, then 19 steps adding 1; t20), `repeats` times each, each timed from the
    pipeline call to its return. per_step_overhead_s = median of t20/20. marginal_step_s =
    median of (t20 - t3)/17 over the paired runs: the cost of one more step once the per-run
    fixed cost is paid. run3_warm_uncached_s and run20_warm_uncached_s are the medians of t3
    and t20.
    """
    workdir = new_project("per_step_overhead_s")
    result = run_worker("steps", ["--repeats", str(repeats)], workdir, WARM_TIMEOUT_S)
    t3, t20 = result["t3_samples"], result["t20_samples"]
    defn = measure_per_step_overhead
    return {
        "per_step_overhead_s": figure([t / 20 for t in t20], defn),
        "marginal_step_s": figure([(b - a) / 17 for a, b in zip(t3, t20, strict=True)], defn),
        "run3_warm_uncached_s": figure(t3, defn),
        "run20_warm_uncached_s": figure(t20, defn, last_statuses=result["last_statuses"]),
    }


def measure_log_metric(repeats: int) -> dict[str, dict]:
    """log_metric_1000_s, log_metric_1000_run_s: 1,000 `log_metric` calls inside one step.

    In one warm process (new store; one untimed pipeline run of 10 calls first), each sample is
    one uncached pipeline run whose single step calls `get_context().log_metric("m", i,
    step=i)` for i in 0..999; the step itself times the loop. log_metric_1000_s is the median
    of those loop times (per_call_s is that divided by 1,000). shipyard buffers the values in
    the step and writes them with the step's result, so log_metric_1000_run_s is the median
    wall time of the whole pipeline run (from the pipeline call to its return, which includes
    writing the 1,000 metric rows in the store; the run's metric history is checked to hold
    them).
    """
    workdir = new_project("log_metric_1000_s")
    args = ["--repeats", str(repeats), "--calls", str(METRIC_CALLS)]
    result = run_worker("log-metric", args, workdir, WARM_TIMEOUT_S)
    if any(rows != METRIC_CALLS for rows in result["metric_rows"]):
        raise RuntimeError(f"expected {METRIC_CALLS} metric rows, got {result['metric_rows']}")
    loops = result["samples"]
    return {
        "log_metric_1000_s": figure(
            loops,
            measure_log_metric,
            api='shipyard.get_context().log_metric("m", i, step=i)',
            per_call_s=median_of(loops) / METRIC_CALLS,
        ),
        "log_metric_1000_run_s": figure(
            result["pipeline_run_s"], measure_log_metric, metric_rows=result["metric_rows"]
        ),
    }


def measure_artifact(repeats: int) -> dict[str, dict]:
    """artifact_1gb_write_s, artifact_1gb_read_s: a ~1 GB Polars table, plain vs shipyard.

    One table for all variants: 12.5M rows x 10 columns (4 float64 standard normal, 4 int64:
    a row id, uniform 0..1e6, uniform +-2^40 and an increasing counter; a microsecond
    datetime one second apart plus jitter; a low-cardinality int64 of 16 values), 1.0 GB by
    `DataFrame.estimated_size()`, made once with a fixed seed in a worker process. Each
    repetition times three variants, in an order rotated by repetition: (a) plain
    `df.write_parquet(path)` with Polars defaults (zstd) and `pl.read_parquet(path)`; (b) plain
    write/read with `compression="lz4"`, the codec of shipyard's table artifacts; (c) shipyard:
    what a step output goes through (`shipyard.core.executor.write_artifact`): the
    materializer writes the Parquet bytes through a `HashingWriter`, which computes their
    SHA-256 on the way to disk, then `store.commit` moves the file into the content-addressed
    store; then a read with
    `load_artifact(LocalArtifactStore(root), ArtifactRef(...))` through a new store object, so
    the read verifies the SHA-256 of the bytes. Files are deleted after each repetition (no
    fsync; the file just written is read back from the OS page cache in every variant). The
    figure is the median of shipyard's times over max(3, repeats) repetitions; ratio_vs_default
    and ratio_vs_lz4 are plain median time / shipyard median time, i.e. shipyard's speed as a
    fraction of plain Polars' (>= 0.70 is the target for both). To show where the time goes,
    each write and read also records the CPU seconds of the worker process (all threads,
    `time.process_time`), shipyard's write is split into the materializer's save (hashing
    included) and the commit (the move), and after each read one more new store object
    verifies the object alone, untimed (verify_only).
    """
    workdir = fresh_workdir(TOOL, "artifact_1gb")
    count = max(ARTIFACT_MIN_REPEATS, repeats)
    args = ["--repeats", str(count), "--rows", str(ARTIFACT_ROWS)]
    result = run_worker("artifact", args, workdir, ARTIFACT_TIMEOUT_S)
    figures = {}
    ours = result["shipyard"]
    for op in ("write", "read"):
        default, lz4 = result["plain_default"][op], result["plain_lz4"][op]
        figures[f"artifact_1gb_{op}_s"] = figure(
            ours[op],
            measure_artifact,
            plain_default_median_s=median_of(default),
            plain_default_samples=default,
            plain_lz4_median_s=median_of(lz4),
            plain_lz4_samples=lz4,
            ratio_vs_default=median_of(default) / median_of(ours[op]),
            ratio_vs_lz4=median_of(lz4) / median_of(ours[op]),
            cpu_median_s={k: median_of(result[k][f"{op}_cpu"]) for k in ARTIFACT_VARIANTS},
            file_bytes={k: result[k]["bytes"] for k in ARTIFACT_VARIANTS},
            table=result["table"],
            worker_peak_rss_bytes=result["peak_rss_bytes"],
            order=result["order"],
        )
    parts = ("save", "commit", "verify_only", "verify_only_cpu")
    figures["artifact_1gb_write_s"]["shipyard_parts_median_s"] = {
        k: median_of(ours[k]) for k in parts
    }
    figures["artifact_1gb_write_s"]["shipyard_parts_samples"] = {k: ours[k] for k in parts}
    return figures


def measure_concurrent(repeats: int) -> dict[str, dict]:
    """concurrent_8: 8 `shipyard run` processes at once against one SQLite store.

    In a project whose store was created by one untimed run, the harness starts 8 `shipyard
    run three --no-cache --param n=<i>` processes (i = 0..7; the 3-step pipeline, caching off)
    at once with subprocess and waits for all. Per repetition it records the wall time from
    the first start to the last exit (the figure's samples), how many processes exited 0, how
    many of their stderr lines contain "locked" (any case), and the runs the store holds
    afterwards by status. Repeated 3 times in the same project; the target is 8 of 8
    successes and 0 lock lines in every repetition.
    """
    del repeats  # the brief fixes 3 repetitions of 8 processes
    workdir = new_project("concurrent_8")
    shipyard_cli(["run", "three", "--no-cache"], workdir)
    walls, successes, lock_lines, stdout_lock_lines = [], [], [], []
    for rep in range(CONCURRENT_REPEATS):
        wall, codes, errors, outputs = concurrent_round(workdir, rep)
        walls.append(wall)
        successes.append(sum(code == 0 for code in codes))
        lock_lines.append(sum("locked" in line.lower() for e in errors for line in e.splitlines()))
        stdout_lock_lines.append(
            sum("locked" in line.lower() for o in outputs for line in o.splitlines())
        )
    runs = collections.Counter(r["status"] for r in store_runs(workdir))
    return {
        "concurrent_8": figure(
            walls,
            measure_concurrent,
            processes=CONCURRENT_PROCESSES,
            successes=successes,
            stderr_lock_lines=lock_lines,
            stdout_lock_lines=stdout_lock_lines,
            store_runs_by_status=dict(runs),
        )
    }


def concurrent_round(workdir: Path, rep: int) -> tuple[float, list[int], list[str], list[str]]:
    """Start the 8 runs at once; return wall time, exit codes, stderr and stdout texts."""
    logs = workdir / f"round{rep}"
    logs.mkdir()
    procs, files = [], []
    start = time.perf_counter()
    for i in range(CONCURRENT_PROCESSES):
        out, err = (logs / f"{i}.out").open("w"), (logs / f"{i}.err").open("w")
        files.append((out, err))
        cmd = [str(SHIPYARD_SCRIPT), "run", "three", "--no-cache", "--param", f"n={i}"]
        procs.append(subprocess.Popen(cmd, cwd=workdir, env=shipyard_env(), stdout=out, stderr=err))
    codes = [proc.wait(timeout=PROCESS_TIMEOUT_S) for proc in procs]
    wall = time.perf_counter() - start
    for out, err in files:
        out.close()
        err.close()
    errors = [(logs / f"{i}.err").read_text() for i in range(CONCURRENT_PROCESSES)]
    outputs = [(logs / f"{i}.out").read_text() for i in range(CONCURRENT_PROCESSES)]
    return wall, codes, errors, outputs


# --------------------------------------------------------------------------- targets


def below(limit: float) -> Callable[[dict], bool]:
    """A check that the figure's median is below ``limit`` seconds."""
    return lambda fig: fig["median"] is not None and fig["median"] < limit


def fast_enough(fig: dict) -> bool:
    """Shipyard's speed is at least 70% of plain `write_parquet` / `read_parquet` (Polars
    defaults), as the issue states the target; the same-codec ratio is reported beside it."""
    return fig["ratio_vs_default"] >= 0.70


def all_succeed(fig: dict) -> bool:
    """Every process of every repetition exited 0 and no stderr line mentions a lock."""
    return all(s == CONCURRENT_PROCESSES for s in fig["successes"]) and not any(
        fig["stderr_lock_lines"]
    )


TARGETS: dict[str, tuple[str, Callable[[dict], bool]]] = {
    "import_s": ("< 0.100 s", below(0.100)),
    "help_s": ("< 0.300 s", below(0.300)),
    "run3_new_process_s": ("< 1 s", below(1.0)),
    "run3_new_process_cached_s": ("< 1 s", below(1.0)),
    "cached_rerun_warm_s": ("< 0.050 s", below(0.050)),
    "per_step_overhead_s": ("< 0.005 s", below(0.005)),
    "log_metric_1000_run_s": ("< 0.100 s (whole run)", below(0.100)),
    "artifact_1gb_write_s": (">= 0.70 x plain speed", fast_enough),
    "artifact_1gb_read_s": (">= 0.70 x plain speed", fast_enough),
    "concurrent_8": ("8/8 succeed, 0 lock errors", all_succeed),
}


def judge(name: str, fig: dict) -> dict:
    """Add the figure's target and whether it is met (figures without a target get None)."""
    text, check = TARGETS.get(name, (None, None))
    fig["target"] = text
    fig["met"] = None if check is None or fig.get("error") else bool(check(fig))
    return fig


GROUPS: dict[str, Callable[[int], dict[str, dict]]] = {
    "import_s": measure_import,
    "help_s": measure_help,
    "run3_new_process_s": lambda n: measure_run3_new_process(n, cached=False),
    "run3_new_process_cached_s": lambda n: measure_run3_new_process(n, cached=True),
    "cached_rerun_warm_s": measure_cached_rerun_warm,
    "per_step_overhead_s": measure_per_step_overhead,
    "log_metric_1000_s": measure_log_metric,
    "artifact_1gb": measure_artifact,
    "concurrent_8": measure_concurrent,
}


def measure_group(name: str, repeats: int) -> dict[str, dict]:
    """Measure one group; stamp each figure with time and load; on failure, a null figure."""
    print(f"  measuring {name} ...", flush=True)
    load_before, at = list(os.getloadavg()), dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    start = time.perf_counter()
    try:
        figures = GROUPS[name](repeats)
    except (
        RuntimeError,
        subprocess.SubprocessError,
        OSError,
        KeyError,
        ValueError,
        sqlite3.Error,
    ) as exc:
        figures = {name: {"median": None, "samples": [], "error": str(exc)[-2000:]}}
    stamp = {
        "measured_at": at,
        "loadavg_before": load_before,
        "loadavg_after": list(os.getloadavg()),
        "group_s": time.perf_counter() - start,
    }
    return {key: judge(key, {**fig, **stamp}) for key, fig in figures.items()}


# --------------------------------------------------------------------------- worker


def worker_timed_run(pipe: Any, project: Any, cache: bool, **params: Any) -> tuple:
    """Run ``pipe`` once; return its wall time, its steps' statuses and the ``Run``."""
    start = time.perf_counter()
    run = pipe.run(params=params, cache=cache, project=project)
    elapsed = time.perf_counter() - start
    statuses = collections.Counter(s.status for s in run.step_runs.values())
    return elapsed, dict(statuses), run


def worker_project() -> Any:
    """The project of the working directory (shipyard is imported here, in the worker only)."""
    from shipyard import Project

    return Project.discover()


def worker_cached_rerun(args: argparse.Namespace) -> dict:
    """Warm the cache with one cached run, then time ``repeats`` fully cached re-runs."""
    project = worker_project()
    three = project.pipeline("three")
    _, warmup, _ = worker_timed_run(three, project, cache=True)
    samples, statuses = [], []
    for _ in range(args.repeats):
        elapsed, status, _ = worker_timed_run(three, project, cache=True)
        samples.append(elapsed)
        statuses.append(status)
    return {"warmup_statuses": warmup, "samples": samples, "statuses": statuses}


def worker_steps(args: argparse.Namespace) -> dict:
    """After one untimed run of each, alternate timed uncached 3-step and 20-step runs."""
    project = worker_project()
    three, twenty = project.pipeline("three"), project.pipeline("twenty")
    worker_timed_run(three, project, cache=False)
    worker_timed_run(twenty, project, cache=False)
    t3, t20, status3, status20 = [], [], {}, {}
    for _ in range(args.repeats):
        elapsed3, status3, _ = worker_timed_run(three, project, cache=False)
        elapsed20, status20, _ = worker_timed_run(twenty, project, cache=False)
        t3.append(elapsed3)
        t20.append(elapsed20)
    return {
        "t3_samples": t3,
        "t20_samples": t20,
        "last_statuses": {"three": status3, "twenty": status20},
    }


def worker_log_metric(args: argparse.Namespace) -> dict:
    """After one untimed 10-call run, ``repeats`` runs each timing ``calls`` log_metric calls."""
    project = worker_project()
    pipe = project.pipeline("metrics")
    loops = sys.modules["pipelines"].LOOP_SECONDS
    worker_timed_run(pipe, project, cache=False, calls=10)
    loops.clear()
    run_s, rows = [], []
    for _ in range(args.repeats):
        elapsed, _, run = worker_timed_run(pipe, project, cache=False, calls=args.calls)
        run_s.append(elapsed)
        rows.append(sum(1 for m in run.metric_history if m["key"] == "m"))
    return {"samples": list(loops), "pipeline_run_s": run_s, "metric_rows": rows}


def make_table(rows: int) -> Any:
    """The ~1 GB benchmark table (10 columns of 8 bytes), always the same for a given ``rows``."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(ARTIFACT_SEED)
    columns: dict[str, Any] = {f"f{i}": rng.standard_normal(rows) for i in range(4)}
    columns["id"] = np.arange(rows, dtype=np.int64)
    columns["uniform"] = rng.integers(0, 1_000_000, rows, dtype=np.int64)
    columns["wide"] = rng.integers(-(2**40), 2**40, rows, dtype=np.int64)
    columns["counter"] = np.cumsum(rng.integers(0, 100, rows, dtype=np.int64))
    offsets = np.arange(rows, dtype=np.int64) * 1_000_000 + rng.integers(0, 1_000_000, rows)
    columns["ts"] = np.datetime64("2024-01-01T00:00:00", "us") + offsets.astype("m8[us]")
    columns["category"] = rng.integers(0, 16, rows, dtype=np.int64)
    frame = pl.DataFrame(columns)
    del columns
    gc.collect()
    return frame


class Clock:
    """Wall and CPU time (all threads of this process) since it was started."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def lap(self) -> tuple[float, float]:
        """Wall and CPU seconds since the start (or the previous lap); starts a new lap."""
        wall, cpu = time.perf_counter(), time.process_time()
        lap = (wall - self.wall, cpu - self.cpu)
        self.wall, self.cpu = wall, cpu
        return lap


def timed_plain(df: Any, path: Path, options: dict[str, Any]) -> dict[str, float]:
    """Plain Polars: time ``write_parquet(path, **options)`` and ``read_parquet``; delete."""
    import polars as pl

    clock = Clock()
    df.write_parquet(path, **options)
    write, write_cpu = clock.lap()
    size = path.stat().st_size
    clock = Clock()
    back = pl.read_parquet(path)
    read, read_cpu = clock.lap()
    check_shape(back, df)
    del back
    path.unlink()
    return {
        "write": write,
        "read": read,
        "write_cpu": write_cpu,
        "read_cpu": read_cpu,
        "bytes": size,
    }


def timed_shipyard(df: Any, root: Path) -> dict[str, float]:
    """shipyard: time materializer save + commit, then a checked read via a new store; delete.

    Also returns the split of the write (``save``, ``commit``) and, untimed, the time one more
    new store object takes to verify the object alone (``verify_only``).
    """
    from shipyard.core.executor import ArtifactRef, load_artifact
    from shipyard.core.materializers import PolarsMaterializer
    from shipyard.storage.artifacts import HashingWriter, LocalArtifactStore

    # The same calls as shipyard.core.executor.write_artifact, split to show where time goes.
    store = LocalArtifactStore(root)
    clock = Clock()
    staged = store.staging_path()
    with HashingWriter(staged) as stream:
        PolarsMaterializer().save_stream(df, stream)  # type: ignore[arg-type]
    save, save_cpu = clock.lap()
    stored = store.commit(staged, hashed=stream.hashed)
    commit, commit_cpu = clock.lap()
    ref = ArtifactRef("bench", stored.digest, PolarsMaterializer.name, TABLE_TYPE)
    clock = Clock()
    back = load_artifact(LocalArtifactStore(root), ref)
    read, read_cpu = clock.lap()
    check_shape(back, df)
    del back
    clock = Clock()
    LocalArtifactStore(root).verify(stored.digest)
    verify_only, verify_only_cpu = clock.lap()
    Path(stored.uri).unlink()
    return {
        "write": save + commit,
        "read": read,
        "write_cpu": save_cpu + commit_cpu,
        "read_cpu": read_cpu,
        "bytes": stored.size,
        "save": save,
        "commit": commit,
        "verify_only": verify_only,
        "verify_only_cpu": verify_only_cpu,
    }


def check_shape(back: Any, df: Any) -> None:
    """Raise unless the frame read back has the shape and schema of the one written."""
    if back.shape != df.shape or back.schema != df.schema:
        raise RuntimeError(f"read back {back.shape} {back.schema}, wrote {df.shape} {df.schema}")


def worker_artifact(args: argparse.Namespace) -> dict:
    """Time the three write/read variants on one table, ``repeats`` times, rotating order."""
    from shipyard.core.materializers import TABLE_COMPRESSION

    df = make_table(args.rows)
    workdir = Path.cwd()
    variants: dict[str, Callable[[], dict[str, float]]] = {
        "plain_default": lambda: timed_plain(df, workdir / "plain_default.parquet", {}),
        "plain_lz4": lambda: timed_plain(
            df, workdir / "plain_lz4.parquet", {"compression": TABLE_COMPRESSION}
        ),
        "shipyard": lambda: timed_shipyard(df, workdir / "store"),
    }
    names = list(variants)
    result: dict[str, Any] = {name: collections.defaultdict(list) for name in names}
    order = []
    for rep in range(args.repeats):
        rotated = names[rep % 3 :] + names[: rep % 3]
        order.append(rotated)
        for name in rotated:
            for key, value in variants[name]().items():
                result[name][key].append(value)
            gc.collect()
    for name in names:
        result[name]["bytes"] = result[name]["bytes"][-1]
    result["order"] = order
    result["table"] = {
        "rows": df.height,
        "columns": df.width,
        "estimated_size_bytes": df.estimated_size(),
        "schema": {k: str(v) for k, v in df.schema.items()},
    }
    result["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return result


WORKERS: dict[str, Callable[[argparse.Namespace], dict]] = {
    "cached-rerun": worker_cached_rerun,
    "steps": worker_steps,
    "log-metric": worker_log_metric,
    "artifact": worker_artifact,
}


def worker_main(argv: list[str]) -> int:
    """Run one worker command and print its result as a ``BENCH_JSON`` line."""
    parser = argparse.ArgumentParser(description="shipyard benchmark worker")
    parser.add_argument("command", choices=sorted(WORKERS))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=METRIC_CALLS)
    parser.add_argument("--rows", type=int, default=ARTIFACT_ROWS)
    args = parser.parse_args(argv)
    result = WORKERS[args.command](args)
    print(JSON_PREFIX + json.dumps(result), flush=True)
    return 0


# --------------------------------------------------------------------------- harness


def package_versions() -> dict[str, str]:
    """Versions of shipyard and its main dependencies in the repo's venv, and its Python."""
    code = (
        "import importlib.metadata as m, json, platform; "
        f"v = {{p: m.version(p) for p in {PACKAGES!r}}}; "
        "v['python'] = platform.python_version(); print(json.dumps(v))"
    )
    _, stdout, _ = run_process([str(VENV_PYTHON), "-c", code], REPO_DIR)
    return json.loads(stdout)


def git_facts() -> dict[str, Any]:
    """The repository's HEAD and whether shipyard's source differs from it."""
    _, head, _ = run_process(["git", "rev-parse", "HEAD"], REPO_DIR)
    _, dirty, _ = run_process(["git", "status", "--porcelain", "--", "src/shipyard"], REPO_DIR)
    return {"commit": head.strip(), "src_shipyard_dirty": bool(dirty.strip())}


def load_previous(path: Path) -> dict | None:
    """The existing results file, or None if there is none (or it is unreadable)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def print_table(results: dict) -> None:
    """Print one line per figure: name, median, target, met? and all samples."""
    print(f"\n{'figure':<27} {'median':>10}  {'target':<27} {'met':<5} samples")
    for name, fig in results[TOOL]["figures"].items():
        samples = ", ".join(fmt(s) for s in fig.get("samples", []))
        met = {True: "yes", False: "NO", None: "-"}[fig.get("met")]
        line = f"{name:<27} {fmt(fig.get('median')):>10}  {fig.get('target') or '-':<27} {met:<5}"
        line += f" [{samples}]"
        if fig.get("error"):
            line += f"  ERROR: {fig['error'].strip().splitlines()[-1]}"
        print(line)
        for key in ("ratio_vs_default", "ratio_vs_lz4"):
            if key in fig:
                print(f"{'':<27} {key} = {fig[key]:.3f}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description="Benchmark shipyard's core figures.")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", choices=sorted(GROUPS))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--note", default="", help="why a figure is measured again (--only)")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    """Measure the figures (all, or ``--only`` one merged into the file) and write the JSON."""
    if argv[:1] == ["worker"]:
        return worker_main(argv[1:])
    args = parse_args(argv)
    if not SHIPYARD_SCRIPT.exists():
        raise SystemExit(f"{SHIPYARD_SCRIPT} is missing: create the venv (pip install -e .).")
    start = time.perf_counter()
    meta = machine_meta(args.repeats)
    meta.update(venv_python=str(VENV_PYTHON), packages=package_versions(), git=git_facts())
    groups = [args.only] if args.only else list(GROUPS)
    figures: dict[str, dict] = {}
    for name in groups:
        figures.update(measure_group(name, args.repeats))
    meta["loadavg_end"] = list(os.getloadavg())
    meta["total_s"] = time.perf_counter() - start
    previous = load_previous(args.out) if args.only else None
    if previous is not None:
        results = previous
        results[TOOL]["figures"].update(figures)
        rerun = {"only": args.only, "note": args.note, **meta}
        results["meta"].setdefault("reruns", []).append(rerun)
    else:
        version = meta["packages"]["shipyard"]
        results = {"meta": meta, TOOL: {"version": version, "figures": figures}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(f"\ntotal {meta['total_s']:.1f} s; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
