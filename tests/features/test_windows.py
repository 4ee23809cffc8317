"""Trailing-window aggregations: the same answers as a plain loop, at every window edge."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.errors import DataInputError, FeatureDefinitionError
from shipyard.features.windows import window_aggregates

T0 = datetime(2024, 1, 1)
CLOSED = ("right", "left", "both", "none")
ALL = ("count", "sum", "mean", "max", "min", "std")


def events(*rows: tuple[Any, ...], unit: Any = "us") -> pl.DataFrame:
    """Rows of (customer, seconds after T0, amount)."""
    return pl.DataFrame(
        {
            "customer": [r[0] for r in rows],
            "ts": [T0 + timedelta(seconds=r[1]) for r in rows],
            "amount": [r[2] for r in rows],
        },
        schema={"customer": pl.Int64, "ts": pl.Datetime(unit), "amount": pl.Float64},
    )


# -- the reference: one loop per row, no Polars ------------------------------------------


def inside(age: int, width: int, closed: str) -> bool:
    """Whether an event ``age`` seconds older than the current one is in its window."""
    after_start = age <= width if closed in ("left", "both") else age < width
    up_to_now = age >= 0 if closed in ("right", "both") else age > 0
    return after_start and up_to_now


def aggregate(values: list[Any], agg: str, zero: float) -> Any:
    present = [v for v in values if v is not None]
    if agg == "count":
        return len(present)
    if agg == "sum":
        return sum(present, zero)
    if agg == "std":
        return statistics.stdev(present) if len(present) >= 2 else None
    if not present:
        return None
    return {"mean": statistics.fmean, "max": max, "min": min}[agg](present)


def reference(
    rows: list[dict[str, Any]],
    keys: Sequence[str],
    windows: dict[str, int],
    aggregations: dict[str, Sequence[str]],
    closed: str,
) -> dict[str, list[Any]]:
    """Each output column, computed row by row; ``rows`` carry ``ts`` in seconds."""
    out: dict[str, list[Any]] = {}
    for label, width in windows.items():
        for column, aggs in aggregations.items():
            for agg in aggs:
                name = f"count_{label}" if column == "*" else f"{column}_{agg}_{label}"
                out[name] = []
        for row in rows:
            members = [
                other
                for other in rows
                if all(other[k] == row[k] for k in keys)
                and inside(row["ts"] - other["ts"], width, closed)
            ]
            for column, aggs in aggregations.items():
                if column == "*":
                    out[f"count_{label}"].append(len(members))
                    continue
                zero = 0 if column == "n" else 0.0
                for agg in aggs:
                    value = aggregate([m[column] for m in members], agg, zero)
                    out[f"{column}_{agg}_{label}"].append(value)
    return out


def assert_close(actual: list[Any], expected: list[Any], name: str) -> None:
    assert len(actual) == len(expected), name
    for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
        if a is None or e is None:
            assert a is e, f"{name}[{i}]: got {a!r}, expected {e!r}"
        else:
            assert math.isclose(a, e, rel_tol=1e-9, abs_tol=1e-6), f"{name}[{i}]: {a!r} != {e!r}"


WINDOWS = {"1s": 1, "2s": 2, "3s": 3, "5s": 5, "4s": 4}
row_strategy = st.fixed_dictionaries(
    {
        "k": st.sampled_from([0, 1, 2, 3, None]),
        "ts": st.integers(0, 12),
        "x": st.none() | st.floats(-100, 100, allow_nan=False),
        "n": st.none() | st.integers(-50, 50),
    }
)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(row_strategy, max_size=30),
    labels=st.lists(st.sampled_from(sorted(WINDOWS)), min_size=1, max_size=3, unique=True),
    closed=st.sampled_from(CLOSED),
)
def test_matches_a_row_by_row_reference(
    rows: list[dict[str, Any]], labels: list[str], closed: Any
) -> None:
    frame = pl.DataFrame(
        {
            "k": [r["k"] for r in rows],
            "ts": [T0 + timedelta(seconds=r["ts"]) for r in rows],
            "x": [r["x"] for r in rows],
            "n": [r["n"] for r in rows],
        },
        schema={"k": pl.Int64, "ts": pl.Datetime("us"), "x": pl.Float64, "n": pl.Int32},
    )
    aggregations = {"*": ["count"], "x": list(ALL), "n": list(ALL)}
    # "4s" is given as a timedelta: its label must come out as "4s".
    windows = [timedelta(seconds=4) if label == "4s" else label for label in labels]

    out = window_aggregates(
        frame, by="k", timestamp="ts", windows=windows, aggregations=aggregations, closed=closed
    )

    expected = reference(rows, ["k"], {w: WINDOWS[w] for w in labels}, aggregations, closed)
    assert out.columns == [*frame.columns, *expected]
    assert out.select(frame.columns).equals(frame)
    for name, values in expected.items():
        assert_close(out[name].to_list(), values, name)


# -- window edges ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("closed", "count", "total"),
    [("right", 1, 2.0), ("left", 1, 1.0), ("both", 2, 3.0), ("none", 0, 0.0)],
)
def test_an_event_exactly_one_window_earlier(closed: Any, count: int, total: float) -> None:
    frame = events((7, 0, 1.0), (7, 3600, 2.0))

    out = window_aggregates(
        frame,
        by="customer",
        timestamp="ts",
        windows=["1h"],
        aggregations={"*": ["count"], "amount": ["sum"]},
        closed=closed,
    )

    assert out.row(1, named=True)["count_1h"] == count
    assert out.row(1, named=True)["amount_sum_1h"] == total


@pytest.mark.parametrize(
    ("closed", "counts"),
    [
        ("right", [1, 4, 4, 4]),
        ("left", [0, 1, 1, 1]),
        ("both", [1, 4, 4, 4]),
        ("none", [0, 1, 1, 1]),
    ],
)
def test_events_at_the_same_time_all_see_each_other_or_none_do(
    closed: Any, counts: list[int]
) -> None:
    frame = events((1, 0, 1.0), (1, 60, 2.0), (1, 60, 3.0), (1, 60, 4.0))

    out = window_aggregates(
        frame,
        by="customer",
        timestamp="ts",
        windows=["1h"],
        aggregations={"*": ["count"]},
        closed=closed,
    )

    assert out["count_1h"].to_list() == counts


@pytest.mark.parametrize("closed", CLOSED)
def test_the_first_event_of_an_entity(closed: Any) -> None:
    frame = events((1, 0, 5.0), (2, 10, 3.0))

    out = window_aggregates(
        frame,
        by="customer",
        timestamp="ts",
        windows=["1h"],
        aggregations={"*": ["count"], "amount": list(ALL)},
        closed=closed,
    )

    first = out.row(0, named=True)
    if closed in ("right", "both"):
        assert (first["count_1h"], first["amount_sum_1h"], first["amount_mean_1h"]) == (1, 5.0, 5.0)
        assert (first["amount_max_1h"], first["amount_min_1h"]) == (5.0, 5.0)
    else:
        assert (first["count_1h"], first["amount_sum_1h"], first["amount_mean_1h"]) == (
            0,
            0.0,
            None,
        )
        assert (first["amount_max_1h"], first["amount_min_1h"]) == (None, None)
    assert first["amount_std_1h"] is None


def test_nulls_are_skipped_and_an_all_null_window_sums_to_zero() -> None:
    frame = events((1, 0, None), (1, 10, None), (1, 20, 4.0), (1, 30, 8.0))

    out = window_aggregates(
        frame,
        by="customer",
        timestamp="ts",
        windows=["1h"],
        aggregations={"*": ["count"], "amount": list(ALL)},
    )

    assert out.drop("customer", "ts", "amount").rows() == [
        (1, 0, 0.0, None, None, None, None),
        (2, 0, 0.0, None, None, None, None),
        (3, 1, 4.0, 4.0, 4.0, 4.0, None),
        (4, 2, 12.0, 6.0, 8.0, 4.0, pytest.approx(math.sqrt(8))),
    ]


def test_output_dtypes() -> None:
    frame = pl.DataFrame(
        {
            "k": [1, 1],
            "ts": [T0, T0],
            "i": pl.Series([2_000_000_000, 2_000_000_000], dtype=pl.Int32),
            "f": pl.Series([1.5, 2.5], dtype=pl.Float32),
        }
    )

    out = window_aggregates(
        frame, by="k", timestamp="ts", windows=["1h"], aggregations={"i": ALL, "f": ALL}
    )

    assert out.schema["i_sum_1h"] == pl.Int64
    assert out["i_sum_1h"].to_list() == [4_000_000_000, 4_000_000_000]
    assert {n: out.schema[f"{n}_1h"] for n in ("i_count", "i_mean", "i_std", "i_max", "i_min")} == {
        "i_count": pl.Int64,
        "i_mean": pl.Float64,
        "i_std": pl.Float64,
        "i_max": pl.Int32,
        "i_min": pl.Int32,
    }
    assert [out.schema[f"f_{a}_1h"] for a in ALL] == [
        pl.Int64,
        *[pl.Float64] * 2,
        *[pl.Float32] * 2,
        pl.Float64,
    ]


# -- keys, times and frames ----------------------------------------------------------------


def test_several_key_columns_and_null_keys_form_their_own_groups() -> None:
    frame = pl.DataFrame(
        {
            "country": ["fr", "fr", "de", None, None, "fr"],
            "customer": [1, 1, 1, 1, 1, None],
            "ts": [T0 + timedelta(minutes=m) for m in range(6)],
        }
    )

    out = window_aggregates(
        frame,
        by=["country", "customer"],
        timestamp="ts",
        windows=["1h"],
        aggregations={"*": ["count"]},
    )

    assert out["count_1h"].to_list() == [1, 2, 1, 1, 2, 1]


def test_one_day_is_24_hours_across_a_daylight_saving_change() -> None:
    # Paris moves its clocks forward on 2024-03-31: noon to noon is 23 hours.
    paris = [datetime(2024, 3, 30, 12), datetime(2024, 3, 31, 12)]
    frame = pl.DataFrame({"k": [1, 1], "ts": paris}).with_columns(
        pl.col("ts").dt.replace_time_zone("Europe/Paris")
    )

    out = window_aggregates(
        frame, by="k", timestamp="ts", windows=["1d", "24h", "23h"], aggregations={"*": ["count"]}
    )

    assert out["count_1d"].to_list() == [1, 2]
    assert out["count_24h"].to_list() == [1, 2]
    assert out["count_23h"].to_list() == [1, 1]


@pytest.mark.parametrize("unit", ["ms", "us", "ns"])
def test_every_time_unit_and_time_zone(unit: Any) -> None:
    frame = events((1, 0, 1.0), (1, 1800, 2.0), (1, 5400, 4.0), unit=unit).with_columns(
        pl.col("ts").dt.replace_time_zone("America/New_York")
    )

    out = window_aggregates(
        frame, by="customer", timestamp="ts", windows=["1h"], aggregations={"amount": ["sum"]}
    )

    assert out["amount_sum_1h"].to_list() == [1.0, 3.0, 4.0]
    assert out.schema["ts"] == pl.Datetime(unit, "America/New_York")


def test_date_timestamps_with_day_windows() -> None:
    days = [date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 2), date(2024, 1, 4)]
    frame = pl.DataFrame({"k": [1, 1, 1, 1], "day": days, "x": [1, 2, 3, 4]})

    out = window_aggregates(
        frame, by="k", timestamp="day", windows=["1d", "2d"], aggregations={"x": ["sum"]}
    )

    assert out["x_sum_1d"].to_list() == [1, 5, 5, 4]
    assert out["x_sum_2d"].to_list() == [1, 6, 6, 4]


def test_a_lazy_frame_gives_a_lazy_frame_with_the_same_rows() -> None:
    frame = events((1, 0, 1.0), (2, 30, 2.0), (1, 60, 3.0))
    kwargs: dict[str, Any] = {
        "by": "customer",
        "timestamp": "ts",
        "windows": ["1h"],
        "aggregations": {"amount": ["mean"]},
    }

    out = window_aggregates(frame.lazy(), **kwargs)

    assert isinstance(out, pl.LazyFrame)
    assert out.collect().equals(window_aggregates(frame, **kwargs))


def test_the_input_order_is_kept_including_ties() -> None:
    seconds = [50, 10, 50, 0, 10, 50, 30, 0]
    frame = events(*[(i % 3, s, float(i)) for i, s in enumerate(seconds)]).with_row_index("id")

    out = window_aggregates(
        frame, by="customer", timestamp="ts", windows=["25s"], aggregations={"amount": ["max"]}
    )

    assert out["id"].to_list() == list(range(len(seconds)))
    assert out.select(frame.columns).equals(frame)
    assert out["amount_max_25s"].to_list() == [6.0, 7.0, 5.0, 3.0, 7.0, 5.0, 6.0, 7.0]


@pytest.mark.parametrize(
    ("window", "label"),
    [
        (timedelta(hours=1), "1h"),
        (timedelta(minutes=90), "90m"),
        (timedelta(days=7), "7d"),
        (timedelta(seconds=45), "45s"),
        (timedelta(milliseconds=1500), "1500ms"),
        ("30m", "30m"),
        ("1h30m", "1h30m"),
    ],
)
def test_column_names(window: Any, label: str) -> None:
    frame = events((1, 0, 1.0))

    out = window_aggregates(
        frame,
        by="customer",
        timestamp="ts",
        windows=[window],
        aggregations={"*": ["count"], "amount": ["sum"]},
        prefix="cust_",
    )

    assert out.columns[3:] == [f"cust_count_{label}", f"cust_amount_sum_{label}"]


# -- bad input -------------------------------------------------------------------------------

GOOD: dict[str, Any] = {
    "by": "customer",
    "timestamp": "ts",
    "windows": ["1h"],
    "aggregations": {"amount": ["sum"]},
}


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (
            {"aggregations": {"amount": ["median"]}},
            FeatureDefinitionError,
            r"Unknown aggregation 'median' for 'amount'\. Known: count, sum, mean, max, min, std\.",
        ),
        (
            {"aggregations": {"amount": "sum"}},
            FeatureDefinitionError,
            r"a list of aggregations.*got 'sum'",
        ),
        (
            {"aggregations": {"*": ["count", "sum"]}},
            FeatureDefinitionError,
            r"'\*' counts events and accepts only 'count', got 'sum'",
        ),
        ({"aggregations": {}}, FeatureDefinitionError, r"No aggregations"),
        (
            {"aggregations": {"amont": ["sum"]}},
            DataInputError,
            r"No column 'amont'\. The frame has: 'customer', 'ts', 'amount', 'name', "
            r"'amount_sum_2h'\.",
        ),
        ({"by": ["customer", "shop"]}, DataInputError, r"No column 'shop'\. The frame has:"),
        ({"by": []}, FeatureDefinitionError, r"by names no column"),
        ({"timestamp": "time"}, DataInputError, r"No column 'time'"),
        (
            {"timestamp": "amount"},
            DataInputError,
            r"timestamp column 'amount' must be a Datetime or a Date, got Float64",
        ),
        (
            {"aggregations": {"name": ["max"]}},
            DataInputError,
            r"'max' needs a numeric column; 'name' is String",
        ),
        ({"windows": []}, FeatureDefinitionError, r"No windows"),
        ({"windows": "1h"}, FeatureDefinitionError, r"windows must be a list.*got '1h'"),
        ({"windows": ["0h"]}, FeatureDefinitionError, r"Window '0h' is not a positive duration"),
        ({"windows": [timedelta(0)]}, FeatureDefinitionError, r"is not a positive duration"),
        ({"windows": [timedelta(hours=-1)]}, FeatureDefinitionError, r"is not a positive duration"),
        (
            {"windows": ["1mo"]},
            FeatureDefinitionError,
            r"Window '1mo' is not a positive duration.*'7d'",
        ),
        ({"windows": ["-1h"]}, FeatureDefinitionError, r"Window '-1h' is not a positive duration"),
        ({"windows": [3600]}, FeatureDefinitionError, r"Window 3600 is not a positive duration"),
        (
            {"windows": ["1500us"]},
            FeatureDefinitionError,
            r"Window '1500us' is finer than the resolution of 'ts' \(ms\)",
        ),
        (
            {"windows": ["1h", timedelta(hours=1)]},
            FeatureDefinitionError,
            r"'amount_sum_1h' would be produced twice",
        ),
        (
            {"closed": "middle"},
            FeatureDefinitionError,
            r"closed must be one of 'right', 'left', 'both', 'none', got 'middle'",
        ),
        (
            {"windows": ["2h"]},
            FeatureDefinitionError,
            r"'amount_sum_2h' already exists in the frame; pass another prefix=",
        ),
    ],
)
def test_bad_input_is_refused_with_the_fix(
    change: dict[str, Any], error: type[Exception], message: str
) -> None:
    frame = events((1, 0, 1.0), unit="ms").with_columns(name=pl.lit("a"), amount_sum_2h=pl.lit(0.0))

    with pytest.raises(error, match=message):
        window_aggregates(frame, **{**GOOD, **change})


NULL_TIMES = pl.DataFrame({"customer": [1, 1, 2], "ts": [T0, None, None], "amount": [1.0, 2, 3]})
NULL_MESSAGE = r"'ts' has 2 rows with a null time\. .*drop or fill those rows first"


def test_null_timestamps_are_refused() -> None:
    with pytest.raises(DataInputError, match=NULL_MESSAGE):
        window_aggregates(NULL_TIMES, **GOOD)


def test_null_timestamps_in_a_lazy_frame_are_refused_when_it_is_collected() -> None:
    out = window_aggregates(NULL_TIMES.lazy(), **GOOD)

    with pytest.raises(DataInputError, match=NULL_MESSAGE):
        out.collect()
