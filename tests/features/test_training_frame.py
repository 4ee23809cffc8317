"""Point-in-time training sets: for each entity row at ``t`` and each view, the latest
feature row of that entity with ``t - ttl <= event time <= t`` (the later created time
winning ties), else nulls; every entity row back, in input order, with all its columns."""

from __future__ import annotations

import datetime as dt
import importlib
import random
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipyard import Entity, FeatureStore, FeatureView, RequestFeatures, pipeline, step
from shipyard.core.project import Project
from shipyard.errors import DataInputError, FeatureDefinitionError, FeatureNotFoundError
from shipyard.features import Source, window_aggregates
from tests.features.conftest import T0, MakeProject, OpenStore, at

CUSTOMER = Entity("customer", join_keys={"customer_id": pl.Int64})
MERCHANT = Entity("merchant", join_keys={"merchant_id": pl.String})
HOUR = dt.timedelta(hours=1)


# -- helpers -----------------------------------------------------------------------------


def history(*rows: tuple[int, float, float, float]) -> pl.DataFrame:
    """Feature rows of (customer_id, minute of the event, x, second of creation)."""
    return pl.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "ts": [at(r[1]) for r in rows],
            "created": [at(0, seconds=r[3]) for r in rows],
            "x": [r[2] for r in rows],
        },
        schema={
            "customer_id": pl.Int64,
            "ts": pl.Datetime("us"),
            "created": pl.Datetime("us"),
            "x": pl.Float64,
        },
    )


def stats_view(
    frame: pl.DataFrame, *, ttl: dt.timedelta | None = None, name: str = "stats", **kwargs: Any
) -> FeatureView:
    options: dict[str, Any] = {
        "timestamp": "ts",
        "created_timestamp": "created",
        "schema": {"x": pl.Float64},
    }
    options.update(kwargs)
    return FeatureView(
        name,
        entities=[CUSTOMER],
        source=Source.frame(frame, name=f"{name}_rows"),
        ttl=ttl,
        **options,
    )


def entity_rows(*rows: tuple[int, dt.datetime]) -> pl.DataFrame:
    """Entity rows of (customer_id, time)."""
    return pl.DataFrame(
        {"customer_id": [r[0] for r in rows], "event_timestamp": [r[1] for r in rows]},
        schema={"customer_id": pl.Int64, "event_timestamp": pl.Datetime("us")},
    )


def xs(store: FeatureStore, rows: pl.DataFrame, feature: str = "stats:x") -> list[Any]:
    return store.training_frame(rows, [feature])[feature.partition(":")[2]].to_list()


@pytest.fixture
def tiny_projects() -> dict[int, Project]:
    """Projects by partition size, made on demand (shared by a Hypothesis test's examples)."""
    return {}


@pytest.fixture(params=[None, 2], ids=["one-partition", "partitions-of-2-rows"])
def proj(request: pytest.FixtureRequest, project: Project, make_project: MakeProject) -> Project:
    """The test project (one history partition) or one cutting history every 2 rows."""
    return project if request.param is None else make_project(request.param)


# -- ties, ttl, the future, missing entities ------------------------------------------


@pytest.mark.parametrize("order", ["created-ascending", "created-descending", "shuffled"])
def test_the_later_created_row_wins_a_tie_on_event_time(
    proj: Project, open_store: OpenStore, order: str
) -> None:
    rows = [(1, 10, 1.0, 1), (1, 10, 2.0, 2), (1, 10, 3.0, 3), (1, 10, 4.0, 4)]
    if order == "created-descending":
        rows.reverse()
    elif order == "shuffled":
        rows = [rows[2], rows[0], rows[3], rows[1]]
    frame = history((1, 5, 0.5, 50), *rows, (1, 20, 9.0, 0), (2, 10, 7.0, 9), (2, 10, 8.0, 8))
    store = open_store([stats_view(frame)], proj)

    got = xs(store, entity_rows((1, at(7)), (1, at(10)), (1, at(15)), (1, at(20)), (2, at(10))))

    # at 10 the row created last (4.0) wins although an earlier-created row comes later in
    # the input; a row created earlier but with a later event time (9.0 at 20) still wins
    assert got == [0.5, 4.0, 4.0, 9.0, 7.0]


def test_ties_without_a_created_timestamp_still_give_one_row_per_entity_row(
    proj: Project, open_store: OpenStore
) -> None:
    frame = history((1, 10, 1.0, 0), (1, 10, 1.0, 0), (1, 12, 2.0, 0))
    view = stats_view(frame, created_timestamp=None)
    store = open_store([view], proj)

    out = store.training_frame(entity_rows((1, at(11)), (1, at(12))), ["stats:x"])

    assert out["x"].to_list() == [1.0, 2.0]


