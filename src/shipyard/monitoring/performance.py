"""Model performance in production: realised once labels arrive, estimated before they do.

:func:`realised` measures a monitoring window's labelled rows with the evaluation layer's own
code (``evaluation.metrics.overall``, ``by_group``, ``threshold.value_per_1000``), so the
numbers mean what they meant at promotion: metrics, business value from the objectives'
per-row decision values, and fairness gaps with their limits.

:func:`estimated` is NannyML's confidence-based performance estimation (CBPE). It assumes
the scores are **calibrated probabilities**: a row scored ``p`` is positive with probability
``p``. Then each flagged row is a true positive with probability ``p`` and a false positive
with ``1 - p``; each row let through is a false negative with ``p`` and a true negative with
``1 - p``. Summing these gives the expected confusion matrix of the window, and from it the
estimated precision, recall, value per 1,000 decisions... before a single label arrives.
Given the scores, the estimated counts and value are unbiased; the realised ones scatter
around them with the standard errors ``estimated`` reports (a sum of Bernoulli variances:
about ``0.5 / sqrt(flagged rows)`` at most for precision). When the scores are not
calibrated (the model is over- or under-confident, or the relation between features and
label has changed: concept drift) the estimate is wrong, and only labels reveal it; pass the
expected calibration error measured at promotion to get a ``calibration_warning``.

:func:`against_promotion` compares either result with the evaluation recorded at promotion.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from shipyard.evaluation import metrics as m
from shipyard.evaluation.objectives import METRICS, Fairness, FairnessLimit, Objectives
from shipyard.evaluation.threshold import value_per_1000
from shipyard.monitoring._cbpe import CALIBRATION_ASSUMPTION, MAX_CALIBRATION_ERROR, estimated
from shipyard.monitoring._performance_inputs import (
    _NO_ROWS,
    _flags,
    _labels,
    _outcome_values,
    _ratio,
    _require,
    _scores,
    _threshold,
)

__all__ = [
    "CALIBRATION_ASSUMPTION",
    "MAX_CALIBRATION_ERROR",
    "against_promotion",
    "estimated",
    "realised",
]

_COMPARED = (
    *(name for name in METRICS if not name.startswith("latency_")),
    "expected_calibration_error",
)


# --------------------------------------------------------------------------- realised


def realised(
    frame: pl.DataFrame,
    *,
    threshold: float,
    objectives: Objectives | None = None,
    label: str = "label",
    score: str = "score",
    decision: str | None = None,
) -> dict[str, Any]:
    """Performance, business value and fairness on the labelled rows of a window.

    A row is flagged when its score is ``>= threshold``, as at evaluation and in serving,
    or, with ``decision``, by the decision actually taken (the logged ``decision``: right
    when the window was served by versions with other thresholds).
    Rows whose label is null (not arrived yet) are counted but not measured, so the value
    is per 1,000 *labelled* decisions.

    Args:
        frame: The window: ``score``, ``label`` (0/1, null while unknown) and the columns
            the objectives read (``amount`` for per-row values, sensitive features).
        threshold: The model's decision threshold.
        objectives: Decision values give ``value_per_1000`` and ``value``; fairness gives
            per-group metrics and the limits' verdicts. None: metrics only.
        label: The label column.
        score: The score column.

    Returns:
        ``estimated`` (False), ``rows``, ``labelled``, ``label_coverage`` (None for no rows),
        ``positives``, ``threshold``; ``metrics``: ``evaluation.metrics.overall``'s keys
        (``roc_auc`` and ``average_precision`` None when one class only; ``note`` says why),
        ``expected_calibration_error`` (scores in [0, 1] and both classes: whether the
        estimates of :func:`estimated` hold on today's traffic), and ``value_per_1000`` and
        ``value`` (total) with decision values; ``fairness``:
        per sensitive feature ``rows``, ``difference``, ``ratio`` (as in an Evaluation),
        ``limits`` (``metric``, ``max_difference``, ``min_ratio``, ``difference``,
        ``ratio``, ``passed``) and ``passed`` (None when unknown), or ``note`` when the
        window lacks the feature. ``metrics`` and ``fairness`` are empty and ``note`` says
        why when no row is labelled.

    Raises:
        MonitoringError: A column is missing, labels other than 0/1, or scores that are
            null or not finite on labelled rows.
    """
    limit = _threshold(threshold)
    _require(frame, [score, label], "realised performance")
    known = frame.filter(pl.col(label).is_not_null())
    truth = _labels(known[label])
    positives = int(truth.sum())
    result: dict[str, Any] = {
        "estimated": False,
        "rows": frame.height,
        "labelled": known.height,
        "label_coverage": known.height / frame.height if frame.height else None,
        "positives": positives,
        "threshold": limit,
        "metrics": {},
        "fairness": {},
    }
    if known.height == 0:
        result["note"] = _no_labels(frame.height, label)
        return result
    scores = _scores(known[score], score)
    flagged = _flags(known, decision, scores, limit)
    metrics = _metrics(truth, scores, limit)
    if decision is not None:  # what was decided, whatever the threshold was then
        metrics.update(_decided(truth, flagged))
    if objectives is not None and objectives.values is not None:
        values = _outcome_values(objectives, known)
        metrics["value_per_1000"] = value_per_1000(truth, flagged.astype(float), 0.5, values)
        metrics["value"] = metrics["value_per_1000"] * known.height / 1000
    result["metrics"] = metrics
    if objectives is not None and objectives.fairness is not None:
        result["fairness"] = _fairness(objectives.fairness, known, truth, flagged)
    return result


def _decided(truth: np.ndarray, flagged: np.ndarray) -> dict[str, Any]:
    """The metrics of the confusion matrix, from the decisions taken."""
    tp = int(np.count_nonzero(truth & flagged))
    fp = int(np.count_nonzero(flagged)) - tp
    fn = int(np.count_nonzero(truth)) - tp
    tn = truth.size - tp - fp - fn
    return {
        "accuracy": (tp + tn) / truth.size,
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "selection_rate": (tp + fp) / truth.size,
        "tpr": _ratio(tp, tp + fn),
        "fpr": _ratio(fp, fp + tn),
        "tnr": _ratio(tn, fp + tn),
        "confusion": {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
    }


def _no_labels(rows: int, label: str) -> str:
    if rows == 0:
        return _NO_ROWS
    return (
        f"none of the window's {rows:,} rows has a label yet ({label!r} is null); ingest "
        "labels (shipyard labels ingest FILE) or read the estimated performance meanwhile"
    )


def _metrics(truth: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, Any]:
    """``evaluation.metrics.overall``; with one class only, the metrics still defined."""
    if 0 < truth.sum() < truth.size:
        found = m.overall(truth, scores, threshold)
        if scores.min() >= 0 and scores.max() <= 1:  # probabilities: is CBPE still right?
            found["expected_calibration_error"] = m.expected_calibration_error(truth, scores)
        return found
    clipped = np.clip(scores, m.LOG_LOSS_EPS, 1 - m.LOG_LOSS_EPS)
    present = "1 (positives)" if truth.any() else "0 (negatives)"
    return {
        "roc_auc": None,
        "average_precision": None,
        "log_loss": float(-np.mean(np.log(np.where(truth, clipped, 1 - clipped)))),
        "brier": float(np.mean((scores - truth) ** 2)),
        **_decided(truth, scores >= threshold),
        "count": truth.size,
        "positives": int(np.count_nonzero(truth)),
        "note": f"only class {present} among the labelled rows: ranking metrics are undefined",
    }


def _fairness(
    fairness: Fairness, frame: pl.DataFrame, truth: np.ndarray, flagged: np.ndarray
) -> dict[str, Any]:
    """Per sensitive feature: group metrics, gaps, and whether each limit holds."""
    present = [c for c in fairness.sensitive if c in frame.columns]
    tables = m.by_group(truth, flagged, {c: frame[c].to_numpy() for c in present})
    found: dict[str, Any] = {}
    for feature in fairness.sensitive:
        if feature not in tables:
            found[feature] = {
                "note": f"the window has no column {feature!r}, so its groups cannot be "
                f"compared; log it with the predictions (columns: {', '.join(frame.columns)})",
                "passed": None,
            }
            continue
        found[feature] = _feature_fairness(tables[feature], fairness.limits)
    return found


def _feature_fairness(table: m.GroupTable, limits: Sequence[FairnessLimit]) -> dict[str, Any]:
    checks = [_limit_check(table, limit) for limit in limits]
    return {
        "rows": table.to_dict(),
        "difference": {k: table.difference(k) for k in m.GROUP_METRICS},
        "ratio": {k: table.ratio(k) for k in m.GROUP_METRICS},
        "limits": checks,
        "passed": _all([check["passed"] for check in checks]),
    }


def _limit_check(table: m.GroupTable, limit: FairnessLimit) -> dict[str, Any]:
    """One limit as the gate reads it: difference <= max_difference, ratio >= min_ratio."""
    difference, ratio = table.difference(limit.metric), table.ratio(limit.metric)
    verdicts = []
    if limit.max_difference is not None:
        verdicts.append(_holds(limit.max_difference, difference))
    if limit.min_ratio is not None:
        verdicts.append(_holds(ratio, limit.min_ratio))
    return {
        "metric": limit.metric,
        "max_difference": limit.max_difference,
        "min_ratio": limit.min_ratio,
        "difference": difference,
        "ratio": ratio,
        "passed": _all(verdicts),
    }


def _holds(high: float | None, low: float | None) -> bool | None:
    """``low <= high`` within float rounding; None when either is unknown."""
    if high is None or low is None:
        return None
    return low <= high or math.isclose(low, high, rel_tol=1e-9, abs_tol=1e-12)


def _all(verdicts: Sequence[bool | None]) -> bool | None:
    """False if any failed, else None if any is unknown, else True."""
    if False in verdicts:
        return False
    return None if None in verdicts else True


# --------------------------------------------------------------------------- comparison


def against_promotion(
    current: Mapping[str, Any], promotion: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """Each metric of a window next to its value in the evaluation at promotion.

    Args:
        current: What :func:`realised` or :func:`estimated` returned.
        promotion: The evaluation recorded at promotion (``Registry.evaluation(version)``,
            i.e. ``Evaluation.to_dict()``), or its ``metrics``.

    Returns:
        Metric name → ``now``, ``at_promotion``, ``change`` (now - at promotion),
        ``relative_change`` (change / |at promotion|, None when that is 0) and
        ``estimated``, for the metrics of ``evaluation.objectives.METRICS`` that both
        have as numbers (latency excluded), then each fairness gap both have, named
        ``fairness.<feature>.<metric>.difference`` (and ``.ratio``).
    """
    now, before = _metric_table(current), _metric_table(promotion)
    names = [name for name in _COMPARED if name in now and name in before]
    pairs = {name: (now[name], before[name]) for name in names}
    pairs.update(_fairness_pairs(current.get("fairness"), _section(promotion, "groups")))
    flag = bool(current.get("estimated", False))
    return {
        name: {
            "now": value,
            "at_promotion": base,
            "change": value - base,
            "relative_change": (value - base) / abs(base) if base else None,
            "estimated": flag,
        }
        for name, (value, base) in pairs.items()
    }


def _section(record: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """``record["metrics"][key]`` of an evaluation dict, or ``record[key]`` of its metrics."""
    metrics = record.get("metrics", record)
    found = metrics.get(key) if isinstance(metrics, Mapping) else None
    return found if isinstance(found, Mapping) else {}


def _metric_table(record: Mapping[str, Any]) -> dict[str, float]:
    table = _section(record, "overall") or record.get("metrics", record)
    if not isinstance(table, Mapping):
        return {}
    return {k: float(v) for k, v in table.items() if _number(v)}


def _fairness_pairs(now: Any, before: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    pairs: dict[str, tuple[float, float]] = {}
    if not isinstance(now, Mapping):
        return pairs
    for feature, found in now.items():
        for measure in ("difference", "ratio"):
            mine = (found or {}).get(measure) or {}
            theirs = (before.get(feature) or {}).get(measure) or {}
            for metric, value in mine.items():
                if _number(value) and _number(theirs.get(metric)):
                    key = f"fairness.{feature}.{metric}.{measure}"
                    pairs[key] = (float(value), float(theirs[metric]))
    return pairs


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
