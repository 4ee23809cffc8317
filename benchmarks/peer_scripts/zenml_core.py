"""ZenML side of the core benchmarks; runs inside ``benchmarks/.venvs/zenml``.

Standalone on purpose: it imports neither shipyard nor anything from ``benchmarks/``. The
harness (``benchmarks/peers.py``) starts it with the current directory set to an initialized
ZenML repository and ``ZENML_CONFIG_PATH`` pointing at a store under ``benchmarks/.work``.

Each sub-command prints exactly one line ``BENCH_JSON {...}`` on stdout (ZenML may print other
lines around it). Timings are ``time.perf_counter`` seconds; ``run3`` also reports the epoch
times (``time.time``) of the script's first line and of its result, so that the harness can split
the process wall time into interpreter start-up, import, run and shutdown. With ``--count-sql`` a
SQLAlchemy listener counts the statements and commits ZenML's local SQLite store receives; the
harness only uses that mode in extra, untimed probe runs, never for the timed samples.

Sub-commands:
  run3 --cache on|off        one run of the 3-step pipeline (the harness times the process)
  cached-rerun --repeats N   warm process: N timed re-runs of the 3-step pipeline, all cached
  steps --repeats N          warm process: N uncached runs each of the 3- and 20-step pipelines
  log-metadata --repeats N   warm process: N runs of one step doing --calls log_metadata calls
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time

WALL_START = time.time()
T_START = time.perf_counter()
from zenml import log_metadata, pipeline, step  # noqa: E402

T_IMPORTED = time.perf_counter()

SQL_COUNTS: collections.Counter[str] = collections.Counter()
STEP_TIMINGS: list[float] = []


@step
def a() -> int:
    """Trivial first step: return an int."""
    return 1


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
    """Call ``log_metadata({"m": float(i)})`` ``calls`` times; record the loop's duration."""
    start = time.perf_counter()
    for i in range(calls):
        log_metadata(metadata={"m": float(i)})
    STEP_TIMINGS.append(time.perf_counter() - start)


@pipeline
def three_steps() -> None:
    """a -> b, and c(a, b): three trivial steps."""
    x = a()
    y = b(x)
    c(x, y)


@pipeline
def twenty_steps() -> None:
    """a followed by 19 ``inc`` steps: a linear chain of 20 trivial steps."""
    x = a()
    for _ in range(19):
        x = inc(x)


@pipeline
def metadata_pipeline(calls: int) -> None:
    """One step that logs ``calls`` metadata values."""
    log_many(calls)


def install_sql_counter() -> None:
    """Count every SQL statement (by first keyword) and every commit on any SQLAlchemy engine."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    def on_execute(conn, cursor, statement, params, context, executemany):
        SQL_COUNTS[statement.split(None, 1)[0].upper()] += 1

    def on_commit(conn):
        SQL_COUNTS["COMMIT"] += 1

    event.listen(Engine, "before_cursor_execute", on_execute)
    event.listen(Engine, "commit", on_commit)


def take_sql_counts() -> dict[str, int]:
    """Return the statement counts gathered since the last call and reset them."""
    counts = dict(SQL_COUNTS)
    SQL_COUNTS.clear()
    return counts


def statuses(run) -> dict[str, int]:
    """Count a finished run's steps by status (``completed``, ``cached``, ...)."""
    counter = collections.Counter(s.status.value for s in run.steps.values())
    return dict(counter)


def timed_run(pipeline_obj, cache: bool, **params) -> tuple[float, dict[str, int]]:
    """Run ``pipeline_obj`` once; return its wall time and its steps' statuses."""
    configured = pipeline_obj.with_options(enable_cache=cache)
    start = time.perf_counter()
    run = configured(**params)
    elapsed = time.perf_counter() - start
    return elapsed, statuses(run)


def cmd_run3(args: argparse.Namespace) -> dict:
    """One run of the 3-step pipeline; the harness times the whole process around it."""
    elapsed, status = timed_run(three_steps, cache=args.cache == "on")
    return {
        "import_s": T_IMPORTED - T_START,
        "run_s": elapsed,
        "statuses": status,
        "sql": take_sql_counts(),
        "wall_start": WALL_START,
        "wall_emit": time.time(),
    }


def cmd_cached_rerun(args: argparse.Namespace) -> dict:
    """Warm the cache with one cached run, then time ``repeats`` fully cached re-runs."""
    _, first_status = timed_run(three_steps, cache=True)
    take_sql_counts()
    samples, all_status = [], []
    for _ in range(args.repeats):
        elapsed, status = timed_run(three_steps, cache=True)
        samples.append(elapsed)
        all_status.append(status)
    return {
        "warmup_statuses": first_status,
        "samples": samples,
        "statuses": all_status,
        "sql_per_run": divide_counts(take_sql_counts(), args.repeats),
    }


def cmd_steps(args: argparse.Namespace) -> dict:
    """After one untimed run of each, alternate timed uncached 3-step and 20-step runs."""
    timed_run(three_steps, cache=False)
    timed_run(twenty_steps, cache=False)
    take_sql_counts()
    t3, t20, sql3, sql20 = [], [], collections.Counter(), collections.Counter()
    for _ in range(args.repeats):
        elapsed3, status3 = timed_run(three_steps, cache=False)
        sql3.update(take_sql_counts())
        elapsed20, status20 = timed_run(twenty_steps, cache=False)
        sql20.update(take_sql_counts())
        t3.append(elapsed3)
        t20.append(elapsed20)
    return {
        "t3_samples": t3,
        "t20_samples": t20,
        "last_statuses": {"three": status3, "twenty": status20},
        "sql_per_run_3": divide_counts(sql3, args.repeats),
        "sql_per_run_20": divide_counts(sql20, args.repeats),
    }


def cmd_log_metadata(args: argparse.Namespace) -> dict:
    """After one untimed 10-call run, ``repeats`` runs each timing ``calls`` log_metadata calls."""
    timed_run(metadata_pipeline, cache=False, calls=10)
    STEP_TIMINGS.clear()
    take_sql_counts()
    run_s = []
    for _ in range(args.repeats):
        elapsed, _ = timed_run(metadata_pipeline, cache=False, calls=args.calls)
        run_s.append(elapsed)
    return {
        "samples": list(STEP_TIMINGS),
        "pipeline_run_s": run_s,
        "calls": args.calls,
        "sql_per_run": divide_counts(take_sql_counts(), args.repeats),
    }


def divide_counts(counts: dict[str, int], runs: int) -> dict[str, float]:
    """Average statement counts over ``runs`` runs."""
    return {key: value / runs for key, value in sorted(counts.items())}


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse the sub-command and its options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("--cache", choices=["on", "off"], default="off")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--count-sql", action="store_true")
    return parser.parse_args(argv)


COMMANDS = {
    "run3": cmd_run3,
    "cached-rerun": cmd_cached_rerun,
    "steps": cmd_steps,
    "log-metadata": cmd_log_metadata,
}


def main(argv: list[str]) -> None:
    """Run one sub-command and print its result as a ``BENCH_JSON`` line."""
    args = parse_args(argv)
    if args.count_sql:
        install_sql_counter()
    result = COMMANDS[args.command](args)
    print("BENCH_JSON " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
