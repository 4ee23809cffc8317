"""Pandera 0.35 side of the contract benchmark: the same 12 checks, on Polars or on pandas.

Run by ``benchmarks/contracts_validate.py`` in ``benchmarks/.venvs/pandera``::

    python pandera_validate.py --data orders_1000000.parquet --spec spec.json --mode polars|pandas

One fresh process = one sample: load the Parquet file (untimed), validate once (warm-up),
validate again (timed) with ``lazy=True`` so every failure is collected, then count failing
rows per check from ``SchemaErrors.failure_cases``. Pandera only reports: it does not split
the rows into accepted and quarantined ones. Prints one ``BENCH_JSON {...}`` line.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

# pandera check name -> (column or None, name of the benchmark check)
NULL_CHECKS = {"id": "id_not_null", "customer": "customer_not_null", "created": "created_not_null"}
RANGES = {"amount": "amount_range", "quantity": "quantity_range", "score": "score_range"}
SETS = {"currency": "currency_in_set", "country": "country_in_set", "channel": "channel_in_set"}


def peak_rss_mb() -> float:
    """Peak RSS of this process in MB (``VmHWM``; ``ru_maxrss`` would include the harness'
    peak, which Linux carries over ``execve``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def rss_mb() -> float:
    """Resident memory of this process now, in MB."""
    import os

    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def build_schema(pa: Any, spec: dict[str, Any], mode: str) -> Any:
    """The 12 checks as a pandera DataFrameSchema (``pa`` is pandera.polars or pandera.pandas).

    Columns that the contract does not require are ``nullable=True`` (pandera's default is
    False, which would add checks the others do not make).
    """
    if mode == "polars":
        import polars as pl

        types = {
            "str": pl.String,
            "float": pl.Float64,
            "int": pl.Int64,
            "time": pl.Datetime("us"),
            "bool": pl.Boolean,
        }

        def has_rows(data: Any) -> Any:
            return data.lazyframe.select(pl.len() > 0)
    else:
        types = {
            "str": None,
            "float": "float64",
            "int": "int64",
            "time": "datetime64[us]",
            "bool": "bool",
        }

        def has_rows(data: Any) -> bool:
            return len(data) > 0

    def rng(name: str) -> Any:
        return pa.Check.in_range(*spec[name], include_min=True, include_max=True)

    columns = {
        "id": pa.Column(
            types["str"],
            nullable=False,
            unique=True,
            checks=pa.Check.str_matches(spec["id_pattern"]),
        ),
        "customer": pa.Column(types["str"], nullable=False),
        "amount": pa.Column(types["float"], rng("amount"), nullable=True),
        "currency": pa.Column(types["str"], pa.Check.isin(spec["currency"]), nullable=True),
        "country": pa.Column(types["str"], pa.Check.isin(spec["country"]), nullable=True),
        "quantity": pa.Column(types["int"], rng("quantity"), nullable=True),
        "score": pa.Column(types["float"], rng("score"), nullable=True),
        "created": pa.Column(types["time"], nullable=False),
        "channel": pa.Column(types["str"], pa.Check.isin(spec["channel"]), nullable=True),
        "flag": pa.Column(types["bool"], nullable=True),
    }
    return pa.DataFrameSchema(columns, checks=[pa.Check(has_rows, name="row_count")])


def load(path: str, mode: str) -> Any:
    """The Parquet file as a Polars or pandas DataFrame."""
    if mode == "polars":
        import polars as pl

        return pl.read_parquet(path)
    import pandas as pd

    return pd.read_parquet(path)


def validate(schema: Any, frame: Any) -> Any:
    """Validate lazily (collect every failure); return the failure cases (None if none)."""
    from pandera.errors import SchemaErrors

    try:
        schema.validate(frame, lazy=True)
    except SchemaErrors as exc:
        return exc.failure_cases
    return None


def check_name(column: Any, check: str) -> str:
    """The benchmark check that a pandera failure case belongs to."""
    if check == "not_nullable":
        return NULL_CHECKS.get(column, f"{column}.not_nullable")
    if check in ("field_uniqueness", "unique", "column_uniqueness"):
        return "id_unique"
    if check.startswith("str_matches"):
        return "id_pattern"
    if check.startswith("in_range"):
        return RANGES[column]
    if check.startswith("isin"):
        return SETS[column]
    if check == "row_count":
        return "row_count"
    return f"{column}.{check}"


def count_failures(cases: Any, checks: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    """Failing rows per benchmark check (distinct row indexes per check; a failed
    dataframe-level check counts 1), and the raw count per pandera (column, check)."""
    counts = dict.fromkeys(checks, 0)
    raw: dict[str, int] = {}
    if cases is None:
        return counts, raw
    if not hasattr(cases, "to_dicts"):
        import polars as pl

        cases = pl.from_pandas(cases.astype({"failure_case": str}))
    for row in cases.group_by(["column", "check"]).len().to_dicts():
        raw[f"{row['column']}|{row['check']}"] = row["len"]
    rows = cases.select("column", "check", "index").unique()
    for row in rows.group_by(["column", "check"]).len().to_dicts():
        name = check_name(row["column"], str(row["check"]))
        counts[name] = counts.get(name, 0) + row["len"]
    return counts, raw


def main() -> None:
    """Load, warm up, time one validation, count failures, print the result line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--spec", required=True)
    parser.add_argument("--mode", choices=["polars", "pandas"], required=True)
    args = parser.parse_args()
    spec = json.loads(Path(args.spec).read_text())
    if args.mode == "polars":
        import pandera.polars as pa
    else:
        import pandera.pandas as pa
    schema = build_schema(pa, spec, args.mode)
    start = time.perf_counter()
    frame = load(args.data, args.mode)
    load_s = time.perf_counter() - start
    rss_before = rss_mb()
    start = time.perf_counter()
    validate(schema, frame)
    warmup_s = time.perf_counter() - start
    start = time.perf_counter()
    cases = validate(schema, frame)
    validate_s = time.perf_counter() - start
    peak = peak_rss_mb()
    counts, raw = count_failures(cases, spec["checks"])
    import pandera

    result = {
        "validate_s": validate_s,
        "warmup_s": warmup_s,
        "load_s": load_s,
        "rss_before_mb": rss_before,
        "peak_rss_mb": peak,
        "counts": counts,
        "raw_counts": raw,
        "unique_counts_all_copies": True,
        "version": pandera.__version__,
    }
    print("BENCH_JSON " + json.dumps(result, default=str))


if __name__ == "__main__":
    main()
