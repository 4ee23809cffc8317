"""Data-contract validation benchmark: shipyard, a hand-written Polars query, Pandera and
Great Expectations, side by side in one run on the same generated data.

Usage::

    .venv/bin/python benchmarks/contracts_validate.py [--repeats 5] [--sizes 1000000 10000000]
        [--gx-sizes 1000000 10000000] [--out benchmarks/results/contracts.json]
    .venv/bin/python benchmarks/contracts_validate.py stream-profile [RESULTS_JSON] [PIECE ...]
    .venv/bin/python benchmarks/report_contracts.py

What it does:

* ``generate`` writes each size once to ``benchmarks/.work/contracts/orders_<rows>.parquet``
  (git-ignored; deterministic: numpy ``default_rng(SEED)``), 10 columns, with 0.1% bad rows.
  Every bad row breaks exactly one of the 12 checks (so the expected failing rows per check
  are known from the generator, ``expected``), and nulls of required columns are among them.
* The same 12 checks (``CHECKS``) are expressed in each tool: the ODCS contract ``CONTRACT``
  for shipyard, ``polars_counts`` for the hand-written query, and the peer scripts
  ``peer_scripts/pandera_validate.py`` and ``peer_scripts/gx_validate.py``, which read the
  check parameters (``SPEC``) from a JSON file written here so no parameter is typed twice.
* Pandera (``pandera[polars]==0.35.0`` plus pandas) and Great Expectations
  (``great-expectations==1.24.1``) run in their own venvs under ``benchmarks/.venvs/``, made
  by ``peers.ensure_venv``; shipyard and the Polars query run in the repo's ``.venv``, as this
  same file (``contracts_validate.py worker CONTENDER ROWS``).
* One sample = one fresh process: it loads the data (untimed; Polars or pandas reads the
  Parquet file), validates once untimed (warm-up), then once timed, and reports the timed
  validation, its per-check failing-row counts, and the process's peak RSS
  (``VmHWM`` in /proc/self/status, so data, warm-up and timed run included)
  and its RSS before validating. The streaming variant reads the Parquet file itself, so it
  has nothing to load. Contenders take turns within each repetition (round robin), so
  machine noise spreads over all of them; figures are medians of ``--repeats`` samples.
* After the samples, ``profile`` times the pieces of shipyard's in-memory validation in a
  fresh process; ``stream-profile`` (a separate command) adds the time and peak RSS of each
  piece of the streaming validation, each in fresh processes, to the results file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from peers import JSON_PREFIX, ensure_venv, installed_version, parse_result, run_process
from snapshot import SRC_ENV, git_state, snapshot_src, use_snapshot

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
DATA_DIR = BENCH_DIR / ".work" / "contracts"
DEFAULT_OUT = BENCH_DIR / "results" / "contracts.json"
SEED = 20261129
BAD_SHARE = 0.001
TIMEOUT_S = 1800

PEER_REQUIREMENTS: dict[str, list[str]] = {
    "pandera": ["pandera[polars]==0.35.0", "pandas", "pyarrow"],
    "gx": ["great-expectations==1.24.1", "pyarrow"],
}
PEER_ENV = {"GX_ANALYTICS_ENABLED": "False", "POLARS_VERBOSE": "0"}

CURRENCIES = ["EUR", "USD", "GBP", "CHF"]
COUNTRIES = ["DE", "FR", "IT", "ES", "NL", "BE", "AT", "PL"]
CHANNELS = ["web", "store", "phone"]
SPEC: dict[str, Any] = {
    "id_pattern": "^ID-[0-9]{8}$",
    "amount": [0, 100000],
    "quantity": [1, 100],
    "score": [0, 1],
    "currency": CURRENCIES,
    "country": COUNTRIES,
    "channel": CHANNELS,
}
CHECKS = {
    "id_not_null": "`id` is not null",
    "id_unique": "`id` is unique",
    "id_pattern": f"`id` matches `{SPEC['id_pattern']}`",
    "customer_not_null": "`customer` is not null",
    "amount_range": "0 <= `amount` <= 100000",
    "currency_in_set": f"`currency` in {CURRENCIES}",
    "country_in_set": f"`country` in {COUNTRIES}",
    "quantity_range": "1 <= `quantity` <= 100",
    "score_range": "0 <= `score` <= 1",
    "created_not_null": "`created` is not null",
    "channel_in_set": f"`channel` in {CHANNELS}",
    "row_count": "row count > 0 (a batch check: 0 = passed, 1 = failed)",
}
# Which shipyard check ids make up each of the 12 checks (bounds are two disjoint checks).
SHIPYARD_IDS = {
    "id_not_null": ["id.required"],
    "id_unique": ["id.unique"],
    "id_pattern": ["id.pattern"],
    "customer_not_null": ["customer.required"],
    "amount_range": ["amount.minimum", "amount.maximum"],
    "currency_in_set": ["currency.invalidValues"],
    "country_in_set": ["country.invalidValues"],
    "quantity_range": ["quantity.minimum", "quantity.maximum"],
    "score_range": ["score.minimum", "score.maximum"],
    "created_not_null": ["created.required"],
    "channel_in_set": ["channel.invalidValues"],
    "row_count": ["rowCount"],
}
CONTRACT = f"""
apiVersion: v3.1.0
kind: DataContract
id: bench-orders
version: 1.0.0
status: active
schema:
  - name: orders
    properties:
      - name: id
        logicalType: string
        required: true
        unique: true
        logicalTypeOptions: {{pattern: "{SPEC["id_pattern"]}"}}
      - name: customer
        logicalType: string
        required: true
      - name: amount
        logicalType: number
        logicalTypeOptions: {{minimum: 0, maximum: 100000}}
      - name: currency
        logicalType: string
        quality: [{{metric: invalidValues, arguments: {{validValues: {CURRENCIES}}}, mustBe: 0}}]
      - name: country
        logicalType: string
        quality: [{{metric: invalidValues, arguments: {{validValues: {COUNTRIES}}}, mustBe: 0}}]
      - name: quantity
        logicalType: integer
        logicalTypeOptions: {{minimum: 1, maximum: 100}}
      - name: score
        logicalType: number
        logicalTypeOptions: {{minimum: 0, maximum: 1}}
      - name: created
        logicalType: timestamp
        required: true
      - name: channel
        logicalType: string
        quality: [{{metric: invalidValues, arguments: {{validValues: {CHANNELS}}}, mustBe: 0}}]
      - name: flag
        logicalType: boolean
    quality:
      - metric: rowCount
        mustBeGreaterThan: 0
