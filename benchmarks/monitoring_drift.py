"""Drift benchmark: shipyard's reference profile + drift against Evidently 0.7's DataDriftPreset,
side by side in one run on the same generated data.

Usage::

    .venv/bin/python benchmarks/monitoring_drift.py [--sizes 100000 1000000] [--repeats 3]
        [--evidently-repeats-large 3] [--out benchmarks/results/monitoring_drift.json]
    .venv/bin/python benchmarks/report_monitoring.py

Evidently runs from its own virtual environment (``pandas<3`` is required)::

    python3.11 -m venv benchmarks/.venvs/evidently
    benchmarks/.venvs/evidently/bin/pip install 'evidently==0.7.23' 'pandas<3'

The data (numpy ``default_rng``, fixed seeds): 20 columns, 15 numeric and 5 categorical, with
nulls in three of them, ties, few-valued and binary numeric columns; in the current data 3
columns are shifted (``amount`` scaled by 1.4, ``score_b`` spread 1.5 times wider, a new
merchant category taking 15% of ``merchant_category``). Reference and current have the same
number of rows (``--sizes``). Written once to ``benchmarks/.work/monitoring_drift/N/``
(git-ignored) as Parquet, with the shipyard profile of the reference as JSON.

Contenders, each sample a fresh process, taking turns (round robin):

* ``shipyard``: untimed imports and reading both Parquet files with Polars; timed
  ``build_profile(reference)`` then ``detect_drift(profile, current)``.
* ``shipyard_window``: untimed imports, reading the current Parquet file and the profile's
  JSON; timed ``ReferenceProfile.from_json`` (reported apart) and ``detect_drift``: a new
  window against a profile kept with the model version.
* ``evidently``: ``peer_scripts/evidently_drift.py`` (untimed imports and pandas reads; timed
  ``Dataset.from_pandas`` and ``Report([DataDriftPreset()]).run``).

Peak memory is each worker's ``VmHWM`` after the timed part (the data it read included).
Verdicts are compared column by column (method and drifted or not) and for the dataset.
shipyard is imported from the working tree (``src/shipyard``).
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

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
sys.path.insert(0, str(REPO_DIR / "src"))
WORK_DIR = BENCH_DIR / ".work" / "monitoring_drift"
DEFAULT_OUT = BENCH_DIR / "results" / "monitoring_drift.json"
EVIDENTLY_PYTHON = BENCH_DIR / ".venvs" / "evidently" / "bin" / "python"
EVIDENTLY_SCRIPT = BENCH_DIR / "peer_scripts" / "evidently_drift.py"
JSON_PREFIX = "BENCH_JSON "
SEED = 20261130
TIMEOUT_S = 1800
SHIFTED = ("amount", "score_b", "merchant_category")
#: Targets of the issue: seconds at each size, speed-up over Evidently, memory at 1M.
TARGETS = {
    100_000: {"seconds": 0.4, "speedup": 25.0},
    1_000_000: {"seconds": 3.0, "speedup": 40.0, "peak_mb": 1000.0},
}
WINDOW_TARGET_S = 1.0


# --------------------------------------------------------------------------- data


def _columns(rows: int, rng: Any, shifted: bool) -> dict[str, Any]:
    import numpy as np

    def with_nulls(values: Any, share: float) -> list[Any]:
        out = values.tolist()
        for i in np.flatnonzero(rng.random(rows) < share):
            out[i] = None
        return out

    zipf = 1.0 / np.arange(1, 13) ** 1.1
    categories = [f"mcc_{i:02d}" for i in range(12)]
    merchant = rng.choice(categories, rows, p=zipf / zipf.sum()).astype(object)
    if shifted:
        merchant[rng.random(rows) < 0.15] = "mcc_crypto"
    ids = 1.0 / np.arange(1, 501) ** 0.8
    return {
        "amount": rng.lognormal(3.5, 1.1, rows) * (1.4 if shifted else 1.0),
        "score_a": rng.normal(0.0, 1.0, rows),
        "score_b": rng.normal(50.0, 10.0 * (1.5 if shifted else 1.0), rows),
        "age": rng.integers(18, 91, rows),
        "wait_s": rng.exponential(2.0, rows),
        "income": with_nulls(rng.normal(3000.0, 800.0, rows), 0.02),
        "ratio": rng.random(rows),
        "items": rng.poisson(3.0, rows),
        "tier": rng.integers(0, 4, rows),
        "is_new": rng.integers(0, 2, rows),
        "tenure": rng.gamma(2.0, 2.0, rows),
        "residual": rng.standard_t(5, rows),
        "mixed": np.where(rng.random(rows) < 0.7, rng.normal(0, 1, rows), rng.normal(5, 2, rows)),
        "price": np.round(rng.normal(1000.0, 200.0, rows), 2),
        "speed": with_nulls(rng.lognormal(0.0, 0.5, rows), 0.01),
        "merchant_category": merchant,
        "country": rng.choice(["DE", "FR", "NL", "BE", "ES", "IT", "PL", "AT"], rows),
        "channel": rng.choice(["web", "app", "pos"], rows, p=[0.5, 0.3, 0.2]),
        "device": with_nulls(rng.choice(["ios", "android"], rows), 0.01),
        "merchant_id": rng.choice([f"m{i:03d}" for i in range(500)], rows, p=ids / ids.sum()),
    }


def generate(rows: int) -> Path:
    """Write reference, current, columns.json and the profile for ``rows`` (once)."""
    import numpy as np
    import polars as pl

    from shipyard.monitoring.profile import build_profile

    folder = WORK_DIR / str(rows)
    facts = {"rows": rows, "seed": SEED, "shifted": list(SHIFTED), "version": 1}
    facts_path = folder / "facts.json"
    if facts_path.exists() and json.loads(facts_path.read_text()) == facts:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for name, seed, shifted in (("reference", SEED, False), ("current", SEED + 1, True)):
        frame = pl.DataFrame(_columns(rows, np.random.default_rng(seed), shifted))
        frame.write_parquet(folder / f"{name}.parquet")
    frame = pl.read_parquet(folder / "reference.parquet")
    kinds = {
        "numeric": [n for n, t in frame.schema.items() if t.is_numeric()],
        "categorical": [n for n, t in frame.schema.items() if not t.is_numeric()],
    }
    (folder / "columns.json").write_text(json.dumps(kinds))
    (folder / "profile.json").write_text(build_profile(frame).to_json())
    facts_path.write_text(json.dumps(facts))
    return folder


# --------------------------------------------------------------------------- workers


def peak_rss_mb() -> float:
    """``VmHWM`` of this process in MB (MiB, as the kernel counts)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def worker(kind: str, folder: Path) -> dict[str, Any]:
    """One shipyard sample in this process (``shipyard`` or ``shipyard_window``)."""
    start = time.perf_counter()
    import polars as pl

    from shipyard.monitoring.drift import detect_drift
    from shipyard.monitoring.profile import ReferenceProfile, build_profile

    current = pl.read_parquet(folder / "current.parquet")
    parts: dict[str, float] = {}
    if kind == "shipyard":
        reference = pl.read_parquet(folder / "reference.parquet")
        setup = time.perf_counter() - start
        began = time.perf_counter()
        profile = build_profile(reference)
        parts["build_profile_s"] = time.perf_counter() - began
    else:
        text = (folder / "profile.json").read_text()
        setup = time.perf_counter() - start
        began = time.perf_counter()
        profile = ReferenceProfile.from_json(text)
        parts["from_json_s"] = time.perf_counter() - began
    mark = time.perf_counter()
    result = detect_drift(profile, current)
    parts["detect_drift_s"] = time.perf_counter() - mark
    seconds = time.perf_counter() - began
    columns = {
        name: {
            "method": c.method,
            "value": c.p_value if c.p_value is not None else c.statistic,
            "drifted": c.drifted,
            "psi": c.psi,
        }
        for name, c in result.columns.items()
    }
    return {
        "seconds": seconds,
        "setup_s": setup,
        "parts": parts,
        "peak_rss_mb": peak_rss_mb(),
        "share": result.share,
        "dataset_drift": result.drifted,
        "columns": columns,
    }


