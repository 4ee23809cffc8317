"""The steps of the fraud model's training pipeline."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import numpy as np
import polars as pl
from sklearn.base import BaseEstimator

from fraud.features import (
    CATEGORICAL,
    FEATURES,
    NUMERIC,
    customer_activity,
    customer_profile,
    merchant_risk,
    payment,
)
from shipyard import FeatureStore, Project, get_context, step

LABEL = "is_chargeback"


# Loaders read files that change outside shipyard, so they always run; their
# outputs are content-addressed, so the steps after them are still cache hits
# when the data did not change. (Transactions come in through the contract: see
# shipyard.contracts.ingest in pipelines.py.)
@step(cache=False)
def load_labels(data_dir: str, as_of: str) -> pl.DataFrame:
    """The chargeback labels that had arrived by ``as_of``."""
    cutoff = dt.datetime.fromisoformat(as_of).replace(tzinfo=dt.UTC)
    labels = pl.read_parquet(get_context().project_root / data_dir / "labels.parquet")
    return labels.filter(pl.col("label_timestamp") <= cutoff)


@step
def build_training_set(transactions: pl.DataFrame, labels: pl.DataFrame) -> pl.DataFrame:
    """Every labelled payment with its features as of just before it, point-in-time correct.

    The feature views read this run's ingested transactions and the labels that had
    arrived, so the training set is exactly what the service would have seen.
    """
    context = get_context()
    store = FeatureStore(
        [customer_activity, customer_profile, merchant_risk, payment],
        project=Project.discover(context.project_root),
    )
    labelled = transactions.join(
        labels.select("transaction_id", LABEL), on="transaction_id", maintain_order="left"
    )
    rows = labelled.with_columns(
        (pl.col("event_timestamp") - dt.timedelta(microseconds=1)).alias("as_of")
    )
    frame = store.training_frame(
        rows,
        FEATURES,
        timestamp="as_of",
        sources={"transactions": transactions, "labels": labels},
    )
    context.log_metric("label_coverage", labelled.height / max(transactions.height, 1))
    context.log_metric("fraud_rate", float(labelled[LABEL].mean() or 0.0))
    return frame.drop("as_of")


@step
def split_by_time(
    data: pl.DataFrame, test_days: int
) -> tuple[Annotated[pl.DataFrame, "train"], Annotated[pl.DataFrame, "test"]]:
    """The last ``test_days`` days for testing, everything before for training."""
    boundary = data["event_timestamp"].max() - dt.timedelta(days=test_days)  # type: ignore[operator]
    train = data.filter(pl.col("event_timestamp") <= boundary)
    test = data.filter(pl.col("event_timestamp") > boundary)
    get_context().log_param("split_at", str(boundary))
    return train, test


@step
def train_model(train: pl.DataFrame, learning_rate: float, max_iter: int) -> BaseEstimator:
    """A gradient-boosted tree model with the categorical columns ordinal-encoded."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder

    encode = ColumnTransformer(
        [
            (
                "categories",
                OrdinalEncoder(
                    handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-2
                ),
                CATEGORICAL,
            )
        ],
        remainder="passthrough",
    )
    classifier = HistGradientBoostingClassifier(
        learning_rate=learning_rate,
        max_iter=max_iter,
        categorical_features=list(range(len(CATEGORICAL))),
        random_state=get_context().seed,
    )
    model = make_pipeline(encode, classifier)
    model.fit(train.select(CATEGORICAL + NUMERIC), train[LABEL].to_numpy())
    return model


@step
def evaluate(model: Any, test: pl.DataFrame) -> dict[str, float]:
    """Ranking quality and the recall the fraud team cares about, on the held-out days."""
    from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

    truth = test[LABEL].to_numpy()
    scores = model.predict_proba(test.select(CATEGORICAL + NUMERIC))[:, 1]
    false_positive_rate, true_positive_rate, _ = roc_curve(truth, scores)
    metrics = {
        "roc_auc": float(roc_auc_score(truth, scores)),
        "average_precision": float(average_precision_score(truth, scores)),
        "recall_at_1pct_fpr": float(np.interp(0.01, false_positive_rate, true_positive_rate)),
        "test_rows": float(len(truth)),
    }
    context = get_context()
    for name, value in metrics.items():
        context.log_metric(name, value)
    return metrics