@pytest.mark.parametrize("ttl", [HOUR, dt.timedelta(minutes=90, microseconds=1)])
def test_the_ttl_boundary_is_inclusive_and_one_microsecond_more_is_too_old(
    proj: Project, open_store: OpenStore, ttl: dt.timedelta
) -> None:
    frame = history((1, 0, 1.0, 0), (2, 30, 2.0, 0), (3, 0, 3.0, 0), (3, 1, 3.5, 0))
    store = open_store([stats_view(frame, ttl=ttl)], proj)
    edge = T0 + ttl  # t - ttl == the event time of the rows at minute 0
    micro = dt.timedelta(microseconds=1)
    rows = entity_rows(
        (1, T0),  # the event time itself
        (1, edge),  # exactly ttl old: used
        (1, edge + micro),  # one microsecond older than the ttl allows: null
        (2, edge + dt.timedelta(minutes=30)),  # exactly ttl old
        (2, edge + dt.timedelta(minutes=30) + micro),
        (3, edge + micro),  # the row at 0 is too old but the row at 1 is not
        (3, edge + dt.timedelta(minutes=1) + micro),  # both too old
    )

    assert xs(store, rows) == [1.0, 1.0, None, 2.0, None, 3.5, None]


def test_rows_before_any_feature_row_and_unknown_entities_get_nulls_and_are_kept(
    proj: Project, open_store: OpenStore
) -> None:
    frame = history((1, 10, 1.0, 0), (2, 20, 2.0, 0), (4, 0, 4.0, 0))
    store = open_store([stats_view(frame)], proj)
    rows = entity_rows(
        (1, at(-60)),  # before every feature row
        (1, at(9)),  # before its entity's first row, after another entity's
        (3, at(30)),  # an entity without feature rows, between two that have some
        (5, at(30)),  # one beyond every known key
        (2, at(19, seconds=59, us=999_999)),
        (1, at(10)),
    )

    out = store.training_frame(rows, ["stats:x"])

    assert out.columns == ["customer_id", "event_timestamp", "x"]
    assert out.select("customer_id", "event_timestamp").equals(rows)
    assert out["x"].to_list() == [None, None, None, None, None, 1.0]


def test_a_row_from_the_future_is_never_used_and_one_at_the_same_time_is(
    proj: Project, open_store: OpenStore
) -> None:
    frame = history((1, 10, 1.0, 0), (1, 20, 2.0, 0), (1, 30, 3.0, 0), (2, 20, 5.0, 0))
    store = open_store([stats_view(frame, ttl=HOUR)], proj)
    just_before = at(20) - dt.timedelta(microseconds=1)
    rows = entity_rows((1, at(9)), (1, at(10)), (1, just_before), (1, at(20)), (2, just_before))

    assert xs(store, rows) == [None, 1.0, 1.0, 2.0, None]


@pytest.mark.parametrize(
    ("entity_ns", "expected"),
    [
        (100, [1.0, 1.0]),  # before both feature rows (at 500 ns and 1500 ns)
        (500, [2.0, 1.0]),  # the very same nanosecond as customer 1's row: used
        (999, [2.0, 1.0]),
        (1200, [2.0, 1.0]),  # the same microsecond as customer 2's row, 300 ns before it
        (1500, [2.0, 2.0]),
    ],
)
def test_nanosecond_times_never_join_the_future_and_join_the_same_instant(
    project: Project, open_store: OpenStore, entity_ns: int, expected: list[float]
) -> None:
    # Pandas and many files keep nanoseconds. Entity rows are often the very events the
    # features were computed from (a transaction and its own window aggregates), so both
    # sides carry the same sub-microsecond times.
    t = pl.lit(dt.datetime(2024, 1, 1, 10)).cast(pl.Datetime("ns"))
    hour_ns = 3_600_000_000_000
    features = pl.DataFrame(
        {
            "customer_id": [1, 1, 2, 2],
            "ns": [-hour_ns, 500, -hour_ns, 1500],
            "x": [1.0, 2.0, 1.0, 2.0],
        }
    ).select("customer_id", (t + pl.duration(nanoseconds=pl.col("ns"))).alias("ts"), "x")
    rows = pl.DataFrame({"customer_id": [1, 2]}).with_columns(
        event_timestamp=t + pl.duration(nanoseconds=entity_ns)
    )
    assert features.schema["ts"] == rows.schema["event_timestamp"] == pl.Datetime("ns")
    store = open_store([stats_view(features, created_timestamp=None)], project)

    assert xs(store, rows) == expected


# -- several views ---------------------------------------------------------------------


