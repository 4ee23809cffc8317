"""Checks and conversions of a monitoring window's inputs, shared by realised and estimated
performance: the threshold, the columns, labels, scores and decision values."""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from shipyard.errors import EvaluationError, MonitoringError
from shipyard.evaluation.objectives import Objectives
from shipyard.evaluation.threshold import OutcomeValues

_NO_ROWS = "the window has no rows (no traffic), so there is nothing to measure"


def _threshold(threshold: float) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise MonitoringError(
            f"threshold must be a number (the model's decision threshold), got {threshold!r}."
        )
    if math.isnan(threshold):
        raise MonitoringError("threshold is NaN; pass the model's decision threshold.")
    return float(threshold)


def _require(frame: pl.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        hint = " Attach labels first (monitoring.labels.attach)." if what.startswith("real") else ""
        raise MonitoringError(
            f"{what} needs the column(s) {missing}, which the window lacks; it has "
            f"{', '.join(frame.columns) or 'no columns'}.{hint}"
        )


def _labels(series: pl.Series) -> np.ndarray:
    """Non-null labels as a bool array; MonitoringError unless they are all 0 or 1."""
    if series.is_empty():  # e.g. an all-null column of dtype Null: nothing to check
        return np.zeros(0, dtype=bool)
    if series.dtype == pl.Boolean:
        return series.to_numpy().astype(bool)
    if not series.dtype.is_numeric():
        raise MonitoringError(
            f"the label column {series.name!r} holds {series.dtype} values; expected 0/1 "
            "(Int8, null while unknown). Map the labels to 0/1 when ingesting them, e.g. "
            "1 for a chargeback, 0 for none."
        )
    values = series.cast(pl.Float64).to_numpy()
    bad = values[(values != 0) & (values != 1)]
    if bad.size:
        found = list(dict.fromkeys(bad.tolist()))[:5]
        raise MonitoringError(
            f"the label column {series.name!r} must hold 0 or 1 (null while unknown); "
            f"found {found} in {bad.size:,} of {values.size:,} labelled rows. Map the labels "
            "to 0/1 when ingesting them, e.g. 1 for a chargeback, 0 for none."
        )
    flags: np.ndarray = values == 1
    return flags


def _scores(series: pl.Series, name: str) -> np.ndarray:
    if not series.dtype.is_numeric():
        raise MonitoringError(
            f"the score column {name!r} holds {series.dtype} values; expected the model's "
            "scores (Float64), as the prediction log writes them."
        )
    values = series.cast(pl.Float64).to_numpy()
    bad = int(np.count_nonzero(~np.isfinite(values)))
    if bad:
        raise MonitoringError(
            f"the score column {name!r} is null, NaN or infinite in {bad:,} of "
            f"{values.size:,} rows; a logged prediction always has a score, so these rows "
            "are not predictions. Drop them from the window."
        )
    return values


def _probabilities(series: pl.Series, name: str) -> np.ndarray:
    values = _scores(series, name)
    low, high = float(values.min()), float(values.max())
    if low < 0 or high > 1:
        raise MonitoringError(
            f"estimated performance (CBPE) reads scores as probabilities in [0, 1], but "
            f"{name!r} ranges from {low:g} to {high:g}; log calibrated probabilities "
            "(predict_proba), or rely on realised performance once labels arrive."
        )
    return values


def _outcome_values(objectives: Objectives, frame: pl.DataFrame) -> OutcomeValues:
    try:
        found = objectives.values_for(frame)
    except EvaluationError as exc:
        raise MonitoringError(
            f"the decision values cannot be computed on the monitoring window: {exc} Log "
            "the columns [objectives.values] reads with the predictions."
        ) from exc
    return OutcomeValues(
        tp=found["true_positive"],
        fp=found["false_positive"],
        fn=found["false_negative"],
        tn=found["true_negative"],
    )


def _ratio(numerator: float, denominator: float) -> float | None:
    return None if denominator == 0 else float(numerator / denominator)


def _flags(
    frame: pl.DataFrame, decision: str | None, scores: np.ndarray, threshold: float
) -> np.ndarray:
    """Which rows were flagged: the ``decision`` column when given (what was decided),
    else ``score >= threshold``."""
    if decision is None:
        return np.asarray(scores >= threshold)
    _require(frame, [decision], "the decisions taken")
    column = frame[decision]
    if column.null_count():
        raise MonitoringError(
            f"{column.null_count()} rows have no {decision!r}; every logged prediction "
            "carries its decision. Fill them, or leave decision unset to flag by threshold."
        )
    return np.asarray(column.cast(pl.Int64).to_numpy() != 0)
