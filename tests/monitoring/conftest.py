"""A tiny monitored project: a payments model trained by a pipeline, served with a feature
from the online store, and a week of its traffic replayed into the prediction log.

The traffic runs from ``T0`` (a Monday) for ``DAYS`` days. Day ``EMPTY_DAY`` has no traffic;
from ``SHIFT_DAY`` on, ``amount`` is shifted up (a new pattern of payments), the rest of the
inputs keep their training distribution. Request ids are ``tx-<day>-<n>`` so labels can be
keyed by them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import polars as pl
import pytest
from sklearn.linear_model import LogisticRegression

from shipyard import Entity, FeatureStore, FeatureView, pipeline, step
from shipyard.core.project import Project
from shipyard.features import Source
from shipyard.monitoring import replay
from shipyard.registry.registry import Registry
from shipyard.serving.log import PredictionLog
from shipyard.serving.model import load_served
from tests.conftest import write_project

UTC = dt.UTC
DAY = dt.timedelta(days=1)
T0 = dt.datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
DAYS = 6
EMPTY_DAY = 3
SHIFT_DAY = 4
PER_DAY = 150
CUSTOMERS = [f"c{i:02d}" for i in range(40)]
INPUTS = ["amount", "items", "spend_24h"]
MODEL = "payments"
PIPELINE = "tests.monitoring.conftest:training"
CUSTOMER = Entity("customer", join_keys={"customer_id": pl.String})

OBJECTIVES = """
[objectives]
task = "binary"

[objectives.values]
true_positive = 100
false_positive = -10
false_negative = -50

[[objectives.thresholds]]
metric = "roc_auc"
change = "absolute"
limit = -0.05
"""


def spending() -> pl.DataFrame:
    """Each customer's 24-hour spend, known long before the traffic starts."""
    rng = np.random.default_rng(7)
    return pl.DataFrame(
        {
            "customer_id": CUSTOMERS,
            "event_timestamp": [T0 - dt.timedelta(days=60)] * len(CUSTOMERS),
            "spend_24h": rng.uniform(5, 50, len(CUSTOMERS)),
        },
        schema_overrides={"event_timestamp": pl.Datetime("us", "UTC")},
    )


SPENDING = FeatureView(
    "spending",
    entities=[CUSTOMER],
    source=Source.frame(spending(), name="spending"),
    schema={"spend_24h": pl.Float64},
)


def payments(n: int, seed: int, *, start: dt.datetime, shift: float = 0.0) -> pl.DataFrame:
    """``n`` payments over the day from ``start``: amount, items, the customer's spend, and a
    label that depends on the amount (large payments are more often fraud)."""
    rng = np.random.default_rng(seed)
    spend = dict(spending().select("customer_id", "spend_24h").iter_rows())
    customer = rng.permutation(np.resize(CUSTOMERS, n))  # every customer as often
    amount = rng.uniform(1, 100, n) + shift
    fraud = rng.uniform(0, 1, n) < 1 / (1 + np.exp(-(amount - 60) / 8))
    seconds = np.sort(rng.uniform(0, 86_399, n))
    return pl.DataFrame(
        {
            "transaction_id": [f"tx-{start:%m%d}-{i}" for i in range(n)],
            "customer_id": customer,
            "event_timestamp": [start + dt.timedelta(seconds=float(s)) for s in seconds],
            "amount": amount,
            "items": rng.integers(1, 5, n).astype(np.int32),
            "spend_24h": [spend[c] for c in customer],
            "label": fraud.astype(np.int8),
        },
        schema_overrides={"event_timestamp": pl.Datetime("us", "UTC")},
    )


@step
def history(seed: int) -> pl.DataFrame:
    return payments(800, seed, start=T0 - dt.timedelta(days=30))