def test_two_views_of_two_entities_with_and_without_ttl_join_at_once(
    proj: Project, open_store: OpenStore
) -> None:
    spend = stats_view(
        history((1, 0, 10.0, 0), (1, 40, 11.0, 0), (2, 5, 20.0, 0)),
        ttl=dt.timedelta(minutes=30),
        name="spend",
    )
    risk_rows = pl.DataFrame(
        {
            "merchant": ["m1", "m1", "m2"],
            "ts": [at(0), at(50), at(-1000)],
            "risk": [0.1, 0.9, 0.5],
        }
    )
    risk = FeatureView(
        "risk",
        entities=[MERCHANT],
        source=Source.frame(risk_rows, name="risk_rows"),
        timestamp="ts",
        schema={"risk": pl.Float64},
        join_keys={"merchant_id": "merchant"},
    )
    store = open_store([CUSTOMER, MERCHANT, spend, risk], proj)
    rows = pl.DataFrame(
        {
            "customer_id": [1, 1, 2, 2, 3],
            "merchant_id": ["m1", "m2", "m1", "m3", "m2"],
            "event_timestamp": [at(30), at(45), at(36), at(5), at(60)],
            "label": [0, 1, 0, 1, 1],
        }
    )

    out = store.training_frame(rows, ["spend:x", "risk"])

    assert out.columns == ["customer_id", "merchant_id", "event_timestamp", "label", "x", "risk"]
    assert out.drop("x", "risk").equals(rows)
    assert out["x"].to_list() == [10.0, 11.0, None, 20.0, None]  # ttl 30 minutes
    assert out["risk"].to_list() == [0.1, 0.5, 0.1, None, 0.5]  # no ttl: years old is fine


def test_full_names_name_columns_view_double_underscore_feature(
    project: Project, open_store: OpenStore
) -> None:
    one = stats_view(history((1, 0, 1.0, 0)), name="one")
    two = stats_view(history((1, 0, 2.0, 0)), name="two")
    store = open_store([one, two], project)
    rows = entity_rows((1, at(1)))

    out = store.training_frame(rows, ["one:x", "two"], full_names=True)

    assert out.columns == ["customer_id", "event_timestamp", "one__x", "two__x"]
    assert out.row(0) == (1, at(1), 1.0, 2.0)
    with pytest.raises(FeatureDefinitionError, match=r"'x'.*full_names=True"):
        store.training_frame(rows, ["one:x", "two:x"])


# -- the entity rows: duplicates, order, columns, zones, key names ----------------------


def test_duplicates_are_all_returned_and_the_input_order_is_kept_exactly(
    proj: Project, open_store: OpenStore
) -> None:
    frame = history(*((c, m, float(10 * c + m), 0) for c in (1, 2, 3) for m in (0, 5, 10)))
    store = open_store([stats_view(frame, ttl=dt.timedelta(minutes=7))], proj)
    base = [(c, m) for c in (1, 2, 3, 4) for m in (-1, 0, 3, 5, 9, 12, 20)]
    pairs = base + base[:10]  # ten rows twice
    rng = random.Random(7)
    rng.shuffle(pairs)
    rows = pl.DataFrame(
        {
            "customer_id": [c for c, _ in pairs],
            "event_timestamp": [at(m) for _, m in pairs],
            "label": [f"row{i}" for i in range(len(pairs))],
            "weight": [float(i) for i in range(len(pairs))],
        }
    )

    def expected(c: int, m: int) -> float | None:
        seen = [e for e in (0, 5, 10) if e <= m and m - e <= 7 and c <= 3]
        return float(10 * c + max(seen)) if seen else None

    out = store.training_frame(rows, ["stats:x"])

    assert out.height == len(pairs) == 38
    assert out.drop("x").equals(rows)
    assert out["x"].to_list() == [expected(c, m) for c, m in pairs]
    again = store.training_frame(rows.reverse(), ["stats:x"])
    assert again.equals(out.reverse())


def test_pandas_entity_rows_give_the_same_frame(project: Project, open_store: OpenStore) -> None:
    pytest.importorskip("pandas")
    store = open_store([stats_view(history((1, 0, 1.0, 0), (2, 5, 2.0, 0)))], project)
    rows = entity_rows((2, at(6)), (1, at(1)), (2, at(4)))

    out = store.training_frame(rows.to_pandas(), ["stats:x"])

    assert out["x"].to_list() == [2.0, 1.0, None]
    assert out["customer_id"].to_list() == [2, 1, 2]


