"""Drift statistics of shipyard.monitoring.stats against SciPy and direct formulas."""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.monitoring import stats

scipy_stats = pytest.importorskip("scipy.stats")
scipy_distance = pytest.importorskip("scipy.spatial.distance")

SMALL = settings(max_examples=60, deadline=None)

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
# Few distinct values, so ties within and across samples are the rule.
tied = st.integers(min_value=-3, max_value=3).map(float)
samples = st.lists(finite, min_size=1, max_size=60) | st.lists(tied, min_size=1, max_size=60)
count_lists = st.lists(st.integers(min_value=0, max_value=500), min_size=2, max_size=12)


def _scipy_ks(a: object, b: object) -> tuple[float, float]:
    with warnings.catch_warnings():
        # When the exact sum rounds above 1, SciPy warns that it switches to method="asymp".
        warnings.filterwarnings("ignore", "ks_2samp: Exact calculation", RuntimeWarning)
        result = scipy_stats.ks_2samp(a, b)
    return float(result.statistic), float(result.pvalue)


# --------------------------------------------------------------------------- KS


@SMALL
@given(samples, samples)
def test_ks_matches_scipy_on_small_and_tied_samples(a: list[float], b: list[float]) -> None:
    statistic, p_value = stats.ks_2samp(a, b)
    expected = _scipy_ks(a, b)
    assert statistic == pytest.approx(expected[0], rel=1e-12, abs=1e-15)
    assert p_value == pytest.approx(expected[1], rel=1e-9, abs=1e-15)


@pytest.mark.parametrize(
    ("n1", "n2", "shift"),
    [
        (5, 7, 0.0),
        (10, 10, 0.5),
        (100, 250, 0.2),
        (37, 1000, 0.0),
        (1000, 3000, 0.1),
        (5000, 5000, 0.05),
        (1000, 10_000, 0.05),
        (500, 10_000, 1.0),  # p-value around 1e-59
        (10_000, 9_999, 0.03),
    ],
)
def test_ks_exact_pvalue_matches_scipy(n1: int, n2: int, shift: float) -> None:
    rng = np.random.default_rng(n1 + n2)
    a, b = rng.normal(size=n1), rng.normal(shift, size=n2)
    statistic, p_value = stats.ks_2samp(a, b)
    expected = _scipy_ks(a, b)
    assert statistic == expected[0]
    assert p_value == pytest.approx(expected[1], rel=1e-9)


@pytest.mark.parametrize(("n1", "n2", "shift"), [(1000, 10_001, 0.1), (20_000, 30_000, 0.02)])
def test_ks_large_samples_use_the_kolmogorov_limit(n1: int, n2: int, shift: float) -> None:
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=n1), rng.normal(shift, size=n2)
    statistic, p_value = stats.ks_2samp(a, b)
    expected = _scipy_ks(a, b)
    assert statistic == expected[0]
    en = n1 * n2 / (n1 + n2)
    assert p_value == pytest.approx(
        float(scipy_stats.kstwobign.sf(math.sqrt(en) * statistic)), rel=1e-10
    )
    assert abs(p_value - expected[1]) <= 0.3 / math.sqrt(en)


def test_ks_falls_back_like_scipy_when_the_exact_sum_rounds_above_one() -> None:
    a, b = [0.0] * 5, [0.0] * 4 + [1.0]
    assert stats.ks_2samp(a, b) == pytest.approx(_scipy_ks(a, b), rel=1e-12)


def test_ks_constant_columns_and_nans() -> None:
    assert stats.ks_2samp([3.0] * 20, [3.0] * 50) == (0.0, 1.0)
    disjoint = stats.ks_2samp([1.0] * 20, [2.0] * 30)
    assert disjoint == pytest.approx(_scipy_ks([1.0] * 20, [2.0] * 30), rel=1e-9)
    assert disjoint[0] == 1.0
    with_nan = [1.0, np.nan, 2.0, 5.0, np.nan, 0.5]
    clean = [1.0, 2.0, 5.0, 0.5]
    assert stats.ks_2samp(with_nan, [0.0, 4.0, np.nan]) == stats.ks_2samp(clean, [0.0, 4.0])


# --------------------------------------------------------------------------- chi-squared