"""
# Bad-row kinds: each breaks exactly one check (the key of CHECKS it counts towards).
BAD_KINDS = [
    ("id_null", "id_not_null"),
    ("id_duplicate", "id_unique"),
    ("id_pattern", "id_pattern"),
    ("customer_null", "customer_not_null"),
    ("amount_negative", "amount_range"),
    ("amount_huge", "amount_range"),
    ("currency", "currency_in_set"),
    ("country", "country_in_set"),
    ("quantity", "quantity_range"),
    ("score", "score_range"),
    ("created_null", "created_not_null"),
    ("channel", "channel_in_set"),
]


# --------------------------------------------------------------------------- data


def data_path(rows: int) -> Path:
    """The Parquet file holding ``rows`` generated rows."""
    return DATA_DIR / f"orders_{rows}.parquet"


def bad_positions(rows: int, rng: Any) -> Any:
    """Sorted odd row positions of the bad rows (so the row before each bad row is good)."""
    import numpy as np

    count = max(len(BAD_KINDS), int(rows * BAD_SHARE))
    return np.sort(rng.choice(rows // 2, size=count, replace=False) * 2 + 1)


def good_frame(rows: int, rng: Any) -> Any:
    """``rows`` rows that pass every check."""
    import numpy as np
    import polars as pl

    start = dt.datetime(2026, 1, 1)
    return pl.DataFrame(
        {
            "id": pl.int_range(1, rows + 1, eager=True).cast(pl.String).str.zfill(8),
            "customer": rng.integers(0, 200_000, rows),
            "amount": np.round(rng.uniform(0, 5000, rows), 2),
            "currency": rng.integers(0, len(CURRENCIES), rows),
            "country": rng.integers(0, len(COUNTRIES), rows),
            "quantity": rng.integers(1, 101, rows),
            "score": rng.uniform(0, 1, rows),
            "created": rng.integers(0, 300 * 86_400_000_000, rows),
            "channel": rng.integers(0, len(CHANNELS), rows),
            "flag": rng.integers(0, 2, rows).astype(bool),
        }
    ).with_columns(
        ("ID-" + pl.col("id")).alias("id"),
        pl.format("CUST-{}", pl.col("customer").cast(pl.String).str.zfill(6)).alias("customer"),
        pl.col("currency").replace_strict(dict(enumerate(CURRENCIES)), return_dtype=pl.String),
        pl.col("country").replace_strict(dict(enumerate(COUNTRIES)), return_dtype=pl.String),
        pl.col("channel").replace_strict(dict(enumerate(CHANNELS)), return_dtype=pl.String),
        (pl.lit(start) + pl.duration(microseconds=pl.col("created"))).alias("created"),
    )


def bad_values(kind: str, own: Any, previous: Any) -> tuple[str, Any]:
    """The column a bad row of ``kind`` changes, and its new value: a scalar, or a Series
    per bad row (``own`` are the bad rows' ids, ``previous`` those of the rows before them)."""
    fixed = {
        "id_null": ("id", None),
        "id_duplicate": ("id", previous),
        "id_pattern": ("id", own.str.replace("ID-", "XX-", literal=True)),
        "customer_null": ("customer", None),
        "amount_negative": ("amount", -5.0),
        "amount_huge": ("amount", 250_000.0),
        "currency": ("currency", "JPY"),
        "country": ("country", "XX"),
        "quantity": ("quantity", 0),
        "score": ("score", 1.5),
        "created_null": ("created", None),
        "channel": ("channel", "fax"),
    }
    return fixed[kind]


def add_bad_rows(frame: Any, positions: Any) -> tuple[Any, dict[str, int]]:
    """``frame`` with the rows at ``positions`` broken, kinds in turn; and how many rows
    break each check."""
    import polars as pl

    expected = dict.fromkeys(CHECKS, 0)
    row = pl.int_range(0, pl.len(), dtype=pl.Int64)
    updates: dict[str, pl.Expr] = {}
    for index, (kind, check) in enumerate(BAD_KINDS):
        mine = positions[index :: len(BAD_KINDS)]
        expected[check] += len(mine)
        column, value = bad_values(kind, frame["id"].gather(mine), frame["id"].gather(mine - 1))
        where = pl.Series("pos", mine, dtype=pl.Int64)
        if isinstance(value, pl.Series):
            new = row.replace_strict(where, value, default=None)
        else:
            new = pl.lit(value, dtype=frame.schema[column])
        hit = row.is_in(where.implode())
        updates[column] = pl.when(hit).then(new).otherwise(updates.get(column, pl.col(column)))
    return frame.with_columns(**updates), expected


def generate(rows: int) -> dict[str, Any]:
    """Write the data set of ``rows`` rows once (reused when its facts file matches)."""
    import numpy as np

    path = data_path(rows)
    facts_path = path.with_suffix(".json")
    if path.exists() and facts_path.exists():
        facts = json.loads(facts_path.read_text())
        if facts.get("seed") == SEED and facts.get("bad_kinds") == [k for k, _ in BAD_KINDS]:
            return facts
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    positions = bad_positions(rows, rng)
    frame, expected = add_bad_rows(good_frame(rows, rng), positions)
    frame.write_parquet(path)
    facts = {
        "rows": rows,
        "columns": frame.width,
        "schema": {k: str(v) for k, v in frame.schema.items()},
        "seed": SEED,
        "bad_rows": len(positions),
        "bad_kinds": [k for k, _ in BAD_KINDS],
        "expected_failing_rows": expected,
        "file_bytes": path.stat().st_size,
        "in_memory_bytes": frame.estimated_size(),
    }
    facts_path.write_text(json.dumps(facts, indent=2) + "\n")
    return facts


def spec_file() -> Path:
    """Write ``SPEC`` (the check parameters) for the peer scripts; return its path."""
    path = DATA_DIR / "spec.json"
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**SPEC, "checks": list(CHECKS)}, indent=2) + "\n")
    return path


