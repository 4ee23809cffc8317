"""Evaluation-metrics benchmark: shipyard against Fairlearn 0.15 ``MetricFrame`` on 1,000,000
predictions, side by side in one run on the same generated data.

Usage::

    .venv/bin/python benchmarks/evaluation_metrics.py [--repeats 5]
        [--contenders shipyard fairlearn] [--working-tree]
        [--out benchmarks/results/evaluation.json]
    .venv/bin/python benchmarks/report_evaluation.py

The work:

* ``fairlearn``: for each of 3 groupings (10 slices, 4 countries, 4 age groups) a
  ``MetricFrame`` with selection rate, true and false positive rate, precision and accuracy,
  then its ``by_group``, ``difference()`` and ``ratio()`` (``peer_scripts/fairlearn_metrics.py``).
* ``shipyard``: the same group metrics with ``by_group`` (and ``difference``/``ratio`` of the 5
  metrics per grouping), plus ``overall`` (ROC AUC, average precision, log loss, Brier, the
  confusion-matrix metrics) and ``best_threshold`` with per-row values (a missed fraud costs
  its amount + 15, a needless review 5): strictly more work than Fairlearn's part.

Method:

* ``generate`` writes the data once to ``benchmarks/.work/evaluation/data.npz`` (git-ignored;
  numpy ``default_rng(SEED)``; reused while ``facts.json`` matches the parameters): a true
  logit from group effects and a hidden risk gives ~2% positives; the model's score is the
  sigmoid of that logit plus noise, stored as float32 (as served models emit; this makes tied
  scores). Group metrics use the predictions ``score >= T``, with ``T`` the score that flags
  the top 3% of rows.
* One sample = one fresh process of the repository's ``.venv`` (Fairlearn is a dev dependency,
  so both sides use the same numpy, pandas and scikit-learn). Imports, reading the data and
  building the pandas objects are untimed for both; shipyard's timed part includes turning the
  pandas columns into arrays. Contenders take turns in each repetition (round robin); figures
  are medians of ``--repeats`` samples, with the max. Peak RSS is ``VmHWM`` after the timed part.
* Values are checked after each sample (untimed): every group metric, difference and ratio of
  shipyard against Fairlearn's (max absolute difference, and values where one side is undefined
  and the other not); shipyard's overall metrics against scikit-learn's; the best threshold's
  value recomputed directly and compared with the values at 200 score quantiles and the
  neighbouring scores.
* shipyard is imported from a snapshot of ``src/shipyard`` at ``HEAD`` (``git archive``), so
  uncommitted work of others is not measured; ``--working-tree`` measures the working tree.
"""

from __future__ import annotations

import argparse
import datetime as dt
import inspect
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from peers import JSON_PREFIX, installed_version, parse_result, run_process
from snapshot import SRC_ENV, git_state, snapshot_src, use_snapshot

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
DATA_DIR = BENCH_DIR / ".work" / "evaluation"
DATA_PATH = DATA_DIR / "data.npz"
DEFAULT_OUT = BENCH_DIR / "results" / "evaluation.json"
FAIRLEARN_SCRIPT = BENCH_DIR / "peer_scripts" / "fairlearn_metrics.py"
TIMEOUT_S = 1800

SEED = 20261129
ROWS = 1_000_000
FLAG_SHARE = 0.03
REVIEW_COST = 5.0
HANDLING_COST = 15.0
GROUPS = {
    "slice": list(range(10)),
    "country": ["DE", "FR", "NL", "BE"],
    "age": ["18-25", "26-40", "41-65", "65+"],
}
PARAMETERS = {
    "seed": SEED,
    "rows": ROWS,
    "flag_share": FLAG_SHARE,
    "groups": GROUPS,
    "model": "logit -4.9 + N(0, 1.7) + group effects N(0, 0.3); score noise N(0, 0.8)",
}
GROUP_METRICS = ("selection_rate", "tpr", "fpr", "precision", "accuracy")
CONTENDERS = {
    "shipyard": "shipyard.evaluation: by_group + difference/ratio, overall (incl. ROC AUC), "
    "best_threshold with per-row values",
    "fairlearn": "Fairlearn MetricFrame per grouping: by_group, difference(), ratio()",
}
TARGET_SECONDS = 2.0
TARGET_SPEEDUP = 30.0
TARGET_EXACT = 1e-12


