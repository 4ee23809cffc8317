"""Distributions, customers and fraud patterns behind :mod:`fraud.generator`.

Everything here works on integer codes and NumPy arrays; :mod:`fraud.generator` turns the
draws into a Polars frame. The numbers are hand-picked to look like a European card issuer's
traffic and to make fraud detectable but not trivial.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields, replace

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

CATEGORIES = (
    "grocery",
    "electronics",
    "travel",
    "gaming",
    "fashion",
    "digital_goods",
    "restaurants",
    "fuel",
    "pharmacy",
    "gift_cards",
)
NOVEL_CATEGORY = "crypto"
"""The category the ``novel_category`` knob brings in: not in ``CATEGORIES`` (nor the contract)."""
ALL_CATEGORIES = (*CATEGORIES, NOVEL_CATEGORY)
NOVEL = len(CATEGORIES)  # its code
COUNTRIES = ("DE", "FR", "NL", "ES", "IT", "GB", "US", "PL")
CURRENCIES = ("EUR", "USD", "GBP", "PLN")
DEVICES = ("ios", "android", "web", "pos")
CHANNELS = ("online", "in_store", "mobile_app")

IOS, ANDROID, WEB, POS = range(len(DEVICES))
ONLINE, IN_STORE, MOBILE_APP = range(len(CHANNELS))
USD = CURRENCIES.index("USD")
CURRENCY_OF_COUNTRY = np.array([0, 0, 0, 0, 0, 2, 1, 3], dtype=np.int64)

HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
EPOCH_ORDINAL = dt.date(1950, 1, 1).toordinal()
"""Customer number k signs up on EPOCH + k / signup_rate days: ids stay stable for any window."""

CUSTOMERS_PER_DAILY_ROW = 0.4
MIN_CUSTOMERS = 50
MEAN_LIFETIME_DAYS = 900.0
HORIZON_DAYS = 8 * int(MEAN_LIFETIME_DAYS)
CUSTOMER_BLOCK = 4096
CUSTOMER_STREAM = 1
YOUNG_ACCOUNT_DAYS = 60
MERCHANTS_PER_CATEGORY_ROWS = 200

MEDIAN_AMOUNT = np.array([32.0, 160.0, 240.0, 22.0, 58.0, 12.0, 28.0, 55.0, 18.0, 50.0])
AMOUNT_SIGMA = np.array([0.6, 0.7, 0.7, 0.8, 0.7, 0.8, 0.6, 0.4, 0.6, 0.5])
MAX_AMOUNT = 50_000.0

# At novel_category = 1: the share of legitimate card-not-present payments and of fraud
# episodes that move to the novel category, and its amounts (crypto exchanges: larger).
NOVEL_LEGIT_SHARE = 0.03
NOVEL_FRAUD_SHARE = 0.45
NOVEL_MEDIAN_AMOUNT = 150.0
NOVEL_AMOUNT_SIGMA = 0.7
NOVEL_FRAUD_LOG_UPLIFT = 1.2

HOME_COUNTRY = np.array([30, 20, 10, 12, 12, 10, 3, 3], dtype=np.float64)
USUAL_DEVICE = np.array([28, 32, 15, 25], dtype=np.float64)

# Relative weight of each UTC hour, 0 to 23.
# fmt: off
LEGIT_HOURLY = np.array([
    1.0, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 2.5, 3.8, 4.5, 5.0, 5.5,
    6.5, 6.2, 5.5, 5.3, 5.6, 6.4, 7.0, 7.0, 6.2, 4.8, 3.2, 1.8,
])
FRAUD_HOURLY = np.array([
    5.0, 6.0, 6.5, 6.5, 5.5, 4.0, 3.0, 2.5, 2.5, 2.5, 2.5, 2.5,
    3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.5, 3.5, 4.0, 4.0, 4.5, 5.0,
])
# fmt: on


def _weights(*values: float) -> FloatArray:
    return np.array(values, dtype=np.float64)


# (weights at drift 0, weights at drift 1); categories in CATEGORIES order.
IN_STORE_CATEGORY = (
    _weights(30, 4, 1, 1, 10, 0, 22, 17, 12, 3),
    _weights(24, 5, 2, 2, 12, 0, 26, 11, 12, 6),
)
ONLINE_CATEGORY = (
    _weights(12, 12, 10, 10, 18, 16, 8, 0, 6, 3),
    _weights(8, 10, 14, 16, 14, 24, 8, 0, 4, 4),
)
FRAUD_CATEGORY = (
    _weights(2, 26, 6, 9, 6, 20, 1, 1, 1, 28),
    _weights(8, 12, 18, 8, 20, 10, 8, 4, 4, 8),
)
TRAVEL_COUNTRY = (_weights(12, 16, 8, 22, 18, 12, 8, 4), _weights(10, 12, 6, 16, 12, 18, 20, 6))
FRAUD_COUNTRY = (_weights(4, 5, 8, 4, 4, 15, 35, 25), _weights(12, 12, 10, 10, 10, 14, 16, 16))
OTHER_DEVICE = (_weights(25, 25, 20, 30), _weights(30, 45, 10, 15))
FRAUD_DEVICE = (_weights(10, 15, 75, 0), _weights(25, 50, 25, 0))
FRAUD_HOUR = (FRAUD_HOURLY, LEGIT_HOURLY)


def _blend(pair: tuple[FloatArray, FloatArray], drift: float) -> FloatArray:
    mixed: FloatArray = (1.0 - drift) * pair[0] / pair[0].sum() + drift * pair[1] / pair[1].sum()
    return np.asarray(mixed / mixed.sum(), dtype=np.float64)


def _lerp(at_zero: float, at_one: float, drift: float) -> float:
    return at_zero + (at_one - at_zero) * drift


@dataclass(frozen=True)
class Scenario:
    """Every probability the day generator needs, for one drift level."""

    fraud_rate: float
    amount_log_shift: float
    fraud_amount_log_uplift: float
    usual_device_probability: float
    cross_border_probability: float
    takeover_share: float
    takeover_foreign_probability: float
    new_account_foreign_probability: float
    burst_extra_transactions: float
    burst_gap_minutes: float
    in_store_category: FloatArray
    online_category: FloatArray
    fraud_category: FloatArray
    travel_country: FloatArray
    fraud_country: FloatArray
    other_device: FloatArray
    fraud_device: FloatArray
    legit_hour: FloatArray
    fraud_hour: FloatArray
    novel_category: float = 0.0

    @classmethod
    def at(cls, drift: float, novel_category: float = 0.0) -> Scenario:
        """The distribution mix for ``drift`` in [0, 1]; 0 is the training distribution.

        ``novel_category`` in [0, 1] scales how much traffic moves to ``NOVEL_CATEGORY``.
        """
        return cls(
            novel_category=novel_category,
            fraud_rate=_lerp(0.015, 0.019, drift),
            amount_log_shift=_lerp(0.0, 0.35, drift),
            fraud_amount_log_uplift=_lerp(0.9, 0.3, drift),
            usual_device_probability=_lerp(0.85, 0.65, drift),
            cross_border_probability=_lerp(0.05, 0.12, drift),
            takeover_share=0.65,
            takeover_foreign_probability=_lerp(0.75, 0.35, drift),
            new_account_foreign_probability=_lerp(0.25, 0.15, drift),
            burst_extra_transactions=_lerp(2.0, 0.7, drift),
            burst_gap_minutes=_lerp(7.0, 20.0, drift),
            in_store_category=_blend(IN_STORE_CATEGORY, drift),
            online_category=_blend(ONLINE_CATEGORY, drift),
            fraud_category=_blend(FRAUD_CATEGORY, drift),
            travel_country=_blend(TRAVEL_COUNTRY, drift),
            fraud_country=_blend(FRAUD_COUNTRY, drift),
            other_device=_blend(OTHER_DEVICE, drift),
            fraud_device=_blend(FRAUD_DEVICE, drift),
            legit_hour=LEGIT_HOURLY / LEGIT_HOURLY.sum(),
            fraud_hour=_blend(FRAUD_HOUR, drift),
        )


@dataclass(frozen=True)
class Customers:
    """The customers who can transact in a window, ordered by customer number."""

    number: IntArray
    signup_ordinal: IntArray
    leave_ordinal: IntArray
    home_country: IntArray
    usual_device: IntArray
    activity: FloatArray

    def active_on(self, ordinal: int) -> IntArray:
        """Positions of the customers holding an open account on day ``ordinal``."""
        alive = (self.signup_ordinal <= ordinal) & (self.leave_ordinal > ordinal)
        alive &= self.signup_ordinal > ordinal - HORIZON_DAYS
        return np.flatnonzero(alive).astype(np.int64)


def _signup_rate(rows_per_day: int) -> float:
    population = max(MIN_CUSTOMERS, rows_per_day * CUSTOMERS_PER_DAILY_ROW)
    return population / MEAN_LIFETIME_DAYS


def _customer_block(seed: int, block: int) -> dict[str, npt.NDArray[np.generic]]:
    rng = np.random.default_rng([seed, CUSTOMER_STREAM, block])
    return {
        "home_country": rng.choice(
            len(COUNTRIES), CUSTOMER_BLOCK, p=HOME_COUNTRY / HOME_COUNTRY.sum()
        ),
        "usual_device": rng.choice(
            len(DEVICES), CUSTOMER_BLOCK, p=USUAL_DEVICE / USUAL_DEVICE.sum()
        ),
        "activity": np.minimum(rng.lognormal(0.0, 0.9, CUSTOMER_BLOCK), 12.0),
        "lifetime": 1 + np.floor(rng.exponential(MEAN_LIFETIME_DAYS, CUSTOMER_BLOCK)),
    }


def customers_for_window(seed: int, rows_per_day: int, first: int, last: int) -> Customers:
    """Every customer who may be active between day ordinals ``first`` and ``last``.

    A customer's attributes depend only on ``seed`` and its number, so any window sees the
    same home country, usual device and signup day for the same ``customer_id``.
    """
    rate = _signup_rate(rows_per_day)
    low = max(0, int(np.floor((first - HORIZON_DAYS - EPOCH_ORDINAL) * rate)))
    high = int(np.ceil((last + 1 - EPOCH_ORDINAL) * rate))
    blocks = range(low // CUSTOMER_BLOCK, high // CUSTOMER_BLOCK + 1)
    drawn = [_customer_block(seed, block) for block in blocks]
    numbers = np.arange(blocks.start * CUSTOMER_BLOCK, blocks.stop * CUSTOMER_BLOCK, dtype=np.int64)
    keep = slice(low - blocks.start * CUSTOMER_BLOCK, high - blocks.start * CUSTOMER_BLOCK)

    def column(name: str) -> npt.NDArray[np.generic]:
        return np.concatenate([block[name] for block in drawn])[keep]

    signup = EPOCH_ORDINAL + np.floor(numbers[keep] / rate).astype(np.int64)
    return Customers(
        number=numbers[keep],
        signup_ordinal=signup,
        leave_ordinal=signup + column("lifetime").astype(np.int64),
        home_country=column("home_country").astype(np.int64),
        usual_device=column("usual_device").astype(np.int64),
        activity=column("activity").astype(np.float64),
    )


@dataclass(frozen=True)
class DayPlan:
    """What one generated day depends on besides the random stream."""

    ordinal: int
    rows: int
    merchants_per_category: int
    mix: Scenario


@dataclass(frozen=True)
class Draws:
    """One day's transactions as parallel arrays of codes (customer = position in Customers)."""

    customer: IntArray
    category: IntArray
    merchant: IntArray
    amount: FloatArray
    currency: IntArray
    country: IntArray
    device: IntArray
    channel: IntArray
    micros: IntArray
    is_fraud: IntArray

    def concat(self, other: Draws) -> Draws:
        """Both draws, ``self`` first."""
        return Draws(
            **{
                f.name: np.concatenate([getattr(self, f.name), getattr(other, f.name)])
                for f in fields(self)
            }
        )

    def take(self, order: IntArray) -> Draws:
        """The rows at positions ``order``."""
        return Draws(**{f.name: getattr(self, f.name)[order] for f in fields(self)})


