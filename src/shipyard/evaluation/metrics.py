"""Metrics of a binary classifier: overall, by group, and calibration.

Everything is NumPy in a few vectorised passes: ``overall`` sorts the scores once for both
ROC AUC and average precision, and ``by_group`` counts the four confusion cells of every group
of a grouping with one ``np.bincount``. The values equal scikit-learn's metrics and Fairlearn's
``MetricFrame`` (the tests compare them). A ratio that is undefined (0/0) is ``None``, never
NaN, so every result is valid JSON.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from shipyard.errors import EvaluationError

NULL_GROUP = "null"
"""The group of rows whose group value is null (None, NaN, NaT)."""
GROUP_METRICS = ("selection_rate", "tpr", "fpr", "precision", "accuracy")
"""The rates ``by_group`` computes per group (besides ``count`` and ``positives``)."""
LOG_LOSS_EPS = 1e-15

GroupRow = dict[str, float | None]


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


@dataclass(frozen=True)
class GroupTable:
    """Metrics per group of one grouping (such as "country"), as ``by_group`` returns them.

    Attributes:
        rows: Group value (as ``str``; nulls as ``"null"``) → ``count``, ``positives`` and
            the ``GROUP_METRICS``, each None where undefined.
    """

    rows: dict[str, GroupRow]

    def difference(self, metric: str) -> float | None:
        """Largest minus smallest value over the groups where ``metric`` is defined.

        Fairlearn's ``MetricFrame.difference(method="between_groups")``; None when no group
        has a value.
        """
        found = self._defined(metric)
        return max(found) - min(found) if found else None

    def ratio(self, metric: str) -> float | None:
        """Smallest over largest value of ``metric`` over the groups where it is defined.

        Fairlearn's ``MetricFrame.ratio(method="between_groups")``; None for 0/0 or when no
        group has a value.
        """
        found = self._defined(metric)
        return _ratio(min(found), max(found)) if found else None

    def to_dict(self) -> dict[str, GroupRow]:
        """A copy of the rows, as plain JSON data."""
        return {group: dict(row) for group, row in self.rows.items()}

    def _defined(self, metric: str) -> list[float]:
        if metric not in (*GROUP_METRICS, "count", "positives"):
            known = ", ".join((*GROUP_METRICS, "count", "positives"))
            raise EvaluationError(f"unknown group metric {metric!r}; expected one of {known}.")
        return [value for row in self.rows.values() if (value := row[metric]) is not None]


def by_group(
    y_true: npt.ArrayLike,
    y_pred: npt.ArrayLike,
    groups: Mapping[str, npt.ArrayLike],
    expected_groups: Mapping[str, Iterable[object]] | None = None,
) -> dict[str, GroupTable]:
    """Decision metrics per group, for each grouping, in one pass per grouping.

    Rows whose group value is null (None, NaN, NaT) form the group ``"null"``; group values
    are keyed by ``str(value)``, integral floats as ints (an int column with nulls arrives as
    floats and keeps its names). A group that has rows but one class gets None where the other
    class is needed (no positives: ``tpr`` None). Unlike ``overall``, one class overall is
    allowed.

    Args:
        y_true: One 0/1 label per row.
        y_pred: One bool (or 0/1) prediction per row.
        groups: Grouping name → one group value per row.
        expected_groups: Grouping name → group values to report even when no row has them
            (count 0, metrics None).

    Returns:
        Grouping name → its ``GroupTable``; groups in sorted order, then ``"null"``, then
        expected groups without rows.
    """
    labels, flagged = _binary(y_true, "y_true"), _binary(y_pred, "y_pred")
    if flagged.size != labels.size:
        raise EvaluationError(
            f"y_true has {labels.size:,} rows but y_pred has {flagged.size:,}; pass exactly "
            "one prediction per label."
        )
    expected = dict(expected_groups or {})
    unknown = sorted(set(expected) - set(groups))
    if unknown:
        raise EvaluationError(
            f"expected_groups names {unknown}, which are not in groups ({sorted(groups)}); "
            "name only groupings you pass."
        )
    cells = labels.astype(np.intp) * 2 + flagged  # 0 tn, 1 fp, 2 fn, 3 tp
    return {
        name: _group_table(name, values, cells, expected.get(name, ()))
        for name, values in groups.items()
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


def _ratio(numerator: float, denominator: float) -> float | None:
    return None if denominator == 0 else float(numerator / denominator)


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


def _group_table(
    name: str, values: npt.ArrayLike, cells: np.ndarray, expected: Iterable[object]
) -> GroupTable:
    keys, codes = _factorize(name, values, cells.size)
    counts = np.bincount(codes * 4 + cells, minlength=4 * len(keys)).reshape(-1, 4)
    rows = {key: _group_row(*map(int, counts[i])) for i, key in enumerate(keys)}
    for value in expected:
        rows.setdefault(_name(value), _group_row(0, 0, 0, 0))
    return GroupTable(rows)


def _group_row(tn: int, fp: int, fn: int, tp: int) -> GroupRow:
    count = tn + fp + fn + tp
    return {
        "count": count,
        "positives": tp + fn,
        "selection_rate": _ratio(tp + fp, count),
        "tpr": _ratio(tp, tp + fn),
        "fpr": _ratio(fp, fp + tn),
        "precision": _ratio(tp, tp + fp),
        "accuracy": _ratio(tp + tn, count),
    }


def _factorize(name: str, values: npt.ArrayLike, rows: int) -> tuple[list[str], np.ndarray]:
    """Group keys (sorted values as str, then "null") and each row's index into them."""
    array = np.asarray(values)
    if array.ndim != 1 or array.size != rows:
        raise EvaluationError(
            f"grouping {name!r} has {array.size:,} values but y_true has {rows:,} rows; pass "
            "one group value per row."
        )
    if array.dtype.kind != "O":
        uniques, codes = np.unique(array, return_inverse=True)
        return _merge_keys(uniques.tolist(), codes.ravel())
    # np.unique sorts Python objects one comparison at a time (~1 s per million rows); a dict
    # finds the few distinct values in one pass, and only those are sorted.
    seen: dict[object, int] = {}
    try:
        codes = np.fromiter((seen.setdefault(v, len(seen)) for v in array.tolist()), np.intp)
    except TypeError as exc:
        raise EvaluationError(
            f"grouping {name!r} holds values that cannot be grouped ({exc}); pass strings or "
            "numbers."
        ) from exc
    return _merge_keys(list(seen), codes)


def _merge_keys(found: list[object], codes: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Sort the distinct values, name them, put the nulls last in one group, renumber rows."""
    values = [v for v in found if not _is_null(v)]
    try:
        values.sort()
    except TypeError:  # values of mixed types: order by their names
        values.sort(key=str)
    keys = list(dict.fromkeys(_name(v) for v in values))
    if len(values) < len(found):
        keys.append(NULL_GROUP)
    position = {key: i for i, key in enumerate(keys)}
    renumber = [position[_name(v)] for v in found]
    return keys, np.asarray(renumber, dtype=np.intp)[codes]


def _name(value: object) -> str:
    if _is_null(value):
        return NULL_GROUP
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _is_null(value: object) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN and NaT are the values not equal to themselves
    except TypeError:  # pandas.NA: a comparison with it is neither True nor False
        return True