# --------------------------------------------------------------------------- data


def generate() -> dict[str, Any]:
    """Write the data and its facts once; reuse them while the parameters match."""
    facts_path = DATA_DIR / "facts.json"
    if DATA_PATH.exists() and facts_path.exists():
        facts = json.loads(facts_path.read_text())
        if facts.get("parameters") == PARAMETERS:
            return facts
    import numpy as np

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    codes = {name: rng.integers(0, len(values), ROWS) for name, values in GROUPS.items()}
    effects = {name: rng.normal(0, 0.3, len(values)) for name, values in GROUPS.items()}
    logit = -4.9 + rng.normal(0, 1.7, ROWS) + sum(effects[n][codes[n]] for n in GROUPS)
    label = rng.random(ROWS) < 1 / (1 + np.exp(-logit))
    noisy = logit + rng.normal(0, 0.8, ROWS)
    score = (1 / (1 + np.exp(-noisy))).astype(np.float32).astype(np.float64)
    amount = np.round(rng.lognormal(4.0, 1.0, ROWS), 2)
    threshold = float(np.quantile(score, 1 - FLAG_SHARE))
    columns = {name: np.asarray(GROUPS[name])[codes[name]] for name in GROUPS}
    np.savez(DATA_PATH, label=label, score=score, amount=amount, **columns)
    facts = {
        "parameters": PARAMETERS,
        "rows": ROWS,
        "positives": int(label.sum()),
        "distinct_scores": int(np.unique(score).size),
        "threshold": threshold,
        "flagged": int((score >= threshold).sum()),
        "group_sizes": {
            n: {str(g): int(c) for g, c in zip(GROUPS[n], np.bincount(codes[n]), strict=True)}
            for n in GROUPS
        },
    }
    facts_path.write_text(json.dumps(facts, indent=2) + "\n")
    return facts


# --------------------------------------------------------------------------- worker


