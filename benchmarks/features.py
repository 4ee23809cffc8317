"""Feature-store benchmark: shipyard, Feast 0.67, bare Polars and DuckDB, side by side in one
run on the same generated data.

Usage::

    .venv/bin/python benchmarks/features.py [--repeats 5] [--figures join_no_ttl join_ttl7d
        join_10m materialize online] [--contenders feast polars duckdb duckdb_plain shipyard]
        [--working-tree] [--out benchmarks/results/features.json]
    .venv/bin/python benchmarks/report_features.py

The figures:

* ``join_no_ttl`` / ``join_ttl7d``: a point-in-time join of 100,000 entity rows against
  1,000,000 feature rows (5 float features), without a ttl and with a ttl of 7 days, every
  entity row returned. Feast: ``get_historical_features(...).to_df()`` on its local provider
  (Dask offline store; ``feast apply`` done untimed). Polars: ``pl.read_parquet`` of both files,
  sort, ``join_asof(by="customer_id", strategy="backward")``, reading included. DuckDB: an
  ``ASOF LEFT JOIN`` over ``read_parquet`` of both files, reading included, once with the
  (event time, created) ties resolved as the others do (``duckdb``) and once bare
  (``duckdb_plain``). shipyard: reading the entity rows plus ``store.training_frame(...)`` on a
  store built untimed (``store.build()``, timed separately as ``build_s``).
* ``join_10m``: shipyard's ``training_frame`` of the same 100,000 entity rows against
  10,000,000 feature rows x 20 float features (bounded memory).
* ``materialize``: loading the 1,000,000 feature rows into the SQLite online store: Feast
  ``materialize(start, end)`` and shipyard ``store.materialize()``, each on a fresh store
  (``feast apply`` / ``store.build()`` in a separate process before each sample, untimed).
* ``online``: in-process online lookups after a warm-up (``--warmup`` calls, untimed), then
  ``--calls`` timed calls per case: 1 entity x 5 features, 1 x 10, 100 x 5, 100 x 10 (the
  10-feature cases read a second view, ``customer_wide``, of a file with 10 features). Feast
  ``get_online_features(...).to_dict()``, shipyard ``store.online_features(...).to_dict()``.
  Each sample reports the p50 and p99 of its calls.

Method:

* ``generate`` writes the data once to ``benchmarks/.work/features/`` (git-ignored;
  deterministic: numpy ``default_rng(SEED)``; reused while ``facts.json`` matches the
  parameters). Feature rows: 10,000 entities, event times spread at random over 90 days, 2% of
  rows repeating another row's (entity, event time) with a later ``created`` and other values,
  rows in random order. Entity rows: ``customer_id`` drawn from 0..10,999 (so ~9% name an entity
  without feature rows), 5% of them timed in the 10 days before the first feature row.
* One sample = one fresh process. The shipyard, Polars and DuckDB samples are this file
  (``features.py worker SPEC``) in the repo's ``.venv``; Feast's are
  ``peer_scripts/feast_features.py`` in ``benchmarks/.venvs/feast`` (``feast==0.67.0`` with
  ``pandas<3``, made by ``peers.ensure_venv``). Each reports the timed part, and its peak RSS
  (``VmHWM``: interpreter, imports, data and the timed part). Contenders take turns within each
  repetition (round robin); figures are medians of ``--repeats`` samples, with the max.
* Values are checked after each join sample (untimed): its result (written to Parquet after
  the timing) is matched to the Polars result by (``customer_id``, ``label``; labels are
  unique) and the harness counts entity rows missing or extra, and matched rows whose ``f0``
  (or any feature) differs, a null equal to a null (pandas' NaN counts as null). The Polars
  result is itself checked against an independent numpy reference (``searchsorted`` over
  the sorted (entity, event time, created) keys). Online values are checked against the
  latest feature row of each entity.
* shipyard is imported from a snapshot of ``src/shipyard`` at ``HEAD`` (``git archive``), so
  uncommitted work of others is not measured; ``--working-tree`` measures the working tree
  instead (recorded in the results).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from peers import JSON_PREFIX, ensure_venv, installed_version, parse_result, run_process
from snapshot import SRC_ENV, git_state, snapshot_src, use_snapshot

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
DATA_DIR = BENCH_DIR / ".work" / "features"
DEFAULT_OUT = BENCH_DIR / "results" / "features.json"
FEAST_SCRIPT = BENCH_DIR / "peer_scripts" / "feast_features.py"
TIMEOUT_S = 1800

SEED = 20261203
ENTITIES = 10_000
UNKNOWN_ENTITIES = 1_000
FEATURE_ROWS = 1_000_000
LARGE_ROWS = 10_000_000
LARGE_CHUNK = 1_000_000
ENTITY_ROWS = 100_000
FEATURES = 5
WIDE_FEATURES = 10
LARGE_FEATURES = 20
DUPLICATE_SHARE = 0.02
EARLY_SHARE = 0.05
START = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
PERIOD = dt.timedelta(days=90)
EARLY = dt.timedelta(days=10)
CREATED_DELAY = dt.timedelta(hours=1)
TTL_DAYS = 7
KEY_SHIFT = 45  # bits of (event time - base) in µs in the reference's combined key
PARAMETERS = {
    "seed": SEED,
    "entities": ENTITIES,
    "unknown_entities": UNKNOWN_ENTITIES,
    "feature_rows": FEATURE_ROWS,
    "large_rows": LARGE_ROWS,
    "entity_rows": ENTITY_ROWS,
    "features": FEATURES,
    "wide_features": WIDE_FEATURES,
    "large_features": LARGE_FEATURES,
    "duplicate_share": DUPLICATE_SHARE,
    "early_share": EARLY_SHARE,
    "start": START.isoformat(),
    "period_days": PERIOD.days,
    "early_days": EARLY.days,
}

PEER_REQUIREMENTS: dict[str, list[str]] = {"feast": ["feast==0.67.0", "pandas<3"]}
PEER_ENV = {"FEAST_USAGE": "False", "POLARS_VERBOSE": "0"}
WARMUP_CALLS = 200
CHECKED_ENTITIES = 1000  # online values checked per case (as in the Feast script)
ONLINE_CALLS = 2000
ONLINE_CASES: dict[str, dict[str, Any]] = {
    "1x5": {"view": "customer_stats", "features": FEATURES, "entities": 1},
    "1x10": {"view": "customer_wide", "features": WIDE_FEATURES, "entities": 1},
    "100x5": {"view": "customer_stats", "features": FEATURES, "entities": 100},
    "100x10": {"view": "customer_wide", "features": WIDE_FEATURES, "entities": 100},
}
JOIN_CONTENDERS = ["feast", "polars", "duckdb", "duckdb_plain", "shipyard"]
FIGURES: dict[str, list[str]] = {
    "join_no_ttl": JOIN_CONTENDERS,
    "join_ttl7d": JOIN_CONTENDERS,
    "join_10m": ["shipyard"],
    "materialize": ["feast", "shipyard"],
    "online": ["feast", "shipyard"],
}
CONTENDERS = {
    "feast": "Feast 0.67 local provider (Dask offline store, SQLite online store)",
    "polars": "bare Polars: read_parquet both, sort, join_asof (reading included)",
    "duckdb": "DuckDB ASOF LEFT JOIN, (event time, created) ties resolved (reading included)",
    "duckdb_plain": "DuckDB ASOF LEFT JOIN, ties left to DuckDB (reading included)",
    "shipyard": "shipyard FeatureStore (training_frame, materialize, online_features)",
}


# --------------------------------------------------------------------------- data


def path_of(name: str) -> Path:
    """A file of the work directory."""
    return DATA_DIR / name


FEATURES_PATH = path_of("features.parquet")
WIDE_PATH = path_of("features_wide.parquet")
LARGE_PATH = path_of("features_10m.parquet")
ENTITIES_PATH = path_of("entities.parquet")
ONLINE_IDS_PATH = path_of("online_ids.json")


def views_of(figure: str) -> list[dict[str, Any]]:
    """The feature views a figure's stores hold (the same for Feast and shipyard)."""
    stats = {"name": "customer_stats", "path": str(FEATURES_PATH), "features": FEATURES}
    return {
        "join_no_ttl": [{**stats, "ttl_days": None}],
        "join_ttl7d": [{**stats, "ttl_days": TTL_DAYS}],
        "join_10m": [
            {**stats, "path": str(LARGE_PATH), "features": LARGE_FEATURES, "ttl_days": None}
        ],
        "materialize": [{**stats, "ttl_days": None}],
        "online": [
            {**stats, "ttl_days": None},
            {
                "name": "customer_wide",
                "path": str(WIDE_PATH),
                "features": WIDE_FEATURES,
                "ttl_days": None,
            },
        ],
    }[figure]