# --------------------------------------------------------------------------- worker


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB: ``VmHWM`` of /proc/self/status.

    Not ``getrusage``'s ``ru_maxrss``: Linux carries that over ``execve`` from the forked
    parent (the harness), so a child would report the harness' peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def rss_mb() -> float:
    """Resident memory of this process now, in MB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def polars_counts(frame: Any) -> dict[str, int]:
    """The hand-written Polars query: failing rows per check, in one ``select``."""
    import polars as pl

    ident = pl.col("id")

    def outside(name: str) -> pl.Expr:
        low, high = SPEC[name]
        return (~pl.col(name).is_between(low, high)).sum()

    def not_in(name: str) -> pl.Expr:
        return (~pl.col(name).is_in(SPEC[name])).sum()

    counts = frame.select(
        id_not_null=ident.is_null().sum(),
        id_unique=(ident.is_not_null() & ~ident.is_first_distinct()).sum(),
        id_pattern=(~ident.str.contains(SPEC["id_pattern"])).sum(),
        customer_not_null=pl.col("customer").is_null().sum(),
        amount_range=outside("amount"),
        currency_in_set=not_in("currency"),
        country_in_set=not_in("country"),
        quantity_range=outside("quantity"),
        score_range=outside("score"),
        created_not_null=pl.col("created").is_null().sum(),
        channel_in_set=not_in("channel"),
        row_count=(pl.len() == 0).cast(pl.Int64),
    )
    return {k: int(v) for k, v in counts.row(0, named=True).items()}


def shipyard_counts(report: Any) -> dict[str, int]:
    """Failing rows per check from a shipyard report (a failed batch check counts 1)."""
    by_id = {
        r.id: (r.failed_rows if r.kind == "row" else int(not r.passed)) for r in report.results
    }
    return {check: sum(by_id[i] for i in ids) for check, ids in SHIPYARD_IDS.items()}


def run_polars(frame: Any, rows: int) -> dict[str, Any]:
    """Contender ``polars``: the hand-written query over the in-memory DataFrame."""
    return {"counts": polars_counts(frame)}


def run_shipyard(frame: Any, rows: int) -> dict[str, Any]:
    """Contender ``shipyard``: ``contract.validate(df)``, report and accepted/quarantined
    DataFrames."""
    from shipyard.contracts import Contract

    result = Contract.from_yaml(CONTRACT).validate(frame)
    split = result.accepted.height + result.quarantined.height
    return {
        "counts": shipyard_counts(result.report),
        "split_rows": split,
        "accepted": result.accepted.height,
        "quarantined": result.quarantined.height,
    }


def run_shipyard_stream(frame: Any, rows: int) -> dict[str, Any]:
    """Contender ``shipyard_stream``: ``contract.validate(path, accepted_path=...,
    quarantine_path=...)``, streaming the Parquet file to two Parquet files."""
    import polars as pl

    from shipyard.contracts import Contract

    out = DATA_DIR / "out"
    out.mkdir(parents=True, exist_ok=True)
    accepted, quarantined = out / f"accepted_{rows}.parquet", out / f"quarantined_{rows}.parquet"
    result = Contract.from_yaml(CONTRACT).validate(
        str(data_path(rows)), accepted_path=accepted, quarantine_path=quarantined
    )
    sizes = [pl.scan_parquet(p).select(pl.len()).collect().item() for p in (accepted, quarantined)]
    return {
        "counts": shipyard_counts(result.report),
        "split_rows": sum(sizes),
        "accepted": sizes[0],
        "quarantined": sizes[1],
    }


RUNNERS = {"polars": run_polars, "shipyard": run_shipyard, "shipyard_stream": run_shipyard_stream}


def worker(contender: str, rows: int) -> dict[str, Any]:
    """One sample in this fresh process: load (untimed), warm up, then time one validation."""
    import polars as pl

    start = time.perf_counter()
    frame = None if contender == "shipyard_stream" else pl.read_parquet(data_path(rows))
    load_s = time.perf_counter() - start
    rss_before = rss_mb()
    run = RUNNERS[contender]
    start = time.perf_counter()
    run(frame, rows)
    warmup_s = time.perf_counter() - start
    start = time.perf_counter()
    outcome = run(frame, rows)
    validate_s = time.perf_counter() - start
    import shipyard

    return {
        "validate_s": validate_s,
        "warmup_s": warmup_s,
        "load_s": load_s,
        "rss_before_mb": rss_before,
        "peak_rss_mb": peak_rss_mb(),
        "shipyard_file": shipyard.__file__,
        **outcome,
    }


def timed(call: Any, repeats: int = 3) -> float:
    """Median wall time of ``call()`` over ``repeats`` runs after one untimed run."""
    call()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def profile(rows: int) -> dict[str, Any]:
    """Where shipyard's in-memory validation spends its time, piece by piece.

    Uses the pieces of ``shipyard.contracts.validation`` (``as_lazy``, ``compile_plan``,
    ``_Run``) on the in-memory DataFrame, each timed on its own (median of 3 after a
    warm-up): ``flags`` (``_Run._flagged()`` collected: every row check evaluated once into
    a flag column, plus ``__bad``); then, reading those collected flags as ``execute`` does,
    the aggregate query (all counts), the accepted split, the quarantined split, all three
    in one ``collect_all`` (``splits_and_aggregates``), and the example rows
    (``_Run._samples`` for the failing checks); ``execute`` (``_Run.execute`` in memory:
    flags, splits, counts, examples), the whole ``validate`` call, the hand-written count
    query for scale, and the report's distribution profiles of the first 100,000 rows
    (``validation._profiles``). ``per_check_s``: each row check's ``violated.sum()`` alone
    (one run after a warm-up).
    """
    import polars as pl

    from shipyard.contracts import Contract, validation
    from shipyard.contracts._engine import compile_plan, now_seconds
    from shipyard.contracts._inputs import as_lazy
    from shipyard.contracts.validation import _Run

    frame = pl.read_parquet(data_path(rows))
    contract = Contract.from_yaml(CONTRACT)
    obj = contract.dataset()

    def plan_run() -> Any:
        lazy, _, _ = as_lazy(frame)
        plan = compile_plan(obj, lazy.collect_schema(), contract.sla, now_seconds())
        return _Run(lazy, plan, 5, False)

    run = plan_run()
    flagged = run._flagged().collect().lazy()
    accepted, quarantined, aggregates = run._queries(flagged)
    counts = aggregates.collect().row(0, named=True)
    failing = [bool(counts[f]) for f in run.flags]
    parts = {
        "parse_contract": timed(lambda: Contract.from_yaml(CONTRACT)),
        "plan": timed(plan_run),
        "flags": timed(lambda: run._flagged().collect()),
        "aggregates_from_flags": timed(lambda: aggregates.collect()),
        "accepted_from_flags": timed(lambda: accepted.collect()),
        "quarantined_from_flags": timed(lambda: quarantined.collect()),
        "splits_and_aggregates": timed(lambda: pl.collect_all([accepted, quarantined, aggregates])),
        "examples_from_flags": timed(lambda: pl.collect_all(run._samples(flagged, failing))),
        "execute": timed(lambda: plan_run().execute(None, None)),
        "validate_total": timed(lambda: contract.validate(frame)),
        "polars_counts": timed(lambda: polars_counts(frame)),
        "report_profiles": timed(
            lambda: validation._profiles(as_lazy(frame)[0], run.plan, 100_000)
        ),
    }
    per_check = {
        c.id: timed(lambda c=c: run.frame.select(c.violated.sum()).collect(), 1)
        for c in run.plan.row_checks
    }
    return {
        "rows": rows,
        "median_s": parts,
        "row_checks": len(run.plan.row_checks),
        "failing_row_checks": sum(failing),
        "per_check_s": per_check,
        "plan_explain_flags": run._flagged().explain()[:4000],
    }


# --------------------------------------------------------------------------- streaming profile


def reset_peak_rss() -> float:
    """Reset this process's ``VmHWM`` to its current RSS (``/proc/self/clear_refs``, ``5``),
    so a piece's peak leaves out its setup; return the RSS it starts from, in MB."""
    Path("/proc/self/clear_refs").write_text("5")
    return peak_rss_mb()