def test_entity_rows_in_paris_match_feature_rows_in_utc_at_the_same_instants(
    proj: Project, open_store: OpenStore
) -> None:
    # around the change to summer time (2024-03-31 01:00 UTC)
    utc = [dt.datetime(2024, 3, 31, h, m, tzinfo=dt.UTC) for h, m in [(0, 30), (1, 0), (1, 30)]]
    features = pl.DataFrame(
        {"customer_id": [1, 1, 1], "ts": utc, "x": [1.0, 2.0, 3.0]},
        schema={"customer_id": pl.Int64, "ts": pl.Datetime("us", "UTC"), "x": pl.Float64},
    )
    store = open_store([stats_view(features, created_timestamp=None, ttl=HOUR)], proj)
    instants = [
        utc[0] - dt.timedelta(minutes=1),
        utc[0],
        utc[1] - dt.timedelta(microseconds=1),
        utc[1],
        utc[2] + dt.timedelta(minutes=59),
        utc[2] + HOUR,
        utc[2] + HOUR + dt.timedelta(microseconds=1),
    ]
    in_utc = pl.DataFrame(
        {"customer_id": [1] * len(instants), "event_timestamp": instants},
        schema={"customer_id": pl.Int64, "event_timestamp": pl.Datetime("us", "UTC")},
    )
    in_paris = in_utc.with_columns(pl.col("event_timestamp").dt.convert_time_zone("Europe/Paris"))
    in_ns_tokyo = in_utc.with_columns(
        pl.col("event_timestamp").dt.convert_time_zone("Asia/Tokyo").dt.cast_time_unit("ns")
    )

    expected = [None, 1.0, 1.0, 2.0, 3.0, 3.0, None]
    assert xs(store, in_utc) == expected
    paris = store.training_frame(in_paris, ["stats:x"])
    assert paris["x"].to_list() == expected
    assert paris["event_timestamp"].dtype == pl.Datetime("us", "Europe/Paris")
    assert paris.drop("x").equals(in_paris)
    assert xs(store, in_ns_tokyo) == expected


@pytest.mark.parametrize("naive_side", ["entity rows", "feature rows"])
def test_naive_and_aware_times_mixed_is_refused_with_the_fix(
    project: Project, open_store: OpenStore, naive_side: str
) -> None:
    features = history((1, 0, 1.0, 0))
    rows = entity_rows((1, at(1)))
    if naive_side == "entity rows":
        features = features.with_columns(pl.col("ts", "created").dt.replace_time_zone("UTC"))
    else:
        rows = rows.with_columns(pl.col("event_timestamp").dt.replace_time_zone("Europe/Paris"))
    store = open_store([stats_view(features)], project)

    with pytest.raises(DataInputError) as raised:
        store.training_frame(rows, ["stats:x"])

    message = str(raised.value)
    assert "Naive and time-zone-aware" in message
    assert "replace_time_zone" in message
    assert "'event_timestamp'" in message and "'ts'" in message


def test_a_view_whose_key_column_has_another_name_joins_on_the_entity_key(
    proj: Project, open_store: OpenStore
) -> None:
    frame = history((1, 0, 1.0, 0), (2, 0, 2.0, 0), (1, 10, 1.5, 0)).rename({"customer_id": "cust"})
    view = stats_view(frame, join_keys={"customer_id": "cust"})
    store = open_store([view], proj)
    rows = entity_rows((2, at(11)), (1, at(11)), (1, at(9)), (3, at(11)))

    out = store.training_frame(rows, ["stats:x"])

    assert view.keys == ("customer_id",)
    assert out.columns == ["customer_id", "event_timestamp", "x"]
    assert out["x"].to_list() == [2.0, 1.5, 1.0, None]


@pytest.mark.parametrize(
    "keys",
    [
        pl.Series("customer_id", [1, 2, 1], pl.Int32),
        pl.Series("customer_id", [1, 2, 1], pl.UInt8),
        pl.Series("customer_id", ["1", "2", "001"], pl.String),  # as read from a CSV
    ],
    ids=["Int32", "UInt8", "String"],
)
def test_entity_keys_of_another_type_are_converted_and_returned_as_given(
    project: Project, open_store: OpenStore, keys: pl.Series
) -> None:
    store = open_store([stats_view(history((1, 0, 1.0, 0)))], project)
    rows = pl.DataFrame([keys, pl.Series("event_timestamp", [at(1)] * 3)])

    out = store.training_frame(rows, ["stats:x"])

    assert out["x"].to_list() == [1.0, None, 1.0]
    assert out.drop("x").equals(rows)  # the caller's columns, untouched


# -- against references: brute force and DuckDB -----------------------------------------


