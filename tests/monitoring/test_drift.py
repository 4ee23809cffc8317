"""Drift against a reference profile: Evidently's test choice, SciPy's values, edge cases."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.errors import MonitoringError
from shipyard.monitoring import stats
from shipyard.monitoring.drift import (
    DriftRule,
    DriftSettings,
    detect_drift,
)
from shipyard.monitoring.profile import build_profile

scipy_stats = pytest.importorskip("scipy.stats")
scipy_distance = pytest.importorskip("scipy.spatial.distance")

RNG = np.random.default_rng(7)


def _drift(ref: pl.DataFrame, cur: pl.DataFrame, **kwargs: object):  # type: ignore[no-untyped-def]
    return detect_drift(build_profile(ref), cur, DriftSettings(**kwargs))  # type: ignore[arg-type]


def _scipy_wasserstein_normed(ref: np.ndarray, cur: np.ndarray) -> float:
    return float(scipy_stats.wasserstein_distance(ref, cur)) / max(float(np.std(ref)), 0.001)


# --------------------------------------------------------------------------- values vs SciPy


def test_ks_small_reference_matches_scipy() -> None:
    ref, cur = RNG.normal(0, 1, 800), RNG.normal(0.15, 1, 5000)
    column = _drift(pl.DataFrame({"x": ref}), pl.DataFrame({"x": cur})).columns["x"]
    expected = scipy_stats.ks_2samp(ref, cur)
    assert column.method == "ks"
    assert column.statistic == pytest.approx(expected.statistic, abs=1e-15)
    assert column.p_value == pytest.approx(expected.pvalue, rel=1e-6)
    assert column.drifted == (expected.pvalue <= 0.05)


def test_chi_squared_small_reference_matches_scipy_as_evidently_computes_it() -> None:
    ref = RNG.choice(["a", "b", "c", "d"], 900, p=[0.4, 0.3, 0.2, 0.1])
    cur = RNG.choice(["a", "b", "c", "d"], 3000, p=[0.35, 0.3, 0.2, 0.15])
    column = _drift(pl.DataFrame({"c": ref}), pl.DataFrame({"c": cur})).columns["c"]
    keys = ["a", "b", "c", "d"]
    f_obs = [int((cur == k).sum()) for k in keys]
    f_exp = [int((ref == k).sum()) * cur.size / ref.size for k in keys]
    expected = scipy_stats.chisquare(f_obs, f_exp)
    assert column.method == "chisquare"
    assert column.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert column.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    assert column.drifted


def test_z_test_binary_matches_the_normal_formula() -> None:
    ref = RNG.random(1000) < 0.30
    cur = RNG.random(2000) < 0.34
    column = _drift(pl.DataFrame({"b": ref}), pl.DataFrame({"b": cur})).columns["b"]
    n1, n2 = ref.size, cur.size
    p1, p2 = (~ref).mean(), (~cur).mean()  # "false" sorts first
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    expected = 2 * (1 - scipy_stats.norm.cdf(abs(z)))
    assert column.method == "z"
    assert column.p_value == pytest.approx(expected, rel=1e-9)
    assert column.statistic == pytest.approx(p2 - p1, abs=1e-15)


@pytest.mark.parametrize(
    "make",
    [
        lambda n, s: RNG.normal(s, 1.0, n),
        lambda n, s: RNG.lognormal(3.0 + s, 1.0, n),
        lambda n, s: RNG.exponential(1.0 + s, n),
        lambda n, s: np.round(RNG.normal(40 + 10 * s, 12, n)),  # ages: many ties
        lambda n, s: np.where(
            RNG.random(n) < 0.7 + s / 5, RNG.normal(0, 1, n), RNG.normal(5, 2, n)
        ),
        lambda n, s: RNG.lognormal(3.0, 2.0 + s, n),
        lambda n, s: RNG.pareto(2.5 + s, n),
    ],
    ids=["normal", "lognormal", "exponential", "rounded", "mixture", "heavy", "pareto"],
)
@pytest.mark.parametrize("shift", [0.0, 0.1, 0.5])
def test_sketch_wasserstein_within_0005_of_scipy(make, shift: float) -> None:  # type: ignore[no-untyped-def]
    ref, cur = make(200_000, 0.0), make(150_000, shift)
    column = _drift(pl.DataFrame({"x": ref}), pl.DataFrame({"x": cur})).columns["x"]
    assert column.method == "wasserstein"
    assert column.statistic == pytest.approx(_scipy_wasserstein_normed(ref, cur), abs=0.005)


def test_wasserstein_small_reference_is_exact() -> None:
    ref, cur = RNG.normal(0, 1, 600), RNG.normal(0.3, 1, 700)
    rules = {"x": DriftRule(method="wasserstein")}
    column = _drift(pl.DataFrame({"x": ref}), pl.DataFrame({"x": cur}), rules=rules).columns["x"]
    assert column.statistic == pytest.approx(_scipy_wasserstein_normed(ref, cur), rel=1e-12)


def test_jensen_shannon_large_reference_matches_scipy() -> None:
    ref = RNG.choice(["a", "b", "c"], 50_000, p=[0.5, 0.3, 0.2])
    cur = RNG.choice(["a", "b", "c", "new"], 20_000, p=[0.4, 0.3, 0.2, 0.1])
    column = _drift(pl.DataFrame({"c": ref}), pl.DataFrame({"c": cur})).columns["c"]
    keys = ["a", "b", "c", "new"]
    p = np.array([(ref == k).mean() for k in keys])
    q = np.array([(cur == k).mean() for k in keys])
    assert column.method == "jensenshannon"
    assert column.statistic == pytest.approx(float(scipy_distance.jensenshannon(p, q)), rel=1e-12)
    assert column.new_categories == ("new",)
    assert column.drifted == (column.statistic >= 0.1)


def test_psi_matches_stats_and_a_direct_computation() -> None:
    ref, cur = RNG.normal(0, 1, 20_000), RNG.normal(0.2, 1.1, 30_000)
    column = _drift(pl.DataFrame({"x": ref}), pl.DataFrame({"x": cur})).columns["x"]
    assert column.psi == pytest.approx(stats.psi(ref, cur), rel=1e-12)
    edges = np.quantile(ref, np.linspace(0, 1, 11)[1:-1])
    ref_share = np.histogram(ref, np.concatenate(([-np.inf], edges, [np.inf])))[0] / ref.size
    cur_share = np.histogram(cur, np.concatenate(([-np.inf], edges, [np.inf])))[0] / cur.size
    direct = float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))
    assert column.psi == pytest.approx(direct, rel=1e-6)


def test_psi_as_the_test_with_its_own_threshold() -> None:
    ref, cur = RNG.normal(0, 1, 5000), RNG.normal(0.3, 1, 5000)
    rules = {"x": DriftRule(method="psi", threshold=0.5)}
    column = _drift(pl.DataFrame({"x": ref}), pl.DataFrame({"x": cur}), rules=rules).columns["x"]
    assert (column.method, column.threshold, column.p_value) == ("psi", 0.5, None)
    assert column.statistic == column.psi == pytest.approx(stats.psi(ref, cur), rel=1e-12)
    assert column.drifted == (column.statistic >= 0.5)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(-3, 3).map(float), min_size=6, max_size=300),
    st.lists(st.integers(-3, 3).map(float) | st.floats(-5, 5), min_size=1, max_size=300),
)
def test_small_reference_tests_match_scipy_with_ties(ref: list[float], cur: list[float]) -> None:
    column = _drift(pl.DataFrame({"x": ref}), pl.DataFrame({"x": cur})).columns["x"]
    distinct = len(set(ref) | set(cur))
    if distinct > 5:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "ks_2samp: Exact calculation", RuntimeWarning)
            expected = scipy_stats.ks_2samp(ref, cur).pvalue
        assert column.method == "ks"
        assert column.p_value == pytest.approx(expected, rel=1e-6, abs=1e-12)
    else:
        assert column.method == ("z" if distinct <= 2 else "chisquare")


# --------------------------------------------------------------------------- test selection


@pytest.mark.parametrize(
    ("rows", "values", "expected"),
    [
        (1000, 6, "ks"),
        (1001, 6, "wasserstein"),
        (1000, 5, "chisquare"),
        (1001, 5, "jensenshannon"),
        (1000, 3, "chisquare"),
        (1000, 2, "z"),
        (1001, 2, "jensenshannon"),
    ],
)
def test_numeric_test_choice_at_the_cut_offs(rows: int, values: int, expected: str) -> None:
    ref = pl.DataFrame({"x": np.arange(rows) % values})
    cur = pl.DataFrame({"x": np.arange(50) % values})
    assert _drift(ref, cur).columns["x"].method == expected


@pytest.mark.parametrize(
    ("rows", "values", "expected"),
    [
        (1000, 3, "chisquare"),
        (1000, 2, "z"),
        (1001, 2, "jensenshannon"),
        (1001, 9, "jensenshannon"),
    ],
)
def test_categorical_test_choice_at_the_cut_offs(rows: int, values: int, expected: str) -> None:
    ref = pl.DataFrame({"c": [f"k{i % values}" for i in range(rows)]})
    cur = pl.DataFrame({"c": [f"k{i % values}" for i in range(40)]})
    assert _drift(ref, cur).columns["c"].method == expected


def test_distinct_values_count_both_sides_and_reference_rows_count_values() -> None:
    ref = pl.DataFrame({"x": [float(i % 5) for i in range(800)]})
    assert _drift(ref, pl.DataFrame({"x": [0.0, 1.0, 7.0]})).columns["x"].method == "ks"
    assert _drift(ref, pl.DataFrame({"x": [0.0, 1.0]})).columns["x"].method == "chisquare"
    binary = pl.DataFrame({"c": ["a", "b"] * 400})
    assert _drift(binary, pl.DataFrame({"c": ["a", "c"]})).columns["c"].method == "chisquare"
    # 1,010 rows but 10 nulls: 1,000 values, so still the small-reference test
    nulls = pl.DataFrame({"x": [*range(1000), *[None] * 10]}, schema={"x": pl.Float64})
    assert _drift(nulls, pl.DataFrame({"x": [1.0, 2.0]})).columns["x"].method == "ks"


def test_drift_at_exactly_the_threshold_follows_evidently() -> None:
    ref, cur = RNG.normal(0, 1, 500), RNG.normal(0.2, 1, 500)
    frames = pl.DataFrame({"x": ref}), pl.DataFrame({"x": cur})
    p_value = _drift(*frames).columns["x"].p_value
    assert _drift(*frames, rules={"x": DriftRule(threshold=p_value)}).columns["x"].drifted
    big_ref, big_cur = pl.DataFrame({"x": RNG.normal(0, 1, 3000)}), pl.DataFrame({"x": cur})
    distance = _drift(big_ref, big_cur).columns["x"].statistic
    at = _drift(big_ref, big_cur, rules={"x": DriftRule(threshold=distance)}).columns["x"]
    assert at.drifted
    cats = pl.DataFrame({"c": ["a", "b", "c"] * 300}), pl.DataFrame({"c": ["a"] * 50 + ["b"] * 40})
    chi_p = _drift(*cats).columns["c"].p_value
    assert not _drift(*cats, rules={"c": DriftRule(threshold=chi_p)}).columns["c"].drifted


# --------------------------------------------------------------------------- overrides


def test_rules_override_method_and_threshold_per_column() -> None:
    ref = pl.DataFrame({"x": RNG.normal(0, 1, 5000), "y": RNG.normal(0, 1, 5000)})
    cur = pl.DataFrame({"x": RNG.normal(0.05, 1, 5000), "y": RNG.normal(0.05, 1, 5000)})
    rules = {"x": DriftRule(method="ks"), "y": DriftRule(threshold=0.01)}
    result = _drift(ref, cur, rules=rules)
    x, y = result.columns["x"], result.columns["y"]
    exact = scipy_stats.ks_2samp(ref["x"].to_numpy(), cur["x"].to_numpy())
    assert x.method == "ks"
    assert x.statistic == pytest.approx(exact.statistic, abs=1e-3)  # from the sketch
    assert x.p_value == pytest.approx(exact.pvalue, abs=0.02)
    assert (y.method, y.threshold) == ("wasserstein", 0.01)
    assert y.drifted == (y.statistic >= 0.01)


def test_categorical_rules_on_numeric_columns_use_the_psi_bins() -> None:
    ref, cur = RNG.normal(0, 1, 5000), RNG.normal(0.5, 1, 5000)
    rules = {"x": DriftRule(method="chisquare")}
    column = _drift(pl.DataFrame({"x": ref}), pl.DataFrame({"x": cur}), rules=rules).columns["x"]
    edges = np.concatenate(([-np.inf], np.quantile(ref, np.linspace(0, 1, 11)[1:-1]), [np.inf]))
    ref_counts = np.histogram(ref, edges)[0]
    cur_counts = np.histogram(cur, edges)[0]
    expected = scipy_stats.chisquare(cur_counts, ref_counts / ref_counts.sum() * cur_counts.sum())
    assert column.statistic == pytest.approx(expected.statistic, rel=1e-9)


def test_bad_rules_are_clear_errors() -> None:
    profile = build_profile(pl.DataFrame({"x": [1.0, 2.0], "c": ["a", "b"]}))
    cur = pl.DataFrame({"x": [1.0], "c": ["a"]})
    with pytest.raises(MonitoringError, match="must be one of ks, chisquare"):
        DriftRule(method="kolmogorov")
    with pytest.raises(MonitoringError, match="finite number >= 0"):
        DriftRule(threshold=math.nan)
    with pytest.raises(MonitoringError, match="share must be in"):
        DriftSettings(share=0.0)
    with pytest.raises(MonitoringError, match="weight of column 'x'"):
        DriftSettings(weights={"x": -1.0})
    with pytest.raises(MonitoringError, match="column 'nope', which the reference profile"):
        detect_drift(profile, cur, DriftSettings(rules={"nope": DriftRule()}))
    with pytest.raises(MonitoringError, match="'ks' needs a numeric column, but 'c'"):
        detect_drift(profile, cur, DriftSettings(rules={"c": DriftRule(method="ks")}))


# --------------------------------------------------------------------------- dataset drift


def _three_columns() -> tuple[pl.DataFrame, pl.DataFrame]:
    ref = pl.DataFrame({n: RNG.normal(0, 1, 2000) for n in ("a", "b", "c")})
    cur = pl.DataFrame(
        {"a": RNG.normal(1, 1, 2000), "b": RNG.normal(0, 1, 2000), "c": RNG.normal(0, 1, 2000)}
    )
    return ref, cur


def test_dataset_drift_by_share() -> None:
    ref, cur = _three_columns()
    result = _drift(ref, cur)
    assert [c.drifted for c in result.columns.values()] == [True, False, False]
    assert result.share == pytest.approx(1 / 3)
    assert not result.drifted
    assert _drift(ref, cur, share=0.3).drifted


def test_dataset_drift_by_weighted_share() -> None:
    ref, cur = _three_columns()
    result = _drift(ref, cur, weights={"a": 3.0, "b": 1.0})
    assert result.weighted_share == pytest.approx(0.75)
    assert result.drifted
    light = _drift(ref, cur, weights={"a": 1.0, "b": 1.0, "c": 2.0})
    assert light.weighted_share == pytest.approx(0.25)
    assert not light.drifted


# --------------------------------------------------------------------------- bad input


def test_missing_column_is_reported_not_counted() -> None:
    ref, cur = _three_columns()
    result = _drift(ref, cur.drop("b"))
    b = result.columns["b"]
    assert (b.tested, b.drifted, b.method) == (False, False, None)
    assert b.note == "missing from the current data; not tested"
    assert result.share == pytest.approx(1 / 2)


def test_all_null_and_empty_windows() -> None:
    ref = pl.DataFrame({"x": RNG.normal(0, 1, 2000), "c": ["a", "b"] * 1000})
    nulls = pl.DataFrame({"x": [None, math.nan], "c": [None, None]}, schema=ref.schema)
    result = detect_drift(build_profile(ref), nulls)
    for column in result.columns.values():
        assert not column.tested
        assert column.note == "no values in the window; not tested"
        assert (column.current_rows, column.current_nulls) == (0, 2)
    assert (result.share, result.drifted) == (0.0, False)
    empty = detect_drift(build_profile(ref), ref.clear())
    assert [c.note for c in empty.columns.values()] == ["no values in the window; not tested"] * 2


def test_wrong_dtype_in_the_window_is_reported() -> None:
    ref = pl.DataFrame({"x": [1.0, 2.0, 3.0]})
    column = _drift(ref, pl.DataFrame({"x": ["a", "b"]})).columns["x"]
    assert not column.tested
    assert "expected a numeric column (as in the reference), got String" in column.note


def test_constant_columns() -> None:
    ref = pl.DataFrame({"x": [5.0] * 3000})
    same = _drift(ref, pl.DataFrame({"x": [5.0] * 100})).columns["x"]
    assert (same.method, same.statistic, same.drifted) == ("jensenshannon", 0.0, False)
    moved = _drift(ref, pl.DataFrame({"x": [5.0 + i / 100 for i in range(100)]})).columns["x"]
    expected = _scipy_wasserstein_normed(np.full(3000, 5.0), 5.0 + np.arange(100) / 100)
    assert moved.method == "wasserstein"
    assert moved.statistic == pytest.approx(expected, rel=1e-9)
    assert moved.drifted
    small = _drift(pl.DataFrame({"x": [1.0] * 50}), pl.DataFrame({"x": [1.0] * 20})).columns["x"]
    assert (small.method, small.p_value, small.drifted) == ("z", 1.0, False)


def test_categories_on_one_side_only() -> None:
    ref = pl.DataFrame({"c": ["a"] * 300 + ["b"] * 300 + ["gone"] * 100})
    cur = pl.DataFrame({"c": ["a"] * 200 + ["b"] * 200 + ["fresh"] * 5})
    column = _drift(ref, cur).columns["c"]
    assert column.method == "chisquare"
    assert column.new_categories == ("fresh",)
    assert (column.statistic, column.p_value, column.drifted) == (math.inf, 0.0, True)
    data = detect_drift(build_profile(ref), cur).to_dict()
    assert data["columns"]["c"]["statistic"] is None
    json.dumps(data, allow_nan=False)


def test_few_valued_numeric_column_lists_new_values() -> None:
    ref = pl.DataFrame({"tier": [0, 1, 2, 3] * 500})
    cur = pl.DataFrame({"tier": [0, 1, 2, 3, 7] * 100})
    column = _drift(ref, cur).columns["tier"]
    assert column.method == "jensenshannon"
    assert column.new_categories == ("7.0",)
    p = np.array([0.25, 0.25, 0.25, 0.25, 0.0])
    assert column.statistic == pytest.approx(scipy_distance.jensenshannon(p, np.full(5, 0.2)))


def test_window_of_another_kind_is_reported() -> None:
    ref = pl.DataFrame({"c": ["a", "b"] * 10})
    cur = pl.DataFrame({"c": [[1], [2]]})
    column = _drift(ref, cur).columns["c"]
    assert not column.tested
    assert column.note == "expected categories (as in the reference), got List(Int64); not tested"