def run_sample(contender: str, folder: Path) -> dict[str, Any]:
    """One fresh process; its result plus the process' wall time and the load after it."""
    import subprocess

    if contender == "evidently":
        cmd = [str(EVIDENTLY_PYTHON), str(EVIDENTLY_SCRIPT), "--data", str(folder)]
    else:
        cmd = [sys.executable, str(Path(__file__)), "--worker", contender, "--data", str(folder)]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, cwd=folder)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    line = [x for x in done.stdout.splitlines() if x.startswith(JSON_PREFIX)][-1]
    result = json.loads(line[len(JSON_PREFIX) :])
    result["process_s"] = wall
    result["load_after"] = list(os.getloadavg())
    return result


# --------------------------------------------------------------------------- summary


def spread(values: list[float]) -> dict[str, float]:
    """Median, min and max."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def agreement(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    """Column-by-column comparison of methods, values and verdicts."""
    rows = []
    for name, mine in ours["columns"].items():
        peer = theirs["columns"].get(name, {})
        rows.append(
            {
                "column": name,
                "shifted": name in SHIFTED,
                "shipyard_method": mine["method"],
                "evidently_method": peer.get("method"),
                "shipyard_value": mine["value"],
                "evidently_value": peer.get("value"),
                "shipyard_drifted": mine["drifted"],
                "evidently_drifted": peer.get("drifted"),
                "agree": mine["drifted"] == peer.get("drifted")
                and mine["method"] == peer.get("method"),
            }
        )
    diffs = [
        abs(r["shipyard_value"] - r["evidently_value"])
        for r in rows
        if r["shipyard_value"] is not None and r["evidently_value"] is not None
    ]
    return {
        "columns": rows,
        "agreeing": sum(r["agree"] for r in rows),
        "total": len(rows),
        "dataset_agrees": ours["dataset_drift"] == theirs["dataset_drift"],
        "max_value_difference": max(diffs) if diffs else None,
    }


def summarize(rows: int, samples: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Medians per contender, ratios, verdict agreement and the targets' verdicts."""
    figures = {}
    for contender, found in samples.items():
        if not found:
            continue
        figures[contender] = {
            "seconds": spread([s["seconds"] for s in found]),
            "process_s": spread([s["process_s"] for s in found]),
            "peak_rss_mb": spread([s["peak_rss_mb"] for s in found]),
            "setup_s": spread([s["setup_s"] for s in found]),
            "parts": {k: spread([s["parts"][k] for s in found]) for k in found[0].get("parts", {})},
            "samples": [s["seconds"] for s in found],
            "load_after": [s["load_after"] for s in found],
        }
    ours, theirs = samples["shipyard"][-1], samples.get("evidently", [None])[-1]
    summary: dict[str, Any] = {"rows": rows, "figures": figures}
    if theirs is not None:
        summary["agreement"] = agreement(ours, theirs)
        summary["speedup"] = (
            figures["evidently"]["seconds"]["median"] / figures["shipyard"]["seconds"]["median"]
        )
        summary["evidently_share"] = theirs["share"]
    summary["shipyard_share"] = ours["share"]
    summary["window_matches_full"] = all(
        s["columns"] == ours["columns"] for s in samples.get("shipyard_window", [])
    )
    summary["targets"] = judge(rows, summary)
    return summary