def stream_piece(piece: str, rows: int) -> dict[str, Any]:
    """One piece of the streaming validation in this fresh process: its time and peak RSS.

    Pieces: ``baseline`` (imports only), ``plain_copy`` (``scan_parquet`` -> ``sink_parquet``
    of the input, plain Polars), ``repeated_keys`` (the pass over hashed keys that finds the
    rows repeating an earlier id: ``_Run(..., streaming=True)``, which runs ``_by_row_set``),
    ``sink_accepted`` and ``sink_quarantined`` (each of ``_sink_whole``'s passes alone:
    flags -> accepted rows / quarantined rows with reasons -> Parquet), ``aggregates`` (the
    measures pass as ``_sink_whole`` runs it: counts and example rows in one streaming
    ``collect_all``), ``validate`` (the whole streaming ``validate``). For the sink and
    aggregate pieces the repeated-key pass runs first, untimed, and the peak RSS is reset
    after it (``/proc/self/clear_refs``), so their time and peak are the pass's own (their
    peak still includes the RSS the process held when the pass began, ``start_rss_mb``).
    """
    import polars as pl

    from shipyard.contracts import Contract
    from shipyard.contracts._engine import compile_plan, now_seconds
    from shipyard.contracts._inputs import as_lazy
    from shipyard.contracts.validation import _Run

    source = data_path(rows)
    out = DATA_DIR / "out"
    out.mkdir(parents=True, exist_ok=True)
    contract = Contract.from_yaml(CONTRACT)
    lazy, _, _ = as_lazy(str(source))
    plan = compile_plan(contract.dataset(), lazy.collect_schema(), contract.sla, now_seconds())
    setup_s = 0.0
    if piece in ("sink_accepted", "sink_quarantined", "aggregates"):
        start = time.perf_counter()
        run = _Run(lazy, plan, 5, True)
        setup_s = time.perf_counter() - start
        flagged = run._flagged()
        accepted, quarantined, measures = run._queries(flagged)
        samples = run._samples(flagged, [True] * len(run.flags))
    pieces = {
        "baseline": lambda: None,
        "plain_copy": lambda: pl.scan_parquet(source).sink_parquet(out / "piece_copy.parquet"),
        "repeated_keys": lambda: _Run(lazy, plan, 5, True),
        "sink_accepted": lambda: accepted.sink_parquet(out / "piece_a.parquet"),
        "sink_quarantined": lambda: quarantined.sink_parquet(out / "piece_q.parquet"),
        "aggregates": lambda: pl.collect_all([measures, *samples], engine="streaming"),
        "validate": lambda: contract.validate(
            str(source),
            accepted_path=out / "piece_a.parquet",
            quarantine_path=out / "piece_q.parquet",
        ),
    }
    start_rss = reset_peak_rss()
    start = time.perf_counter()
    pieces[piece]()
    return {
        "piece": piece,
        "seconds": time.perf_counter() - start,
        "peak_rss_mb": peak_rss_mb(),
        "start_rss_mb": start_rss,
        "setup_s": setup_s,
    }


