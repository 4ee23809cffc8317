"""The online path: materialize the latest values per entity, incrementally and safely
when interrupted, read them back with the training types and ttl, and check for skew."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from shipyard import Entity, FeatureView
from shipyard.core.project import Project
from shipyard.errors import (
    DataInputError,
    FeatureNotFoundError,
    OnlineStoreError,
)
from shipyard.features import Source
from shipyard.storage.online import OnlineRow, OnlineViewState, SQLiteOnlineStore
from tests.features.conftest import MakeProject, OpenStore, at

CUSTOMER = Entity("customer", join_keys={"customer_id": pl.Int64})
HOUR = dt.timedelta(hours=1)
UTC = dt.UTC


def utc(minutes: float) -> dt.datetime:
    return at(minutes).replace(tzinfo=UTC)


def us(minutes: float) -> int:
    return int((utc(minutes) - dt.datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * 1_000_000


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
    frame: pl.DataFrame, *, ttl: dt.timedelta | None = HOUR, **kwargs: Any
) -> FeatureView:
    options: dict[str, Any] = {"timestamp": "ts", "created_timestamp": "created"}
    options.update(kwargs)
    return FeatureView(
        "stats",
        entities=[CUSTOMER],
        source=Source.frame(frame, name="stats_rows"),
        schema={"x": pl.Float64},
        ttl=ttl,
        **options,
    )


@pytest.fixture(params=[None, 2], ids=["one-partition", "partitions-of-2-rows"])
def proj(request: pytest.FixtureRequest, project: Project, make_project: MakeProject) -> Project:
    """The test project (one history partition) or one cutting history every 2 rows."""
    return project if request.param is None else make_project(request.param)


BASE = history(
    (1, 0, 1.0, 0),
    (1, 10, 1.4, 1),
    (1, 10, 1.5, 2),  # same event time, created later: wins
    (2, 30, 2.0, 0),
    (3, -120, 3.0, 0),  # two hours old at 0: expired at every read below
    (4, 90, 4.0, 0),  # after the end of the first materialization
)


# -- reading what was materialized ------------------------------------------------------


def test_online_features_are_the_latest_value_per_entity_with_status_and_ages(
    proj: Project, open_store: OpenStore
) -> None:
    store = open_store([stats_view(BASE)], proj)

    report = store.materialize(end=at(60))[0]
    online = store.online_features({"customer_id": [2, 1, 9, 3, 1, 4]}, ["stats:x"], now=at(70))

    assert report["rebuilt"] is True
    assert report["rows_read"] == 5
    assert report["entities"] == 3
    assert report["watermark"] == utc(60).isoformat()
    assert online.values == {"x": [2.0, 1.5, None, None, 1.5, None]}
    assert online.status == {"stats": ["found", "found", "unknown", "expired", "found", "unknown"]}
    assert online.event_times("stats") == [utc(30), utc(10), None, utc(-120), utc(10), None]
    minutes = dt.timedelta(minutes=1)
    # an expired value is null, but its age says why
    assert online.freshness() == {
        "x": [40 * minutes, 60 * minutes, None, 190 * minutes, 60 * minutes, None]
    }
    assert online.to_dict() == {
        "customer_id": [2, 1, 9, 3, 1, 4],
        "x": [2.0, 1.5, None, None, 1.5, None],
    }
    assert online.to_records()[:2] == [{"customer_id": 2, "x": 2.0}, {"customer_id": 1, "x": 1.5}]
    assert online.to_polars().equals(pl.DataFrame(online.to_dict()))
    # the same answer as a training row at that time would get
    rows = pl.DataFrame({"customer_id": [2, 1, 9, 3, 1], "event_timestamp": [at(70)] * 5})
    assert store.training_frame(rows, ["stats:x"])["x"].to_list() == online.values["x"][:5]


def test_the_online_ttl_boundary_is_the_training_one(
    project: Project, open_store: OpenStore
) -> None:
    store = open_store([stats_view(BASE)], project)
    store.materialize(end=at(60))
    micro = dt.timedelta(microseconds=1)

    at_edge = store.online_features([{"customer_id": 1}], ["stats"], now=at(70))
    too_old = store.online_features([{"customer_id": 1}], ["stats"], now=utc(70) + micro)
    no_ttl = open_store([stats_view(BASE, ttl=None)], project)
    no_ttl.materialize(end=at(60))
    forever = no_ttl.online_features({"customer_id": [3]}, ["stats"], now=at(100_000))

    assert at_edge.status["stats"] == ["found"] and at_edge.values["x"] == [1.5]
    assert too_old.status["stats"] == ["expired"] and too_old.values["x"] == [None]
    assert too_old.freshness()["x"] == [dt.timedelta(hours=1, microseconds=1)]
    assert forever.status["stats"] == ["found"] and forever.values["x"] == [3.0]


# -- materializing: incremental, backfills, interruptions -------------------------------


def test_materialize_is_incremental(proj: Project, open_store: OpenStore) -> None:
    store = open_store([stats_view(BASE)], proj)
    first = store.materialize(end=at(60))[0]

    again = store.materialize(end=at(60))[0]
    newer = BASE.vstack(history((2, 70, 2.5, 0), (5, 75, 5.0, 0), (1, 130, 9.9, 0)))
    grown = open_store([stats_view(newer)], proj)
    third = grown.materialize(end=at(120))[0]
    online = grown.online_features({"customer_id": [1, 2, 4, 5]}, ["stats:x"], now=at(120))

    assert first["rows_read"] == 5
    assert (again["rebuilt"], again["rows_read"], again["rows_written"]) == (False, 0, 0)
    # new data: rewritten from the first history partition that changed (not rebuilt)
    assert third["rebuilt"] is False
    assert 2 <= third["rows_read"] <= newer.filter(pl.col("ts") <= at(120)).height
    assert third["watermark"] == utc(120).isoformat()
    assert online.values["x"] == [None, 2.5, 4.0, 5.0]  # 1: 1.5 from minute 10 has expired
    assert online.status["stats"] == ["expired", "found", "found", "found"]
    assert online.event_times("stats")[0] == utc(10)  # the row at 130 is after the end


def test_a_backfill_from_start_rewrites_what_it_covers(
    proj: Project, open_store: OpenStore
) -> None:
    store = open_store([stats_view(BASE)], proj)
    store.materialize(end=at(60))
    state = store.online.state("stats")
    assert state is not None
    # the same event and created times with another value: what a bad write would leave
    store.online.write("stats", [("1", us(10), us(0) + 2_000_000, (-1.0,))], us(60))
    assert store.online_features({"customer_id": [1]}, ["stats:x"], now=at(11)).values == {
        "x": [-1.0]
    }

    report = store.materialize(start=at(0), end=at(60))[0]
    online = store.online_features({"customer_id": [1, 2, 3]}, ["stats:x"], now=at(11))

    assert report["rebuilt"] is False
    assert report["rows_read"] == 4  # the rows in [0, 60]; the one at -120 is before start
    assert online.values["x"] == [1.5, 2.0, None]
    assert store.online.state("stats") == state
    assert store.skew("stats")["mismatches"] == []


class FailingOnce:
    """An online store whose ``write`` raises on its n-th call, once."""

    def __init__(self, inner: SQLiteOnlineStore, fail_on: int) -> None:
        self.inner = inner
        self.url = inner.url
        self.fail_on = fail_on
        self.calls = 0

    def write(self, view: str, rows: Sequence[OnlineRow], watermark_us: int) -> int:
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError("the machine went away")
        return self.inner.write(view, rows, watermark_us)

    def state(self, view: str) -> OnlineViewState | None:
        return self.inner.state(view)

    def views(self) -> dict[str, OnlineViewState]:
        return self.inner.views()

    def reset(self, view: str, version: str, features: Sequence[str]) -> None:
        self.inner.reset(view, version, features)

    def read(self, view: str, keys: Sequence[str]) -> list[tuple[int, tuple[object, ...]] | None]:
        return self.inner.read(view, keys)

    def drop(self, view: str) -> None:
        self.inner.drop(view)

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:  # whatever else an online store offers
        return getattr(self.inner, name)


def test_an_interrupted_materialization_completes_like_a_clean_one(
    make_project: MakeProject, open_store: OpenStore, tmp_path: Path
) -> None:
    project = make_project(2)
    # 3 customers whose values change every minute, 2 rows a minute, 16 rows: 4 or more
    # partitions, the first two written before the failure
    rows = [(c, m, float(10 * m + c), 0) for m in range(8) for c in (1, 2, 3) if (m + c) % 3]
    view = stats_view(history(*rows), ttl=None)
    keys = [str(k) for k in range(6)]

    flaky = FailingOnce(SQLiteOnlineStore(tmp_path / "online.db"), fail_on=3)
    with pytest.raises(RuntimeError, match="went away"):
        open_store([view], project, online=flaky).materialize(end=at(60))
    half = flaky.inner.state("stats")
    resumed = open_store([view], project, online=SQLiteOnlineStore(tmp_path / "online.db"))
    report = resumed.materialize(end=at(60))[0]
    clean = open_store([view], project, online=SQLiteOnlineStore(tmp_path / "clean.db"))
    clean_report = clean.materialize(end=at(60))[0]
    build = resumed.build(["stats"])["stats"]

    assert len(build.partitions) >= 4
    assert half is not None and half.watermark_us == build.partitions[1].max_ns // 1000
    assert report["rebuilt"] is False
    assert report["partitions"] == len(build.partitions) - 2
    assert clean_report["partitions"] == len(build.partitions)
    assert resumed.online.read("stats", keys) == clean.online.read("stats", keys)
    assert resumed.online.read("stats", keys)[1:4] == [
        (us(7), (71.0,)),
        (us(6), (62.0,)),
        (us(7), (73.0,)),
    ]
    assert resumed.online.state("stats") == clean.online.state("stats")
    final = resumed.online.state("stats")
    assert final is not None and final.rows == 3
    assert final.watermark_us == build.max_us == us(7)
    assert resumed.skew("stats")["mismatches"] == []


# -- definitions that changed ---------------------------------------------------------------


def plus_one(frame: pl.LazyFrame) -> pl.LazyFrame:
    return frame.with_columns(pl.col("x") + 1)


def test_a_changed_definition_must_be_materialized_again_before_serving(
    project: Project, open_store: OpenStore
) -> None:
    old = open_store([stats_view(BASE)], project)
    old.materialize(end=at(60))
    new = open_store([stats_view(BASE, transform=plus_one)], project)

    with pytest.raises(OnlineStoreError, match=r"Run `shipyard features materialize stats`"):
        new.online_features({"customer_id": [1]}, ["stats:x"], now=at(11))
    report = new.materialize(end=at(60))[0]
    online = new.online_features({"customer_id": [1, 2]}, ["stats:x"], now=at(31))

    assert report["rebuilt"] is True
    assert report["version"] == new.view("stats").version != old.view("stats").version
    assert online.values["x"] == [2.5, 3.0]


def test_a_server_with_the_old_definition_refuses_once_a_new_one_is_materialized(
    project: Project, open_store: OpenStore
) -> None:
    serving = open_store([stats_view(BASE)], project)
    serving.materialize(end=at(60))
    assert serving.online_features({"customer_id": [1]}, ["stats:x"], now=at(11)).values == {
        "x": [1.5]
    }
    new = open_store([stats_view(BASE, transform=plus_one)], project)
    new.materialize(end=at(60))

    # the online store now holds the new version's values: the old definition must not
    # serve them as its own
    with pytest.raises(OnlineStoreError, match=r"materialize stats"):
        serving.online_features({"customer_id": [1]}, ["stats:x"], now=at(11))


def test_reading_a_view_never_materialized_says_to_materialize_it(
    project: Project, open_store: OpenStore
) -> None:
    store = open_store([stats_view(BASE)], project)

    with pytest.raises(OnlineStoreError, match=r"not been materialized.*materialize stats"):
        store.online_features({"customer_id": [1]}, ["stats:x"])


# -- skew -------------------------------------------------------------------------------------


def test_skew_is_empty_after_materialize_and_reports_a_tampered_value(
    proj: Project, open_store: OpenStore
) -> None:
    store = open_store([stats_view(BASE)], proj)
    store.materialize(end=at(60))

    clean = store.skew("stats", sample=100)
    store.online.write("stats", [("2", us(31), 0, (-2.0,))], us(60))
    tampered = store.skew("stats", sample=100)

    assert clean["mismatches"] == []
    assert clean["entities_offline"] == clean["sampled"] == clean["entities_online"] == 3
    assert tampered["mismatches"] == [
        {
            "key": "2",
            "feature": "event_time",
            "offline": utc(30).isoformat(),
            "online": utc(31).isoformat(),
        },
        {"key": "2", "feature": "x", "offline": 2.0, "online": -2.0},
    ]


# -- bad requests, keys and types ---------------------------------------------------------------


def test_unknown_features_and_missing_keys_are_refused(
    project: Project, open_store: OpenStore
) -> None:
    store = open_store([stats_view(BASE)], project)
    store.materialize(end=at(60))

    with pytest.raises(FeatureNotFoundError, match=r"'stats:y'.*Defined: stats:x"):
        store.online_features({"customer_id": [1]}, ["stats:y"])
    with pytest.raises(FeatureNotFoundError, match=r"'other'"):
        store.online_features({"customer_id": [1]}, ["other"])
    with pytest.raises(DataInputError, match=r"lack the join key\(s\) \['customer_id'\]"):
        store.online_features({"customer": [1]}, ["stats:x"])
    with pytest.raises(DataInputError, match=r"join key 'customer_id' is missing"):
        store.online_features({"customer_id": [1, None]}, ["stats:x"])
    with pytest.raises(DataInputError, match=r"different lengths"):
        store.online_features({"customer_id": [1, 2], "extra": [1]}, ["stats:x"])


ACCOUNT = Entity("account", join_keys={"bank": pl.String, "number": pl.Int64})


def test_composite_keys_round_trip(proj: Project, open_store: OpenStore) -> None:
    balances = pl.DataFrame(
        {
            "bank": ["a", "a", "b", "a", "b"],
            "number": [1, 2, 1, 1, 12],
            "ts": [at(0), at(0), at(0), at(5), at(5)],
            "balance": [10.0, 20.0, 30.0, 11.0, 40.0],
        }
    )
    view = FeatureView(
        "balances",
        entities=[ACCOUNT],
        source=Source.frame(balances, name="balances"),
        timestamp="ts",
        schema={"balance": pl.Float64},
    )
    store = open_store([view], proj)
    store.materialize(end=at(60))
    asked = {"bank": ["a", "b", "a", "b", "c", "b"], "number": [1, 1, 2, 2, 1, 12]}

    online = store.online_features(asked, ["balances"], now=at(10))
    records = store.online_features(
        [{"bank": "b", "number": 12}, {"number": 1, "bank": "a"}], ["balances"], now=at(10)
    )
    train = store.training_frame(
        pl.DataFrame(asked).with_columns(event_timestamp=pl.lit(at(10))), ["balances"]
    )

    assert online.values["balance"] == [11.0, 30.0, 20.0, None, None, 40.0]
    assert online.status["balances"] == ["found", "found", "found", "unknown", "unknown", "found"]
    assert train["balance"].to_list() == online.values["balance"]
    assert records.to_records() == [
        {"bank": "b", "number": 12, "balance": 40.0},
        {"bank": "a", "number": 1, "balance": 11.0},
    ]


def test_bool_date_datetime_and_other_types_round_trip_as_python_values(
    project: Project, open_store: OpenStore
) -> None:
    paris = dt.timezone(dt.timedelta(hours=1))
    values = pl.DataFrame(
        {
            "customer_id": [1, 2],
            "ts": [at(0), at(0)],
            "flag": [True, None],
            "off": [False, True],
            "day": [dt.date(2023, 12, 31), dt.date(1969, 7, 20)],
            "seen": [dt.datetime(2023, 5, 6, 7, 8, 9, 123456), None],
            "seen_utc": [dt.datetime(2023, 5, 6, 7, 8, 9, tzinfo=UTC)] * 2,
            "seen_paris": [dt.datetime(2023, 1, 1, 12, tzinfo=paris)] * 2,
            "wait": [dt.timedelta(minutes=3, microseconds=7), dt.timedelta(days=-1)],
            "n": [2**62, -1],
            "label": ["é ü", ""],
            "score": [0.25, None],
        },
        schema_overrides={
            "seen_utc": pl.Datetime("us", "UTC"),
            "seen_paris": pl.Datetime("us", "Europe/Paris"),
        },
    )
    schema = {c: t for c, t in values.schema.items() if c not in ("customer_id", "ts")}
    view = FeatureView(
        "typed",
        entities=[CUSTOMER],
        source=Source.frame(values, name="typed"),
        timestamp="ts",
        schema=schema,
    )
    store = open_store([view], project)
    store.materialize(end=at(60))

    online = store.online_features({"customer_id": [1, 2, 3]}, ["typed"], now=at(1))
    train = store.training_frame(
        pl.DataFrame({"customer_id": [1, 2, 3], "event_timestamp": [at(1)] * 3}), ["typed"]
    )

    for name in schema:
        expected = [*values[name].to_list(), None]
        assert online.values[name] == expected, name
        assert train[name].to_list() == expected, name
    first = online.to_records()[0]
    assert type(first["flag"]) is bool and type(first["off"]) is bool
    assert type(first["day"]) is dt.date
    assert type(first["seen"]) is dt.datetime and first["seen"].tzinfo is None
    assert first["seen_utc"].tzinfo is not None
    assert type(first["wait"]) is dt.timedelta
    assert type(first["n"]) is int and type(first["label"]) is str
    assert online.values["off"] == [False, True, None]