def peak_rss_mb() -> float:
    """``VmHWM`` of this process in MB (not ``ru_maxrss``, which survives ``execve``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def shipyard_sample(spec: dict[str, Any]) -> dict[str, Any]:
    """One shipyard sample in this fresh process.

    Untimed: importing shipyard, numpy and pandas, reading the data, building the same pandas
    objects as the Fairlearn sample. Timed: turning them into arrays, ``by_group`` with
    ``difference`` and ``ratio`` of the 5 metrics per grouping, ``overall`` at ``T`` and
    ``best_threshold`` with per-row values (``fn = -(amount + 15)``, ``fp = -5``).
    """
    start = time.perf_counter()
    import numpy as np
    import pandas as pd

    from shipyard.evaluation.metrics import by_group, overall
    from shipyard.evaluation.threshold import OutcomeValues, best_threshold

    data = np.load(DATA_PATH)
    frame = pd.DataFrame({name: data[name] for name in GROUPS})
    y_true = pd.Series(data["label"].astype(int))
    scores, amount = pd.Series(data["score"]), pd.Series(data["amount"])
    threshold = spec["threshold"]
    setup_s = time.perf_counter() - start
    clock = start = time.perf_counter()
    labels, ranked = y_true.to_numpy(), scores.to_numpy()
    groups = {name: frame[name].to_numpy() for name in GROUPS}
    tables = by_group(labels, ranked >= threshold, groups)
    gaps = {
        name: {
            "difference": {m: table.difference(m) for m in GROUP_METRICS},
            "ratio": {m: table.ratio(m) for m in GROUP_METRICS},
        }
        for name, table in tables.items()
    }
    parts = {"by_group_s": time.perf_counter() - start}
    start = time.perf_counter()
    metrics = overall(labels, ranked, threshold)
    parts["overall_s"] = time.perf_counter() - start
    start = time.perf_counter()
    values = OutcomeValues(fp=-REVIEW_COST, fn=-(amount.to_numpy() + HANDLING_COST))
    best = best_threshold(labels, ranked, values)
    parts["best_threshold_s"] = time.perf_counter() - start
    seconds = time.perf_counter() - clock
    peak = peak_rss_mb()
    found = {name: {"rows": t.to_dict(), **gaps[name]} for name, t in tables.items()}
    Path(spec["out"]).write_text(json.dumps(found, allow_nan=False))
    return {
        "seconds": seconds,
        "setup_s": setup_s,
        "peak_rss_mb": peak,
        "parts": parts,
        "best_threshold": list(best),
        "overall_check": check_overall(metrics, labels, ranked, threshold),
        "threshold_check": check_best(best, labels, ranked, values),
    }


def check_overall(metrics: dict[str, Any], labels: Any, scores: Any, t: float) -> dict[str, Any]:
    """shipyard's overall metrics against scikit-learn's on the same rows: the largest
    absolute difference and the metric it is in."""
    from sklearn import metrics as skm

    pred = (scores >= t).astype(int)
    reference = {
        "roc_auc": skm.roc_auc_score(labels, scores),
        "average_precision": skm.average_precision_score(labels, scores),
        "log_loss": skm.log_loss(labels, scores),
        "brier": skm.brier_score_loss(labels, scores),
        "accuracy": skm.accuracy_score(labels, pred),
        "precision": skm.precision_score(labels, pred),
        "recall": skm.recall_score(labels, pred),
        "f1": skm.f1_score(labels, pred),
    }
    gaps = {name: abs(metrics[name] - value) for name, value in reference.items()}
    tn, fp, fn, tp = (int(v) for v in skm.confusion_matrix(labels, pred).ravel())
    worst = max(gaps, key=lambda name: gaps[name])
    return {
        "max_abs_difference": gaps[worst],
        "metric": worst,
        "confusion_equal": metrics["confusion"] == {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
        "shipyard": {name: metrics[name] for name in reference},
    }


def check_best(best: tuple[float, float], labels: Any, scores: Any, values: Any) -> dict[str, Any]:
    """The best threshold's value recomputed row by row (vectorised), and the values at 200
    score quantiles and at the distinct scores next to it: none may be higher."""
    import numpy as np

    wide = values.broadcast(labels.size)

    def total(t: float) -> float:
        flagged = scores >= t
        hit = np.where(labels == 1, wide.tp, wide.fp)
        miss = np.where(labels == 1, wide.fn, wide.tn)
        return float(np.where(flagged, hit, miss).sum())

    distinct = np.unique(scores)
    at = int(np.searchsorted(distinct, best[0])) if np.isfinite(best[0]) else distinct.size
    nearby = distinct[max(at - 2, 0) : at + 3].tolist()
    candidates = [*np.quantile(scores, np.linspace(0, 1, 200)).tolist(), *nearby, np.inf]
    totals = [total(t) for t in candidates]
    direct = total(best[0])
    return {
        "direct_value": direct,
        "abs_difference": abs(direct - best[1]),
        "best_of_candidates": max(totals),
        "candidates": len(candidates),
        "none_higher": max(totals) <= best[1] + 1e-6 * max(1.0, abs(best[1])),
    }


# --------------------------------------------------------------------------- harness


def run_sample(contender: str, threshold: float, rep: int) -> dict[str, Any]:
    """One sample of ``contender`` in a fresh process; its result and its values' file."""
    out = DATA_DIR / f"out_{contender}_{rep}.json"
    if contender == "fairlearn":
        cmd = [sys.executable, str(FAIRLEARN_SCRIPT), "--data", str(DATA_PATH)]
        cmd += ["--threshold", repr(threshold), "--out", str(out)]
    else:
        spec = {"threshold": threshold, "out": str(out)}
        cmd = [sys.executable, __file__, "worker", json.dumps(spec)]
    before = list(os.getloadavg())
    wall, stdout = run_process(cmd, DATA_DIR, TIMEOUT_S)
    result = parse_result(stdout)
    result.update(process_wall_s=wall, loadavg_before=before, loadavg_after=list(os.getloadavg()))
    result["values"] = json.loads(out.read_text())
    out.unlink()
    return result