STREAM_PIECES = [
    "baseline",
    "plain_copy",
    "repeated_keys",
    "sink_accepted",
    "sink_quarantined",
    "aggregates",
    "validate",
]


def stream_profile(results_path: Path, pieces: list[str], repeats: int = 3) -> None:
    """Add ``stream_profile`` (each piece: median time and peak RSS over ``repeats`` fresh
    processes) to every size of the results file, keeping pieces measured before."""
    results = json.loads(results_path.read_text())
    os.environ[SRC_ENV] = str(snapshot_src(results["meta"]["git"]["commit"], DATA_DIR))
    for rows, size in results["sizes"].items():
        found: dict[str, list[dict]] = {p: [] for p in pieces}
        for _ in range(repeats):
            for piece in pieces:
                cmd = [sys.executable, __file__, "stream-piece", piece, rows]
                found[piece].append(parse_result(run_process(cmd, DATA_DIR, TIMEOUT_S)[1]))
        size.setdefault("stream_profile", {}).update(
            {
                p: {
                    "median_s": statistics.median(r["seconds"] for r in runs),
                    "peak_rss_median_mb": statistics.median(r["peak_rss_mb"] for r in runs),
                    "peak_rss_max_mb": max(r["peak_rss_mb"] for r in runs),
                    "start_rss_median_mb": statistics.median(r["start_rss_mb"] for r in runs),
                    "setup_median_s": statistics.median(r["setup_s"] for r in runs),
                }
                for p, runs in found.items()
            }
        )
        size["stream_profile_definition"] = " ".join((stream_piece.__doc__ or "").split())
        print(rows, json.dumps(size["stream_profile"], indent=1))
    results_path.write_text(json.dumps(results, indent=2, default=str) + "\n")


