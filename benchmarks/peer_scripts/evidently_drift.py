"""Evidently side of the drift benchmark: ``DataDriftPreset`` on a reference and a current frame.

Run by ``benchmarks/monitoring_drift.py`` with the Python of ``benchmarks/.venvs/evidently``
(Evidently 0.7.23, pandas < 3)::

    python evidently_drift.py --data DIR --out RESULT.json

``DIR`` holds ``reference.parquet``, ``current.parquet`` and ``columns.json`` (the numeric and
categorical column names). Untimed: the imports and reading both Parquet files into pandas.
Timed: ``Dataset.from_pandas`` of both frames with an explicit ``DataDefinition`` (so no
column-type inference differs from shipyard's), then
``Report([DataDriftPreset()], include_tests=True).run(current, reference)`` and
``snapshot.dict()``, from which each column's method, value and verdict (its test's FAIL
status) and the share of drifted columns are read.

Prints one ``BENCH_JSON {...}`` line: ``seconds``, ``setup_s``, ``peak_rss_mb`` (``VmHWM``
right after the timed part), ``share``, ``dataset_drift``, ``columns``, ``versions``.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path
from typing import Any

JSON_PREFIX = "BENCH_JSON "
#: Evidently's display names of its tests, as shipyard names them.
METHODS = {
    "K-S p_value": "ks",
    "chi-square p_value": "chisquare",
    "Z-test p_value": "z",
    "Wasserstein distance (normed)": "wasserstein",
    "Jensen-Shannon distance": "jensenshannon",
    "PSI": "psi",
}


def peak_rss_mb() -> float:
    """``VmHWM`` of this process in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def verdicts(snapshot: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """Each column's method, value and verdict, and the share of drifted columns."""
    columns: dict[str, Any] = {}
    share = float("nan")
    for metric in snapshot["metrics"]:
        config = metric["config"]
        if config["type"].endswith("DriftedColumnsCount"):
            share = float(metric["value"]["share"])
        elif config["type"].endswith("ValueDrift"):
            columns[config["column"]] = {
                "method": METHODS.get(config["method"], config["method"]),
                "value": float(metric["value"]),
                "threshold": config["threshold"],
            }
    for test in snapshot["tests"]:
        found = re.fullmatch(r"Value Drift for column (.+)", test["name"])
        if found:
            columns[found.group(1)]["drifted"] = test["status"] == "FAIL"
    return columns, share


def main() -> None:
    """Run the preset once and print the result."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    start = time.perf_counter()
    import evidently
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    names = json.loads((args.data / "columns.json").read_text())
    reference = pd.read_parquet(args.data / "reference.parquet")
    current = pd.read_parquet(args.data / "current.parquet")
    setup = time.perf_counter() - start

    began = time.perf_counter()
    definition = DataDefinition(
        numerical_columns=names["numeric"], categorical_columns=names["categorical"]
    )
    ref = Dataset.from_pandas(reference, data_definition=definition)
    cur = Dataset.from_pandas(current, data_definition=definition)
    snapshot = Report([DataDriftPreset()], include_tests=True).run(
        current_data=cur, reference_data=ref
    )
    columns, share = verdicts(snapshot.dict())
    seconds = time.perf_counter() - began
    result = {
        "seconds": seconds,
        "setup_s": setup,
        "peak_rss_mb": peak_rss_mb(),
        "share": share,
        "dataset_drift": share >= 0.5,
        "columns": columns,
        "versions": {"evidently": evidently.__version__, "pandas": pd.__version__},
    }
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    print(JSON_PREFIX + json.dumps(result))


if __name__ == "__main__":
    main()
