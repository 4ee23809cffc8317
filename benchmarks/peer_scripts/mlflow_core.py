"""MLflow side of the core benchmarks; runs inside ``benchmarks/.venvs/mlflow``.

Standalone on purpose: it imports neither shipyard nor anything from ``benchmarks/``. The
harness (``benchmarks/peers.py``) starts it in a fresh, empty working directory under
``benchmarks/.work`` and reads the single ``BENCH_JSON {...}`` line it prints on stdout.

Sub-command:
  log-metric --calls N [--count-sql]
      Create ``mlflow.db`` (SQLite, schema migrations included) and one experiment, start a
      run, then time N ``mlflow.log_metric("m", i, step=i)`` calls. With ``--count-sql`` a
      SQLAlchemy listener counts the statements and commits of the timed loop; the harness uses
      that only in an extra, untimed probe run.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path

T_START = time.perf_counter()
import mlflow  # noqa: E402

T_IMPORTED = time.perf_counter()

SQL_COUNTS: collections.Counter[str] = collections.Counter()


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


def prepare_store(db_path: Path) -> tuple[str, float]:
    """Create the SQLite tracking store and one experiment; return its id and the time taken."""
    start = time.perf_counter()
    mlflow.set_tracking_uri(f"sqlite:///{db_path.resolve()}")
    experiment_id = mlflow.create_experiment("bench")
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id, time.perf_counter() - start


def time_log_metric(calls: int) -> float:
    """Inside one started run, time ``calls`` calls of ``mlflow.log_metric("m", i, step=i)``."""
    with mlflow.start_run():
        start = time.perf_counter()
        for i in range(calls):
            mlflow.log_metric("m", i, step=i)
        elapsed = time.perf_counter() - start
    return elapsed


def cmd_log_metric(args: argparse.Namespace) -> dict:
    """Prepare a new store, then time the log_metric loop once."""
    _, prepare_s = prepare_store(Path("mlflow.db"))
    if args.count_sql:
        install_sql_counter()
    elapsed = time_log_metric(args.calls)
    return {
        "import_s": T_IMPORTED - T_START,
        "prepare_store_s": prepare_s,
        "elapsed_s": elapsed,
        "calls": args.calls,
        "sql_per_call": {k: v / args.calls for k, v in sorted(SQL_COUNTS.items())},
    }


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse the sub-command and its options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["log-metric"])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--count-sql", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    """Run the sub-command and print its result as a ``BENCH_JSON`` line."""
    args = parse_args(argv)
    result = cmd_log_metric(args)
    print("BENCH_JSON " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
