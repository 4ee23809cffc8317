"""Cost-optimal decision thresholds from the business value of each outcome.

A row is flagged (predicted positive) when its score is ``>= threshold``. Each of the four
outcomes has a value, per row or the same for all rows, with costs as negative values: a
missed fraud costs its amount plus handling (``fn=-(amount + 15)``), a needless review costs
5 (``fp=-5``). ``value_curve`` gives the total value at every distinct score in one sort and
one cumulative sum, so the search over all thresholds is exact and O(n log n).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from shipyard.errors import EvaluationError
from shipyard.evaluation._inputs import _validated, check_inputs


@dataclass(frozen=True)
class OutcomeValues:
    """The business value of each outcome of a row; costs are negative.

    Each field is one number for every row or an array with one number per row.

    Attributes:
        tp: Value of flagging a positive row (e.g. the fraud amount saved, or 0).
        fp: Value of flagging a negative row (e.g. -5 for a needless review).
        fn: Value of not flagging a positive row (e.g. minus the amount lost).
        tn: Value of not flagging a negative row (usually 0).
    """

    tp: npt.ArrayLike = 0.0
    fp: npt.ArrayLike = 0.0
    fn: npt.ArrayLike = 0.0
    tn: npt.ArrayLike = 0.0

    def broadcast(self, n: int) -> OutcomeValues:
        """The same values as float64 arrays of ``n`` rows (a number is repeated, not copied).

        Raises:
            EvaluationError: A field is not numeric, not finite, or has another length than
                ``n``.
        """
        return OutcomeValues(
            tp=_per_row("tp", self.tp, n),
            fp=_per_row("fp", self.fp, n),
            fn=_per_row("fn", self.fn, n),
            tn=_per_row("tn", self.tn, n),
        )


def value_curve(
    y_true: npt.ArrayLike, scores: npt.ArrayLike, values: OutcomeValues
) -> tuple[np.ndarray, np.ndarray]:
    """The total value of flagging every row scoring ``>= t``, for every candidate ``t``.

    Args:
        y_true: One 0/1 label per row, both classes present.
        scores: One finite score per row.
        values: The value of each outcome.

    Returns:
        The thresholds, descending: ``inf`` (nobody flagged), then every distinct score;
        and the total value at each.
    """
    labels, ranked = check_inputs(y_true, scores)
    flagged, passed = _outcomes(labels, values.broadcast(labels.size))
    order = np.argsort(ranked)[::-1]
    descending = ranked[order]
    ends = np.append(np.flatnonzero(np.diff(descending)), descending.size - 1)
    base = float(passed.sum())
    gains = np.cumsum((flagged - passed)[order])[ends]
    return np.append(np.inf, descending[ends]), np.append(base, base + gains)


def best_threshold(
    y_true: npt.ArrayLike, scores: npt.ArrayLike, values: OutcomeValues
) -> tuple[float, float]:
    """The threshold of the highest total value, and that value.

    Among thresholds of equal value the highest wins, i.e. the one flagging the fewest rows;
    ``inf`` means flagging nobody is best. The result equals trying every distinct score.

    Args:
        y_true: One 0/1 label per row, both classes present.
        scores: One finite score per row.
        values: The value of each outcome.

    Returns:
        ``(threshold, total value)``; flag a row when its score is ``>= threshold``.
    """
    thresholds, totals = value_curve(y_true, scores, values)
    best = int(np.argmax(totals))  # the first maximum: thresholds descend
    return float(thresholds[best]), float(totals[best])


def value_per_1000(
    y_true: npt.ArrayLike, scores: npt.ArrayLike, threshold: float, values: OutcomeValues
) -> float:
    """The total value at ``threshold`` per 1,000 rows.

    Unlike the threshold search, one class is fine (a slice without positives has a value).

    Args:
        y_true: One 0/1 label per row.
        scores: One finite score per row.
        threshold: Flag a row when its score is ``>= threshold``.
        values: The value of each outcome.
    """
    labels, ranked = _validated(y_true, scores)
    flagged, passed = _outcomes(labels, values.broadcast(labels.size))
    total = np.where(ranked >= threshold, flagged, passed).sum()
    return float(total) / labels.size * 1000


def _outcomes(labels: np.ndarray, values: OutcomeValues) -> tuple[np.ndarray, np.ndarray]:
    """Each row's value if flagged and if not flagged."""
    flagged = np.where(labels, values.tp, values.fp)
    passed = np.where(labels, values.fn, values.tn)
    return flagged, passed


def _per_row(name: str, value: npt.ArrayLike, n: int) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise EvaluationError(
            f"OutcomeValues.{name} must be numbers, one for every row or one per row; got "
            f"{value!r:.60}."
        ) from exc
    if array.ndim > 1 or (array.ndim == 1 and array.size != n):
        raise EvaluationError(
            f"OutcomeValues.{name} has {array.size:,} values, but there are {n:,} rows; give "
            "one number for every row or one per row."
        )
    bad = np.flatnonzero(~np.isfinite(array.ravel()))
    if bad.size:
        raise EvaluationError(
            f"OutcomeValues.{name} must be finite; {bad.size:,} of {array.size:,} values are "
            f"NaN or infinite, the first at index {bad[0]}. Fill them, e.g. with the average "
            "cost."
        )
    return np.broadcast_to(array, (n,))