def brute_force(
    feature_rows: list[tuple[int, int, int, float]],
    rows: list[tuple[int, int]],
    ttl: int | None,
) -> list[float | None]:
    """Per entity row (key, minute): the value of the latest (event, created) match."""
    out: list[float | None] = []
    for key, t in rows:
        matches = [
            (event, created, value)
            for k, event, created, value in feature_rows
            if k == key and event <= t and (ttl is None or t - ttl <= event)
        ]
        out.append(max(matches)[2] if matches else None)
    return out


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(0, 14))
    keys = draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))
    events = draw(st.lists(st.integers(0, 12), min_size=n, max_size=n))
    created = draw(st.permutations(range(n)))  # distinct: a tie on both is undefined
    feature_rows = [
        (k, e, c, float(i)) for i, (k, e, c) in enumerate(zip(keys, events, created, strict=True))
    ]
    m = draw(st.integers(0, 12))
    rows = draw(st.lists(st.tuples(st.integers(0, 5), st.integers(-2, 16)), min_size=m, max_size=m))
    return {
        "feature_rows": feature_rows,
        "rows": rows,
        "ttl": draw(st.none() | st.integers(1, 5)),
        "partition_rows": draw(st.integers(1, 5)),
    }


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=scenarios())
def test_training_frames_match_a_brute_force_reference_in_one_or_many_partitions(
    project: Project,
    make_project: MakeProject,
    tiny_projects: dict[int, Project],
    case: dict[str, Any],
) -> None:
    tiny = case["partition_rows"]
    if tiny not in tiny_projects:
        tiny_projects[tiny] = make_project(tiny)
    feature_rows, rows, ttl = case["feature_rows"], case["rows"], case["ttl"]
    frame = pl.DataFrame(
        {
            "customer_id": [r[0] for r in feature_rows],
            "ts": [at(r[1]) for r in feature_rows],
            "created": [at(0, seconds=r[2]) for r in feature_rows],
            "x": [r[3] for r in feature_rows],
        },
        schema={
            "customer_id": pl.Int64,
            "ts": pl.Datetime("us"),
            "created": pl.Datetime("us"),
            "x": pl.Float64,
        },
    )
    view = stats_view(frame, ttl=None if ttl is None else dt.timedelta(minutes=ttl))
    entity = entity_rows(*((k, at(t)) for k, t in rows))
    expected = brute_force(feature_rows, rows, ttl)

    for chosen in (project, tiny_projects[tiny]):
        store = FeatureStore([view], project=chosen)
        out = store.training_frame(entity, ["stats:x"])
        assert out.drop("x").equals(entity)
        assert out["x"].to_list() == expected, chosen.settings.partition_rows


@pytest.mark.parametrize(
    ("minutes", "sizes"),
    [
        (list(range(10)), [3, 3, 3, 1]),  # one row per event time
        ([0, 0, 1, 1, 1, 2, 3, 3], [5, 3]),  # the cut moves past the rows at minute 1
        ([0, 1, 2, 2, 2, 2, 3], [6, 1]),  # a cut inside the rows at minute 2 moves past them
        ([0, 1, 1, 2, 2, 2, 3], [3, 3, 1]),  # cuts that fall between two times stay
    ],
)
def test_history_partitions_hold_partition_rows_rows_and_never_split_an_event_time(
    make_project: MakeProject, open_store: OpenStore, minutes: list[int], sizes: list[int]
) -> None:
    frame = history(*((1, m, float(i), 0) for i, m in enumerate(minutes)))
    store = open_store([stats_view(frame)], make_project(3))

    build = store.build(["stats"])["stats"]

    assert [p.rows for p in build.partitions] == sizes
    assert [p.min_ns for p in build.partitions[1:]] > [p.max_ns for p in build.partitions[:-1]]


def test_training_frames_match_duckdb_asof_join(
    make_project: MakeProject, open_store: OpenStore
) -> None:
    duckdb = pytest.importorskip("duckdb")
    rng = random.Random(11)
    keyed = {(rng.randrange(200), rng.randrange(100_000)) for _ in range(6000)}  # no ties
    pairs = sorted(keyed, key=lambda kt: (kt[1], kt[0]))
    rng.shuffle(pairs)
    features = pl.DataFrame(
        {
            "cust": [k for k, _ in pairs],
            "ts": [at(0, seconds=s) for _, s in pairs],
            "x": [rng.random() for _ in pairs],
        },
        schema={"cust": pl.Int64, "ts": pl.Datetime("us"), "x": pl.Float64},
    )
    rows = pl.DataFrame(
        {
            "customer_id": [rng.randrange(210) for _ in range(4000)],
            "event_timestamp": [at(0, seconds=rng.randrange(-500, 101_000)) for _ in range(4000)],
        },
        schema={"customer_id": pl.Int64, "event_timestamp": pl.Datetime("us")},
    )
    ttl = dt.timedelta(seconds=3000)
    view = stats_view(features, ttl=ttl, created_timestamp=None, join_keys={"customer_id": "cust"})
    store = open_store([view], make_project(700))

    out = store.training_frame(rows, ["stats:x"])

    con = duckdb.connect()
    con.register("feats", features.to_arrow())
    con.register("ents", rows.with_row_index("i").to_arrow())
    reference = con.execute(
        """
        SELECT e.i, CASE WHEN f.ts >= e.event_timestamp - INTERVAL 3000 SECOND THEN f.x END AS x
        FROM ents e ASOF LEFT JOIN feats f
          ON e.customer_id = f.cust AND e.event_timestamp >= f.ts
        ORDER BY e.i
        """
    ).fetchall()
    con.close()
    assert len(store.build(["stats"])["stats"].partitions) >= 8
    assert out["x"].to_list() == [x for _, x in reference]
    assert out["x"].null_count() < rows.height // 2  # the comparison is not vacuous