def _scipy_chi(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    expected = ref / ref.sum() * cur.sum()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = scipy_stats.chisquare(cur, f_exp=expected)
    return float(result.statistic), float(result.pvalue)


@SMALL
@given(count_lists.flatmap(lambda r: st.tuples(st.just(r), st.permutations(r))))
def test_chi_squared_matches_scipy(pair: tuple[list[int], list[int]]) -> None:
    ref = np.array(pair[0], dtype=float) + 1  # every category present on both sides
    cur = np.array(pair[1], dtype=float) + 1
    statistic, p_value = stats.chi_squared(ref, cur)
    expected = _scipy_chi(ref, cur)
    assert statistic == pytest.approx(expected[0], rel=1e-9, abs=1e-12)
    assert p_value == pytest.approx(expected[1], rel=1e-8, abs=1e-300)


def test_chi_squared_extreme_and_identical() -> None:
    ref = np.array([5000.0, 3000.0, 2000.0])
    cur = np.array([2000.0, 3000.0, 5000.0])
    assert stats.chi_squared(ref, cur) == pytest.approx(_scipy_chi(ref, cur), rel=1e-8)
    assert stats.chi_squared(ref, ref / 10) == (0.0, 1.0)


def test_chi_squared_categories_on_one_side_only() -> None:
    # Reference only: counted as an expected frequency, exactly as in SciPy.
    ref, cur = np.array([40.0, 30.0, 30.0]), np.array([50.0, 50.0, 0.0])
    assert stats.chi_squared(ref, cur) == pytest.approx(_scipy_chi(ref, cur), rel=1e-9)
    # Current only: impossible under the reference; SciPy also gives (inf, 0.0), with a warning.
    ref, cur = np.array([40.0, 60.0, 0.0]), np.array([40.0, 50.0, 10.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert stats.chi_squared(ref, cur) == (math.inf, 0.0)
    assert _scipy_chi(ref, cur) == (math.inf, 0.0)
    # Absent on both sides: dropped, same as not listing it.
    assert stats.chi_squared([10, 0, 20], [15, 0, 15]) == stats.chi_squared([10, 20], [15, 15])
    # One category left (a constant column on both sides).
    assert stats.chi_squared([10, 0], [7, 0]) == (0.0, 1.0)


# --------------------------------------------------------------------------- Z-test


@SMALL
@given(
    st.integers(min_value=1, max_value=10_000).flatmap(
        lambda n: st.tuples(st.integers(0, n), st.just(n))
    ),
    st.integers(min_value=1, max_value=10_000).flatmap(
        lambda n: st.tuples(st.integers(0, n), st.just(n))
    ),
)
def test_z_two_proportions_matches_formula(ref: tuple[int, int], cur: tuple[int, int]) -> None:
    p_value = stats.z_two_proportions(ref[0], ref[1], cur[0], cur[1])
    pooled = (ref[0] + cur[0]) / (ref[1] + cur[1])
    if pooled in (0.0, 1.0):
        assert p_value == 1.0
        return
    z = (ref[0] / ref[1] - cur[0] / cur[1]) / math.sqrt(
        pooled * (1 - pooled) * (1 / ref[1] + 1 / cur[1])
    )
    assert p_value == pytest.approx(2 * float(scipy_stats.norm.sf(abs(z))), rel=1e-9, abs=1e-300)


def test_z_two_proportions_constant_and_bad_input() -> None:
    assert stats.z_two_proportions(0, 100, 0, 50) == 1.0
    assert stats.z_two_proportions(100, 100, 50, 50) == 1.0
    assert stats.z_two_proportions(0, 100, 50, 50) < 1e-20
    with pytest.raises(ValueError, match="ref_n must be positive"):
        stats.z_two_proportions(0, 0, 1, 2)
    with pytest.raises(ValueError, match="cur_hits"):
        stats.z_two_proportions(1, 2, 3, 2)


# --------------------------------------------------------------------------- Wasserstein


@SMALL
@given(samples, samples)
def test_wasserstein_normed_matches_scipy(a: list[float], b: list[float]) -> None:
    expected = float(scipy_stats.wasserstein_distance(a, b)) / max(float(np.std(a)), 0.001)
    assert stats.wasserstein_normed(a, b) == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_wasserstein_normed_constant_reference_and_nans() -> None:
    assert stats.wasserstein_normed([2.0] * 10, [2.0] * 5) == 0.0
    assert stats.wasserstein_normed([2.0] * 10, [3.0] * 5) == pytest.approx(1000.0)
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=5000), rng.normal(0.3, 2.0, size=7000)
    expected = float(scipy_stats.wasserstein_distance(a, b)) / float(np.std(a))
    assert stats.wasserstein_normed(a, b) == pytest.approx(expected, rel=1e-10)
    assert stats.wasserstein_normed(np.append(a, np.nan), b) == stats.wasserstein_normed(a, b)


# --------------------------------------------------------------------------- Jensen-Shannon


@SMALL
@given(count_lists.flatmap(lambda r: st.tuples(st.just(r), st.permutations(r))))
def test_jensen_shannon_matches_scipy(pair: tuple[list[int], list[int]]) -> None:
    ref, cur = np.array(pair[0], dtype=float), np.array(pair[1], dtype=float)
    if ref.sum() == 0:
        return
    expected = float(scipy_distance.jensenshannon(ref, cur))
    assert stats.jensen_shannon(ref, cur) == pytest.approx(expected, rel=1e-9, abs=1e-7)
    expected2 = float(scipy_distance.jensenshannon(ref, cur, base=2))
    assert stats.jensen_shannon(ref, cur, base=2) == pytest.approx(expected2, rel=1e-9, abs=1e-7)


def test_jensen_shannon_one_side_only_and_identical() -> None:
    assert stats.jensen_shannon([5, 0], [0, 7]) == pytest.approx(math.sqrt(math.log(2)))
    assert stats.jensen_shannon([5, 0], [0, 7], base=2) == pytest.approx(1.0)
    ref, cur = [10, 20, 0, 5], [12, 18, 4, 0]
    assert stats.jensen_shannon(ref, cur) == pytest.approx(
        float(scipy_distance.jensenshannon(ref, cur)), rel=1e-12
    )
    assert stats.jensen_shannon([1, 2, 3], [2, 4, 6]) == pytest.approx(0.0, abs=1e-7)


# --------------------------------------------------------------------------- PSI


def _direct_psi(reference: list[float], current: list[float], bins: int) -> float:
    """PSI written out bin by bin, with plain Python loops."""
    ref = sorted(x for x in reference if not math.isnan(x))
    cur = [x for x in current if not math.isnan(x)]
    # Same probability grid as the implementation: k / bins and linspace can differ by an ulp,
    # which moves an edge across a value equal to it.
    levels = np.linspace(0.0, 1.0, bins + 1)[1:-1]
    edges = sorted({float(np.quantile(ref, level)) for level in levels})
    bounds = [-math.inf, *edges, math.inf]
    total = 0.0
    for low, high in itertools.pairwise(bounds):
        r = sum(low < x <= high for x in ref) / len(ref) or stats.PSI_EPSILON
        c = sum(low < x <= high for x in cur) / len(cur) or stats.PSI_EPSILON
        total += (c - r) * math.log(c / r)
    return total


@SMALL
@given(samples, samples, st.integers(min_value=1, max_value=12))
def test_psi_matches_direct_computation(a: list[float], b: list[float], bins: int) -> None:
    assert stats.psi(a, b, bins) == pytest.approx(_direct_psi(a, b, bins), rel=1e-9, abs=1e-12)


def test_psi_shift_constant_reference_and_nans() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=2000), rng.normal(0.5, size=3000)
    assert stats.psi(a, a) == 0.0
    assert stats.psi(a, b) == pytest.approx(_direct_psi(list(a), list(b), 10), rel=1e-9)
    assert stats.psi(a, b) > 0.1
    # A constant reference has a single edge: bins (-inf, c] and (c, inf).
    eps = stats.PSI_EPSILON
    assert stats.psi([1.0] * 10, [1.0] * 5 + [2.0] * 5) == pytest.approx(
        (0.5 - 1) * math.log(0.5) + (0.5 - eps) * math.log(0.5 / eps)
    )
    assert stats.psi(np.append(a, [np.nan] * 3), b) == stats.psi(a, b)
    with pytest.raises(ValueError, match="bins"):
        stats.psi(a, b, bins=0)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "function", [stats.ks_2samp, stats.wasserstein_normed, stats.psi], ids=lambda f: f.__name__
)
def test_samples_empty_or_all_null_raise(function: Callable[..., object]) -> None:
    call = function
    with pytest.raises(ValueError, match="reference has no non-null values"):
        call([], [1.0])
    with pytest.raises(ValueError, match="current has no non-null values"):
        call([1.0], [np.nan, np.nan])


@pytest.mark.parametrize("function", [stats.chi_squared, stats.jensen_shannon])
def test_counts_bad_input_raises(function: Callable[..., object]) -> None:
    call = function
    with pytest.raises(ValueError, match="ref_counts is empty"):
        call([], [1])
    with pytest.raises(ValueError, match="cur_counts counts are all zero"):
        call([1, 2], [0, 0])
    with pytest.raises(ValueError, match="aligned by category"):
        call([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="non-negative"):
        call([1, -2], [1, 2])
    with pytest.raises(ValueError, match="non-negative"):
        call([1, np.nan], [1, 2])
