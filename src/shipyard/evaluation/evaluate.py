"""Evaluate a model against the team's objectives: metrics overall, per slice and per
group, the threshold that maximises business value (tuned on validation, applied to
test), value per 1,000 decisions, calibration, and measured prediction latency."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from shipyard.errors import EvaluationError
from shipyard.evaluation import metrics as m
from shipyard.evaluation.objectives import Objectives
from shipyard.evaluation.threshold import OutcomeValues, best_threshold, value_curve, value_per_1000

CURVE_POINTS = 200  # the value, ROC and PR curves are kept at this many points


@dataclass
class Evaluation:
    """What evaluating one model on one dataset found (JSON-able via :meth:`to_dict`).

    ``metrics`` has the shape the gate reads: ``{"overall": {...}, "slices": {name:
    {...}}, "groups": {feature: {"rows": ..., "difference": {...}, "ratio": {...}}},
    "latency_ms": {"p50": ..., "p99": ...}}``.
    """

    model: str
    threshold: float
    metrics: dict[str, Any]
    validation: dict[str, Any]
    curves: dict[str, Any] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Everything, as plain JSON-able values."""
        return {
            "model": self.model,
            "threshold": self.threshold,
            "rows": self.rows,
            "validation": self.validation,
            "metrics": self.metrics,
            "curves": self.curves,
        }


def evaluate(
    model: Any,
    data: pl.DataFrame,
    objectives: Objectives,
    *,
    features: Sequence[str],
    label: str,
    validation: pl.DataFrame | None = None,
    name: str = "model",
    latency_rows: int = 200,
) -> Evaluation:
    """Score ``data`` (the test split) with ``model`` and measure it against ``objectives``.

    The decision threshold that maximises business value is found on ``validation``
    (by default the first half of ``data`` in its order, the rest being the test
    split) and then applied to the test split: the threshold is never tuned on the
    rows it is judged on.

    Args:
        model: anything with ``predict_proba(frame) -> (n, 2)`` (scikit-learn, LightGBM).
        data: evaluation rows with the features, the label and the columns the
            objectives use (per-row values, slices, sensitive features).
        objectives: the team's objectives.
        features: the model's input columns, in order.
        label: the 0/1 label column.
        validation: rows to tune the threshold on; default: split ``data`` in two.
        name: how the model is named in the result.
        latency_rows: how many single-row predictions to time.
    """
    if objectives.task != "binary":
        raise EvaluationError(
            f"The objectives declare task {objectives.task!r}; shipyard evaluates binary "
            'classifiers only so far. Set task = "binary" for a model with predict_proba, or '
            "evaluate this model with your own metrics."
        )
    if validation is None:
        half = data.height // 2
        validation, data = data.head(half), data.slice(half)
    tune_scores = _scores(model, validation, features)
    tune_truth = _labels(validation, label)
    tune_values = _values(objectives, validation)
    threshold, tuned = best_threshold(tune_truth, tune_scores, tune_values)
    scores = _scores(model, data, features)
    truth = _labels(data, label)
    values = _values(objectives, data)
    overall = _overall(truth, scores, threshold, values)
    metrics = {
        "overall": overall,
        "slices": _slices(objectives, data, truth, scores, threshold, values),
        "groups": _groups(objectives, data, truth, scores >= threshold),
        "latency_ms": _latency(model, data, features, latency_rows),
    }
    metrics["overall"]["latency_ms_p50"] = metrics["latency_ms"]["p50"]
    metrics["overall"]["latency_ms_p99"] = metrics["latency_ms"]["p99"]
    return Evaluation(
        model=name,
        threshold=float(threshold),
        metrics=metrics,
        validation={
            "threshold": float(threshold),
            "value_per_1000": float(tuned) / max(len(tune_truth), 1) * 1000,
            "rows": validation.height,
        },
        curves=_curves(truth, scores, values),
        rows={"validation": validation.height, "test": data.height},
    )


def _scores(model: Any, frame: pl.DataFrame, features: Sequence[str]) -> np.ndarray:
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise EvaluationError(
            f"The evaluation data lacks the model's input columns {missing}; it has "
            f"{frame.columns}. Build it with the same features as the training set."
        )
    scores = np.asarray(model.predict_proba(frame.select(features))[:, 1], dtype=np.float64)
    return scores


def _labels(frame: pl.DataFrame, label: str) -> np.ndarray:
    if label not in frame.columns:
        raise EvaluationError(
            f"The evaluation data has no label column {label!r}; columns: {frame.columns}."
        )
    return frame[label].to_numpy()


