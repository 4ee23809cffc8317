"""The fraud team's pipelines. `shipyard run training` trains the model."""

from __future__ import annotations

from fraud.training import (
    evaluate,
    label_and_featurize,
    load_labels,
    load_transactions,
    split_by_time,
    train_model,
)

from shipyard import pipeline


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
    """Load a window of batches, label it, split by time, train and evaluate."""
    transactions = load_transactions(data_dir, start, end)
    labels = load_labels(data_dir, labels_as_of)
    data = label_and_featurize(transactions, labels)
    train, test = split_by_time(data, test_days)
    model = train_model(train, learning_rate, max_iter)
    return evaluate(model, test)
