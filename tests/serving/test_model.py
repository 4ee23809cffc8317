"""From a registered model to a served one: the request contract derived from the lineage
and the feature definitions, features computed on the server, the threshold, reloads."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
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
from shipyard.errors import ModelNotFoundError, ServingError
from shipyard.features import Source
from shipyard.registry.export import export_model
from shipyard.registry.registry import Registry
from shipyard.serving.model import AliasWatcher, dtype_of, load_served, signature_of

UTC = dt.UTC
T0 = dt.datetime(2026, 2, 1, tzinfo=UTC)
CUSTOMER = Entity("customer", join_keys={"customer_id": pl.String})


def history() -> pl.DataFrame:
    """Two customers' spending, one row per hour; c2's last row is days old."""
    return pl.DataFrame(
        {
            "customer_id": ["c1", "c1", "c2"],
            "event_timestamp": [T0, T0 + dt.timedelta(hours=1), T0 - dt.timedelta(days=3)],
            "spend_24h": [10.0, 30.0, 5.0],
        },
        schema={
            "customer_id": pl.String,
            "event_timestamp": pl.Datetime("us", "UTC"),
            "spend_24h": pl.Float64,
        },
    )


def ratio(request: pl.DataFrame) -> pl.DataFrame:
    return request.select(
        (pl.col("amount") / pl.col("spend_24h")).fill_null(1.0).alias("amount_vs_spend"),
        pl.col("event_timestamp").dt.hour().cast(pl.Int32).alias("hour"),
    )


SPENDING = FeatureView(
    "spending",
    entities=[CUSTOMER],
    source=Source.frame(history(), name="history"),
    schema={"spend_24h": pl.Float64},
    ttl=dt.timedelta(days=1),
)
PAYMENT = RequestFeatures(
    "payment",
    request_schema={"amount": pl.Float64, "event_timestamp": pl.Datetime("us", "UTC")},
    schema={"amount_vs_spend": pl.Float64, "hour": pl.Int32},
    transform=ratio,
    uses=["spending:spend_24h"],
)
INPUTS = ["amount", "items", "spend_24h", "amount_vs_spend", "hour"]


@step(cache=False)
def training_rows() -> pl.DataFrame:
    rng = np.random.default_rng(0)
    n = 200
    amount = rng.uniform(1, 100, n)
    return pl.DataFrame(
        {
            "amount": amount,
            "items": rng.integers(1, 5, n).astype(np.int32),
            "spend_24h": rng.uniform(1, 50, n),
            "amount_vs_spend": rng.uniform(0, 3, n),
            "hour": rng.integers(0, 24, n).astype(np.int32),
            "label": (amount > 50).astype(np.int8),
        }
    )


@step(cache=False)
def fit(train: pl.DataFrame, impute: bool) -> Pipeline:
    """Missing features (an unknown customer) are imputed, as a served model must expect;
    ONNX Runtime has no float64 imputer, so the plain model (for ONNX) has none."""
    steps = [SimpleImputer()] if impute else []
    model = make_pipeline(*steps, LogisticRegression(max_iter=500))
    return model.fit(train.select(INPUTS), train["label"].to_numpy())


@pipeline
def training(impute: bool = True) -> Any:
    return fit(training_rows(), impute)


@pytest.fixture
def store(project: Project) -> Any:
    found = FeatureStore([CUSTOMER, SPENDING, PAYMENT], project=project)
    found.materialize(end=T0 + dt.timedelta(days=1))
    yield found
    found.online.close()


@pytest.fixture
def registered(project: Project) -> Registry:
    registry = Registry(project)
    run = training()
    registry.register_run("spend", run, step="fit", features=INPUTS)
    registry.record_gate("spend", 1, {"evaluation": {"threshold": 0.7}}, passed=True)
    return registry


def test_the_request_contract_is_derived_from_the_inputs_and_the_definitions() -> None:
    store = FeatureStore([CUSTOMER, SPENDING, PAYMENT])
    raw = {"amount": pl.Float64(), "items": pl.Int32()}
    signature = signature_of(INPUTS, raw, store)
    assert signature.request == {
        "amount": pl.Float64(),
        "items": pl.Int32(),
        "event_timestamp": pl.Datetime("us", "UTC"),
        "customer_id": pl.String(),
    }
    assert signature.refs == ("spending:spend_24h", "payment:amount_vs_spend", "payment:hour")
    assert signature.computed == {
        "spend_24h": pl.Float64(),
        "amount_vs_spend": pl.Float64(),
        "hour": pl.Int32(),
    }
    assert signature.keys == ("customer_id",)
    assert signature.optional == {"event_timestamp"}  # defaults to the arrival time


def test_an_input_nobody_produces_and_of_unknown_type_is_refused_with_the_fix() -> None:
    with pytest.raises(ServingError, match=r"\['items'\].*input_schema"):
        signature_of(INPUTS, {"amount": pl.Float64()}, FeatureStore([CUSTOMER, SPENDING, PAYMENT]))


def test_a_column_two_views_produce_needs_the_lineage_to_choose() -> None:
    other = FeatureView(
        "other",
        entities=[CUSTOMER],
        source=Source.frame(history(), name="history"),
        schema={"spend_24h": pl.Float64},
    )
    store = FeatureStore([CUSTOMER, SPENDING, other])
    with pytest.raises(ServingError, match=r"\['other', 'spending'\]"):
        signature_of(["spend_24h"], {}, store)
    assert signature_of(["spend_24h"], {}, store, views=["other"]).refs == ("other:spend_24h",)


def test_dtypes_round_trip_through_their_printed_names() -> None:
    for dtype in (pl.Float64(), pl.Int8(), pl.UInt32(), pl.String(), pl.Boolean(), pl.Date()):
        assert dtype_of(str(dtype)) == dtype
    assert dtype_of(str(pl.Datetime("ns", "Europe/Paris"))) == pl.Datetime("ns", "Europe/Paris")
    assert dtype_of(str(pl.Datetime("us"))) == pl.Datetime("us")
    with pytest.raises(ServingError, match="cannot serve an input of type List"):
        dtype_of(str(pl.List(pl.Int64)))


def test_a_registered_model_serves_with_online_and_request_features(
    project: Project, registered: Registry, store: FeatureStore
) -> None:
    served = load_served("spend", project, store=store)
    assert (served.name, served.version, served.threshold) == ("spend", "1", 0.7)
    assert served.schema["items"] == pl.Int32()  # recorded from the training frame
    assert served.keys == ("customer_id",)
    request = pl.DataFrame(
        {
            "amount": [60.0, 60.0, 60.0],
            "items": [1, 1, 1],
            "event_timestamp": [T0 + dt.timedelta(hours=2)] * 3,
            "customer_id": ["c1", "c2", "nobody"],
        },
        schema=dict(served.schema),
    )
    assert served.features is not None
    enriched = served.features(request)
    # c1: the latest value; c2: older than the ttl (1 day); nobody: never seen
    assert enriched["spend_24h"].to_list() == [30.0, None, None]
    assert enriched["amount_vs_spend"].to_list() == [2.0, 1.0, 1.0]
    assert enriched["hour"].to_list() == [2, 2, 2]
    model = registered.load("spend:1")
    expected = model.predict_proba(enriched.select(INPUTS))[:, 1]
    np.testing.assert_allclose(served.score(enriched), expected)


def test_a_missing_timestamp_is_the_arrival_time(
    project: Project, registered: Registry, store: FeatureStore
) -> None:
    served = load_served("spend", project, store=store)
    request = pl.DataFrame({"amount": [5.0], "items": [2], "customer_id": ["c1"]})
    assert served.features is not None
    before = dt.datetime.now(UTC)
    enriched = served.features(request.cast({"items": pl.Int32}))
    assert enriched["event_timestamp"][0] >= before
    assert enriched["spend_24h"].to_list() == [None]  # the history is from February


def test_unknown_references_say_what_exists(project: Project, registered: Registry) -> None:
    with pytest.raises(ModelNotFoundError):
        load_served("spend@production", project)
    with pytest.raises(ModelNotFoundError, match="not an export folder"):
        load_served("spend", None)


def test_an_export_folder_serves_with_onnx_when_it_agrees(project: Project, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    registry = Registry(project)
    run = training(impute=False)
    registry.register_run("plain", run, step="fit", features=INPUTS)
    sample = run.step_runs["training_rows"].outputs["output"].load()
    folder = export_model(registry, "plain", tmp_path / "export", sample=sample)
    served = load_served(folder)
    assert served.features is None  # no project: every input is a request field
    assert list(served.schema) == INPUTS
    rows = sample.head(20)
    expected = registry.load("plain:1").predict_proba(rows.select(INPUTS))[:, 1]
    np.testing.assert_allclose(served.score(rows), expected, atol=1e-9)
    assert served.score.__qualname__.startswith("_onnx_scorer")  # checked at load, agreed
    # ONNX agreed with the scores recorded at export: scikit-learn is never imported
    script = (
        "import sys; from shipyard.serving.model import load_served; "
        f"load_served({str(folder)!r}); "
        "print(sorted(m for m in sys.modules if m.startswith(('sklearn', 'skops'))))"
    )
    imported = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert imported.stdout.strip() == "[]", imported.stdout


def test_the_watcher_follows_the_alias(
    project: Project, registered: Registry, store: FeatureStore
) -> None:
    registered.promote("spend", 1)
    run = training()
    registered.register_run("spend", run, step="fit", features=INPUTS)
    registered.record_gate("spend", 2, {"evaluation": {"threshold": 0.6}}, passed=True)
    watcher = AliasWatcher(
        project, "spend", "production", shadow_alias="shadow", interval_s=0.1, served=("1", None)
    )
    assert watcher.check() is None
    registered.promote("spend", 2, alias="shadow")
    primary, shadow = watcher.check() or (None, None)
    assert primary is not None and primary.version == "1"
    assert shadow is not None and (shadow.version, shadow.threshold) == ("2", 0.6)
    registered.promote("spend", 2)
    primary, _ = watcher.check() or (None, None)
    assert primary is not None and primary.version == "2"
    assert watcher.check() is None


def test_ready_says_which_feature_view_the_online_store_lacks(
    project: Project, registered: Registry, store: FeatureStore
) -> None:
    from shipyard.serving.app import create_app
    from tests.serving.test_app import TestClient  # imported there without the httpx warning

    assert load_served("spend", project, store=store).problems() == []
    changed = FeatureView(
        "spending",
        entities=[CUSTOMER],
        source=Source.frame(history(), name="history"),
        schema={"spend_24h": pl.Float64},
        ttl=dt.timedelta(days=2),  # another definition than the one materialized
    )
    stale = FeatureStore([CUSTOMER, changed, PAYMENT], project=project)
    served = load_served("spend", project, store=stale)
    with TestClient(create_app(served)) as client:
        answer = client.get("/ready")
        assert answer.status_code == 503
        assert answer.json() == {
            "ready": False,
            "problems": [
                "the online store holds another definition of feature view 'spending'; "
                "run `shipyard features materialize spending`"
            ],
        }
        assert client.get("/v2/health/ready").status_code == 503
        stale.materialize(end=T0 + dt.timedelta(days=1))
        assert client.get("/ready").status_code == 200
    stale.online.close()


def test_a_rows_features_do_not_depend_on_the_rows_scored_with_it(
    project: Project, registered: Registry, store: FeatureStore
) -> None:
    served = load_served("spend", project, store=store)
    assert served.features is not None
    times = [T0 + dt.timedelta(hours=2), T0 + dt.timedelta(days=3)]  # fresh, then past ttl
    request = pl.DataFrame(
        {
            "amount": [60.0, 60.0],
            "items": [1, 1],
            "event_timestamp": times,
            "customer_id": ["c1"] * 2,
        },
        schema=dict(served.schema),
    )
    together = served.features(request)["spend_24h"].to_list()
    alone = [served.features(request.slice(i, 1))["spend_24h"][0] for i in range(2)]
    assert together == alone == [30.0, None]


def test_online_features_age_each_entity_from_its_own_time(store: FeatureStore) -> None:
    from shipyard.errors import DataInputError

    entities = {"customer_id": ["c1", "c1"]}
    times = [T0 + dt.timedelta(hours=2), T0 + dt.timedelta(days=3)]
    found = store.online_features(entities, ["spending"], now=times)
    assert found.values["spend_24h"] == [30.0, None]
    assert found.status["spending"] == ["found", "expired"]
    assert found.freshness()["spend_24h"] == [dt.timedelta(hours=1), dt.timedelta(days=2, hours=23)]
    with pytest.raises(DataInputError, match="3 times for 2 entities"):
        store.online_features(entities, ["spending"], now=[*times, T0])