def _values(objectives: Objectives, frame: pl.DataFrame) -> OutcomeValues:
    found = objectives.values_for(frame)
    return OutcomeValues(
        tp=found["true_positive"],
        fp=found["false_positive"],
        fn=found["false_negative"],
        tn=found["true_negative"],
    )


def _overall(
    truth: np.ndarray, scores: np.ndarray, threshold: float, values: OutcomeValues
) -> dict[str, Any]:
    result = m.overall(truth, scores, threshold)
    result["value_per_1000"] = value_per_1000(truth, scores, threshold, values)
    result["value_per_1000_at_0_5"] = value_per_1000(truth, scores, 0.5, values)
    result["threshold"] = float(threshold)
    result["calibration"] = m.calibration(truth, scores)
    result["expected_calibration_error"] = m.expected_calibration_error(truth, scores)
    return result


def _slices(
    objectives: Objectives,
    data: pl.DataFrame,
    truth: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    values: OutcomeValues,
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, mask in objectives.slice_masks(data).items():
        chosen = np.asarray(mask, dtype=bool)
        if not chosen.any():
            found[name] = {"count": 0, "note": f"slice {name} has no rows"}
            continue
        part = OutcomeValues(
            *(_take(v, chosen) for v in (values.tp, values.fp, values.fn, values.tn))
        )
        try:
            metrics = m.overall(truth[chosen], scores[chosen], threshold)
        except EvaluationError as exc:  # e.g. a slice with one class only
            found[name] = {"count": int(chosen.sum()), "note": str(exc)}
            continue
        metrics["value_per_1000"] = value_per_1000(truth[chosen], scores[chosen], threshold, part)
        found[name] = metrics
    return found


def _take(value: Any, mask: np.ndarray) -> Any:
    return value[mask] if isinstance(value, np.ndarray) else value


def _groups(
    objectives: Objectives, data: pl.DataFrame, truth: np.ndarray, predicted: np.ndarray
) -> dict[str, Any]:
    fairness = objectives.fairness
    if fairness is None or not fairness.sensitive:
        return {}
    missing = [c for c in fairness.sensitive if c not in data.columns]
    if missing:
        raise EvaluationError(
            f"The sensitive feature(s) {missing} are not in the evaluation data (columns: "
            f"{data.columns}). Add them to the evaluation rows or fix [objectives.fairness]."
        )
    tables = m.by_group(truth, predicted, {c: data[c].to_numpy() for c in fairness.sensitive})
    metrics = ("selection_rate", "tpr", "fpr", "precision", "accuracy")
    return {
        feature: {
            "rows": table.to_dict(),
            "difference": {k: table.difference(k) for k in metrics},
            "ratio": {k: table.ratio(k) for k in metrics},
        }
        for feature, table in tables.items()
    }


def _latency(model: Any, data: pl.DataFrame, features: Sequence[str], rows: int) -> dict[str, Any]:
    """Single-row latency on one thread (as a server scores a request: one row gains nothing
    from a thread pool, and pools spinning on a busy machine cost seconds), and batch speed."""
    frame = data.select(features)
    count = min(rows, frame.height)
    single = []
    with _one_thread():
        model.predict_proba(frame.slice(0, 1))  # warm-up: first-call setup is not latency
        for index in range(count):
            row = frame.slice(index, 1)
            started = time.perf_counter()
            model.predict_proba(row)
            single.append((time.perf_counter() - started) * 1000)
    started = time.perf_counter()
    model.predict_proba(frame)
    batch = time.perf_counter() - started
    ordered = sorted(single)
    return {
        "p50": statistics.median(ordered) if ordered else None,
        "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else None,
        "single_rows_timed": count,
        "batch_rows_per_s": frame.height / batch if batch > 0 else None,
    }


def _one_thread() -> Any:
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
    except ImportError:  # no native thread pools to limit
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(limits=1)


def _curves(truth: np.ndarray, scores: np.ndarray, values: OutcomeValues) -> dict[str, Any]:
    from sklearn.metrics import precision_recall_curve, roc_curve

    thresholds, totals = value_curve(truth, scores, values)
    per_1000 = totals / max(len(truth), 1) * 1000
    fpr, tpr, _ = roc_curve(truth, scores)
    precision, recall, _ = precision_recall_curve(truth, scores)
    return {
        "value": _thin(thresholds, per_1000),
        "roc": _thin(fpr, tpr),
        "pr": _thin(recall, precision),
    }


def _thin(x: np.ndarray, y: np.ndarray) -> list[list[float]]:
    """At most CURVE_POINTS points, evenly spread along the curve, finite only."""
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) > CURVE_POINTS:
        index = np.linspace(0, len(x) - 1, CURVE_POINTS).round().astype(int)
        x, y = x[index], y[index]
    return [[float(a), float(b)] for a, b in zip(x, y, strict=True)]
