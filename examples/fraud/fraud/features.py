"""The fraud model's features, defined once for training and for serving.

Three feature views, computed from the contract-validated transactions (and the
chargebacks, which arrive weeks after the payment):

* ``customer_activity``: how many payments the customer made, and how much they
  spent, over the last hour, day and week, as of each of their payments.
* ``customer_profile``: the customer's home country (the first seen so far).
* ``merchant_risk``: the share of the merchant's payments of the last 30 days that
  came back as chargebacks, counting a chargeback only from the moment it arrived,
  so a training row never sees one that had not been reported yet.

and one group of request features, computed from the payment being scored by the
same function in training and in the service: ``payment``.

Training rows ask for features as of just before the payment (``as_of`` =
payment time minus one microsecond): what the service knows when it scores a
payment that is not in the store yet.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from shipyard import Entity, FeatureView, RequestFeatures
from shipyard.features import Source, window_aggregates

TRANSACTIONS = Source.contract("contracts/transactions.yaml", name="transactions")
LABELS = Source.parquet("data/labels.parquet", name="labels")

customer = Entity("customer", join_keys={"customer_id": pl.String}, description="a card holder")
merchant = Entity("merchant", join_keys={"merchant_id": pl.String}, description="a shop")

WINDOWS = ["1h", "24h", "7d"]
ACTIVITY = {"*": ["count"], "amount": ["sum", "mean", "max"]}


def activity(transactions: pl.LazyFrame) -> pl.LazyFrame:
    """Per customer, as of each payment (included): counts and amounts over 1 h, 24 h, 7 d."""
    payments = transactions.select("customer_id", "event_timestamp", "amount")
    windows = window_aggregates(
        payments,
        by="customer_id",
        timestamp="event_timestamp",
        windows=WINDOWS,
        aggregations=ACTIVITY,
        prefix="customer_",
    )
    return windows.drop("amount")


customer_activity = FeatureView(
    "customer_activity",
    entities=[customer],
    source=TRANSACTIONS,
    transform=activity,
    schema={
        **{f"customer_count_{w}": pl.Int64 for w in WINDOWS},
        **{f"customer_amount_{a}_{w}": pl.Float64 for w in WINDOWS for a in ("sum", "mean", "max")},
    },
    ttl=dt.timedelta(days=7),
    description="The customer's recent payments: bursts of card testing show up here.",
    owner="payments-ml",
)


def home_country(transactions: pl.LazyFrame) -> pl.LazyFrame:
    """Per customer, as of each payment: the country of their first payment seen so far."""
    return (
        transactions.select("customer_id", "event_timestamp", "country")
        .sort("event_timestamp")
        .with_columns(pl.col("country").first().over("customer_id").alias("home_country"))
        .drop("country")
    )


customer_profile = FeatureView(
    "customer_profile",
    entities=[customer],
    source=TRANSACTIONS,
    transform=home_country,
    schema={"home_country": pl.String},
    description="Where the customer usually pays from.",
    owner="payments-ml",
)


def chargeback_rate(transactions: pl.LazyFrame, labels: pl.LazyFrame) -> pl.LazyFrame:
    """Per merchant, at each payment and each chargeback's arrival: the last 30 days'
    payments, chargebacks reported, and their ratio."""
    payments = transactions.select(
        "merchant_id", "event_timestamp", pl.lit(1).alias("payment"), pl.lit(0).alias("chargeback")
    )
    reported = (
        labels.filter(pl.col("is_chargeback") == 1)
        .join(
            transactions.select("transaction_id", "merchant_id"),
            on="transaction_id",
            maintain_order="left",  # Polars does not keep row order by default
        )
        .select(
            "merchant_id",
            pl.col("label_timestamp").alias("event_timestamp"),  # known when it arrived
            pl.lit(0).alias("payment"),
            pl.lit(1).alias("chargeback"),
        )
    )
    events = pl.concat([payments, reported])
    windows = window_aggregates(
        events,
        by="merchant_id",
        timestamp="event_timestamp",
        windows=["30d"],
        aggregations={"payment": ["sum"], "chargeback": ["sum"]},
    )
    return windows.select(
        "merchant_id",
        "event_timestamp",
        pl.col("payment_sum_30d").alias("merchant_payments_30d"),
        pl.col("chargeback_sum_30d").alias("merchant_chargebacks_30d"),
        (pl.col("chargeback_sum_30d") / pl.col("payment_sum_30d").clip(lower_bound=1))
        .cast(pl.Float64)
        .alias("merchant_chargeback_rate_30d"),
    )


merchant_risk = FeatureView(
    "merchant_risk",
    entities=[merchant],
    source={"transactions": TRANSACTIONS, "labels": LABELS},
    transform=chargeback_rate,
    schema={
        "merchant_payments_30d": pl.Int64,
        "merchant_chargebacks_30d": pl.Int64,
        "merchant_chargeback_rate_30d": pl.Float64,
    },
    ttl=dt.timedelta(days=30),
    description="Merchants whose payments come back as chargebacks.",
    owner="payments-ml",
)


def describe_payment(request: pl.DataFrame) -> pl.DataFrame:
    """Features of the payment being scored, from its own fields and the customer's."""
    return request.select(
        pl.col("amount").log1p().alias("log_amount"),
        pl.col("event_timestamp").dt.hour().cast(pl.Int32).alias("hour"),
        (pl.col("event_timestamp").dt.weekday() >= 6).cast(pl.Int8).alias("is_weekend"),
        (pl.col("country") == pl.col("home_country"))
        .fill_null(True)
        .cast(pl.Int8)
        .alias("country_is_usual"),
        (pl.col("amount") / pl.col("customer_amount_mean_7d"))
        .fill_null(1.0)
        .alias("amount_vs_usual"),
    )


payment = RequestFeatures(
    "payment",
    request_schema={
        "amount": pl.Float64,
        "event_timestamp": pl.Datetime("us", "UTC"),
        "account_age_days": pl.Int64,
        "country": pl.String,
    },
    schema={
        "log_amount": pl.Float64,
        "hour": pl.Int32,
        "is_weekend": pl.Int8,
        "country_is_usual": pl.Int8,
        "amount_vs_usual": pl.Float64,
    },
    transform=describe_payment,
    uses=["customer_profile:home_country", "customer_activity:customer_amount_mean_7d"],
    description="The payment itself: its size, time, the account's age, where it comes from.",
)

FEATURES = ["customer_activity", "customer_profile:home_country", "merchant_risk", "payment"]
CATEGORICAL = ["merchant_category", "currency", "country", "device", "channel"]
NUMERIC = [
    "amount",
    *customer_activity.features,
    *merchant_risk.features,
    "log_amount",
    "hour",
    "is_weekend",
    "account_age_days",  # a field of the payment itself
    "country_is_usual",
    "amount_vs_usual",
]