def judge(rows: int, summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the issue at this size: measured value and met or not."""
    figures, target = summary["figures"], TARGETS.get(rows, {})
    found = []
    seconds = figures["shipyard"]["seconds"]["median"]
    if "seconds" in target:
        found.append(
            {
                "target": f"shipyard < {target['seconds']} s",
                "value": seconds,
                "met": seconds < target["seconds"],
            }
        )
    if "speedup" in target and "speedup" in summary:
        found.append(
            {
                "target": f">= {target['speedup']:.0f}x faster than Evidently",
                "value": summary["speedup"],
                "met": summary["speedup"] >= target["speedup"],
            }
        )
    if "peak_mb" in target:
        peak = figures["shipyard"]["peak_rss_mb"]["max"]
        found.append(
            {"target": "peak memory < 1 GB", "value": peak, "met": peak < target["peak_mb"]}
        )
    if "shipyard_window" in figures and rows >= 1_000_000:
        window = figures["shipyard_window"]["seconds"]["median"]
        found.append(
            {
                "target": "precomputed profile, new 1M-row window < 1 s",
                "value": window,
                "met": window < WINDOW_TARGET_S,
            }
        )
    if "agreement" in summary:
        agree = summary["agreement"]
        found.append(
            {
                "target": "Evidently's verdicts reproduced column by column",
                "value": f"{agree['agreeing']} of {agree['total']}",
                "met": agree["agreeing"] == agree["total"] and agree["dataset_agrees"],
            }
        )
    return found


# --------------------------------------------------------------------------- main


def versions() -> dict[str, str]:
    """Versions of the libraries measured."""
    import numpy
    import polars
    import pyarrow

    found = {
        "python": platform.python_version(),
        "polars": polars.__version__,
        "numpy": numpy.__version__,
        "pyarrow": pyarrow.__version__,
    }
    return found


def git_commit() -> dict[str, Any]:
    """The commit of the working tree and whether src/shipyard had uncommitted changes."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO_DIR, capture_output=True, text=True).stdout

    return {
        "commit": git("rev-parse", "HEAD").strip(),
        "src_shipyard_dirty": bool(git("status", "--porcelain", "--", "src/shipyard").strip()),
        "measured": "the working tree of src/shipyard",
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Every size, every contender, round robin; the summary."""
    started = dt.datetime.now(dt.UTC)
    load_start = list(os.getloadavg())
    sizes = []
    for rows in args.sizes:
        folder = generate(rows)
        contenders = ["shipyard", "shipyard_window"] + (["evidently"] if args.evidently else [])
        samples: dict[str, list[dict[str, Any]]] = {c: [] for c in contenders}
        for rep in range(args.repeats):
            for contender in contenders:
                large = rows >= 1_000_000 and contender == "evidently"
                if large and rep >= args.evidently_repeats_large:
                    continue
                sample = run_sample(contender, folder)
                samples[contender].append(sample)
                print(
                    f"{rows:>9,} {contender:<16} rep {rep}: {sample['seconds']:.3f} s, "
                    f"{sample['peak_rss_mb']:.0f} MB, load {sample['load_after'][0]:.2f}",
                    flush=True,
                )
        sizes.append(summarize(rows, samples))
    evidently_version = None
    if args.evidently:
        evidently_version = samples["evidently"][0]["versions"]
    return {
        "started": started.isoformat(timespec="seconds"),
        "elapsed_s": (dt.datetime.now(dt.UTC) - started).total_seconds(),
        "load_start": load_start,
        "load_end": list(os.getloadavg()),
        "machine": f"{platform.platform()}, {os.cpu_count()} cores",
        "versions": versions(),
        "evidently_versions": evidently_version,
        "git": git_commit(),
        "repeats": args.repeats,
        "evidently_repeats_large": args.evidently_repeats_large,
        "command": " ".join(["benchmarks/monitoring_drift.py", *sys.argv[1:]]),
        "shifted": list(SHIFTED),
        "sizes": sizes,
    }


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--evidently-repeats-large",
        type=int,
        default=3,
        help="Evidently samples at 1M rows and more (about 2 minutes each)",
    )
    parser.add_argument("--no-evidently", dest="evidently", action="store_false")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--worker", choices=["shipyard", "shipyard_window"])
    parser.add_argument("--data", type=Path)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    """Run the benchmark (or one worker sample) and write the results."""
    args = parse_args(argv)
    if args.worker:
        print(JSON_PREFIX + json.dumps(worker(args.worker, args.data)))
        return 0
    if args.evidently and not EVIDENTLY_PYTHON.exists():
        raise SystemExit(f"no Evidently venv at {EVIDENTLY_PYTHON}: see this script's docstring")
    results = measure(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