# -- definitions and inputs that are wrong ----------------------------------------------


def as_int(frame: pl.LazyFrame) -> pl.LazyFrame:
    return frame.with_columns(pl.col("x").cast(pl.Int64))


def without_x(frame: pl.LazyFrame) -> pl.LazyFrame:
    return frame.drop("x")


def without_key(frame: pl.LazyFrame) -> pl.LazyFrame:
    return frame.drop("customer_id")


def test_a_transform_with_a_wrong_dtype_names_the_column_expected_and_got(
    project: Project, open_store: OpenStore
) -> None:
    store = open_store([stats_view(history((1, 0, 1.0, 0)), transform=as_int)], project)

    with pytest.raises(FeatureDefinitionError, match=r"x is Int64, expected Float64"):
        store.training_frame(entity_rows((1, at(1))), ["stats:x"])


def test_a_transform_missing_a_feature_names_it_and_what_it_has(
    project: Project, open_store: OpenStore
) -> None:
    store = open_store([stats_view(history((1, 0, 1.0, 0)), transform=without_x)], project)

    with pytest.raises(FeatureDefinitionError, match=r"lacks \['x'\]") as raised:
        store.training_frame(entity_rows((1, at(1))), ["stats:x"])

    assert "it has customer_id: Int64, ts: Datetime" in str(raised.value)


def test_a_transform_that_drops_the_key_column_names_the_key(
    project: Project, open_store: OpenStore
) -> None:
    store = open_store([stats_view(history((1, 0, 1.0, 0)), transform=without_key)], project)

    with pytest.raises(FeatureDefinitionError, match=r"lacks \['customer_id'\].*key column"):
        store.training_frame(entity_rows((1, at(1))), ["stats:x"])


def test_a_source_without_the_timestamp_column_is_refused(
    project: Project, open_store: OpenStore
) -> None:
    frame = history((1, 0, 1.0, 0)).rename({"ts": "when"})
    store = open_store([stats_view(frame)], project)

    with pytest.raises(FeatureDefinitionError, match=r"lacks \['ts'\].*timestamp 'ts'"):
        store.training_frame(entity_rows((1, at(1))), ["stats:x"])


def test_entity_rows_without_the_timestamp_column_list_their_time_columns(
    project: Project, open_store: OpenStore
) -> None:
    store = open_store([stats_view(history((1, 0, 1.0, 0)))], project)
    rows = (
        entity_rows((1, at(1)))
        .rename({"event_timestamp": "when"})
        .with_columns(day=pl.lit(dt.date(2024, 1, 1)))
    )

    with pytest.raises(DataInputError, match=r"'event_timestamp'") as raised:
        store.training_frame(rows, ["stats:x"])

    assert "Time columns there: ['when', 'day']" in str(raised.value)
    assert store.training_frame(rows, ["stats:x"], timestamp="when")["x"].to_list() == [1.0]


def test_null_entity_timestamps_are_refused(project: Project, open_store: OpenStore) -> None:
    store = open_store([stats_view(history((1, 0, 1.0, 0)))], project)
    rows = pl.DataFrame(
        {"customer_id": [1, 1, 2], "event_timestamp": [at(1), None, None]},
        schema={"customer_id": pl.Int64, "event_timestamp": pl.Datetime("us")},
    )

    with pytest.raises(DataInputError, match=r"null in 2 of 3 rows"):
        store.training_frame(rows, ["stats:x"])


def test_an_unknown_feature_or_view_lists_the_defined_features(
    project: Project, open_store: OpenStore
) -> None:
    view = stats_view(history((1, 0, 1.0, 0)), schema={"x": pl.Float64, "y": pl.Float64})
    view2 = stats_view(history((1, 0, 1.0, 0)), name="other")
    store = open_store([view, view2], project)
    rows = entity_rows((1, at(1)))

    with pytest.raises(FeatureNotFoundError, match=r"'stats:z'") as raised:
        store.training_frame(rows, ["stats:z"])
    assert "Defined: stats:x, stats:y, other:x" in str(raised.value)
    with pytest.raises(FeatureNotFoundError, match=r"'nope:x'.*Defined: stats:x"):
        store.training_frame(rows, ["nope:x"])
    with pytest.raises(FeatureNotFoundError, match=r"'nope'"):
        store.training_frame(rows, ["nope"])


def test_a_feature_named_like_an_entity_row_column_suggests_full_names(
    project: Project, open_store: OpenStore
) -> None:
    store = open_store([stats_view(history((1, 0, 1.0, 0)))], project)
    rows = entity_rows((1, at(1))).with_columns(x=pl.lit("label"))

    with pytest.raises(FeatureDefinitionError, match=r"'x'.*full_names=True"):
        store.training_frame(rows, ["stats:x"])
    out = store.training_frame(rows, ["stats:x"], full_names=True)
    assert out.row(0) == (1, at(1), "label", 1.0)