def compare_groups(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    """Every group metric, difference and ratio of shipyard against Fairlearn's: values
    compared, the largest absolute difference, and values undefined on one side only (shipyard
    None, Fairlearn NaN), with the groups each side reports."""
    compared, worst, one_sided, where = 0, 0.0, [], None
    same_groups = True
    for grouping, found in theirs.items():
        mine = ours[grouping]
        same_groups &= sorted(mine["rows"]) == sorted(found["rows"])
        pairs = [
            (f"{grouping}/{group}/{m}", mine["rows"].get(group, {}).get(m), row[m])
            for group, row in found["rows"].items()
            for m in GROUP_METRICS
        ]
        pairs += [
            (f"{grouping}/{kind}/{m}", mine[kind][m], found[kind][m])
            for kind in ("difference", "ratio")
            for m in GROUP_METRICS
        ]
        for name, a, b in pairs:
            if (a is None) != (b is None):
                one_sided.append(name)
            elif a is not None:
                compared, gap = compared + 1, abs(a - b)
                if where is None or gap > worst:
                    worst, where = gap, name
    return {
        "values_compared": compared,
        "max_abs_difference": worst,
        "largest_at": where,
        "undefined_on_one_side": one_sided,
        "same_groups": same_groups,
    }


def spread(values: list[float]) -> dict[str, Any]:
    """Median, min, max and the samples."""
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "samples": values,
    }


