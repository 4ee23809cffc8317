"""Features of a transaction, written once as Polars expressions.

Every feature here is computed from the transaction itself and the same
customer's earlier transactions, never later ones, so a model trained on them
sees at training time exactly what it will see when serving.
"""

from __future__ import annotations

import polars as pl

CATEGORICAL = ["merchant_category", "currency", "country", "device", "channel"]
NUMERIC = [
    "amount",
    "log_amount",
    "account_age_days",
    "hour",
    "is_weekend",
    "customer_tx_1h",
    "customer_tx_24h",
    "customer_amount_24h",
    "country_is_usual",
]


def add_features(transactions: pl.DataFrame) -> pl.DataFrame:
    """Add time, amount and per-customer history features (as of each transaction)."""
    frame = transactions.sort("event_timestamp").with_columns(
        pl.col("amount").log1p().alias("log_amount"),
        pl.col("event_timestamp").dt.hour().cast(pl.Int32).alias("hour"),
        (pl.col("event_timestamp").dt.weekday() >= 6).cast(pl.Int8).alias("is_weekend"),
    )
    return _customer_history(frame).with_columns(_usual_country())


def _customer_history(frame: pl.DataFrame) -> pl.DataFrame:
    """Counts and sums over the customer's previous 1 h and 24 h, the current row excluded."""

    def previous(expr: pl.Expr, period: str) -> pl.Expr:
        by_time = expr.rolling_sum_by("event_timestamp", window_size=period, closed="left")
        return by_time.over("customer_id")

    one = pl.col("amount").is_not_null().cast(pl.Int32)  # 1 on every row
    return frame.with_columns(
        previous(one, "1h").fill_null(0).cast(pl.Int32).alias("customer_tx_1h"),
        previous(one, "24h").fill_null(0).cast(pl.Int32).alias("customer_tx_24h"),
        previous(pl.col("amount"), "24h").fill_null(0.0).alias("customer_amount_24h"),
    )


def _usual_country() -> pl.Expr:
    """Whether the payment is in the country of the customer's first payment seen so far."""
    first = pl.col("country").first().over("customer_id")
    return (pl.col("country") == first).cast(pl.Int8).alias("country_is_usual")