@step
def split(
    frame: pl.DataFrame, shuffle: bool
) -> tuple[Annotated[pl.DataFrame, "train"], Annotated[pl.DataFrame, "test"]]:
    """The first 600 rows to train on, the rest to test; ``shuffle`` breaks the training
    labels (a retraining that went wrong)."""
    train, test = frame.head(600), frame.tail(200)
    if shuffle:
        train = train.with_columns(pl.col("label").shuffle(seed=3))
    return train, test


@step
def fit(train: pl.DataFrame) -> LogisticRegression:
    return LogisticRegression(max_iter=500).fit(train.select(INPUTS), train["label"].to_numpy())


@pipeline
def training(seed: int = 0, shuffle: bool = False) -> Any:
    train, _test = split(history(seed), shuffle)
    return fit(train)


def traffic() -> pl.DataFrame:
    """The replayed week: no traffic on ``EMPTY_DAY``, amounts shifted from ``SHIFT_DAY``."""
    days = [
        payments(PER_DAY, 100 + day, start=T0 + day * DAY, shift=40.0 if day >= SHIFT_DAY else 0)
        for day in range(DAYS)
        if day != EMPTY_DAY
    ]
    return pl.concat(days)


@dataclass
class World:
    """The monitored project and what the tests need to know about it."""

    project: Project
    root: Path
    registry: Registry
    traffic: pl.DataFrame

    @property
    def log_dir(self) -> Path:
        return self.project.settings.state_dir / "predictions" / MODEL

    def reopen(self, monitoring: str = "") -> Project:
        """Rewrite the ``[monitoring]`` part of shipyard.toml and open the project again."""
        write_project(self.root, "monitored", OBJECTIVES + monitoring)
        if self.project._metadata is not None:
            self.project._metadata.close()
        self.project = Project.discover(self.root)
        self.registry = Registry(self.project)
        return self.project


def replay_days(world: World, days: range, *, shift: float = 0.0) -> pl.DataFrame:
    """Replay more days of traffic (from ``T0 + day``) into the model's log."""
    rows = pl.concat([payments(PER_DAY, 100 + d, start=T0 + d * DAY, shift=shift) for d in days])
    store = FeatureStore([CUSTOMER, SPENDING], project=world.project)
    try:
        served = load_served(f"{MODEL}@production", world.project, store=store)
        with PredictionLog(world.log_dir, model=MODEL) as log:
            replay(served, rows, log, request_id="transaction_id")
    finally:
        store.online.close()
    return rows


def build_world(root: Path, monitoring: str = "") -> World:
    """Train, register, gate and promote the model, materialise the online store and
    replay the traffic into the model's prediction log."""
    write_project(root, "monitored", OBJECTIVES + monitoring)
    project = Project.discover(root)
    registry = Registry(project)
    run = project.pipeline(PIPELINE).run(project=project)
    version = registry.register_run(MODEL, run, step="fit", features=INPUTS)
    _gate(project, version, run)
    registry.promote(MODEL, version.version, reason="first model")
    store = FeatureStore([CUSTOMER, SPENDING], project=project)
    try:
        store.materialize(end=T0)
        rows = traffic()
        served = load_served(f"{MODEL}@production", project, store=store)
        with PredictionLog(project.settings.state_dir / "predictions" / MODEL, model=MODEL) as log:
            replay(served, rows, log, request_id="transaction_id")
    finally:
        store.online.close()
    return World(project, root, registry, rows)


def _gate(project: Project, version: Any, run: Any) -> None:
    """Gate the first version as ``shipyard evaluate`` would: its evaluation at promotion."""
    from shipyard.monitoring.gating import gate_version

    test = run.step_runs["split"].outputs["test"].load()
    gate_version(project, version, test, label="label", features=INPUTS)


@pytest.fixture
def world(project_dir: Path) -> Iterator[World]:
    """The monitored project in the test's project folder (the working directory)."""
    found = build_world(project_dir)
    yield found
    if found.project._metadata is not None:
        found.project._metadata.close()
