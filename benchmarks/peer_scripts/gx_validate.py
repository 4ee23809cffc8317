"""Great Expectations 1.24 side of the contract benchmark: the same 12 checks on pandas.

Run by ``benchmarks/contracts_validate.py`` in ``benchmarks/.venvs/gx``::

    python gx_validate.py --data orders_1000000.parquet --spec spec.json

One fresh process = one sample: load the Parquet file with pandas (untimed), build an
ephemeral context, a pandas datasource with a whole-dataframe batch definition, a suite of
12 expectations and a validation definition (untimed, ``setup_s``), run the validation once
(warm-up), then once more (timed) with ``result_format="BASIC"``, and read each
expectation's ``unexpected_count``. GX only reports: it does not split the rows. Prints one
``BENCH_JSON {...}`` line.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any


def peak_rss_mb() -> float:
    """Peak RSS of this process in MB (``VmHWM``; ``ru_maxrss`` would include the harness'
    peak, which Linux carries over ``execve``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def rss_mb() -> float:
    """Resident memory of this process now, in MB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def expectations(gx: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """The 12 checks as GX expectations, keyed by the benchmark's check names."""
    e = gx.expectations

    def between(column: str) -> Any:
        low, high = spec[column]
        return e.ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high)

    return {
        "id_not_null": e.ExpectColumnValuesToNotBeNull(column="id"),
        "id_unique": e.ExpectColumnValuesToBeUnique(column="id"),
        "id_pattern": e.ExpectColumnValuesToMatchRegex(column="id", regex=spec["id_pattern"]),
        "customer_not_null": e.ExpectColumnValuesToNotBeNull(column="customer"),
        "amount_range": between("amount"),
        "currency_in_set": e.ExpectColumnValuesToBeInSet(
            column="currency", value_set=spec["currency"]
        ),
        "country_in_set": e.ExpectColumnValuesToBeInSet(
            column="country", value_set=spec["country"]
        ),
        "quantity_range": between("quantity"),
        "score_range": between("score"),
        "created_not_null": e.ExpectColumnValuesToNotBeNull(column="created"),
        "channel_in_set": e.ExpectColumnValuesToBeInSet(
            column="channel", value_set=spec["channel"]
        ),
        "row_count": e.ExpectTableRowCountToBeBetween(min_value=1),
    }


def setup(gx: Any, spec: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """An ephemeral context with the suite; return the validation definition and the
    expectations by check name."""
    context = gx.get_context(mode="ephemeral")
    source = context.data_sources.add_pandas("pandas")
    batch = source.add_dataframe_asset("orders").add_batch_definition_whole_dataframe("all")
    suite = context.suites.add(gx.ExpectationSuite(name="orders"))
    by_check = expectations(gx, spec)
    for expectation in by_check.values():
        suite.add_expectation(expectation)
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="orders", data=batch, suite=suite)
    )
    return definition, by_check


def counts(result: Any, by_check: dict[str, Any]) -> dict[str, int]:
    """Failing rows per check: ``unexpected_count``, or 1 for a failed table expectation."""
    by_id = {str(r.expectation_config.id): r for r in result.results}
    found = {}
    for check, expectation in by_check.items():
        outcome = by_id[str(expectation.id)]
        unexpected = outcome.result.get("unexpected_count")
        found[check] = int(unexpected) if unexpected is not None else int(not outcome.success)
    return found


def main() -> None:
    """Load, set up, warm up, time one validation, print the result line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--spec", required=True)
    args = parser.parse_args()
    spec = json.loads(Path(args.spec).read_text())
    import great_expectations as gx
    import pandas as pd

    start = time.perf_counter()
    frame = pd.read_parquet(args.data)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    definition, by_check = setup(gx, spec)
    setup_s = time.perf_counter() - start
    rss_before = rss_mb()
    params = {"dataframe": frame}
    start = time.perf_counter()
    definition.run(batch_parameters=params, result_format="BASIC")
    warmup_s = time.perf_counter() - start
    start = time.perf_counter()
    result = definition.run(batch_parameters=params, result_format="BASIC")
    validate_s = time.perf_counter() - start
    peak = peak_rss_mb()
    out = {
        "validate_s": validate_s,
        "warmup_s": warmup_s,
        "load_s": load_s,
        "setup_s": setup_s,
        "rss_before_mb": rss_before,
        "peak_rss_mb": peak,
        "counts": counts(result, by_check),
        "success": bool(result.success),
        "unique_counts_all_copies": True,
        "version": gx.__version__,
        "pandas": pd.__version__,
    }
    print("BENCH_JSON " + json.dumps(out, default=str))


if __name__ == "__main__":
    main()