# --------------------------------------------------------------------------- harness


def run_sample(contender: str, rows: int, pythons: dict[str, Path], spec: Path) -> dict:
    """One sample of ``contender`` at ``rows`` rows in a fresh process; with load averages."""
    path = str(data_path(rows))
    if contender in RUNNERS:
        cmd = [sys.executable, __file__, "worker", contender, str(rows)]
    elif contender.startswith("pandera"):
        mode = contender.removeprefix("pandera_")
        cmd = [
            str(pythons["pandera"]),
            str(BENCH_DIR / "peer_scripts" / "pandera_validate.py"),
            "--data",
            path,
            "--spec",
            str(spec),
            "--mode",
            mode,
        ]
    else:
        cmd = [
            str(pythons["gx"]),
            str(BENCH_DIR / "peer_scripts" / "gx_validate.py"),
            "--data",
            path,
            "--spec",
            str(spec),
        ]
    load_before = list(os.getloadavg())
    wall, stdout = run_process(cmd, DATA_DIR, TIMEOUT_S)
    result = parse_result(stdout)
    result.update(process_wall_s=wall, loadavg_before=load_before, loadavg_after=os.getloadavg())
    return result


CONTENDERS = {
    "polars": "hand-written Polars query (counts only)",
    "shipyard": "shipyard `contract.validate(df)` (report + accepted/quarantined split)",
    "shipyard_stream": "shipyard `contract.validate(path, accepted_path=, quarantine_path=)`",
    "pandera_polars": "Pandera 0.35 on Polars (`lazy=True`; report only)",
    "pandera_pandas": "Pandera 0.35 on pandas (`lazy=True`; report only)",
    "gx": "Great Expectations 1.24 on pandas (result_format BASIC; report only)",
}