def summarize(contender: str, samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Time, setup, process wall time and peak RSS of one contender (median, max, samples)."""
    found = {
        "label": CONTENDERS[contender],
        "seconds": spread([s["seconds"] for s in samples]),
        "setup_s": spread([s["setup_s"] for s in samples]),
        "process_wall_s": spread([s["process_wall_s"] for s in samples]),
        "peak_rss_mb": spread([s["peak_rss_mb"] for s in samples]),
        "loadavg": [[s["loadavg_before"], s["loadavg_after"]] for s in samples],
    }
    if contender == "shipyard":
        found["parts"] = {k: spread([s["parts"][k] for s in samples]) for k in samples[0]["parts"]}
        found["best_threshold"] = samples[-1]["best_threshold"]
        found["overall_check"] = samples[-1]["overall_check"]
        found["threshold_check"] = samples[-1]["threshold_check"]
        found["same_values_every_sample"] = all(
            s["values"] == samples[0]["values"] and s["best_threshold"] == found["best_threshold"]
            for s in samples
        )
    return found


def judge(contenders: dict[str, Any], checks: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets with the measured value and whether each is met (None: not
    measured)."""
    ours = contenders.get("shipyard", {}).get("seconds", {}).get("median")
    theirs = contenders.get("fairlearn", {}).get("seconds", {}).get("median")
    speedup = theirs / ours if ours and theirs else None
    groups = checks.get("groups_vs_fairlearn")
    exact = None
    if groups is not None:
        exact = (
            groups["max_abs_difference"] <= TARGET_EXACT
            and not groups["undefined_on_one_side"]
            and groups["same_groups"]
        )
    return [
        {
            "target": f"shipyard < {TARGET_SECONDS:g} s (all of its work, 1M predictions)",
            "measured": ours,
            "met": None if ours is None else ours < TARGET_SECONDS,
        },
        {
            "target": f">= {TARGET_SPEEDUP:g} x faster than Fairlearn MetricFrame",
            "measured": speedup,
            "met": None if speedup is None else speedup >= TARGET_SPEEDUP,
        },
        {
            "target": f"group values identical to MetricFrame (max abs difference <= "
            f"{TARGET_EXACT:g})",
            "measured": None if groups is None else groups["max_abs_difference"],
            "met": exact,
        },
    ]


def run_all(args: argparse.Namespace, threshold: float) -> dict[str, list[dict[str, Any]]]:
    """Every sample, round robin over ``--repeats`` repetitions."""
    samples: dict[str, list[dict[str, Any]]] = {c: [] for c in args.contenders}
    for rep in range(args.repeats):
        for contender in args.contenders:
            sample = run_sample(contender, threshold, rep)
            samples[contender].append(sample)
            print(
                f"rep {rep + 1} {contender:<10} {sample['seconds']:8.3f} s "
                f"peak {sample['peak_rss_mb']:6.0f} MB load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
    return samples


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Generate the data, run the samples, check the values, summarize."""
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    clock, load_start = time.perf_counter(), list(os.getloadavg())
    facts = generate()
    git = git_state(args.working_tree)
    if not args.working_tree:
        os.environ[SRC_ENV] = str(snapshot_src(git["commit"], DATA_DIR))
    samples = run_all(args, facts["threshold"])
    contenders = {c: summarize(c, found) for c, found in samples.items()}
    checks: dict[str, Any] = {}
    if "shipyard" in samples and "fairlearn" in samples:
        per_sample = [
            compare_groups(ours["values"], theirs["values"])
            for ours, theirs in zip(samples["shipyard"], samples["fairlearn"], strict=True)
        ]
        checks["groups_vs_fairlearn"] = max(per_sample, key=lambda c: c["max_abs_difference"])
    python = Path(sys.executable)
    versions = {"python": platform.python_version()}
    for dist in ("shipyard", "fairlearn", "numpy", "pandas", "scikit-learn"):
        versions[dist] = installed_version(python, dist)
    return {
        "meta": {
            "started_at": started,
            "total_s": time.perf_counter() - clock,
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "repeats": args.repeats,
            "contenders": args.contenders,
            "loadavg_start": load_start,
            "loadavg_end": list(os.getloadavg()),
            "versions": versions,
            "fairlearn_environment": "the repository's .venv (fairlearn is a dev dependency)",
            "git": git,
        },
        "data": facts,
        "definitions": definitions(),
        "contenders": contenders,
        "checks": checks,
        "targets": judge(contenders, checks),
    }


def definitions() -> dict[str, str]:
    """What each figure means (from the docstrings that measure them)."""

    def doc(thing: Any) -> str:
        return " ".join(inspect.cleandoc(thing.__doc__ or "").split())

    return {
        "shipyard sample": doc(shipyard_sample),
        "fairlearn sample": "Untimed: importing fairlearn, numpy and pandas, reading the data, "
        "building y_true and y_pred (int Series) and the groupings (a DataFrame). Timed: per "
        "grouping, MetricFrame(metrics={selection_rate, true_positive_rate, "
        "false_positive_rate, precision_score(zero_division=nan), accuracy_score}, y_true, "
        "y_pred, sensitive_features=frame[grouping]), then by_group, "
        "difference(method='between_groups') and ratio(method='between_groups').",
        "group check": doc(compare_groups),
        "overall check": doc(check_overall),
        "threshold check": doc(check_best),
        "peak_rss_mb": "VmHWM of the sample's process right after the timed part: interpreter, "
        "imports, data and the timed work.",
    }


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description="Evaluation-metrics benchmark.")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--contenders", nargs="+", choices=list(CONTENDERS), default=list(CONTENDERS)
    )
    parser.add_argument("--working-tree", action="store_true")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    """A worker, or the whole benchmark."""
    use_snapshot()
    if argv[:1] == ["worker"]:
        print(JSON_PREFIX + json.dumps(shipyard_sample(json.loads(argv[1]))))
        return 0
    args = parse_args(argv)
    results = measure(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    for target in results["targets"]:
        print(f"{target['target']}: {target['measured']} met={target['met']}")
    print(f"\nwrote {args.out} in {results['meta']['total_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