def micros(moment: dt.datetime) -> int:
    """Microseconds since the epoch."""
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def feature_table(rng: Any, rows: int, features: int) -> Any:
    """``rows`` random feature rows: ``customer_id``, ``event_timestamp``, ``created``,
    ``f0``.. (standard normal floats); a ``DUPLICATE_SHARE`` of them repeat another row's
    (entity, event time) with a later ``created`` and their own values."""
    import numpy as np
    import polars as pl

    period, delay = (d // dt.timedelta(microseconds=1) for d in (PERIOD, CREATED_DELAY))
    customer = rng.integers(0, ENTITIES, rows)
    event = micros(START) + rng.integers(0, period, rows)
    created = event + rng.integers(0, delay, rows)
    copies = rng.choice(rows, size=int(rows * DUPLICATE_SHARE), replace=False)
    originals = np.setdiff1d(np.arange(rows), copies)
    source = rng.choice(originals, size=copies.size)
    customer[copies], event[copies] = customer[source], event[source]
    created[copies] = created[source] + rng.integers(1, delay, copies.size)
    values = rng.standard_normal((features, rows))
    utc = pl.Datetime("us", "UTC")
    return pl.DataFrame(
        {
            "customer_id": customer,
            "event_timestamp": pl.Series(event).cast(utc),
            "created": pl.Series(created).cast(utc),
            **{f"f{i}": values[i] for i in range(features)},
        }
    )


def entity_table(rng: Any) -> Any:
    """``ENTITY_ROWS`` entity rows: ``customer_id`` in 0..10,999, ``event_timestamp`` over the
    period (``EARLY_SHARE`` of them in the ``EARLY`` days before it), a unique float ``label``."""
    import numpy as np
    import polars as pl

    rows = ENTITY_ROWS
    period, early = (d // dt.timedelta(microseconds=1) for d in (PERIOD, EARLY))
    customer = rng.integers(0, ENTITIES + UNKNOWN_ENTITIES, rows)
    before = rng.random(rows) < EARLY_SHARE
    event = np.where(
        before,
        micros(START) - rng.integers(1, early, rows),
        micros(START) + rng.integers(0, period, rows),
    )
    label = rng.random(rows)
    if np.unique(label).size != rows:
        raise RuntimeError("labels must be unique: they identify entity rows in the checks")
    return pl.DataFrame(
        {
            "customer_id": customer,
            "event_timestamp": pl.Series(event).cast(pl.Datetime("us", "UTC")),
            "label": label,
        }
    )


def write_large(rng: Any) -> None:
    """Write the 10M x 20 feature rows in 1M-row chunks (bounded memory while generating)."""
    import pyarrow.parquet as pq

    writer = None
    try:
        for _ in range(LARGE_ROWS // LARGE_CHUNK):
            table = feature_table(rng, LARGE_CHUNK, LARGE_FEATURES).to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(LARGE_PATH, table.schema)
            writer.write_table(table, row_group_size=LARGE_CHUNK)
    finally:
        if writer is not None:
            writer.close()


def generate() -> dict[str, Any]:
    """Write every data file once (reused while ``facts.json`` names the same parameters);
    return the data's facts."""
    import numpy as np
    import polars as pl

    facts_path = path_of("facts.json")
    files = [FEATURES_PATH, WIDE_PATH, LARGE_PATH, ENTITIES_PATH, ONLINE_IDS_PATH]
    if facts_path.exists() and all(p.exists() for p in files):
        facts = json.loads(facts_path.read_text())
        if facts.get("parameters") == PARAMETERS:
            return facts
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    features = feature_table(rng, FEATURE_ROWS, FEATURES)
    features.write_parquet(FEATURES_PATH)
    extra = rng.standard_normal((WIDE_FEATURES - FEATURES, FEATURE_ROWS))
    features.with_columns(
        **{f"f{FEATURES + i}": extra[i] for i in range(WIDE_FEATURES - FEATURES)}
    ).write_parquet(WIDE_PATH)
    entities = entity_table(rng)
    entities.write_parquet(ENTITIES_PATH)
    ONLINE_IDS_PATH.write_text(json.dumps(rng.permutation(ENTITIES).tolist()))
    write_large(rng)
    repeats = features.group_by("customer_id", "event_timestamp").len().filter(pl.col("len") > 1)
    first = features.group_by("customer_id").agg(pl.col("event_timestamp").min().alias("first"))
    placed = entities.join(first, on="customer_id", how="left")
    facts = {
        "parameters": PARAMETERS,
        "feature_rows": features.height,
        "feature_columns": features.columns,
        "entities_with_feature_rows": first.height,
        "repeated_entity_event_times": repeats.height,
        "rows_in_repeated_entity_event_times": int(repeats["len"].sum()),
        "first_event": str(features["event_timestamp"].min()),
        "last_event": str(features["event_timestamp"].max()),
        "entity_rows": entities.height,
        "entity_rows_unknown_entity": int(placed["first"].is_null().sum()),
        "entity_rows_before_first_feature_row_of_entity": int(
            (placed["event_timestamp"] < placed["first"]).sum()
        ),
        "entity_rows_before_first_feature_row": int(
            (entities["event_timestamp"] < features["event_timestamp"].min()).sum()
        ),
        "files_bytes": {p.name: p.stat().st_size for p in files if p.suffix == ".parquet"},
        "in_memory_bytes": {
            "features": features.estimated_size(),
            "entities": entities.estimated_size(),
            "features_10m": LARGE_ROWS * 8 * (LARGE_FEATURES + 3),
        },
        "large_rows": LARGE_ROWS,
        "large_features": LARGE_FEATURES,
    }
    facts_path.write_text(json.dumps(facts, indent=2) + "\n")
    return facts


# --------------------------------------------------------------------------- reference


def as_of_reference(path: Path, features: list[str], ttl_days: int | None) -> Any:
    """The point-in-time join computed independently with numpy: for each entity row, the
    feature row of the same entity with the latest (event time, created) not after the entity
    row's time (and, with a ttl, not older than the ttl), or nulls.

    Returns the entity rows with the features, ``category``: ``matched``,
    ``unknown_entity`` (no feature row at all), ``no_earlier_row`` or ``expired`` (ttl); and
    ``tied``: the matched feature row shares its (entity, event time) with another row, so
    only ``created`` decides between them.
    """
    import numpy as np
    import polars as pl

    table = pl.read_parquet(path, columns=["customer_id", "event_timestamp", "created", *features])
    entities = pl.read_parquet(ENTITIES_PATH)
    stamp = table["event_timestamp"].dt.epoch("us").to_numpy()
    created = table["created"].dt.epoch("us").to_numpy()
    customer = table["customer_id"].to_numpy()
    wanted = entities["event_timestamp"].dt.epoch("us").to_numpy()
    who = entities["customer_id"].to_numpy()
    base = min(stamp.min(), wanted.min())
    keys = (customer << KEY_SHIFT) | (stamp - base)
    order = np.lexsort((created, keys))
    ordered = keys[order]
    found = np.searchsorted(ordered, (who << KEY_SHIFT) | (wanted - base), side="right") - 1
    row = order[np.clip(found, 0, None)]
    same = (found >= 0) & (customer[row] == who)
    tied = same & (found >= 1) & (ordered[np.clip(found - 1, 0, None)] == ordered[found])
    alive = same if ttl_days is None else same & (wanted - stamp[row] <= ttl_days * 86_400e6)
    known = np.isin(who, np.unique(customer))
    category = np.where(
        alive,
        "matched",
        np.where(~known, "unknown_entity", np.where(same, "expired", "no_earlier_row")),
    )
    columns = {
        name: pl.Series(name, table[name].to_numpy()[row]).scatter(np.flatnonzero(~alive), None)
        for name in features
    }
    return entities.with_columns(
        **columns, category=pl.Series(category), tied=pl.Series(tied & alive)
    )


def latest_per_entity() -> dict[int, list[float]]:
    """The feature values (f0..f9 of the wide file) of each entity's latest feature row."""
    import polars as pl

    names = [f"f{i}" for i in range(WIDE_FEATURES)]
    latest = (
        pl.read_parquet(WIDE_PATH)
        .sort("customer_id", "event_timestamp", "created")
        .group_by("customer_id", maintain_order=True)
        .last()
    )
    return {row[0]: list(row[1:]) for row in latest.select("customer_id", *names).iter_rows()}


# --------------------------------------------------------------------------- workers


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB: ``VmHWM`` of /proc/self/status
    (not ``ru_maxrss``, which Linux carries over ``execve`` from the harness)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def polars_join(entities: Path, features: Path, count: int, ttl_days: int | None) -> Any:
    """Bare Polars: read both files, sort by time (ties by ``created``), ``join_asof``."""
    import polars as pl

    names = [f"f{i}" for i in range(count)]
    left = pl.read_parquet(entities).sort("event_timestamp")
    right = (
        pl.read_parquet(features, columns=["customer_id", "event_timestamp", "created", *names])
        .sort("event_timestamp", "created")
        .drop("created")
    )
    return left.join_asof(
        right,
        on="event_timestamp",
        by="customer_id",
        strategy="backward",
        tolerance=None if ttl_days is None else dt.timedelta(days=ttl_days),
        check_sortedness=False,  # sorted above; Polars cannot check it per `by` group
    )


def duckdb_join(
    entities: Path, features: Path, count: int, ttl_days: int | None, resolve_ties: bool
) -> Any:
    """DuckDB: ``ASOF LEFT JOIN`` of the two Parquet files, fetched as a Polars DataFrame.

    With ``resolve_ties`` the feature rows are first reduced to the latest ``created`` per
    (entity, event time), as Feast, shipyard and the Polars sort do; without it DuckDB picks
    one of the tied rows itself. The ttl nulls a match older than the ttl.
    """
    import duckdb

    names = [f"f{i}" for i in range(count)]
    source = f"read_parquet('{features}')"
    if resolve_ties:
        source = (
            f"(SELECT * FROM {source} QUALIFY row_number() OVER "
            "(PARTITION BY customer_id, event_timestamp ORDER BY created DESC) = 1)"
        )
    if ttl_days is None:
        picked = ", ".join(f"f.{n}" for n in names)
    else:
        fresh = f"f.event_timestamp >= e.event_timestamp - INTERVAL {ttl_days} DAY"
        picked = ", ".join(f"CASE WHEN {fresh} THEN f.{n} END AS {n}" for n in names)
    query = (
        f"SELECT e.*, {picked} FROM read_parquet('{entities}') e ASOF LEFT JOIN {source} f "
        "ON e.customer_id = f.customer_id AND e.event_timestamp >= f.event_timestamp"
    )
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        return con.sql(query).pl()


def shipyard_store(project_dir: Path, views: list[dict[str, Any]]) -> Any:
    """The shipyard ``FeatureStore`` of ``views`` in the project at ``project_dir``."""
    import polars as pl

    from shipyard import Entity, FeatureStore, FeatureView, Project
    from shipyard.features import Source

    project = Project.discover(project_dir)
    # open the project's stores here, in the untimed setup, as Feast's FeatureStore(repo)
    # opens its registry: a training job does this once, whatever it then reads
    _ = project.metadata, project.artifacts
    customer = Entity("customer", join_keys={"customer_id": pl.Int64})
    definitions = [
        FeatureView(
            view["name"],
            entities=[customer],
            source=Source.parquet(view["path"]),
            timestamp="event_timestamp",
            created_timestamp="created",
            ttl=None if view["ttl_days"] is None else dt.timedelta(days=view["ttl_days"]),
            schema={f"f{i}": pl.Float64 for i in range(view["features"])},
        )
        for view in views
    ]
    return FeatureStore([customer, *definitions], project=project)


def percentile(sorted_values: list[float], share: float) -> float:
    """The ``share`` quantile of sorted values (nearest rank; as in the Feast script)."""
    index = min(len(sorted_values) - 1, max(0, round(share * len(sorted_values)) - 1))
    return sorted_values[index]


def shipyard_online(store: Any, warmup: int, calls: int) -> dict[str, Any]:
    """Per online case: latency of each ``online_features(...).to_dict()`` after a warm-up;
    the same batches of entities as the Feast script (from ``online_ids.json``)."""
    ids: list[int] = json.loads(ONLINE_IDS_PATH.read_text())
    results: dict[str, Any] = {}
    for name, case in ONLINE_CASES.items():
        refs = [f"{case['view']}:f{i}" for i in range(case["features"])]
        size = case["entities"]
        batches = [
            ids[(i * size) % len(ids) : (i * size) % len(ids) + size] for i in range(warmup + calls)
        ]
        batches = [b if len(b) == size else ids[:size] for b in batches]
        for batch in batches[:warmup]:
            store.online_features({"customer_id": batch}, features=refs).to_dict()
        latencies = []
        checked: dict[str, list[Any]] = {}
        for batch in batches[warmup:]:
            start = time.perf_counter_ns()
            values = store.online_features({"customer_id": batch}, features=refs).to_dict()
            latencies.append((time.perf_counter_ns() - start) / 1e6)
            if len(checked) < CHECKED_ENTITIES:
                # output names are "f0".. (as Feast's); "view:f0" if full names are returned
                columns = [r if r in values else r.partition(":")[2] for r in refs]
                for position, key in enumerate(values["customer_id"]):
                    checked.setdefault(str(key), [values[c][position] for c in columns])
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
    return {"cases": results}


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """One sample in this fresh process (Polars, DuckDB or shipyard), described by ``spec``:
    ``contender``, ``task`` (join, build, materialize, online) and its parameters.

    Imports and the store's construction are untimed. Join: the timed part reads the files
    (Polars, DuckDB: both; shipyard: the entity rows) and joins; the result is written to
    ``spec["out"]`` after the timing. ``peak_rss_mb`` is read right after the timed part.
    """
    contender, task = spec["contender"], spec["task"]
    views = spec.get("views", [])
    ttl = views[0]["ttl_days"] if views else None
    count = views[0]["features"] if views else FEATURES
    result: dict[str, Any] = {}
    start = time.perf_counter()
    import polars as pl

    if contender.startswith("duckdb"):
        import duckdb  # noqa: F401  (imported before the timing, as the others)
    elif contender == "shipyard":
        store = shipyard_store(Path(spec["project"]), views)
    result["setup_s"] = time.perf_counter() - start
    start = time.perf_counter()
    if task == "join" and contender == "polars":
        frame = polars_join(ENTITIES_PATH, Path(views[0]["path"]), count, ttl)
    elif task == "join" and contender.startswith("duckdb"):
        resolve = contender == "duckdb"
        frame = duckdb_join(ENTITIES_PATH, Path(views[0]["path"]), count, ttl, resolve)
    elif task == "join":
        entities = pl.read_parquet(ENTITIES_PATH)
        result["read_entities_s"] = time.perf_counter() - start
        refs = [f"{views[0]['name']}:f{i}" for i in range(count)]
        frame = store.training_frame(entities, features=refs, timestamp="event_timestamp")
    elif task == "build":
        result["summary"] = store.build()
    elif task == "materialize":
        result["summary"] = store.materialize()
    elif task == "online":
        result.update(shipyard_online(store, spec["warmup"], spec["calls"]))
    else:
        raise ValueError(f"unknown task {task!r}")
    result["seconds"] = time.perf_counter() - start
    result["peak_rss_mb"] = peak_rss_mb()
    if task == "join":
        result["rows"] = frame.height
        result["columns"] = frame.columns
        frame.write_parquet(spec["out"])
    return result


# --------------------------------------------------------------------------- checks


def compare(out: Path, reference: Any, features: int) -> dict[str, Any]:
    """A join result against the reference, matched by (``customer_id``, ``label``).

    Counts rows missing from the result, rows not in the reference, repeated rows, matched rows
    whose ``f0`` differs and matched rows where any feature differs (null equals null; NaN read
    as null), and whether the result keeps the entity rows' input order. Missing rows are
    broken down by the reference's category.
    """
    import polars as pl

    names = [f"f{i}" for i in range(features)]
    got = pl.read_parquet(out).select(
        pl.col("customer_id").cast(pl.Int64),
        "label",
        *[pl.col(n).cast(pl.Float64).fill_nan(None) for n in names],
    )
    key = ["customer_id", "label"]
    joined = reference.join(got.with_columns(present=pl.lit(True)), on=key, how="left")
    present = joined.filter(pl.col("present").is_not_null())
    differs = [~pl.col(n).eq_missing(pl.col(f"{n}_right")) for n in names]
    missing = joined.filter(pl.col("present").is_null())
    return {
        "rows": got.height,
        "missing_rows": missing.height,
        "missing_by_category": dict(missing["category"].value_counts().iter_rows()),
        "extra_rows": got.join(reference, on=key, how="anti").height,
        "repeated_rows": got.height - got.select(key).unique().height,
        "f0_differs": present.filter(differs[0]).height,
        "f0_differs_where_tied": present.filter(differs[0] & pl.col("tied")).height,
        "any_feature_differs": present.filter(pl.any_horizontal(differs)).height,
        "input_order_kept": got.height == reference.height
        and got["label"].equals(reference["label"]),
    }


def online_check(cases: dict[str, Any], latest: dict[int, list[float]]) -> dict[str, int]:
    """Per online case: how many of the checked entities returned other values than their
    latest feature row."""
    wrong = {}
    for name, case in cases.items():
        count = ONLINE_CASES[name]["features"]
        wrong[name] = sum(
            1
            for key, values in case["values"].items()
            if [float(v) for v in values] != latest[int(key)][:count]
        )
    return wrong


# --------------------------------------------------------------------------- setup


def fresh_dir(*parts: str) -> Path:
    """An empty directory ``benchmarks/.work/features/<parts>``."""
    target = DATA_DIR.joinpath(*parts)
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    return target


def feast_repo(python: Path, name: str, figure: str) -> tuple[Path, float]:
    """A fresh Feast repository with the figure's views, applied; and ``feast apply``'s time."""
    repo = fresh_dir("feast", name)
    args = ["setup", "--repo", str(repo), "--views", json.dumps(views_of(figure))]
    _, stdout = run_process([str(python), str(FEAST_SCRIPT), *args], repo, TIMEOUT_S)
    return repo, parse_result(stdout)["apply_s"]


def shipyard_project(name: str, figure: str) -> tuple[Path, dict[str, Any]]:
    """A fresh shipyard project with the figure's views, built (``store.build()`` in a fresh
    process); and that build's sample (its time is ``seconds``)."""
    project = fresh_dir("shipyard", name)
    (project / "shipyard.toml").write_text('[project]\nname = "bench"\n')
    spec = {"contender": "shipyard", "task": "build", "project": str(project)}
    return project, run_worker({**spec, "views": views_of(figure)})


def run_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Run ``worker(spec)`` in a fresh process of the repo's venv; return its result."""
    cmd = [sys.executable, __file__, "worker", json.dumps(spec)]
    wall, stdout = run_process(cmd, DATA_DIR, TIMEOUT_S)
    return {**parse_result(stdout), "process_wall_s": wall}


def run_feast(python: Path, repo: Path, args: list[str]) -> dict[str, Any]:
    """Run one command of the Feast script in a fresh process; return its result."""
    cmd = [str(python), str(FEAST_SCRIPT), args[0], "--repo", str(repo), *args[1:]]
    wall, stdout = run_process(cmd, repo, TIMEOUT_S)
    return {**parse_result(stdout), "process_wall_s": wall}


# --------------------------------------------------------------------------- harness


class Bench:
    """The stores, references and samples of one run."""

    def __init__(self, args: argparse.Namespace, python: Path | None) -> None:
        self.args = args
        self.feast_python = python
        self.repos: dict[str, Path] = {}
        self.projects: dict[str, Path] = {}
        self.setup: dict[str, list[float]] = {}
        self.references: dict[str, Any] = {}
        self.reference_checks: dict[str, Any] = {}
        self.latest: dict[int, list[float]] = {}
        self.samples: dict[tuple[str, str], list[dict]] = {}

    def note_setup(self, name: str, seconds: float) -> None:
        """Record an untimed setup step's time (``feast apply``, ``store.build()``)."""
        self.setup.setdefault(name, []).append(seconds)

    def prepare(self, plan: list[tuple[str, str]]) -> None:
        """Build the stores the plan reads (once) and the join references."""
        for figure, contender in plan:
            if figure == "materialize":
                continue
            if contender == "feast" and figure not in self.repos:
                repo, apply_s = feast_repo(self.feast_python, figure, figure)
                self.note_setup(f"feast apply ({figure})", apply_s)
                if figure == "online":
                    self.materialize_feast(repo, ["customer_stats", "customer_wide"])
                self.repos[figure] = repo
            if contender == "shipyard" and figure not in self.projects:
                project, built = shipyard_project(figure, figure)
                self.note_setup(f"shipyard build ({figure})", built["seconds"])
                if figure == "online":
                    spec = {"contender": "shipyard", "task": "materialize"}
                    run_worker({**spec, "project": str(project), "views": views_of(figure)})
                self.projects[figure] = project
        for figure in {f for f, _ in plan if f.startswith("join")}:
            self.make_reference(figure)
        if any(f == "online" for f, _ in plan):
            self.latest = latest_per_entity()

    def materialize_feast(self, repo: Path, views: list[str]) -> list[dict[str, Any]]:
        """Run Feast's materialize of each view over the whole period (one process each)."""
        window = ["--start", (START - dt.timedelta(days=1)).isoformat()]
        window += ["--end", (START + PERIOD + dt.timedelta(days=1)).isoformat()]
        return [
            run_feast(self.feast_python, repo, ["materialize", "--view", v, *window]) for v in views
        ]

    def make_reference(self, figure: str) -> None:
        """The Polars result of a join figure (the reference of the checks), and its check
        against the numpy reference."""
        view = views_of(figure)[0]
        checked = min(view["features"], FEATURES)
        names = [f"f{i}" for i in range(checked)]
        numpy_ref = as_of_reference(Path(view["path"]), names, view["ttl_days"])
        polars_out = path_of(f"reference_{figure}.parquet")
        polars_join(ENTITIES_PATH, Path(view["path"]), checked, view["ttl_days"]).write_parquet(
            polars_out
        )
        self.reference_checks[figure] = {
            "polars_vs_numpy": compare(polars_out, numpy_ref, checked),
            "categories": dict(numpy_ref["category"].value_counts().iter_rows()),
            "tied_matches": int(numpy_ref["tied"].sum()),
        }
        import polars as pl

        self.references[figure] = (
            pl.read_parquet(polars_out)
            .drop("event_timestamp")
            .join(
                numpy_ref.select("customer_id", "label", "category", "tied"),
                on=["customer_id", "label"],
            )
        )

    def sample(self, figure: str, contender: str) -> dict[str, Any]:
        """One sample of ``contender`` in ``figure`` (a fresh process), with its checks."""
        views = views_of(figure)
        out = path_of(f"out_{figure}_{contender}.parquet")
        load_before = list(os.getloadavg())
        if figure == "materialize":
            result = self.materialize_sample(contender)
        elif contender == "feast" and figure == "online":
            result = run_feast(
                self.feast_python,
                self.repos[figure],
                [
                    "online",
                    "--ids",
                    str(ONLINE_IDS_PATH),
                    "--cases",
                    json.dumps(ONLINE_CASES),
                    "--warmup",
                    str(self.args.warmup),
                    "--calls",
                    str(self.args.calls),
                ],
            )
        elif contender == "feast":
            result = run_feast(
                self.feast_python,
                self.repos[figure],
                [
                    *("join", "--entities", str(ENTITIES_PATH), "--view", views[0]["name"]),
                    *("--features", str(views[0]["features"]), "--out", str(out)),
                ],
            )
        else:
            spec = {"contender": contender, "views": views, "out": str(out)}
            spec.update(warmup=self.args.warmup, calls=self.args.calls)
            spec["task"] = "online" if figure == "online" else "join"
            spec["project"] = str(self.projects.get(figure, ""))
            result = run_worker(spec)
        if figure.startswith("join"):
            checked = min(views[0]["features"], FEATURES)
            result["check"] = compare(out, self.references[figure], checked)
        if figure == "online":
            result["online_wrong_values"] = online_check(result["cases"], self.latest)
        result.update(loadavg_before=load_before, loadavg_after=list(os.getloadavg()))
        return result

    def materialize_sample(self, contender: str) -> dict[str, Any]:
        """A fresh store (applied / built untimed), then the timed materialize in a new
        process."""
        if contender == "feast":
            repo, apply_s = feast_repo(self.feast_python, "materialize", "materialize")
            self.note_setup("feast apply (materialize)", apply_s)
            return self.materialize_feast(repo, ["customer_stats"])[0]
        project, built = shipyard_project("materialize", "materialize")
        self.note_setup("shipyard build (materialize)", built["seconds"])
        spec = {"contender": "shipyard", "task": "materialize", "project": str(project)}
        return run_worker({**spec, "views": views_of("materialize")})

    def run(self, plan: list[tuple[str, str]]) -> None:
        """Every sample of the plan, round robin over ``--repeats`` repetitions."""
        self.samples = {key: [] for key in plan}
        for rep in range(self.args.repeats):
            for figure, contender in plan:
                sample = self.sample(figure, contender)
                self.samples[(figure, contender)].append(sample)
                shown = (
                    " ".join(
                        f"{k} p50 {c['p50_ms']:.3f} p99 {c['p99_ms']:.3f} ms"
                        for k, c in sample["cases"].items()
                    )
                    if figure == "online"
                    else f"{sample['seconds']:8.3f} s"
                )
                check = sample.get("check", {})
                print(
                    f"rep {rep + 1} {figure:<12} {contender:<13} {shown} "
                    f"peak {sample['peak_rss_mb']:6.0f} MB rows {check.get('rows', '-')} "
                    f"f0 differs {check.get('f0_differs', '-')} load {os.getloadavg()[0]:.2f}",
                    flush=True,
                )


def spread(values: list[float]) -> dict[str, Any]:
    """Median, min, max and the samples."""
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "samples": values,
    }


def summarize(figure: str, contender: str, samples: list[dict]) -> dict[str, Any]:
    """One contender in one figure: time and peak RSS (median, max), checks, extras."""
    found: dict[str, Any] = {
        "label": CONTENDERS[contender],
        "peak_rss_mb": spread([s["peak_rss_mb"] for s in samples]),
        "setup_s": spread([s["setup_s"] for s in samples]),
        "loadavg": [[s["loadavg_before"], s["loadavg_after"]] for s in samples],
    }
    if figure == "online":
        found["cases"] = {
            case: {
                "p50_ms": spread([s["cases"][case]["p50_ms"] for s in samples]),
                "p99_ms": spread([s["cases"][case]["p99_ms"] for s in samples]),
                "mean_ms": spread([s["cases"][case]["mean_ms"] for s in samples]),
                "calls": samples[-1]["cases"][case]["calls"],
                "returned_columns": samples[-1]["cases"][case]["returned_columns"],
                "wrong_values": max(s["online_wrong_values"][case] for s in samples),
                "checked_entities": len(samples[-1]["cases"][case]["values"]),
            }
            for case in ONLINE_CASES
        }
        return found
    found["seconds"] = spread([s["seconds"] for s in samples])
    if figure == "materialize":
        found["rows_per_s"] = FEATURE_ROWS / found["seconds"]["median"]
        found["detail"] = samples[-1].get("summary") or samples[-1].get("online_table_rows")
        return found
    checks = [s["check"] for s in samples]
    found["check"] = checks[-1]
    found["check_same_in_every_sample"] = all(c == checks[-1] for c in checks)
    found["columns"] = samples[-1]["columns"]
    if "read_entities_s" in samples[-1]:
        found["read_entities_s"] = spread([s["read_entities_s"] for s in samples])
    return found


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator``, or None if either is missing."""
    if numerator is None or denominator is None:
        return None
    return numerator / denominator


def judge(figures: dict[str, Any], entity_rows: int) -> list[dict[str, Any]]:
    """The issue's targets, each with the measured value and whether it is met (None: not
    measured)."""
    targets: list[dict[str, Any]] = []

    def add(figure: str, target: str, measured: Any, met: bool | None, **extra: Any) -> None:
        targets.append(
            {"figure": figure, "target": target, "measured": measured, "met": met, **extra}
        )

    def median(figure: str, contender: str, key: str = "seconds") -> float | None:
        found = figures.get(figure, {}).get("contenders", {}).get(contender)
        return None if found is None else found[key]["median"]

    for figure in ("join_no_ttl", "join_ttl7d"):
        if figure not in figures:
            continue
        found = figures[figure]["contenders"]
        ours = median(figure, "shipyard")
        agreeing = [
            c
            for c in ("polars", "duckdb", "duckdb_plain")
            if c in found
            and found[c]["check"]["f0_differs"] == 0
            and found[c]["check"]["missing_rows"] == 0
        ]
        fastest = min(agreeing, key=lambda c: found[c]["seconds"]["median"], default=None)
        baseline = median(figure, fastest) if fastest else None
        measured = ratio(ours, baseline)
        add(
            figure,
            "training_frame <= 1.3 x the faster of Polars join_asof / DuckDB ASOF",
            measured,
            None if measured is None else measured <= 1.3,
            baseline=fastest,
        )
        measured = ratio(median(figure, "feast"), ours)
        add(
            figure,
            ">= 40 x faster than Feast",
            measured,
            None if measured is None else measured >= 40,
        )
        check = found.get("shipyard", {}).get("check")
        add(
            figure,
            "every entity row returned",
            None if check is None else check["rows"],
            None if check is None else check["rows"] == entity_rows and check["missing_rows"] == 0,
        )
        add(
            figure,
            "values agree with Polars (f0; all features)",
            None if check is None else [check["f0_differs"], check["any_feature_differs"]],
            None if check is None else check["any_feature_differs"] == 0,
        )
        peak = found.get("shipyard", {}).get("peak_rss_mb", {}).get("max")
        add(figure, "peak RSS < 500 MB", peak, None if peak is None else peak < 500)
    if "join_10m" in figures:
        found = figures["join_10m"]["contenders"].get("shipyard")
        peak = None if found is None else found["peak_rss_mb"]["max"]
        add(
            "join_10m",
            "10M x 20: bounded memory (read as: peak RSS < 500 MB, the 1M bound)",
            peak,
            None if peak is None else peak < 500,
        )
        check = None if found is None else found["check"]
        add(
            "join_10m",
            "every entity row returned, f0 agrees with Polars",
            None if check is None else [check["rows"], check["f0_differs"]],
            None
            if check is None
            else check["rows"] == entity_rows
            and check["missing_rows"] == 0
            and check["f0_differs"] == 0,
        )
    if "materialize" in figures:
        found = figures["materialize"]["contenders"].get("shipyard")
        rate = None if found is None else found["rows_per_s"]
        add(
            "materialize",
            "materialize >= 1,000,000 rows/s",
            rate,
            None if rate is None else rate >= 1_000_000,
        )
    if "online" in figures:
        cases = figures["online"]["contenders"].get("shipyard", {}).get("cases")
        for case, key, limit in (
            ("1x10", "p50_ms", 0.05),
            ("1x10", "p99_ms", 0.5),
            ("100x5", "p99_ms", 2.0),
            ("100x10", "p99_ms", 2.0),
        ):
            value = None if cases is None else cases[case][key]["median"]
            add(
                "online",
                f"online {case.replace('x', ' entity x ', 1)} features {key[:3]} < {limit} ms",
                value,
                None if value is None else value < limit,
            )
    return targets


def plan_of(args: argparse.Namespace, notes: list[str]) -> list[tuple[str, str]]:
    """The (figure, contender) pairs to measure; shipyard is left out (with a note) when
    the measured source has no feature store."""
    src = Path(os.environ.get(SRC_ENV) or REPO_DIR / "src")
    has_store = (src / "shipyard" / "features" / "store.py").exists()
    if not has_store and "shipyard" in args.contenders:
        notes.append(
            f"shipyard was not measured: {src / 'shipyard/features/store.py'} does not exist "
            "in the measured source."
        )
    return [
        (figure, contender)
        for figure in args.figures
        for contender in FIGURES[figure]
        if contender in args.contenders and (contender != "shipyard" or has_store)
    ]


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Generate the data, set up the venv and the stores, run the samples, summarize."""
    import polars as pl

    started, clock = dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), time.perf_counter()
    load_start = list(os.getloadavg())
    facts = generate()
    os.environ.update(PEER_ENV)
    python = (
        ensure_venv("feast", PEER_REQUIREMENTS["feast"]) if "feast" in args.contenders else None
    )
    git = git_state(args.working_tree)
    if not args.working_tree:
        os.environ[SRC_ENV] = str(snapshot_src(git["commit"], DATA_DIR))
    notes: list[str] = []
    plan = plan_of(args, notes)
    bench = Bench(args, python)
    bench.prepare(plan)
    bench.run(plan)
    figures: dict[str, Any] = {}
    for figure, contender in plan:
        entry = figures.setdefault(figure, {"contenders": {}})
        entry["contenders"][contender] = summarize(
            figure, contender, bench.samples[(figure, contender)]
        )
        if figure in bench.reference_checks:
            entry["reference"] = bench.reference_checks[figure]
    versions = {
        "python": platform.python_version(),
        "polars": pl.__version__,
        "shipyard": installed_version(Path(sys.executable), "shipyard"),
        "duckdb": installed_version(Path(sys.executable), "duckdb"),
    }
    if python is not None:
        for dist in ("feast", "pandas", "dask", "pyarrow"):
            versions[f"{dist} (feast venv)"] = installed_version(python, dist)
    return {
        "meta": {
            "started_at": started,
            "total_s": time.perf_counter() - clock,
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "repeats": args.repeats,
            "warmup_calls": args.warmup,
            "online_calls": args.calls,
            "loadavg_start": load_start,
            "loadavg_end": list(os.getloadavg()),
            "versions": versions,
            "requirements": PEER_REQUIREMENTS,
            "env": PEER_ENV,
            "git": git,
            "notes": notes,
            "setup_s": {k: spread(v) for k, v in bench.setup.items()},
        },
        "data": facts,
        "definitions": definitions(),
        "figures": figures,
        "targets": judge(figures, facts["entity_rows"]),
    }