def agreement(
    contender: str, counts: dict[str, int], expected: dict[str, int], all_copies: bool
) -> dict[str, Any]:
    """Compare a contender's failing rows per check with the generator's truth.

    Uniqueness is counted two ways: shipyard and the Polars query count the rows that repeat
    an earlier id; Pandera and GX count every copy, so for them the truth is twice as many.
    """
    truth = dict(expected)
    if all_copies:
        truth["id_unique"] = 2 * expected["id_unique"]
    wrong = {
        k: {"found": counts.get(k), "expected": v} for k, v in truth.items() if counts.get(k) != v
    }
    return {"agrees": not wrong, "disagreements": wrong, "expected": truth}


def summarize(contender: str, samples: list[dict], facts: dict) -> dict[str, Any]:
    """Median, spread and samples of one contender at one size, with the count check."""
    times = [s["validate_s"] for s in samples]
    peaks = [s["peak_rss_mb"] for s in samples]
    counts = samples[-1]["counts"]
    consistent = all(s["counts"] == counts for s in samples)
    extra = {
        k: samples[-1][k]
        for k in (
            "accepted",
            "quarantined",
            "split_rows",
            "version",
            "shipyard_file",
            "pandas",
            "raw_counts",
        )
        if k in samples[-1]
    }
    return {
        "label": CONTENDERS[contender],
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "samples_s": times,
        "warmup_s": [s["warmup_s"] for s in samples],
        "peak_rss_median_mb": statistics.median(peaks),
        "peak_rss_max_mb": max(peaks),
        "peak_rss_samples_mb": peaks,
        "rss_before_median_mb": statistics.median(s["rss_before_mb"] for s in samples),
        "load_median_s": statistics.median(s["load_s"] for s in samples),
        "loadavg": [[s["loadavg_before"], s["loadavg_after"]] for s in samples],
        "counts": counts,
        "counts_same_in_every_sample": consistent,
        "agreement": agreement(
            contender,
            counts,
            facts["expected_failing_rows"],
            bool(samples[-1].get("unique_counts_all_copies")),
        ),
        **extra,
    }