def _foreign_country(rng: np.random.Generator, home: IntArray, weights: FloatArray) -> IntArray:
    country = rng.choice(len(COUNTRIES), home.size, p=weights)
    same = country == home
    others = rng.integers(1, len(COUNTRIES), int(same.sum()))
    country[same] = (home[same] + others) % len(COUNTRIES)
    return country.astype(np.int64)


def _channel_of_device(rng: np.random.Generator, device: IntArray) -> IntArray:
    mobile = np.where(rng.random(device.size) < 0.8, MOBILE_APP, ONLINE)
    channel = np.where(device == WEB, ONLINE, np.where(device == POS, IN_STORE, mobile))
    return channel.astype(np.int64)


def _currency(rng: np.random.Generator, country: IntArray, channel: IntArray) -> IntArray:
    charged_in_usd = (channel != IN_STORE) & (rng.random(country.size) < 0.08)
    return np.where(charged_in_usd, USD, CURRENCY_OF_COUNTRY[country]).astype(np.int64)


def _amount(
    rng: np.random.Generator, category: IntArray, log_shift: FloatArray | float
) -> FloatArray:
    log_noise = AMOUNT_SIGMA[category] * rng.standard_normal(category.size)
    amount: FloatArray = MEDIAN_AMOUNT[category] * np.exp(log_noise + log_shift)
    return np.clip(amount, 0.5, MAX_AMOUNT).round(2)


