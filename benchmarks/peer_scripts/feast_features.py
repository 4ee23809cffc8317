"""Feast 0.67 side of the feature-store benchmark (local provider: Dask offline store, SQLite
online store).

Run by ``benchmarks/features.py`` in ``benchmarks/.venvs/feast``; one command per process::

    python feast_features.py setup --repo DIR --views JSON
    python feast_features.py join --repo DIR --entities PATH --view NAME --features N --out PATH
    python feast_features.py materialize --repo DIR --view NAME --start ISO --end ISO
    python feast_features.py online --repo DIR --ids PATH --cases JSON --warmup N --calls N

* ``setup`` writes a feature repository into ``--repo`` (``feature_store.yaml`` with the local
  provider and a SQLite online store, and ``definitions.py`` with one ``Entity`` and, per view
  of ``--views``, a ``FileSource`` on the view's Parquet file and a ``FeatureView`` with its
  schema and ttl), then runs ``feast apply`` there. Untimed in every figure; its wall time is
  reported as ``apply_s``.
* ``join`` reads the entity rows with pandas (untimed), then times
  ``get_historical_features(entity_df, features).to_df()`` and writes the result to ``--out``
  after the timing.
* ``materialize`` times ``materialize(start, end, feature_views=[view])`` into the SQLite
  online store, then counts what the online store holds (untimed).
* ``online`` times each call of ``get_online_features(features, {"customer_id": ids}).to_dict()``
  after ``--warmup`` untimed calls, per case of ``--cases`` (name -> view, feature count,
  entities per call); it also returns the values of the first entities of each case so the
  harness can check them against the latest feature row of each entity.

Each command prints one ``BENCH_JSON {...}`` line with the process's peak RSS (``VmHWM``).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

JSON_PREFIX = "BENCH_JSON "
CHECKED_ENTITIES = 1000

FEATURE_STORE_YAML = """project: bench
registry: data/registry.db
provider: local
online_store:
  type: sqlite
  path: data/online_store.db
entity_key_serialization_version: 3
"""

DEFINITIONS_HEAD = '''"""Benchmark feature definitions (written by feast_features.py setup)."""

from datetime import timedelta

from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64

customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
'''

VIEW_TEMPLATE = """
{name}_source = FileSource(
    name="{name}_source",
    path={path!r},
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)
{name} = FeatureView(
    name="{name}",
    entities=[customer],
    ttl=timedelta(days={ttl_days}),
    schema=[Field(name="customer_id", dtype=Int64)]
    + [Field(name=f"f{{i}}", dtype=Float64) for i in range({features})],
    source={name}_source,
    online=True,
)
"""


def peak_rss_mb() -> float:
    """Peak RSS of this process in MB (``VmHWM``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def feature_refs(view: str, count: int) -> list[str]:
    """``view:f0`` .. ``view:f{count-1}``."""
    return [f"{view}:f{i}" for i in range(count)]


def setup(repo: Path, views: list[dict[str, Any]]) -> dict[str, Any]:
    """Write the feature repository and run ``feast apply`` in it (timed as ``apply_s``).

    A view's ttl of ``None`` becomes ``timedelta(days=0)``, which Feast reads as "no ttl".
    """
    (repo / "data").mkdir(parents=True, exist_ok=True)
    (repo / "feature_store.yaml").write_text(FEATURE_STORE_YAML)
    body = DEFINITIONS_HEAD + "".join(
        VIEW_TEMPLATE.format(
            name=view["name"],
            path=view["path"],
            ttl_days=view["ttl_days"] or 0,
            features=view["features"],
        )
        for view in views
    )
    (repo / "definitions.py").write_text(body)
    feast = Path(sys.executable).parent / "feast"
    start = time.perf_counter()
    done = subprocess.run([str(feast), "apply"], cwd=repo, capture_output=True, text=True)
    apply_s = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"feast apply failed:\n{done.stdout}\n{done.stderr}")
    return {"apply_s": apply_s, "apply_output": done.stdout[-2000:]}


def join(repo: Path, entities: Path, view: str, features: int, out: Path) -> dict[str, Any]:
    """Time ``get_historical_features(...).to_df()`` for every entity row."""
    import pandas as pd
    from feast import FeatureStore

    start = time.perf_counter()
    store = FeatureStore(repo_path=str(repo))
    entity_df = pd.read_parquet(entities)
    setup_s = time.perf_counter() - start
    start = time.perf_counter()
    frame = store.get_historical_features(
        entity_df=entity_df, features=feature_refs(view, features)
    ).to_df()
    seconds = time.perf_counter() - start
    peak = peak_rss_mb()
    frame.to_parquet(out)
    return {
        "seconds": seconds,
        "setup_s": setup_s,
        "peak_rss_mb": peak,
        "rows": len(frame),
        "entity_rows": len(entity_df),
        "columns": [str(c) for c in frame.columns],
        "dtypes": {str(c): str(t) for c, t in frame.dtypes.items()},
    }


