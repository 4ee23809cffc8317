"""NannyML's confidence-based performance estimation (CBPE): performance before labels.

Re-exported as :func:`shipyard.monitoring.performance.estimated`; the method and its
assumption are described in that module's docstring.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from shipyard.errors import MonitoringError
from shipyard.evaluation.objectives import Objectives
from shipyard.monitoring._performance_inputs import (
    _NO_ROWS,
    _flags,
    _outcome_values,
    _probabilities,
    _ratio,
    _require,
    _threshold,
)

__all__ = ["CALIBRATION_ASSUMPTION", "MAX_CALIBRATION_ERROR", "estimated"]

MAX_CALIBRATION_ERROR = 0.02
"""Above this expected calibration error (10 bins, as at evaluation) ``estimated`` warns."""
CALIBRATION_ASSUMPTION = (
    "estimated from the scores alone (CBPE), assuming they are calibrated probabilities: "
    "right while the model stays calibrated on today's traffic, wrong under concept drift"
)


def estimated(
    frame: pl.DataFrame,
    *,
    threshold: float,
    objectives: Objectives | None = None,
    score: str = "score",
    calibration_error: float | None = None,
    max_calibration_error: float = MAX_CALIBRATION_ERROR,
    decision: str | None = None,
) -> dict[str, Any]:
    """Performance and business value expected from the scores alone (CBPE), no labels.

    Assumes the scores are calibrated probabilities (see the docstring of
    :mod:`shipyard.monitoring.performance`); the result is marked ``estimated`` and carries
    that assumption.

    Args:
        frame: The window: ``score`` in [0, 1] and the columns the decision values read.
        threshold: The model's decision threshold (flag when ``score >= threshold``).
        objectives: Decision values give ``value_per_1000`` and ``value``.
        score: The score column.
        calibration_error: The expected calibration error of the model on its reference
            data (``metrics["overall"]["expected_calibration_error"]`` of the evaluation at
            promotion); above ``max_calibration_error`` a ``calibration_warning`` is set.
        max_calibration_error: The calibration error above which the estimate is suspect.
        decision: A column of the decisions actually taken (0/1), e.g. the logged
            ``decision``: rows are flagged by it instead of by ``threshold``, which matters
            when the window was served by versions with other thresholds.

    Returns:
        ``estimated`` (True), ``assumption``, ``rows``, ``threshold``, ``metrics``
        (``precision``, ``recall``, ``tpr``, ``fpr``, ``tnr``, ``accuracy``, ``f1``,
        ``selection_rate``, ``roc_auc`` (NannyML's estimate), ``positives`` (expected count,
        a float), ``count``, ``confusion`` (expected ``tp``, ``fp``, ``fn``, ``tn``), and
        ``value_per_1000``, ``value`` with decision values; None where a ratio is 0/0),
        ``standard_errors`` (how far the realised ``precision``, ``recall`` and
        ``value_per_1000`` are expected to scatter around the estimate, given the scores),
        ``calibration_warning`` (None or the reason). An empty window gives empty
        ``metrics`` and a ``note``.

    Raises:
        MonitoringError: No score column, or scores missing, not finite or outside [0, 1].
    """
    limit = _threshold(threshold)
    _require(frame, [score], "estimated performance")
    result: dict[str, Any] = {
        "estimated": True,
        "assumption": CALIBRATION_ASSUMPTION,
        "rows": frame.height,
        "threshold": limit,
        "metrics": {},
        "standard_errors": {},
        "calibration_warning": _calibration_warning(calibration_error, max_calibration_error),
    }
    if frame.height == 0:
        result["note"] = _NO_ROWS
        return result
    scores = _probabilities(frame[score], score)
    flagged = _flags(frame, decision, scores, limit)
    result["metrics"] = _expected_metrics(scores, flagged)
    result["standard_errors"] = _standard_errors(scores, flagged)
    if objectives is not None and objectives.values is not None:
        values = _outcome_values(objectives, frame).broadcast(frame.height)
        if_positive = np.where(flagged, values.tp, values.fn)
        if_negative = np.where(flagged, values.fp, values.tn)
        total = float(np.sum(scores * if_positive + (1 - scores) * if_negative))
        result["metrics"]["value_per_1000"] = total / frame.height * 1000
        result["metrics"]["value"] = total
        spread = math.sqrt(float(np.sum(scores * (1 - scores) * (if_positive - if_negative) ** 2)))
        result["standard_errors"]["value_per_1000"] = spread / frame.height * 1000
    return result


def _expected_metrics(scores: np.ndarray, flagged: np.ndarray) -> dict[str, Any]:
    tp = float(scores[flagged].sum())
    fp = float(np.count_nonzero(flagged)) - tp
    fn = float(scores[~flagged].sum())
    tn = float(np.count_nonzero(~flagged)) - fn
    n = scores.size
    return {
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "tpr": _ratio(tp, tp + fn),
        "fpr": _ratio(fp, fp + tn),
        "tnr": _ratio(tn, fp + tn),
        "accuracy": (tp + tn) / n,
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "selection_rate": (tp + fp) / n,
        "roc_auc": _expected_roc_auc(scores),
        "positives": tp + fn,
        "count": n,
        "confusion": {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
    }


def _expected_roc_auc(scores: np.ndarray) -> float | None:
    """NannyML's CBPE ROC AUC: the ROC curve of the expected TP and FP counts at every
    distinct score, each row counting ``p`` as a positive and ``1 - p`` as a negative."""
    ranked = np.sort(scores)[::-1]
    ends = np.append(np.flatnonzero(np.diff(ranked)), ranked.size - 1)  # last row per score
    tp = np.cumsum(ranked)[ends]
    fp = np.cumsum(1 - ranked)[ends]
    if tp[-1] <= 0 or fp[-1] <= 0:
        return None
    tpr = np.append(0.0, tp / tp[-1])
    fpr = np.append(0.0, fp / fp[-1])
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1])) / 2)


def _standard_errors(scores: np.ndarray, flagged: np.ndarray) -> dict[str, float | None]:
    """Standard deviation of the realised metric given the scores (labels ~ Bernoulli(p)):
    exact for precision, the delta method for recall (a ratio of two independent sums)."""
    variance = scores * (1 - scores)
    n_flagged = int(np.count_nonzero(flagged))
    tp, fn = float(scores[flagged].sum()), float(scores[~flagged].sum())
    var_tp, var_fn = float(variance[flagged].sum()), float(variance[~flagged].sum())
    recall = None
    if tp + fn > 0:
        recall = math.sqrt(fn**2 * var_tp + tp**2 * var_fn) / (tp + fn) ** 2
    return {
        "precision": math.sqrt(var_tp) / n_flagged if n_flagged else None,
        "recall": recall,
    }


def _calibration_warning(error: float | None, ceiling: float) -> str | None:
    if error is None:
        return None
    if not math.isfinite(error) or error < 0:
        raise MonitoringError(
            f"calibration_error must be a finite number >= 0 (an expected calibration "
            f"error), got {error!r}; pass metrics['overall']['expected_calibration_error'] "
            "of the evaluation at promotion, or None."
        )
    if error <= ceiling:
        return None
    return (
        f"the model's expected calibration error at promotion was {error:.3g} (above "
        f"{ceiling:g}): its scores are not reliable probabilities, so these estimates may be "
        "off; calibrate the model (e.g. isotonic on validation data) or wait for labels"
    )