def definitions() -> dict[str, str]:
    """What each figure means (from the docstrings that measure them)."""
    import inspect

    def doc(thing: Any) -> str:
        return " ".join(inspect.cleandoc(thing.__doc__ or "").split())

    return {
        "sample": doc(worker),
        "polars": doc(polars_join),
        "duckdb": doc(duckdb_join),
        "reference": doc(as_of_reference),
        "check": doc(compare),
        "online": doc(shipyard_online),
        "online check": doc(online_check),
        "peak_rss_mb": "VmHWM (peak RSS) of the sample's process: interpreter, imports, data "
        "and the timed part; the setup (untimed) is included when it was larger.",
        "materialize rows_per_s": f"{FEATURE_ROWS:,} feature rows / the median time of the "
        "materialize call.",
    }


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description="Feature-store benchmark.")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--figures", nargs="+", choices=list(FIGURES), default=list(FIGURES))
    parser.add_argument(
        "--contenders", nargs="+", choices=list(CONTENDERS), default=list(CONTENDERS)
    )
    parser.add_argument("--warmup", type=int, default=WARMUP_CALLS)
    parser.add_argument("--calls", type=int, default=ONLINE_CALLS)
    parser.add_argument("--working-tree", action="store_true")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    """A worker, or the whole benchmark."""
    use_snapshot()
    if argv[:1] == ["worker"]:
        print(JSON_PREFIX + json.dumps(worker(json.loads(argv[1])), default=str))
        return 0
    args = parse_args(argv)
    results = measure(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    for target in results["targets"]:
        print(f"{target['figure']}: {target['target']}: {target['measured']} met={target['met']}")
    print(f"\nwrote {args.out} in {results['meta']['total_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