def online_store_counts(repo: Path) -> dict[str, int]:
    """Rows in each table of the SQLite online store."""
    with sqlite3.connect(repo / "data" / "online_store.db") as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: db.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}


def materialize(repo: Path, view: str, start_iso: str, end_iso: str) -> dict[str, Any]:
    """Time ``materialize(start, end, feature_views=[view])``; count the online rows after."""
    import datetime as dt

    from feast import FeatureStore

    start = time.perf_counter()
    store = FeatureStore(repo_path=str(repo))
    setup_s = time.perf_counter() - start
    start = time.perf_counter()
    store.materialize(
        start_date=dt.datetime.fromisoformat(start_iso),
        end_date=dt.datetime.fromisoformat(end_iso),
        feature_views=[view],
    )
    seconds = time.perf_counter() - start
    peak = peak_rss_mb()
    return {
        "seconds": seconds,
        "setup_s": setup_s,
        "peak_rss_mb": peak,
        "online_table_rows": online_store_counts(repo),
    }


def percentile(sorted_values: list[float], share: float) -> float:
    """The ``share`` quantile of sorted values (nearest rank)."""
    index = min(len(sorted_values) - 1, max(0, round(share * len(sorted_values)) - 1))
    return sorted_values[index]


def online(
    repo: Path, ids_path: Path, cases: dict[str, dict[str, Any]], warmup: int, calls: int
) -> dict[str, Any]:
    """Per case: latency of each ``get_online_features(...).to_dict()`` call after a warm-up."""
    from feast import FeatureStore

    start = time.perf_counter()
    store = FeatureStore(repo_path=str(repo))
    setup_s = time.perf_counter() - start
    ids: list[int] = json.loads(ids_path.read_text())
    results: dict[str, Any] = {}
    for name, case in cases.items():
        refs = feature_refs(case["view"], case["features"])
        size = case["entities"]
        batches = [
            ids[(i * size) % len(ids) : (i * size) % len(ids) + size] for i in range(warmup + calls)
        ]
        batches = [b if len(b) == size else ids[:size] for b in batches]
        for batch in batches[:warmup]:
            store.get_online_features(refs, {"customer_id": batch}).to_dict()
        latencies = []
        checked: dict[str, list[Any]] = {}
        for batch in batches[warmup:]:
            start = time.perf_counter_ns()
            values = store.get_online_features(refs, {"customer_id": batch}).to_dict()
            latencies.append((time.perf_counter_ns() - start) / 1e6)
            if len(checked) < CHECKED_ENTITIES:
                for position, key in enumerate(values["customer_id"]):
                    checked.setdefault(
                        str(key), [values[f"f{i}"][position] for i in range(case["features"])]
                    )
        latencies.sort()
        results[name] = {
            "p50_ms": percentile(latencies, 0.50),
            "p99_ms": percentile(latencies, 0.99),
            "mean_ms": sum(latencies) / len(latencies),
            "max_ms": latencies[-1],
            "calls": len(latencies),
            "returned_columns": sorted(values),
            "values": dict(list(checked.items())[:CHECKED_ENTITIES]),
        }
    return {"cases": results, "setup_s": setup_s, "peak_rss_mb": peak_rss_mb()}


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description="Feast side of the feature-store benchmark.")
    parser.add_argument("command", choices=["setup", "join", "materialize", "online"])
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--views", default="[]")
    parser.add_argument("--entities", type=Path)
    parser.add_argument("--view", default="customer_stats")
    parser.add_argument("--features", type=int, default=5)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--start")
    parser.add_argument("--end")
    parser.add_argument("--ids", type=Path)
    parser.add_argument("--cases", default="{}")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--calls", type=int, default=2000)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    """Run one command and print its ``BENCH_JSON`` line."""
    os.environ.setdefault("FEAST_USAGE", "False")
    args = parse_args(argv)
    repo = args.repo.resolve()
    if args.command == "setup":
        result = setup(repo, json.loads(args.views))
    elif args.command == "join":
        result = join(repo, args.entities, args.view, args.features, args.out)
    elif args.command == "materialize":
        result = materialize(repo, args.view, args.start, args.end)
    else:
        result = online(repo, args.ids, json.loads(args.cases), args.warmup, args.calls)
    import importlib.metadata

    result["versions"] = {
        d: importlib.metadata.version(d) for d in ("feast", "pandas", "dask", "pyarrow")
    }
    print(JSON_PREFIX + json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
