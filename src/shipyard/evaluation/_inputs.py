"""Checked inputs of the evaluation metrics: binary labels and finite scores."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from shipyard.errors import EvaluationError


def check_inputs(y_true: npt.ArrayLike, scores: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate labels and scores for evaluation.

    Args:
        y_true: One label per row, 0/1 (bool, int, or floats that are 0.0/1.0).
        scores: One finite score per row (any float; higher means more likely positive).

    Returns:
        The labels as a bool array and the scores as a float64 array.

    Raises:
        EvaluationError: Labels other than 0/1, NaN or infinite scores, lengths that differ,
            no rows, or only one class (AUC, recall and thresholds need both).
    """
    labels, values = _validated(y_true, scores)
    positives = int(np.count_nonzero(labels))
    if positives in (0, labels.size):
        present, missing = (1, "negatives") if positives else (0, "positives")
        raise EvaluationError(
            f"only class {present} present ({labels.size:,} rows); AUC, recall and the "
            f"threshold search need both classes; evaluate on data with {missing}"
        )
    return labels, values


def _validated(y_true: npt.ArrayLike, scores: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores checked as ``check_inputs`` does, except that one class is fine."""
    labels, values = _binary(y_true, "y_true"), _finite(scores)
    if labels.size != values.size:
        raise EvaluationError(
            f"y_true has {labels.size:,} rows but scores has {values.size:,}; pass exactly "
            "one score per label."
        )
    return labels, values


def _one_dimensional(array: np.ndarray, name: str) -> np.ndarray:
    if array.ndim != 1:
        raise EvaluationError(
            f"{name} must be one-dimensional, one value per row; got shape {array.shape}. "
            "Select one column, e.g. predict_proba(X)[:, 1]."
        )
    return array


def _binary(values: npt.ArrayLike, name: str) -> np.ndarray:
    array = _one_dimensional(np.asarray(values), name)
    if array.size == 0:
        raise EvaluationError(
            f"{name} is empty; expected labels 0/1 for at least one row. Evaluate on data "
            "with rows."
        )
    if array.dtype == np.bool_:
        return array
    numeric = array.dtype.kind in "iufO"
    ones = np.asarray(array == 1, dtype=bool) if numeric else np.zeros(array.size, bool)
    valid = ones | np.asarray(array == 0, dtype=bool) if numeric else ones
    if not valid.all():
        found = list(dict.fromkeys(array[~valid].tolist()))
        raise EvaluationError(
            f"{name} must hold the labels 0 and 1 (bool or int); found {found[:5]}"
            f"{' and more' if len(found) > 5 else ''} in {int((~valid).sum()):,} of "
            f"{array.size:,} rows. Map the labels to 0/1 first, e.g. {name} == 'fraud'."
        )
    return ones


def _finite(scores: npt.ArrayLike) -> np.ndarray:
    try:
        array = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise EvaluationError(
            f"scores must be numbers, one per row; got {exc}. Pass the model's scores, e.g. "
            "predict_proba(X)[:, 1]."
        ) from exc
    finite = np.isfinite(_one_dimensional(array, "scores"))
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise EvaluationError(
            f"scores must be finite numbers; {bad.size:,} of {array.size:,} are NaN or "
            f"infinite, the first at index {bad[0]} ({array[bad[0]]}). Drop or fill those "
            "rows before evaluating."
        )
    return array


def _ratio(numerator: float, denominator: float) -> float | None:
    return None if denominator == 0 else float(numerator / denominator)
