"""Fairlearn side of the evaluation-metrics benchmark: one ``MetricFrame`` per grouping.

Run by ``benchmarks/evaluation_metrics.py`` in a fresh process of the repository's ``.venv``
(Fairlearn is a dev dependency of shipyard, so it shares numpy, pandas and scikit-learn with
the shipyard samples)::

    python fairlearn_metrics.py --data DATA.npz --threshold T --out RESULT.json

Untimed: the imports, reading the data and building the pandas objects a Fairlearn user has
(``y_true``, ``y_pred`` as int Series, the groupings as a DataFrame). Timed: for each grouping,
``MetricFrame(metrics=..., y_true, y_pred, sensitive_features=frame[grouping])`` with
selection rate, true and false positive rate, precision (``zero_division=nan``) and accuracy,
then its ``by_group``, ``difference()`` and ``ratio()`` (``method="between_groups"``).

Prints one ``BENCH_JSON {...}`` line: ``seconds``, ``setup_s``, ``peak_rss_mb`` (``VmHWM``
right after the timed part); the values go to ``--out``, NaN written as null.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

JSON_PREFIX = "BENCH_JSON "
GROUPINGS = ("slice", "country", "age")


def peak_rss_mb() -> float:
    """``VmHWM`` of this process in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def plain(value: Any) -> float | None:
    """A metric value as a float, NaN as None."""
    number = float(value)
    return None if math.isnan(number) else number


def metric_frames(y_true: Any, y_pred: Any, frame: Any) -> dict[str, Any]:
    """The timed part: one MetricFrame per grouping, with its by_group, difference, ratio."""
    import functools

    import numpy as np
    from fairlearn.metrics import (
        MetricFrame,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )
    from sklearn.metrics import accuracy_score, precision_score

    metrics = {
        "selection_rate": selection_rate,
        "tpr": true_positive_rate,
        "fpr": false_positive_rate,
        "precision": functools.partial(precision_score, zero_division=np.nan),
        "accuracy": accuracy_score,
    }
    found = {}
    for grouping in GROUPINGS:
        mf = MetricFrame(
            metrics=metrics, y_true=y_true, y_pred=y_pred, sensitive_features=frame[grouping]
        )
        found[grouping] = (
            mf.by_group,
            mf.difference(method="between_groups"),
            mf.ratio(method="between_groups"),
        )
    return found


def as_json(found: dict[str, Any]) -> dict[str, Any]:
    """The MetricFrame results as plain dicts (group value as str)."""
    return {
        grouping: {
            "rows": {
                str(group): {name: plain(v) for name, v in row.items()}
                for group, row in by_group.to_dict(orient="index").items()
            },
            "difference": {name: plain(v) for name, v in difference.items()},
            "ratio": {name: plain(v) for name, v in ratio.items()},
        }
        for grouping, (by_group, difference, ratio) in found.items()
    }


def main() -> None:
    """Load the data (untimed), time the MetricFrames, write the values."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--threshold", type=float, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    start = time.perf_counter()
    import fairlearn.metrics  # noqa: F401  (imported before the timing)
    import numpy as np
    import pandas as pd

    data = np.load(args.data)
    frame = pd.DataFrame({name: data[name] for name in GROUPINGS})
    y_true = pd.Series(data["label"].astype(int))
    y_pred = pd.Series((data["score"] >= args.threshold).astype(int))
    setup_s = time.perf_counter() - start
    start = time.perf_counter()
    found = metric_frames(y_true, y_pred, frame)
    seconds = time.perf_counter() - start
    peak = peak_rss_mb()
    args.out.write_text(json.dumps(as_json(found), allow_nan=False))
    result = {"seconds": seconds, "setup_s": setup_s, "peak_rss_mb": peak}
    print(JSON_PREFIX + json.dumps(result))


if __name__ == "__main__":
    main()
