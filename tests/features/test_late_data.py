"""Rows that arrive late, with event times at or before the watermark, still reach the
online store: materialization restarts at the first history partition that changed."""

from __future__ import annotations

import datetime as dt

import polars as pl

from shipyard import Entity, FeatureStore, FeatureView
from shipyard.core.project import Project
from shipyard.features import Source
from tests.conftest import write_project

customer = Entity("customer", join_keys={"customer_id": pl.Int64})


def at(hour: int) -> dt.datetime:
    return dt.datetime(2026, 1, 1, hour, tzinfo=dt.UTC)


def store_of(frame: pl.DataFrame, project: Project) -> FeatureStore:
    view = FeatureView(
        "stats",
        entities=[customer],
        source=Source.frame(frame, name="rows"),
        timestamp="ts",
        schema={"x": pl.Float64},
    )
    return FeatureStore([customer, view], project=project)


def online_x(store: FeatureStore, keys: list[int]) -> list[float | None]:
    return store.online_features({"customer_id": keys}, ["stats:x"], now=at(23)).values["x"]


def test_late_rows_reach_the_online_store_and_untouched_partitions_are_not_reread(
    tmp_path, monkeypatch
) -> None:
    root = write_project(tmp_path / "late", extra="[features]\npartition_rows = 2\n")
    monkeypatch.chdir(root)
    project = Project.discover(root)
    first = pl.DataFrame(
        {
            "customer_id": [1, 2, 1, 2, 1, 2],
            "ts": [at(h) for h in (1, 2, 3, 4, 5, 6)],
            "x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        }
    )
    store = store_of(first, project)
    [done] = store.materialize(end=at(12))
    assert done["rows_read"] == 6
    assert online_x(store, [1, 2, 3]) == [5.0, 6.0, None]

    # customer 3 appears with an event at 05:30 (before the 06:00 watermark), and
    # customer 1 gets a later-arriving value at 05:30 too
    late = pl.concat(
        [first, pl.DataFrame({"customer_id": [3, 1], "ts": [at(5), at(5)], "x": [30.0, 50.0]})]
    ).with_columns(pl.col("ts") + pl.duration(minutes=pl.col("x").eq(30.0).cast(pl.Int64) * 30))
    store = store_of(late, project)
    [again] = store.materialize(end=at(12))

    assert online_x(store, [1, 2, 3]) == [50.0, 6.0, 30.0]
    assert again["rows_read"] < late.height  # the partitions before the change are not reread
    assert store.skew("stats", sample=10)["mismatches"] == []
    [idle] = store.materialize(end=at(12))
    assert idle["rows_read"] == 0
    store.online.close()
    project.metadata.close()
