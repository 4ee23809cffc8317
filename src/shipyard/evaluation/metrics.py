"""Metrics of a binary classifier: overall, by group, and calibration.

Everything is NumPy in a few vectorised passes: ``overall`` sorts the scores once for both
ROC AUC and average precision, and ``by_group`` counts the four confusion cells of every group
of a grouping with one ``np.bincount``. The values equal scikit-learn's metrics and Fairlearn's
``MetricFrame`` (the tests compare them). A ratio that is undefined (0/0) is ``None``, never
NaN, so every result is valid JSON.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from shipyard.errors import EvaluationError
from shipyard.evaluation._groups import (
    GROUP_METRICS,
    NULL_GROUP,
    GroupRow,
    GroupTable,
    by_group,
)
from shipyard.evaluation._inputs import _ratio, check_inputs

__all__ = [
    "GROUP_METRICS",
    "NULL_GROUP",
    "GroupRow",
    "GroupTable",
    "by_group",
    "calibration",
    "check_inputs",
    "expected_calibration_error",
    "overall",
]

LOG_LOSS_EPS = 1e-15


def overall(y_true: npt.ArrayLike, scores: npt.ArrayLike, threshold: float) -> dict[str, Any]:
    """Ranking, probability and decision metrics of one set of predictions.

    Args:
        y_true: One 0/1 label per row, both classes present.
        scores: One finite score per row; ``log_loss`` clips them to [1e-15, 1 - 1e-15].
        threshold: A row is predicted positive when its score is ``>= threshold``.

    Returns:
        ``roc_auc``, ``average_precision``, ``log_loss``, ``brier``, ``accuracy``,
        ``precision`` (None when nobody is flagged), ``recall``, ``f1``, ``selection_rate``,
        ``tpr`` (= ``recall``), ``fpr``, ``tnr`` (floats); ``count``, ``positives`` (ints);
        ``confusion``: ``{"tp", "fp", "fn", "tn"}`` (ints).
    """
    labels, values = check_inputs(y_true, scores)
    cells = _confusion(labels, values >= threshold)
    tp, fp, fn, tn = cells["tp"], cells["fp"], cells["fn"], cells["tn"]
    roc_auc, average_precision = _ranking(labels, values)
    clipped = np.clip(values, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
    return {
        "roc_auc": roc_auc,
        "average_precision": average_precision,
        "log_loss": float(-np.mean(np.log(np.where(labels, clipped, 1 - clipped)))),
        "brier": float(np.mean((values - labels) ** 2)),
        "accuracy": (tp + tn) / labels.size,
        "precision": _ratio(tp, tp + fp),
        "recall": tp / (tp + fn),
        "f1": 2 * tp / (2 * tp + fp + fn),
        "selection_rate": (tp + fp) / labels.size,
        "tpr": tp / (tp + fn),
        "fpr": fp / (fp + tn),
        "tnr": tn / (fp + tn),
        "count": labels.size,
        "positives": tp + fn,
        "confusion": cells,
    }


def calibration(
    y_true: npt.ArrayLike, scores: npt.ArrayLike, bins: int = 10
) -> list[dict[str, float | None]]:
    """The reliability diagram of probability scores, over ``bins`` equal bins of [0, 1].

    A bin holds the scores above ``lower`` up to and including ``upper`` (the first bin also
    holds 0.0), as in scikit-learn's ``calibration_curve(strategy="uniform")``.

    Returns:
        One dict per bin: ``lower``, ``upper``, ``count``, ``mean_score``,
        ``fraction_positive`` (both None for an empty bin).
    """
    edges, counts, score_sums, positives = _binned(y_true, scores, bins)
    return [
        {
            "lower": float(edges[i]),
            "upper": float(edges[i + 1]),
            "count": int(counts[i]),
            "mean_score": _ratio(float(score_sums[i]), int(counts[i])),
            "fraction_positive": _ratio(float(positives[i]), int(counts[i])),
        }
        for i in range(bins)
    ]


def expected_calibration_error(
    y_true: npt.ArrayLike, scores: npt.ArrayLike, bins: int = 10
) -> float:
    """Mean |fraction positive - mean score| over the ``calibration`` bins, weighted by rows."""
    _, counts, score_sums, positives = _binned(y_true, scores, bins)
    # count x |positives / count - score sum / count| = |positives - score sum|
    return float(np.abs(positives - score_sums).sum() / counts.sum())


# --------------------------------------------------------------------------- private


def _binned(
    y_true: npt.ArrayLike, scores: npt.ArrayLike, bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bin edges, and per bin the rows, the sum of their scores and their positives."""
    labels, values = check_inputs(y_true, scores)
    if bins < 1:
        raise EvaluationError(f"bins must be at least 1; got {bins}.")
    low, high = float(values.min()), float(values.max())
    if low < 0 or high > 1:
        raise EvaluationError(
            f"calibration bins cover [0, 1], but the scores range from {low} to {high}; pass "
            "probabilities, e.g. predict_proba(X)[:, 1]."
        )
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.searchsorted(edges[1:-1], values, side="left")
    counts = np.bincount(index, minlength=bins)
    score_sums = np.bincount(index, weights=values, minlength=bins)
    positives = np.bincount(index, weights=labels.astype(np.float64), minlength=bins)
    return edges, counts, score_sums, positives


def _confusion(labels: np.ndarray, flagged: np.ndarray) -> dict[str, int]:
    tp = int(np.count_nonzero(labels & flagged))
    fp = int(np.count_nonzero(flagged)) - tp
    fn = int(np.count_nonzero(labels)) - tp
    return {"tp": tp, "fp": fp, "fn": fn, "tn": labels.size - tp - fp - fn}


def _ranking(labels: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    """ROC AUC and average precision from one sort, over the distinct scores as thresholds
    (scikit-learn's ``_binary_clf_curve``)."""
    order = np.argsort(values)[::-1]
    ranked = values[order]
    ends = np.append(np.flatnonzero(np.diff(ranked)), ranked.size - 1)  # last row per score
    tp = np.cumsum(labels[order])[ends]
    fp = ends + 1 - tp
    tpr = np.append(0.0, tp / tp[-1])
    fpr = np.append(0.0, fp / fp[-1])
    roc_auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1])) / 2)
    average_precision = float(np.sum(np.diff(tpr) * (tp / (ends + 1))))
    return roc_auc, average_precision
