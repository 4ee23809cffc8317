"""Replaying past traffic: scored as the API scores, logged at each row's own time, and the
rows that break the request contract counted under their reason."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline

from shipyard import Entity, FeatureStore, FeatureView, RequestFeatures, pipeline, step
from shipyard.core.project import Project
from shipyard.errors import MonitoringError
from shipyard.features import Source
from shipyard.monitoring._replay import ReplaySummary, replay
from shipyard.registry.registry import Registry
from shipyard.serving.log import PredictionLog, read_log
from shipyard.serving.model import ServedModel, load_served

UTC = dt.UTC
T0 = dt.datetime(2026, 2, 1, tzinfo=UTC)
CUSTOMER = Entity("customer", join_keys={"customer_id": pl.String})
INPUTS = ["amount", "spend_24h", "hour"]


def _history() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": ["c1", "c2"],
            "event_timestamp": [T0, T0 - dt.timedelta(hours=12)],
            "spend_24h": [30.0, 5.0],
        },
        schema={
            "customer_id": pl.String,
            "event_timestamp": pl.Datetime("us", "UTC"),
            "spend_24h": pl.Float64,
        },
    )


def _hour(request: pl.DataFrame) -> pl.DataFrame:
    return request.select(pl.col("event_timestamp").dt.hour().cast(pl.Int32).alias("hour"))


SPENDING = FeatureView(
    "spending",
    entities=[CUSTOMER],
    source=Source.frame(_history(), name="history"),
    schema={"spend_24h": pl.Float64},
    ttl=dt.timedelta(days=1),
)
PAYMENT = RequestFeatures(
    "payment",
    request_schema={"event_timestamp": pl.Datetime("us", "UTC")},
    schema={"hour": pl.Int32},
    transform=_hour,
)


@step(cache=False)
def training_rows() -> pl.DataFrame:
    rng = np.random.default_rng(0)
    amount = rng.uniform(1, 100, 200)
    return pl.DataFrame(
        {
            "amount": amount,
            "spend_24h": rng.uniform(1, 50, 200),
            "hour": rng.integers(0, 24, 200).astype(np.int32),
            "label": (amount > 50).astype(np.int8),
        }
    )


@step(cache=False)
def fit(train: pl.DataFrame) -> Pipeline:
    model = make_pipeline(SimpleImputer(), LogisticRegression(max_iter=500))
    return model.fit(train.select(INPUTS), train["label"].to_numpy())


@pipeline
def training() -> Any:
    return fit(training_rows())


@pytest.fixture
def served(project: Project) -> Iterator[ServedModel]:
    store = FeatureStore([CUSTOMER, SPENDING, PAYMENT], project=project)
    store.materialize(end=T0 + dt.timedelta(days=1))
    registry = Registry(project)
    registry.register_run("spend", training(), step="fit", features=INPUTS)
    registry.record_gate("spend", 1, {"evaluation": {"threshold": 0.5}}, passed=True)
    yield load_served("spend", project, store=store)
    store.online.close()


def _traffic() -> pl.DataFrame:
    """Five past payments: c1 and c2 within a day of their history, then a day too late."""
    return pl.DataFrame(
        {
            "transaction_id": [f"tx{i}" for i in range(5)],
            "customer_id": ["c1", "c2", "c1", "nobody", "c1"],
            "amount": [80.0, 20.0, 55.0, 60.0, 90.0],
            "event_timestamp": [
                T0 + dt.timedelta(hours=1),
                T0 + dt.timedelta(hours=2),
                T0 + dt.timedelta(hours=3),
                T0 + dt.timedelta(hours=4),
                T0 + dt.timedelta(days=2),  # older than the ttl: spend_24h is null
            ],
            "note": ["extra columns are ignored"] * 5,
        },
        schema_overrides={"event_timestamp": pl.Datetime("us", "UTC")},
    )


def _replay(served: ServedModel, rows: pl.DataFrame, folder: Path, **options: Any) -> Any:
    with PredictionLog(folder, model=served.name) as log:
        summary = replay(served, rows, log, **options)
    return summary, read_log(folder).collect().sort("ts")


def test_rows_are_scored_as_the_api_scores_them_and_logged_at_their_own_time(
    served: ServedModel, tmp_path: Path
) -> None:
    rows = _traffic()
    summary, logged = _replay(served, rows, tmp_path / "log", request_id="transaction_id")
    assert summary == ReplaySummary(
        rows=5,
        logged=5,
        rejected=0,
        seconds=summary.seconds,
        first_ts=T0 + dt.timedelta(hours=1),
        last_ts=T0 + dt.timedelta(days=2),
        reasons={},
    )
    assert logged["ts"].to_list() == rows["event_timestamp"].to_list()
    assert logged["request_id"].to_list() == rows["transaction_id"].to_list()
    assert logged["entity_key"].to_list() == rows["customer_id"].to_list()
    assert set(logged["model"]) == {"spend"} and set(logged["model_version"]) == {"1"}
    assert not logged["shadow"].any()
    assert (logged["latency_ms"] > 0).all()
    request = rows.select("amount", "event_timestamp", "customer_id")
    assert served.features is not None
    enriched = served.features(request)
    np.testing.assert_allclose(logged["score"].to_numpy(), served.score(enriched))
    assert logged["decision"].to_list() == (logged["score"] >= 0.5).cast(pl.Int64).to_list()
    features = [json.loads(text) for text in logged["features_json"]]
    # each row aged from its own time: the last payment comes two days after the history
    assert [f["spend_24h"] for f in features] == [30.0, 5.0, 30.0, None, None]
    assert [f["hour"] for f in features] == [1, 2, 3, 4, 0]
    inputs = json.loads(logged["inputs_json"][0])
    assert inputs == {
        "amount": 80.0,
        "event_timestamp": "2026-02-01T01:00:00+00:00",
        "customer_id": "c1",
    }


def test_rows_breaking_the_request_contract_are_counted_under_their_reason(
    served: ServedModel, tmp_path: Path
) -> None:
    rows = _traffic().with_columns(
        amount=pl.Series(["80", "twenty", None, "inf", " 90.5 "]),
        customer_id=pl.Series(["c1", "c2", "c1", None, "c1"]),
    )
    summary, logged = _replay(served, rows, tmp_path / "log", request_id="transaction_id")
    assert (summary.rows, summary.logged, summary.rejected) == (5, 2, 3)
    assert summary.reasons == {
        "amount: not a number": 1,
        "amount: not a finite number": 1,
        "amount: null in a required field": 1,
    }
    assert logged["request_id"].to_list() == ["tx0", "tx4"]
    assert [json.loads(text)["amount"] for text in logged["inputs_json"]] == [80.0, 90.5]


def test_a_row_breaking_several_rules_counts_once_under_the_first(
    served: ServedModel, tmp_path: Path
) -> None:
    rows = _traffic().with_columns(
        amount=pl.Series([None, 1.0, 2.0, 3.0, 4.0]),
        customer_id=pl.Series([None, None, "c1", "c1", "c1"]),
        event_timestamp=pl.Series([T0, T0, None, T0, T0], dtype=pl.Datetime("us", "UTC")),
    )
    summary, logged = _replay(served, rows, tmp_path / "log")
    assert summary.reasons == {
        "amount: null in a required field": 1,
        "customer_id: null in a required field": 1,
        "no time in 'event_timestamp'": 1,
    }
    assert (summary.logged, summary.rejected, logged.height) == (2, 3, 2)


def test_a_missing_required_field_rejects_every_row(served: ServedModel, tmp_path: Path) -> None:
    rows = _traffic().rename({"amount": "amount_value"})  # upstream renamed the column
    summary, logged = _replay(served, rows, tmp_path / "log")
    assert (summary.logged, summary.rejected) == (0, 5)
    assert summary.reasons == {"amount: missing required field": 5}
    assert (summary.first_ts, summary.last_ts) == (None, None)
    assert logged.height == 0


def test_request_ids_default_to_new_uuids_and_naive_times_are_utc(
    served: ServedModel, tmp_path: Path
) -> None:
    rows = _traffic().with_columns(pl.col("event_timestamp").dt.replace_time_zone(None))
    summary, logged = _replay(served, rows, tmp_path / "log")
    assert summary.logged == 5
    ids = logged["request_id"].to_list()
    assert len(set(ids)) == 5 and all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert logged["ts"].to_list() == _traffic()["event_timestamp"].to_list()


def test_chunks_and_thread_limits_give_the_same_scores(served: ServedModel, tmp_path: Path) -> None:
    done: list[int] = []
    rows = _traffic()
    _, whole = _replay(served, rows, tmp_path / "whole", threads=None)
    _, chunked = _replay(served, rows, tmp_path / "chunked", chunk_rows=2, progress=done.append)
    assert done == [2, 4, 5]
    np.testing.assert_allclose(chunked["score"].to_numpy(), whole["score"].to_numpy())


@pytest.mark.parametrize(
    ("options", "rows", "message"),
    [
        ({"time_column": "when"}, None, "the time column 'when' is not among"),
        ({"request_id": "id"}, None, "the request id column 'id' is not among"),
        ({"chunk_rows": 0}, None, "chunk_rows must be at least 1"),
        ({}, {"event_timestamp": ["2026-02-01"] * 5}, "must hold datetimes"),
    ],
)
def test_arguments_that_cannot_work_are_refused_with_the_fix(
    served: ServedModel,
    tmp_path: Path,
    options: dict[str, Any],
    rows: dict[str, Any] | None,
    message: str,
) -> None:
    traffic = _traffic()
    if rows is not None:
        traffic = traffic.with_columns(**{k: pl.Series(v) for k, v in rows.items()})
    with PredictionLog(tmp_path / "log", model="spend") as log:
        with pytest.raises(MonitoringError, match=message):
            replay(served, traffic, log, **options)
        assert log.appended == 0
