"""The fraud team's pipelines. `shipyard run training` trains the model."""

from __future__ import annotations

import datetime as dt

from fraud.training import (
    build_training_set,
    evaluate,
    load_labels,
    split_by_time,
    train_model,
)

from shipyard import pipeline
from shipyard.contracts.ingest import ingest

CONTRACT = "contracts/transactions.yaml"


def daily_batches(data_dir: str, start: str, end: str) -> list[str]:
    """The upstream team's delivery for every day with start <= day < end."""
    first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    days = (first + dt.timedelta(days=n) for n in range((last - first).days))
    return [f"{data_dir}/transactions_{day.isoformat()}.parquet" for day in days]


@pipeline
def training(
    data_dir: str = "data",
    start: str = "2026-01-01",
    end: str = "2026-02-15",
    labels_as_of: str = "2026-03-02",
    test_days: int = 10,
    learning_rate: float = 0.1,
    max_iter: int = 200,
):
    """Ingest a window of deliveries under the contract, label, split by time, train, evaluate.

    A delivery that breaks the contract's batch rules is quarantined whole and the others
    flow on (fail_on_batch_error=False); rows that break row rules are quarantined one by
    one. Either way the step's quarantine and report artifacts say what and why.
    """
    transactions = ingest(daily_batches(data_dir, start, end), CONTRACT, fail_on_batch_error=False)
    labels = load_labels(data_dir, labels_as_of)
    data = build_training_set(transactions, labels)
    train, test = split_by_time(data, test_days)
    model = train_model(train, learning_rate, max_iter)
    return evaluate(model, test)
