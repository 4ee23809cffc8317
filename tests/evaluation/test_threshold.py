"""Cost-optimal thresholds of shipyard.evaluation.threshold, against a brute-force search."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.errors import EvaluationError
from shipyard.evaluation.threshold import (
    OutcomeValues,
    best_threshold,
    value_curve,
    value_per_1000,
)


def brute_total(y: np.ndarray, s: np.ndarray, threshold: float, v: OutcomeValues) -> float:
    """The total value when rows scoring ``>= threshold`` are flagged, row by row."""
    per_row = v.broadcast(len(y))
    total = 0.0
    for i in range(len(y)):
        flagged = s[i] >= threshold
        if y[i]:
            total += float(per_row.tp[i] if flagged else per_row.fn[i])
        else:
            total += float(per_row.fp[i] if flagged else per_row.tn[i])
    return total


def brute_curve(y: np.ndarray, s: np.ndarray, v: OutcomeValues) -> dict[float, float]:
    """Total value at +inf and at every distinct score."""
    return {t: brute_total(y, s, t, v) for t in [math.inf, *sorted(set(s.tolist()))]}


# Integers, so every sum is exact in float64 and ties are real ties.
small_ints = st.integers(-50, 50).map(float)


@st.composite
def problems(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, OutcomeValues]:
    """Labels with both classes, tied scores, and scalar or per-row outcome values."""
    n = draw(st.integers(2, 25))
    labels = draw(
        st.lists(st.booleans(), min_size=n, max_size=n).filter(lambda x: len(set(x)) == 2)
    )
    scores = draw(st.lists(st.sampled_from([0.0, 0.2, 0.2, 0.5, 0.7, 1.0]), min_size=n, max_size=n))

    def value() -> float | np.ndarray:
        if draw(st.booleans()):
            return draw(small_ints)
        return np.array(draw(st.lists(small_ints, min_size=n, max_size=n)))

    values = OutcomeValues(tp=value(), fp=value(), fn=value(), tn=value())
    return np.array(labels), np.array(scores), values


@settings(max_examples=300, deadline=None)
@given(problems())
def test_value_curve_equals_brute_force(problem) -> None:
    y, s, values = problem
    thresholds, totals = value_curve(y, s, values)
    expected = brute_curve(y, s, values)
    assert thresholds.tolist() == sorted(expected, reverse=True)
    assert totals.tolist() == [expected[t] for t in thresholds.tolist()]


@settings(max_examples=300, deadline=None)
@given(problems())
def test_best_threshold_equals_brute_force_highest_among_ties(problem) -> None:
    y, s, values = problem
    expected = brute_curve(y, s, values)
    best = max(expected.values())
    highest = max(t for t, total in expected.items() if total == best)
    assert best_threshold(y, s, values) == (highest, best)


@settings(max_examples=100, deadline=None)
@given(problems(), st.sampled_from([0.0, 0.2, 0.3, 1.0, 2.0]))
def test_value_per_1000_is_the_total_per_row_times_1000(problem, threshold: float) -> None:
    y, s, values = problem
    expected = brute_total(y, s, threshold, values) / len(y) * 1000
    assert value_per_1000(y, s, threshold, values) == pytest.approx(expected, rel=1e-12)


def test_fraud_costs_per_row() -> None:
    amount = np.array([100.0, 20.0, 5.0, 300.0, 10.0])
    y = np.array([1, 0, 1, 1, 0])
    s = np.array([0.9, 0.8, 0.3, 0.3, 0.1])
    values = OutcomeValues(fn=-(amount + 15), fp=-5.0)
    thresholds, totals = value_curve(y, s, values)
    assert thresholds.tolist() == [math.inf, 0.9, 0.8, 0.3, 0.1]
    # Nobody flagged: the three frauds cost 115 + 20 + 315; each flag instead costs 5 if wrong.
    assert totals.tolist() == [-450.0, -335.0, -340.0, -5.0, -10.0]
    assert best_threshold(y, s, values) == (0.3, -5.0)
    assert value_per_1000(y, s, 0.3, values) == -1000.0


def test_all_ties_choose_flagging_nobody() -> None:
    assert best_threshold([0, 1, 1], [0.1, 0.5, 0.9], OutcomeValues()) == (math.inf, 0.0)


def test_value_per_1000_accepts_a_slice_with_one_class() -> None:
    assert value_per_1000([0, 0], [0.9, 0.1], 0.5, OutcomeValues(fp=-5.0, tn=1.0)) == -2000.0


def test_broadcast_gives_one_float_per_row() -> None:
    wide = OutcomeValues(tp=1, fp=[-1.0, -2.0, -3.0]).broadcast(3)
    assert wide.tp.tolist() == [1.0, 1.0, 1.0] and wide.fp.tolist() == [-1.0, -2.0, -3.0]
    assert wide.fn.tolist() == [0.0, 0.0, 0.0] and wide.tn.dtype == np.float64


def test_per_row_values_of_another_length_are_refused() -> None:
    with pytest.raises(EvaluationError) as info:
        best_threshold([0, 1, 1], [0.1, 0.5, 0.9], OutcomeValues(fn=[-1.0, -2.0]))
    assert str(info.value) == (
        "OutcomeValues.fn has 2 values, but there are 3 rows; give one number for every row "
        "or one per row."
    )


def test_nan_values_are_refused() -> None:
    with pytest.raises(EvaluationError) as info:
        OutcomeValues(fp=[0.0, math.nan]).broadcast(2)
    assert str(info.value) == (
        "OutcomeValues.fp must be finite; 1 of 2 values are NaN or infinite, the first at "
        "index 1. Fill them, e.g. with the average cost."
    )


def test_non_numeric_values_are_refused() -> None:
    with pytest.raises(EvaluationError, match=r"^OutcomeValues.tp must be numbers"):
        OutcomeValues(tp="high").broadcast(2)


def test_threshold_search_needs_both_classes() -> None:
    with pytest.raises(EvaluationError, match=r"^only class 0 present"):
        best_threshold([0, 0], [0.1, 0.2], OutcomeValues(fp=-1.0))
