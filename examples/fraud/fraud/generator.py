"""Synthetic card payments standing in for the upstream payments team.

The fraud demo needs data that behaves like a real card issuer's feed, so this module plays
the upstream team: it produces card transactions day by day, the chargeback labels that arrive
weeks later, and daily Parquet deliveries that can break the way real deliveries break.
Everything is deterministic: the same arguments always give the same rows.

**Transactions** (:func:`generate_transactions`), one row per card payment:

==================== ========================= ==============================================
column               dtype                     meaning
==================== ========================= ==============================================
transaction_id       String                    ``tx_YYYYMMDD_NNNNNNN``, numbered in time order
customer_id          String                    ``c_NNNNNNNN``, the card holder
merchant_id          String                    ``m_NNNNN``, each merchant sells one category
merchant_category    String                    grocery, electronics, travel, gaming, fashion,
                                               digital_goods, restaurants, fuel, pharmacy,
                                               gift_cards (and crypto, see ``novel_category``)
amount               Float64                   > 0, two decimals, log-normal per category
currency             String                    EUR, USD, GBP, PLN
country              String                    where the payment happens (ISO 3166 alpha-2):
                                               DE, FR, NL, ES, IT, GB, US, PL
device               String                    ios, android, web, pos
channel              String                    online, in_store, mobile_app
account_age_days     Int64                     days since the customer opened the account
event_timestamp      Datetime("us", "UTC")     sorted, busy afternoons and quiet nights
is_fraud             Int8                      ground truth, 1 for about 1.5 % of rows
==================== ========================= ==============================================

Each day has exactly ``rows_per_day`` rows. About ``0.4 * rows_per_day`` customers hold an open
account on any day; how often each one pays is skewed (most pay once or twice a day, the
busiest few a few dozen times). Customers open accounts continuously and close them after a
couple of years on average, so there are always some young accounts. A customer keeps a home
country, a usual device and an opening date: its ``account_age_days`` grows by one a day, and
these attributes depend only on ``seed`` (and ``rows_per_day``, which sizes the population), so
two windows generated with the same seed agree about every customer they share.

**Fraud patterns.** Fraud is card-not-present and comes in episodes: a burst of one to several
purchases on one card, minutes apart. About two thirds of episodes are account takeovers: a
random existing customer's card is used, usually from another country (mostly US, PL, GB) than
the customer's home, mostly on the web. The rest come from freshly opened accounts (under 60
days old). Fraudsters prefer gift cards, electronics, digital goods and gaming, spend about
2.5 times more than a legitimate purchase in the same category, and are active at night. None
of these signals is decisive alone: a gradient-boosting model on the raw columns reaches a
ROC AUC of about 0.96 on later days, and adding hour of day, "transactions by this customer in
the previous hour" and "country differs from the customer's usual country" lifts it to ~0.98.

**Knobs.**

* ``drift`` in [0, 1] moves every distribution gradually away from the training distribution
  (0): amounts grow (mean about +45 % at 1), online shopping shifts toward digital goods,
  gaming and travel, mobile devices replace point-of-sale terminals, more payments happen
  abroad, and fraud changes style: daytime, mobile, fashion and travel, smaller amounts,
  shorter bursts, a slightly higher rate. Use it for drift and performance monitoring demos.
* ``novel_category`` in [0, 1] brings in a merchant category that training never saw and
  the contract does not list: ``crypto`` (exchanges and wallets, merchant ids after every
  other category's). At 1, 3 % of legitimate card-not-present payments and 45 % of fraud
  episodes (every row of the episode) move to it, both with larger amounts than the
  category they leave (median 150, fraud about 3.3 times more); in between, the shares
  scale linearly. About 3 % of a day's rows are then ``crypto``, a quarter of them fraud
  (under the contract's 5 % quarantine limit: its rows are quarantined, the day passes).
  The moves are drawn from a random stream of their own: at 0 (the default) the output is
  exactly what it was without the knob, and the other columns of a day do not depend on
  it. With ``drift`` it is the production drift of the monitoring demo.
* :func:`generate_labels` turns the ground truth into what the team actually learns: a
  chargeback (or the end of the chargeback window) 3 to 90 days later; about 3 % of fraud is
  never charged back and so is labelled 0.
* :func:`write_daily_batches` writes what upstream delivers: one Parquet file a day without
  ``is_fraud``, plus ``labels.parquet``. ``broken_day`` corrupts one delivery (out-of-range
  amounts, null customer ids, re-sent rows with duplicate transaction ids, invalid currency
  codes); ``schema_change_day`` renames ``amount`` to ``amount_value`` from that day on.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

from ._generator_patterns import (
    ALL_CATEGORIES,
    CHANNELS,
    COUNTRIES,
    CURRENCIES,
    DAY_US,
    DEVICES,
    Customers,
    DayPlan,
    IntArray,
    Scenario,
    customers_for_window,
    draw_day,
    merchants_per_category,
)

__all__ = ["generate_labels", "generate_transactions", "write_daily_batches"]

TRANSACTION_SCHEMA = pl.Schema(
    {
        "transaction_id": pl.String(),
        "customer_id": pl.String(),
        "merchant_id": pl.String(),
        "merchant_category": pl.String(),
        "amount": pl.Float64(),
        "currency": pl.String(),
        "country": pl.String(),
        "device": pl.String(),
        "channel": pl.String(),
        "account_age_days": pl.Int64(),
        "event_timestamp": pl.Datetime("us", "UTC"),
        "is_fraud": pl.Int8(),
    }
)
LABEL_SCHEMA = pl.Schema(
    {
        "transaction_id": pl.String(),
        "label_timestamp": pl.Datetime("us", "UTC"),
        "is_chargeback": pl.Int8(),
    }
)

MIN_LABEL_DELAY_DAYS = 3.0
MAX_LABEL_DELAY_DAYS = 90.0
LABEL_DELAY_LOG_SIGMA = 0.6
NEVER_CHARGED_BACK = 0.03
MIN_ROWS_FOR_BROKEN_DAY = 100
INVALID_CURRENCIES = ("EURO", "")
ABSURD_AMOUNT = 1e9

_DAY_STREAM = 2
_LABEL_STREAM = 3
_BROKEN_STREAM = 4
_NOVEL_STREAM = 5
_UNIX_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


def generate_transactions(
    start: dt.date,
    days: int,
    *,
    rows_per_day: int = 5000,
    seed: int = 0,
    drift: float = 0.0,
    novel_category: float = 0.0,
) -> pl.DataFrame:
    """Card transactions for ``days`` consecutive days from ``start``, with ground truth.

    Args:
        start: The first day (UTC).
        days: How many days, at least 1.
        rows_per_day: Exact number of transactions per day, at least 1.
        seed: Non-negative seed; customers and every day's rows derive from it.
        drift: 0 for the training distribution, up to 1 for the most shifted one.
        novel_category: 0 for none, up to 1 for the most traffic (and fraud) in the
            ``crypto`` category training never saw; see the module's docstring.

    Returns:
        A frame with the columns of ``TRANSACTION_SCHEMA``, sorted by ``event_timestamp``.
        Each day is generated from its own random stream, so a window equals the
        concatenation of its single days generated separately. The customer population
        depends on ``seed`` and ``rows_per_day`` only, not on the window.

    Raises:
        ValueError: If an argument is out of range.
    """
    _check_window(days, rows_per_day, seed, drift)
    _check_share("novel_category", novel_category)
    first = start.toordinal()
    customers = customers_for_window(seed, rows_per_day, first, first + days - 1)
    mix = Scenario.at(drift, novel_category)
    per_category = merchants_per_category(rows_per_day)
    plans = [DayPlan(first + i, rows_per_day, per_category, mix) for i in range(days)]
    return pl.concat([_day_frame(plan, customers, seed) for plan in plans])


def generate_labels(
    transactions: pl.DataFrame, *, seed: int = 0, median_delay_days: float = 21.0
) -> pl.DataFrame:
    """Chargeback labels for ``transactions``, as they arrive weeks after each payment.

    Every transaction gets one label row. Its ``label_timestamp`` is the event time plus a
    log-normal delay with the given median, clipped to [3, 90] days. ``is_chargeback`` is 1
    for fraud, except for the ~3 % of fraud that is never charged back, and 0 otherwise.

    Args:
        transactions: Frame with ``transaction_id``, ``event_timestamp`` and ``is_fraud``.
        seed: Non-negative seed of the delays and of which fraud goes unreported.
        median_delay_days: Median delay, strictly between 3 and 90 days.

    Returns:
        A frame with the columns of ``LABEL_SCHEMA``, sorted by ``label_timestamp``. The
        random draws follow the row order of ``transactions``.

    Raises:
        ValueError: If a column is missing or an argument is out of range.
    """
    missing = {"transaction_id", "event_timestamp", "is_fraud"} - set(transactions.columns)
    if missing:
        raise ValueError(f"transactions lack the columns {sorted(missing)}")
    if not MIN_LABEL_DELAY_DAYS < median_delay_days < MAX_LABEL_DELAY_DAYS:
        raise ValueError(f"median_delay_days must lie in (3, 90), got {median_delay_days}")
    _check_seed(seed)
    rng = np.random.default_rng([seed, _LABEL_STREAM])
    rows = transactions.height
    delay_days = median_delay_days * np.exp(LABEL_DELAY_LOG_SIGMA * rng.standard_normal(rows))
    delay_days = np.clip(delay_days, MIN_LABEL_DELAY_DAYS, MAX_LABEL_DELAY_DAYS)
    reported = rng.random(rows) >= NEVER_CHARGED_BACK
    delay = pl.Series(np.round(delay_days * DAY_US).astype(np.int64)).cast(pl.Duration("us"))
    return transactions.select(
        "transaction_id",
        label_timestamp=pl.col("event_timestamp") + delay,
        is_chargeback=((pl.col("is_fraud") == 1) & pl.Series(reported)).cast(pl.Int8),
    ).sort("label_timestamp", maintain_order=True)


def write_daily_batches(
    directory: Path | str,
    start: dt.date,
    days: int,
    *,
    rows_per_day: int = 5000,
    seed: int = 0,
    drift: float = 0.0,
    novel_category: float = 0.0,
    broken_day: int | None = None,
    schema_change_day: int | None = None,
) -> list[Path]:
    """Write upstream's daily deliveries and the labels of the whole window.

    Each day goes to ``transactions_YYYY-MM-DD.parquet`` without ``is_fraud``; the labels of
    all days (from :func:`generate_labels` with the same seed) go to ``labels.parquet``.

    Args:
        directory: Where to write; created if missing. Existing files are overwritten.
        start: The first day.
        days: How many days.
        rows_per_day: Transactions per day before any defect is injected.
        seed: Seed of transactions, labels and defects.
        drift: See :func:`generate_transactions`.
        novel_category: See :func:`generate_transactions`.
        broken_day: 0-based index of the day whose delivery is broken: 2 % of rows get an
            amount that is negative or 1e9, 1 % a null ``customer_id``, 1 % (at most 6) an
            invalid currency ("EURO" or ""), and 1 % (at most 5) other rows are delivered a
            second time with the same ``transaction_id``. Needs ``rows_per_day >= 100``.
        schema_change_day: 0-based index of the first day whose delivery names the
            ``amount`` column ``amount_value``.

    Returns:
        The paths of the daily batches, in date order.

    Raises:
        ValueError: If an argument is out of range.
    """
    _check_day_index("broken_day", broken_day, days)
    _check_day_index("schema_change_day", schema_change_day, days)
    if broken_day is not None and rows_per_day < MIN_ROWS_FOR_BROKEN_DAY:
        raise ValueError(f"broken_day needs rows_per_day >= {MIN_ROWS_FOR_BROKEN_DAY}")
    transactions = generate_transactions(
        start,
        days,
        rows_per_day=rows_per_day,
        seed=seed,
        drift=drift,
        novel_category=novel_category,
    )
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    generate_labels(transactions, seed=seed).write_parquet(target / "labels.parquet")
    paths = []
    for index in range(days):
        day = start + dt.timedelta(days=index)
        batch = transactions.slice(index * rows_per_day, rows_per_day).drop("is_fraud")
        if index == broken_day:
            batch = _break_batch(batch, np.random.default_rng([seed, _BROKEN_STREAM, index]))
        if schema_change_day is not None and index >= schema_change_day:
            batch = batch.rename({"amount": "amount_value"})
        path = target / f"transactions_{day.isoformat()}.parquet"
        batch.write_parquet(path)
        paths.append(path)
    return paths


def _check_seed(seed: int) -> None:
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")


def _check_window(days: int, rows_per_day: int, seed: int, drift: float) -> None:
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    if rows_per_day < 1:
        raise ValueError(f"rows_per_day must be at least 1, got {rows_per_day}")
    _check_share("drift", drift)
    _check_seed(seed)


def _check_share(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {value}")


def _check_day_index(name: str, index: int | None, days: int) -> None:
    if index is not None and not 0 <= index < days:
        raise ValueError(f"{name} must be a day index in [0, {days}), got {index}")


def _day_frame(plan: DayPlan, customers: Customers, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng([seed, _DAY_STREAM, plan.ordinal])
    novel = np.random.default_rng([seed, _NOVEL_STREAM, plan.ordinal])
    draws = draw_day(rng, customers, plan, novel)
    day = dt.date.fromordinal(plan.ordinal)
    midnight_us = (plan.ordinal - _UNIX_EPOCH_ORDINAL) * DAY_US
    return pl.DataFrame(
        {
            "transaction_id": _numbered(f"tx_{day:%Y%m%d}_", np.arange(1, plan.rows + 1), 7),
            "customer_id": _numbered("c_", customers.number[draws.customer], 8),
            "merchant_id": _numbered("m_", draws.merchant, 5),
            "merchant_category": _labels(ALL_CATEGORIES, draws.category),
            "amount": draws.amount,
            "currency": _labels(CURRENCIES, draws.currency),
            "country": _labels(COUNTRIES, draws.country),
            "device": _labels(DEVICES, draws.device),
            "channel": _labels(CHANNELS, draws.channel),
            "account_age_days": plan.ordinal - customers.signup_ordinal[draws.customer],
            "event_timestamp": midnight_us + draws.micros,
            "is_fraud": draws.is_fraud,
        }
    ).cast(TRANSACTION_SCHEMA)


def _numbered(prefix: str, numbers: IntArray, width: int) -> pl.Series:
    digits = pl.Series(numbers).cast(pl.String).str.zfill(width)
    return (prefix + digits).rename("")


def _labels(names: tuple[str, ...], codes: IntArray) -> pl.Series:
    return pl.Series(names, dtype=pl.String).gather(codes)


def _break_batch(batch: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """The batch with disjoint sets of rows corrupted, and some rows delivered twice."""
    rows = batch.height
    counts = [round(0.02 * rows), round(0.01 * rows), min(6, rows // 100), min(5, rows // 100)]
    chosen = rng.permutation(rows)[: sum(counts)]
    out_of_range, no_customer, bad_currency, resent = np.split(chosen, np.cumsum(counts)[:-1])
    amount = batch["amount"].to_numpy().copy()
    absurd = rng.random(out_of_range.size) < 0.5
    amount[out_of_range] = np.where(absurd, ABSURD_AMOUNT, -amount[out_of_range])
    currency = batch["currency"].to_numpy().astype(object)
    currency[bad_currency] = [INVALID_CURRENCIES[i % 2] for i in range(bad_currency.size)]
    missing_customer = np.zeros(rows, dtype=np.bool_)
    missing_customer[no_customer] = True
    broken = batch.with_columns(
        amount=pl.Series(amount, dtype=pl.Float64),
        currency=pl.Series(currency, dtype=pl.String),
        customer_id=pl.when(pl.Series(missing_customer)).then(None).otherwise("customer_id"),
    )
    resent_rows = broken[np.sort(resent)]
    return pl.concat([broken, resent_rows]).sort("event_timestamp", maintain_order=True)