def _micros_of_day(rng: np.random.Generator, hour_weights: FloatArray, size: int) -> IntArray:
    hour = rng.choice(24, size, p=hour_weights)
    return (hour * HOUR_US + rng.integers(0, HOUR_US, size)).astype(np.int64)


def merchants_per_category(rows_per_day: int) -> int:
    """How many merchants each category has; merchant ids are ``category * this + rank``."""
    return max(5, rows_per_day // MERCHANTS_PER_CATEGORY_ROWS)


def _merchant(rng: np.random.Generator, category: IntArray, per_category: int) -> IntArray:
    popularity = 1.0 / np.arange(1, per_category + 1)
    rank = rng.choice(per_category, category.size, p=popularity / popularity.sum())
    return (category * per_category + rank).astype(np.int64)


def _legit(
    rng: np.random.Generator, customers: Customers, active: IntArray, size: int, day: DayPlan
) -> Draws:
    mix = day.mix
    activity = customers.activity[active]
    customer = rng.choice(active, size, p=activity / activity.sum())
    keeps_device = rng.random(size) < mix.usual_device_probability
    other_device = rng.choice(len(DEVICES), size, p=mix.other_device)
    device = np.where(keeps_device, customers.usual_device[customer], other_device)
    channel = _channel_of_device(rng, device)
    in_store = rng.choice(len(CATEGORIES), size, p=mix.in_store_category)
    online = rng.choice(len(CATEGORIES), size, p=mix.online_category)
    category = np.where(channel == IN_STORE, in_store, online).astype(np.int64)
    home = customers.home_country[customer]
    abroad = rng.random(size) < mix.cross_border_probability
    country = np.where(abroad, _foreign_country(rng, home, mix.travel_country), home)
    return Draws(
        customer=customer,
        category=category,
        merchant=_merchant(rng, category, day.merchants_per_category),
        amount=_amount(rng, category, mix.amount_log_shift),
        currency=_currency(rng, country, channel),
        country=country,
        device=device,
        channel=channel,
        micros=_micros_of_day(rng, mix.legit_hour, size),
        is_fraud=np.zeros(size, dtype=np.int64),
    )


def _episode_sizes(rng: np.random.Generator, fraud_rows: int, mix: Scenario) -> IntArray:
    sizes = 1 + rng.poisson(mix.burst_extra_transactions, max(fraud_rows, 1))
    last = int(np.searchsorted(np.cumsum(sizes), fraud_rows))
    sizes = sizes[: last + 1].astype(np.int64)
    sizes[-1] -= int(sizes.sum()) - fraud_rows
    return sizes[sizes > 0]


def _episode_victims(
    rng: np.random.Generator,
    customers: Customers,
    active: IntArray,
    ordinal: int,
    episodes: int,
    mix: Scenario,
) -> tuple[IntArray, npt.NDArray[np.bool_]]:
    """Whose card each episode uses, and whether it is a takeover of an existing account.

    The other episodes come from freshly opened accounts, the younger the likelier.
    """
    age = ordinal - customers.signup_ordinal[active]
    is_young = age < YOUNG_ACCOUNT_DAYS
    takeover = rng.random(episodes) < mix.takeover_share
    victim = rng.choice(active, episodes)
    if not is_young.any():
        return victim, np.ones(episodes, dtype=np.bool_)
    freshness = 1.0 / (age[is_young] + 7.0)
    fresh_account = rng.choice(active[is_young], episodes, p=freshness / freshness.sum())
    return np.where(takeover, victim, fresh_account), takeover


def _episode_starts(
    rng: np.random.Generator, offsets: IntArray, sizes: IntArray, mix: Scenario
) -> IntArray:
    """Start of each episode, pulled back so that its last transaction stays inside the day."""
    span = offsets[np.cumsum(sizes) - 1]
    start = _micros_of_day(rng, mix.fraud_hour, sizes.size)
    return np.asarray(np.minimum(start, DAY_US - 1 - span), dtype=np.int64)


def _offsets_in_episode(rng: np.random.Generator, sizes: IntArray, mix: Scenario) -> IntArray:
    gaps = rng.exponential(mix.burst_gap_minutes * 60e6, int(sizes.sum()))
    first_rows = np.cumsum(sizes) - sizes
    gaps[first_rows] = 0.0
    elapsed: FloatArray = np.cumsum(gaps)
    since_first: FloatArray = elapsed - np.repeat(elapsed[first_rows], sizes)
    return since_first.round().astype(np.int64)


def _fraud(
    rng: np.random.Generator, customers: Customers, active: IntArray, size: int, day: DayPlan
) -> tuple[Draws, IntArray]:
    """Fraud arrives in episodes: bursts of card-not-present purchases on one card.

    Returns the draws, episode after episode, and each episode's number of rows.
    """
    mix = day.mix
    sizes = _episode_sizes(rng, size, mix)
    victim, takeover = _episode_victims(rng, customers, active, day.ordinal, sizes.size, mix)
    home = customers.home_country[victim]
    foreign_probability = np.where(
        takeover, mix.takeover_foreign_probability, mix.new_account_foreign_probability
    )
    abroad = rng.random(sizes.size) < foreign_probability
    country = np.where(abroad, _foreign_country(rng, home, mix.fraud_country), home)
    device = rng.choice(len(DEVICES), sizes.size, p=mix.fraud_device).astype(np.int64)
    channel = _channel_of_device(rng, device)
    offsets = _offsets_in_episode(rng, sizes, mix)
    starts = _episode_starts(rng, offsets, sizes, mix)
    category = rng.choice(len(CATEGORIES), size, p=mix.fraud_category).astype(np.int64)
    row_country, row_channel = np.repeat(country, sizes), np.repeat(channel, sizes)
    uplift = mix.fraud_amount_log_uplift + 0.4 * rng.standard_normal(size)
    drawn = Draws(
        customer=np.repeat(victim, sizes),
        category=category,
        merchant=_merchant(rng, category, day.merchants_per_category),
        amount=_amount(rng, category, mix.amount_log_shift + uplift),
        currency=_currency(rng, row_country, row_channel),
        country=row_country,
        device=np.repeat(device, sizes),
        channel=row_channel,
        micros=np.repeat(starts, sizes) + offsets,
        is_fraud=np.ones(size, dtype=np.int64),
    )
    return drawn, sizes


def _novel_amount(rng: np.random.Generator, size: int, log_shift: FloatArray | float) -> FloatArray:
    noise = NOVEL_AMOUNT_SIGMA * rng.standard_normal(size)
    amount: FloatArray = NOVEL_MEDIAN_AMOUNT * np.exp(noise + log_shift)
    return np.clip(amount, 0.5, MAX_AMOUNT).round(2)


def _moved(draws: Draws, chosen: npt.NDArray[np.bool_], amount: FloatArray, day: DayPlan) -> Draws:
    """``draws`` with the ``chosen`` rows moved to the novel category, at ``amount``."""
    category = np.where(chosen, NOVEL, draws.category).astype(np.int64)
    rank = draws.merchant % day.merchants_per_category  # keep each row's merchant popularity
    merchant = np.where(chosen, NOVEL * day.merchants_per_category + rank, draws.merchant)
    updated = {"category": category, "merchant": merchant.astype(np.int64)}
    updated["amount"] = np.where(chosen, amount, draws.amount)
    return replace(draws, **updated)


def _to_novel(
    rng: np.random.Generator, legit: Draws, fraud: Draws, sizes: IntArray, day: DayPlan
) -> tuple[Draws, Draws]:
    """Move a share of legitimate card-not-present payments, and a larger share of fraud
    episodes (all their rows), to the novel category, with larger amounts."""
    mix = day.mix
    online = legit.channel != IN_STORE
    legit_moved = online & (rng.random(legit.channel.size) < NOVEL_LEGIT_SHARE * mix.novel_category)
    legit_amount = _novel_amount(rng, legit.channel.size, mix.amount_log_shift)
    episode_moved = rng.random(sizes.size) < NOVEL_FRAUD_SHARE * mix.novel_category
    uplift = NOVEL_FRAUD_LOG_UPLIFT + 0.4 * rng.standard_normal(fraud.channel.size)
    fraud_amount = _novel_amount(rng, fraud.channel.size, mix.amount_log_shift + uplift)
    return (
        _moved(legit, legit_moved, legit_amount, day),
        _moved(fraud, np.repeat(episode_moved, sizes), fraud_amount, day),
    )


def draw_day(
    rng: np.random.Generator,
    customers: Customers,
    day: DayPlan,
    novel_rng: np.random.Generator | None = None,
) -> Draws:
    """Exactly ``day.rows`` transactions of one day, ordered by time of day.

    ``novel_rng`` draws the moves to the novel category when ``day.mix.novel_category`` is
    above 0; the other draws never depend on it, so a day without them is unchanged.
    """
    active = customers.active_on(day.ordinal)
    fraud_rows = int(rng.binomial(day.rows, day.mix.fraud_rate))
    legit = _legit(rng, customers, active, day.rows - fraud_rows, day)
    fraud, sizes = _fraud(rng, customers, active, fraud_rows, day)
    if day.mix.novel_category > 0:
        if novel_rng is None:
            raise ValueError("a day with novel_category above 0 needs novel_rng")
        legit, fraud = _to_novel(novel_rng, legit, fraud, sizes, day)
    drawn = legit.concat(fraud)
    return drawn.take(np.argsort(drawn.micros, kind="stable").astype(np.int64))
