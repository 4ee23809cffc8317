"""How long ``diff_contracts`` takes on two 200-property contracts with ~50 changes.

Usage::

    .venv/bin/python benchmarks/contracts_diff.py [--runs 20] [--properties 200] [--changes 50]

Prints one JSON document: the median and every sample in milliseconds, the change counts and
the target (< 100 ms, the issue's figure). There is no peer to compare with: datacontract-cli
removed its ``breaking`` command, and no other tool detects breaking ODCS changes.

The contracts: every property is a number with a range and a nullValues tolerance, every
other one required, every fourth one with an allowed-values rule; the new version tightens or
loosens a range, a tolerance or a flag, renames or drops a property, or adds one, spread
evenly over the schema, plus a stricter freshness SLA.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import time
from typing import Any

from shipyard.contracts import Contract
from shipyard.contracts.diff import diff_contracts

TARGET_MS = 100.0


def base(properties: int) -> dict[str, Any]:
    props = []
    for i in range(properties):
        entry: dict[str, Any] = {
            "name": f"column_{i:03d}",
            "logicalType": "number",
            "required": i % 2 == 0,
            "description": f"Measurement {i}",
            "logicalTypeOptions": {"minimum": 0, "maximum": 1000},
            "quality": [{"metric": "nullValues", "mustBeLessThan": 5, "unit": "percent"}],
        }
        if i % 4 == 0:
            entry["quality"].append(
                {"metric": "invalidValues", "arguments": {"validValues": [1, 2, 3]}, "mustBe": 0}
            )
        props.append(entry)
    return {
        "apiVersion": "v3.1.0",
        "kind": "DataContract",
        "id": "measurements",
        "version": "1.0.0",
        "status": "active",
        "schema": [{"name": "measurements", "properties": props}],
        "slaProperties": [
            {"property": "freshness", "value": 1, "unit": "d", "element": "measurements.column_000"}
        ],
    }


EDITS = [
    lambda p: p["logicalTypeOptions"].update(minimum=10),  # breaking
    lambda p: p["logicalTypeOptions"].update(maximum=2000),  # compatible
    lambda p: p["quality"][0].update(mustBeLessThan=1),  # breaking
    lambda p: p["quality"][0].update(severity="warning"),  # compatible
    lambda p: p.update(required=not p["required"]),  # either
    lambda p: p.update(name=p["name"] + "_renamed"),  # rename: breaking
    lambda p: p.update(description="Changed"),  # info
    lambda p: p.update(logicalType="integer"),  # breaking
]


def changed(doc: dict[str, Any], changes: int) -> dict[str, Any]:
    new = copy.deepcopy(doc)
    props = new["schema"][0]["properties"]
    step = max(1, len(props) // changes)
    for n, i in enumerate(range(1, len(props), step)):
        if n >= changes - 2:
            break
        EDITS[n % len(EDITS)](props[i])
    props.append({"name": "added_column", "logicalType": "string"})
    new["slaProperties"][0]["value"] = 12
    new["slaProperties"][0]["unit"] = "h"
    new["version"] = "2.0.0"
    return new


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--properties", type=int, default=200)
    parser.add_argument("--changes", type=int, default=50)
    args = parser.parse_args()
    doc = base(args.properties)
    old, new = Contract.from_dict(doc), Contract.from_dict(changed(doc, args.changes))
    diff_contracts(old, new)  # warm up imports and caches
    samples = []
    for _ in range(args.runs):
        started = time.perf_counter()
        result = diff_contracts(old, new)
        samples.append((time.perf_counter() - started) * 1000)
    median = statistics.median(samples)
    counts = result.to_dict()["counts"]
    print(
        json.dumps(
            {
                "figure": "contracts.diff",
                "definition": f"median of {args.runs} diff_contracts calls, {args.properties} "
                f"properties, {len(result.changes)} changes",
                "median_ms": round(median, 3),
                "samples_ms": [round(s, 3) for s in samples],
                "changes": len(result.changes),
                "counts": counts,
                "target_ms": TARGET_MS,
                "target_met": median < TARGET_MS,
                "python": platform.python_version(),
                "load_average": os.getloadavg()[0],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
