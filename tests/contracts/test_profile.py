"""Column profiles for the report's charts: histograms of numbers, top values of the rest."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
from hypothesis import example, given, settings
from hypothesis import strategies as st

from shipyard.contracts._profile import profile, profile_series


def test_numbers_fall_into_twenty_equal_bins_from_min_to_max() -> None:
    frame = pl.LazyFrame({"x": [float(v) for v in range(100)]})

    summary = profile(frame, ["x"])["x"]

    assert summary["kind"] == "numeric"
    assert summary["edges"][0] == 0.0 and summary["edges"][-1] == 99.0
    assert len(summary["edges"]) == 21
    assert summary["counts"] == [5] * 20
    assert summary["nulls"] == 0 and summary["rows"] == 100
    assert "unit" not in summary


def test_bin_counts_add_up_to_the_non_null_finite_rows() -> None:
    series = pl.Series("amount", [-5.0, 1.0, 2.5, None, 1e9, None, float("nan"), float("inf")])

    summary = profile_series(series)

    assert sum(summary["counts"]) == 4
    assert (summary["rows"], summary["nulls"], summary["nonfinite"]) == (8, 2, 2)
    assert summary["counts"][0] == 3  # -5, 1 and 2.5 share the first bin next to 1e9
    assert summary["counts"][-1] == 1  # the maximum lands in the last bin
    assert summary["edges"][0] == -5.0 and summary["edges"][-1] == 1e9


def test_one_distinct_value_sits_in_one_bin_inside_the_range() -> None:
    summary = profile_series(pl.Series("n", [7, 7, 7], dtype=pl.Int64))

    assert summary["edges"][0] < 7 < summary["edges"][-1]
    assert sorted(summary["counts"]) == [0] * 19 + [3]


def test_empty_and_all_null_columns_have_no_bins_and_no_top_values() -> None:
    frame = pl.LazyFrame(
        {"x": [None, None], "s": [None, None], "untyped": [None, None]},
        schema={"x": pl.Float64, "s": pl.String, "untyped": pl.Null},
    )

    all_null = profile(frame, ["x", "s", "untyped"])
    empty = profile(frame.head(0), ["x", "s"])

    assert all_null["x"] == {
        "kind": "numeric",
        "edges": [],
        "counts": [],
        "nulls": 2,
        "rows": 2,
        "nonfinite": 0,
    }
    assert all_null["s"] == {
        "kind": "categorical",
        "top": [],
        "other": 0,
        "distinct": 0,
        "nulls": 2,
        "rows": 2,
    }
    assert all_null["untyped"]["nulls"] == 2
    assert empty["x"]["counts"] == [] and empty["x"]["rows"] == 0
    assert empty["s"]["top"] == [] and empty["s"]["rows"] == 0


def test_top_values_are_sorted_by_count_then_value_and_the_rest_is_counted() -> None:
    values = [f"v{i:02d}" for i in range(12) for _ in range(i + 1)] + ["a", "b", None]
    summary = profile_series(pl.Series("s", values))

    counts = [count for _, count in summary["top"]]
    assert counts == sorted(counts, reverse=True)
    assert summary["top"][:3] == [["v11", 12], ["v10", 11], ["v09", 10]]
    assert len(summary["top"]) == 10
    assert summary["other"] == 2 + 1 + 1 + 1  # v01 (2), v00 (1), a, b
    assert (summary["distinct"], summary["nulls"], summary["rows"]) == (14, 1, 81)
    assert sum(counts) + summary["other"] + summary["nulls"] == summary["rows"]


def test_ties_break_by_value_and_empty_text_is_a_value() -> None:
    summary = profile_series(pl.Series("c", ["b", "", "a", "b", "a", ""]))

    assert summary["top"] == [["", 2], ["a", 2], ["b", 2]]


def test_booleans_and_categoricals_are_categorical() -> None:
    frame = pl.LazyFrame({"flag": [True, False, True], "cat": ["x", "y", "x"]})
    frame = frame.with_columns(pl.col("cat").cast(pl.Categorical))

    summary = profile(frame, ["flag", "cat"])

    assert summary["flag"]["top"] == [[True, 2], [False, 1]]
    assert summary["cat"]["top"] == [["x", 2], ["y", 1]]


def test_times_are_binned_as_epoch_seconds() -> None:
    stamps = [dt.datetime(2024, 1, 1, tzinfo=dt.UTC), dt.datetime(2024, 1, 2, tzinfo=dt.UTC)]
    frame = pl.LazyFrame({"at": stamps, "day": [dt.date(2024, 1, 1), dt.date(2024, 1, 2)]})

    summary = profile(frame, ["at", "day"])

    for name in ("at", "day"):
        assert summary[name]["unit"] == "epoch seconds (UTC)"
        assert summary[name]["edges"][0] == 1_704_067_200.0
        assert summary[name]["edges"][-1] == 1_704_153_600.0
        assert summary[name]["counts"][0] == 1 and summary[name]["counts"][-1] == 1


def test_only_the_first_sample_rows_are_read_and_missing_columns_are_skipped() -> None:
    frame = pl.LazyFrame({"x": list(range(1000))})

    summary = profile(frame, ["x", "not_there"], sample_rows=100)

    assert list(summary) == ["x"]
    assert summary["x"]["rows"] == 100 and summary["x"]["edges"][-1] == 99.0


def test_profiles_of_odd_types_are_strict_json() -> None:
    frame = pl.LazyFrame(
        {
            "nested": [[1], [2], None],
            "blob": [b"\x00", b"\x01", b"\x00"],
            "span": [dt.timedelta(seconds=1), dt.timedelta(seconds=3), None],
            "clock": [dt.time(0, 0, 1), dt.time(0, 0, 2), dt.time(0, 0, 3)],
        }
    )

    summary = profile(frame, ["nested", "blob", "span", "clock"])

    json.dumps(summary, allow_nan=False)
    assert summary["nested"]["top"] == [["[1]", 1], ["[2]", 1]]
    assert summary["blob"]["top"] == [["00", 2], ["01", 1]]
    assert (summary["span"]["edges"][0], summary["span"]["unit"]) == (1.0, "seconds")
    assert summary["clock"]["edges"][-1] == 3.0


@settings(max_examples=60, deadline=None)
@example([-1.7e308, 1.7e308, 0.0])  # the range overflows float64
@example([5e-324, 1e-323])  # the range is two subnormals
@given(
    st.lists(
        st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True, width=64)), max_size=60
    )
)
def test_every_finite_value_is_counted_once(values: list[float | None]) -> None:
    summary = profile_series(pl.Series("x", values, dtype=pl.Float64))

    finite = [v for v in values if v is not None and abs(v) != float("inf") and v == v]
    assert sum(summary["counts"]) == len(finite)
    assert summary["nulls"] + summary["nonfinite"] + len(finite) == len(values)
    json.dumps(summary, allow_nan=False)


def test_a_column_named_count_is_profiled() -> None:
    from shipyard.contracts._profile import profile

    frame = pl.DataFrame({"count": [1, 2, 3], "n": ["a", "b", "a"]}).lazy()
    profiles = profile(frame, ["count", "n"])
    assert sum(profiles["count"]["counts"]) == 3
    assert profiles["n"]["top"] == [["a", 2], ["b", 1]]