def judge(size: dict[str, Any], rows: int) -> list[dict[str, Any]]:
    """The issue's targets at one size, each with the measured value and whether it is met."""
    ours = size.get("shipyard", {}).get("median_s")
    targets = []

    def ratio_target(name: str, peer: str, limit: float, shipyard_faster: bool) -> None:
        theirs = size.get(peer, {}).get("median_s")
        if ours is None or theirs is None:
            targets.append({"target": name, "measured": None, "met": None})
            return
        measured = theirs / ours if shipyard_faster else ours / theirs
        met = measured >= limit if shipyard_faster else measured <= limit
        targets.append({"target": name, "measured": measured, "met": met})

    ratio_target("shipyard time <= 1.2 x the hand-written Polars query", "polars", 1.2, False)
    ratio_target("shipyard faster than Pandera on Polars", "pandera_polars", 1.0, True)
    ratio_target("shipyard >= 4 x faster than Great Expectations", "gx", 4.0, True)
    stream = size.get("shipyard_stream", {}).get("peak_rss_max_mb")
    if rows >= 10_000_000:
        targets.append(
            {
                "target": "streaming from Parquet: peak RSS < 500 MB",
                "measured": stream,
                "met": None if stream is None else stream < 500,
            }
        )
    return targets


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Generate the data, set up the venvs, run every sample round robin, summarize."""
    started, clock = dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), time.perf_counter()
    load_start = list(os.getloadavg())
    facts = {rows: generate(rows) for rows in args.sizes}
    spec = spec_file()
    pythons = {name: ensure_venv(name, reqs) for name, reqs in PEER_REQUIREMENTS.items()}
    os.environ.update(PEER_ENV)
    commit = git_state()
    os.environ[SRC_ENV] = str(snapshot_src(commit["commit"], DATA_DIR))
    plan = [
        (rows, c) for rows in args.sizes for c in CONTENDERS if c != "gx" or rows in args.gx_sizes
    ]
    samples: dict[tuple[int, str], list[dict]] = {key: [] for key in plan}
    for rep in range(args.repeats):
        for rows, contender in plan:
            sample = run_sample(contender, rows, pythons, spec)
            samples[(rows, contender)].append(sample)
            print(
                f"rep {rep + 1} {rows:>9} {contender:<16} {sample['validate_s']:8.3f} s "
                f"peak {sample['peak_rss_mb']:7.0f} MB load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
    sizes: dict[str, Any] = {}
    for rows in args.sizes:
        size = {
            c: summarize(c, samples[(rows, c)], facts[rows])
            for c in CONTENDERS
            if (rows, c) in samples
        }
        sizes[str(rows)] = {
            "data": facts[rows],
            "contenders": size,
            "targets": judge(size, rows),
            "profile": profile_in_process(rows),
        }
    import polars as pl

    versions = {
        "python": platform.python_version(),
        "polars": pl.__version__,
        "shipyard": installed_version(Path(sys.executable), "shipyard"),
    }
    for name, python in pythons.items():
        dist = "pandera" if name == "pandera" else "great-expectations"
        versions[dist] = installed_version(python, dist)
        versions[f"pandas ({name} venv)"] = installed_version(python, "pandas")
    return {
        "meta": {
            "started_at": started,
            "total_s": time.perf_counter() - clock,
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "repeats": args.repeats,
            "loadavg_start": load_start,
            "loadavg_end": list(os.getloadavg()),
            "versions": versions,
            "requirements": PEER_REQUIREMENTS,
            "git": commit,
            "gx_sizes": args.gx_sizes,
        },
        "definitions": definitions(),
        "checks": CHECKS,
        "contract": CONTRACT,
        "sizes": sizes,
    }


def profile_in_process(rows: int) -> dict[str, Any]:
    """Run ``profile`` in a fresh process (after the timed samples) and return its result."""
    cmd = [sys.executable, __file__, "profile", "--", str(rows)]
    _, stdout = run_process(cmd, DATA_DIR, TIMEOUT_S)
    return parse_result(stdout)


def definitions() -> dict[str, str]:
    """What each figure means (from the docstrings that measure them)."""
    import inspect

    def doc(thing: Any) -> str:
        return " ".join(inspect.cleandoc(thing.__doc__ or "").split())

    return {
        "sample": doc(worker),
        "validate_s": "Wall time of the timed validation call only "
        "(data already loaded in the tool's own frame; the streaming variant includes reading "
        "the Parquet file and writing both outputs).",
        "peak_rss_mb": "VmHWM (peak RSS) of the sample's process: the interpreter, imports, the "
        "loaded data, the warm-up and the timed validation (the largest of these).",
        "rss_before_mb": "RSS of the sample's process after loading the data, before validating.",
        "profile": doc(profile),
        "agreement": doc(agreement),
        **{f"contender {k}": v for k, v in CONTENDERS.items()},
        **{f"runner {k}": doc(v) for k, v in RUNNERS.items()},
    }


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description="Contract validation benchmark.")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--gx-sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser.parse_args(argv)


def print_counts(results: dict[str, Any]) -> None:
    """Print failing rows per check for every contender, and whether they agree."""
    for rows, size in results["sizes"].items():
        names = list(size["contenders"])
        print(f"\n{rows} rows: failing rows per check")
        print(f"{'check':<18} {'expected':>9} " + " ".join(f"{n[:15]:>15}" for n in names))
        for check, expected in size["data"]["expected_failing_rows"].items():
            found = " ".join(f"{size['contenders'][n]['counts'].get(check):>15}" for n in names)
            print(f"{check:<18} {expected:>9} {found}")
        for name in names:
            agree = size["contenders"][name]["agreement"]
            print(
                f"  {name}: {'agrees' if agree['agrees'] else 'DISAGREES'} "
                f"{agree['disagreements'] or ''}"
            )
        for target in size["targets"]:
            print(f"  target {target['target']}: {target['measured']} met={target['met']}")


def main(argv: list[str]) -> int:
    """Worker, profile, or the whole benchmark."""
    use_snapshot()
    if argv[:1] == ["worker"]:
        print(JSON_PREFIX + json.dumps(worker(argv[1], int(argv[2]))))
        return 0
    if argv[:1] == ["stream-piece"]:
        print(JSON_PREFIX + json.dumps(stream_piece(argv[1], int(argv[2]))))
        return 0
    if argv[:1] == ["stream-profile"]:
        pieces = [a for a in argv[1:] if a in STREAM_PIECES] or STREAM_PIECES
        paths = [Path(a) for a in argv[1:] if a not in STREAM_PIECES]
        stream_profile(paths[0] if paths else DEFAULT_OUT, pieces)
        return 0
    if argv[:1] == ["profile"]:
        print(JSON_PREFIX + json.dumps(profile(int(argv[-1]))))
        return 0
    args = parse_args(argv)
    results = measure(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print_counts(results)
    print(f"\nwrote {args.out} in {results['meta']['total_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