# -- versions and status -------------------------------------------------------------------

DEFINITIONS = '''
import polars as pl


def shape(frame):
    """Feature rows as they come."""
    {comment}
    return frame.with_columns(pl.col("x") {op})
'''


def load_transform(folder: Path, name: str, op: str, comment: str = "") -> Any:
    text = DEFINITIONS.format(op=op, comment=comment)
    (folder / f"{name}.py").write_text(text, encoding="utf-8")
    importlib.invalidate_caches()
    module = importlib.reload(sys.modules[name]) if name in sys.modules else None
    module = module or importlib.import_module(name)
    return module.shape


def test_the_version_changes_with_the_transform_body_and_the_schema_only(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.syspath_prepend(str(project.root))
    name = "fv_version_defs"
    frame = history((1, 0, 1.0, 0))
    try:
        # the version is read right after each edit, as the source file is what is hashed
        first = stats_view(frame, transform=load_transform(project.root, name, "+ 1")).version
        same = stats_view(
            frame, transform=load_transform(project.root, name, "+ 1", "# a comment")
        ).version
        edited = load_transform(project.root, name, "+ 2")
        other = stats_view(frame, transform=edited).version
        narrower = stats_view(frame, transform=edited, schema={"x": pl.Float32}).version
        more = stats_view(
            frame, transform=edited, schema={"x": pl.Float64, "y": pl.Float64}
        ).version
        with_ttl = stats_view(frame, transform=edited, ttl=HOUR).version
    finally:
        sys.modules.pop(name, None)

    assert first == same
    assert len({first, other, narrower, more, with_ttl}) == 5


def plus_one(frame: pl.LazyFrame) -> pl.LazyFrame:
    return frame.with_columns(pl.col("x") + 1)


def plus_two(frame: pl.LazyFrame) -> pl.LazyFrame:
    return frame.with_columns(pl.col("x") + 2)


def test_describe_says_what_needs_building_and_materializing(
    proj: Project, open_store: OpenStore
) -> None:
    frame = history((1, 0, 1.0, 0), (1, 5, 2.0, 0), (2, 3, 3.0, 0))
    store = open_store([stats_view(frame, transform=plus_one)], proj)
    rows = entity_rows((1, at(6)), (2, at(6)))

    assert [d["needs"] for d in store.describe()] == [["build", "materialize"]]
    assert xs(store, rows) == [3.0, 4.0]
    described = store.describe(["stats"])[0]
    assert described["needs"] == ["materialize"]
    assert described["offline"]["rows"] == 3
    assert described["keys"] == {"customer_id": "customer_id"}
    store.materialize(end=at(60))
    assert store.describe()[0]["needs"] == []
    assert store.describe()[0]["online"]["entities"] == 2

    changed = open_store([stats_view(frame, transform=plus_two)], proj)
    assert changed.describe()[0]["needs"] == ["build", "materialize"]
    assert xs(changed, rows) == [4.0, 5.0]
    assert changed.describe()[0]["needs"] == ["materialize"]
    changed.materialize(end=at(60))
    assert changed.describe()[0]["needs"] == []


# -- lineage ---------------------------------------------------------------------------------


def lineage_view() -> FeatureView:
    return stats_view(history((1, 0, 1.0, 0), (2, 0, 2.0, 0)))


@step
def training_set() -> list[float]:
    store = FeatureStore([lineage_view()], project=Project.discover())
    frame = store.training_frame(entity_rows((1, at(1)), (2, at(1))), ["stats:x"])
    store.online.close()
    return frame["x"].to_list()


@pipeline
def train_pipeline():
    return training_set()


def test_a_training_frame_in_a_step_logs_the_view_version_as_a_param(project: Project) -> None:
    run = train_pipeline()

    assert run.status == "completed"
    assert run.output == [1.0, 2.0]
    logged = run.logged_params["training_set"]["feature_view.stats"]
    assert logged.startswith(f"{lineage_view().version} (build ")
    assert logged.endswith(", 2 rows)")


# -- request features and windows -------------------------------------------------------------


def ratio(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(
        (pl.col("amount") / pl.col("x")).alias("ratio"),
        (pl.col("amount") > 100).alias("big"),
    )


def bucket(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select((pl.col("amount") // 50).cast(pl.Int64).alias("bucket"))


RATIO = RequestFeatures(
    "order",
    request_schema={"amount": pl.Float64},
    schema={"ratio": pl.Float64, "big": pl.Boolean},
    transform=ratio,
    uses=["stats:x"],
)
BUCKET = RequestFeatures(
    "sized", request_schema={"amount": pl.Float64}, schema={"bucket": pl.Int64}, transform=bucket
)


def test_request_features_are_the_same_in_training_and_online(
    proj: Project, open_store: OpenStore
) -> None:
    frame = history((1, 0, 2.0, 0), (2, 0, 8.0, 0), (1, 5, 4.0, 0))
    store = open_store([stats_view(frame), RATIO, BUCKET], proj)
    amounts = [100.0, 400.0, 30.0, 250.0]
    keys = [1, 2, 3, 1]
    rows = entity_rows(*((k, at(10)) for k in keys)).with_columns(amount=pl.Series(amounts))

    train = store.training_frame(rows, ["order", "sized:bucket"])
    store.materialize(end=at(60))
    online = store.online_features(
        {"customer_id": keys, "amount": amounts}, ["order", "sized:bucket"], now=at(10)
    )

    assert train.columns == ["customer_id", "event_timestamp", "amount", "ratio", "big", "bucket"]
    assert train["ratio"].to_list() == [25.0, 50.0, None, 62.5]
    assert train["big"].to_list() == [False, True, False, True]
    assert train["bucket"].to_list() == [2, 8, 0, 5]
    for feature in ("ratio", "big", "bucket"):
        assert online.values[feature] == train[feature].to_list(), feature
    with_x = store.training_frame(rows, ["order", "stats:x"])
    assert with_x["x"].to_list() == [4.0, 8.0, None, 4.0]
    assert with_x["ratio"].to_list() == train["ratio"].to_list()


def test_an_entity_row_column_named_like_a_feature_that_is_only_used_is_left_alone(
    project: Project, open_store: OpenStore
) -> None:
    store = open_store([stats_view(history((1, 0, 2.0, 0))), RATIO], project)
    rows = entity_rows((1, at(1)), (2, at(1))).with_columns(
        x=pl.Series(["label a", "label b"]), amount=pl.Series([10.0, 10.0])
    )

    out = store.training_frame(rows, ["order:ratio"])

    assert out.columns == ["customer_id", "event_timestamp", "x", "amount", "ratio"]
    assert out["x"].to_list() == ["label a", "label b"]
    assert out["ratio"].to_list() == [5.0, None]


def test_online_features_return_only_what_was_asked_like_training_frame(
    project: Project, open_store: OpenStore
) -> None:
    store = open_store([stats_view(history((1, 0, 2.0, 0))), RATIO], project)
    store.materialize(end=at(60))

    online = store.online_features({"customer_id": [1], "amount": [10.0]}, ["order"], now=at(1))
    train = store.training_frame(
        entity_rows((1, at(1))).with_columns(amount=pl.lit(10.0)), ["order"]
    )

    assert train.columns == ["customer_id", "event_timestamp", "amount", "ratio", "big"]
    assert online.to_records() == [{"customer_id": 1, "amount": 10.0, "ratio": 5.0, "big": False}]


def windows(frame: pl.LazyFrame) -> pl.LazyFrame:
    return window_aggregates(
        frame,
        by="customer_id",
        timestamp="ts",
        windows=["15m"],
        aggregations={"*": ["count"], "amount": ["sum"]},
    )


def test_window_features_are_those_of_the_latest_event_at_or_before_t(
    proj: Project, open_store: OpenStore
) -> None:
    payments = pl.DataFrame(
        {
            "customer_id": [1, 1, 2, 1, 1],
            "ts": [at(0), at(10), at(12), at(20), at(40)],
            "amount": [1.0, 2.0, 50.0, 4.0, 8.0],
        }
    )
    view = FeatureView(
        "payments",
        entities=[CUSTOMER],
        source=Source.frame(payments, name="payments"),
        timestamp="ts",
        schema={"count_15m": pl.Int64, "amount_sum_15m": pl.Float64},
        transform=windows,
    )
    store = open_store([view], proj)
    rows = entity_rows(
        (1, at(5)), (1, at(10)), (1, at(24)), (1, at(39)), (1, at(40)), (2, at(100)), (3, at(5))
    )

    out = store.training_frame(rows, ["payments"])

    # the windows (t - 15m, t] of the events at 0, 10, 10, 20, 20 and 40, then 12
    assert out["count_15m"].to_list() == [1, 2, 2, 2, 1, 1, None]
    assert out["amount_sum_15m"].to_list() == [1.0, 3.0, 6.0, 6.0, 8.0, 50.0, None]


def test_empty_entity_rows_give_an_empty_frame_with_the_feature_columns(
    project: Project, open_store: OpenStore
) -> None:
    store = open_store([stats_view(history((1, 0, 1.0, 0)))], project)

    out = store.training_frame(entity_rows(), ["stats:x"])

    assert out.height == 0
    assert out.schema == pl.Schema(
        {"customer_id": pl.Int64, "event_timestamp": pl.Datetime("us"), "x": pl.Float64}
    )
