"""Reference profiles: the statistics kept per column, and their JSON round trip."""

from __future__ import annotations

import json
import math
from datetime import date

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.errors import MonitoringError
from shipyard.monitoring.profile import (
    FORMAT_VERSION,
    QUANTILE_COUNT,
    QUANTILE_LEVELS,
    ReferenceProfile,
    build_profile,
    number_key,
)


def _frame(rows: int = 5000, seed: int = 1) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "amount": rng.lognormal(3.0, 1.0, rows),
            "age": rng.integers(18, 90, rows),
            "channel": rng.choice(["web", "app", "pos"], rows).tolist(),
            "flag": rng.random(rows) < 0.3,
            "tier": rng.integers(1, 4, rows),
        }
    )


def test_numeric_column_statistics_match_numpy() -> None:
    frame = _frame()
    column = build_profile(frame).columns["amount"]
    values = frame["amount"].to_numpy()
    ordered = np.sort(values)
    assert (column.kind, column.dtype, column.count, column.nulls) == (
        "numeric",
        "Float64",
        5000,
        0,
    )
    assert column.distinct == np.unique(values).size
    assert column.mean == pytest.approx(values.mean(), rel=1e-12)
    assert column.std == pytest.approx(values.std(), rel=1e-12)
    assert (column.min, column.max) == (ordered[0], ordered[-1])
    assert len(column.quantiles) == QUANTILE_COUNT == len(QUANTILE_LEVELS)
    positions = np.floor(np.asarray(QUANTILE_LEVELS) * values.size).astype(int)
    assert column.quantiles == tuple(ordered[positions])
    assert column.sample is None
    assert column.frequencies is None


def test_psi_bins_are_the_reference_deciles() -> None:
    frame = _frame()
    column = build_profile(frame).columns["amount"]
    values = frame["amount"].to_numpy()
    expected = np.unique(np.quantile(values, np.linspace(0, 1, 11)[1:-1]))
    assert column.psi_edges == tuple(expected)
    assert column.psi_counts == (500,) * 10


def test_few_distinct_numbers_keep_frequencies_and_categories_are_text() -> None:
    profile = build_profile(_frame(rows=2000))
    tier, channel, flag = (profile.columns[n] for n in ("tier", "channel", "flag"))
    assert tier.kind == "numeric"
    assert tier.frequencies is not None
    assert set(tier.frequencies) == {"1.0", "2.0", "3.0"}
    assert sum(tier.frequencies.values()) == 2000
    assert channel.kind == flag.kind == "categorical"
    assert set(channel.frequencies or {}) == {"web", "app", "pos"}
    assert set(flag.frequencies or {}) == {"true", "false"}
    assert channel.mean is None
    assert channel.quantiles == ()


def test_categorical_argument_turns_a_number_into_categories() -> None:
    profile = build_profile(_frame(rows=100), categorical=["tier"])
    tier = profile.columns["tier"]
    assert tier.kind == "categorical"
    assert set(tier.frequencies or {}) == {"1", "2", "3"}


def test_nulls_nan_and_inf_are_not_values() -> None:
    frame = pl.DataFrame(
        {
            "x": [1.0, None, math.nan, math.inf, -math.inf, 2.0],
            "c": ["a", None, "b", "a", None, "a"],
        }
    )
    profile = build_profile(frame)
    x, c = profile.columns["x"], profile.columns["c"]
    assert (x.count, x.nulls, x.distinct, x.min, x.max) == (2, 4, 2, 1.0, 2.0)
    assert x.sample == (1.0, 2.0)
    assert (c.count, c.nulls, c.distinct) == (4, 2, 2)
    assert c.frequencies == {"a": 3, "b": 1}
    assert sorted(c.sample or ()) == ["a", "a", "a", "b"]


def test_sample_kept_up_to_1000_values() -> None:
    frame = pl.DataFrame({"x": np.arange(1001.0), "y": [*range(1000), None]})
    profile = build_profile(frame)
    assert profile.columns["x"].sample is None
    assert profile.columns["y"].sample == tuple(float(v) for v in range(1000))


def test_all_null_and_empty_columns() -> None:
    profile = build_profile(pl.DataFrame({"x": [None, None]}, schema={"x": pl.Float64}))
    x = profile.columns["x"]
    assert (x.count, x.nulls, x.distinct, x.mean, x.quantiles) == (0, 2, 0, None, ())
    empty = build_profile(pl.DataFrame(schema={"x": pl.Int64, "c": pl.String}))
    assert empty.rows == 0
    assert empty.columns["c"].frequencies == {}


def test_columns_and_lazy_input() -> None:
    profile = build_profile(_frame(rows=50).lazy(), columns=["age", "channel"])
    assert list(profile.columns) == ["age", "channel"]
    assert profile.rows == 50


def test_missing_or_unsupported_column_is_a_clear_error() -> None:
    with pytest.raises(MonitoringError, match="'nope' is not in the reference frame"):
        build_profile(_frame(rows=10), columns=["nope"])
    frame = pl.DataFrame({"day": [date(2026, 1, 1)]})
    with pytest.raises(MonitoringError, match="dtype Date, which drift cannot compare"):
        build_profile(frame)


def test_json_round_trip() -> None:
    profile = build_profile(_frame(rows=700))
    text = profile.to_json()
    assert json.loads(text)["version"] == FORMAT_VERSION
    again = ReferenceProfile.from_json(text)
    assert again == profile
    assert ReferenceProfile.from_dict(profile.to_dict()) == profile


def test_damaged_json_is_a_clear_error() -> None:
    with pytest.raises(MonitoringError, match="not valid JSON"):
        ReferenceProfile.from_json("{")
    with pytest.raises(MonitoringError, match="expected a reference profile"):
        ReferenceProfile.from_json(json.dumps({"format": "other", "version": 1}))
    data = build_profile(_frame(rows=10)).to_dict()
    del data["columns"]["age"]["count"]
    with pytest.raises(MonitoringError, match="damaged"):
        ReferenceProfile.from_dict(data)


def test_number_key() -> None:
    assert [number_key(v) for v in (1, 2.5, -0.0)] == ["1.0", "2.5", "-0.0"]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e9, 1e9) | st.none(), max_size=40))
def test_profile_counts_and_round_trip_any_column(values: list[float | None]) -> None:
    frame = pl.DataFrame({"x": values}, schema={"x": pl.Float64})
    profile = build_profile(frame)
    column = profile.columns["x"]
    clean = [v for v in values if v is not None and math.isfinite(v)]
    assert column.count == len(clean)
    assert column.nulls == len(values) - len(clean)
    assert column.distinct == len(set(clean))
    assert ReferenceProfile.from_json(profile.to_json()) == profile


def test_unknown_column_kind_is_damage() -> None:
    data = build_profile(_frame(rows=10)).to_dict()
    data["columns"]["age"]["kind"] = "text"
    with pytest.raises(MonitoringError, match="damaged.*'numeric' or 'categorical'"):
        ReferenceProfile.from_dict(data)
