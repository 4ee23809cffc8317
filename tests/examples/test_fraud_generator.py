"""The fraud demo's upstream data generator: schema, determinism, patterns, deliveries."""

from __future__ import annotations

import datetime as dt
import hashlib
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

EXAMPLE_PROJECT = Path(__file__).resolve().parents[2] / "examples" / "fraud"
if str(EXAMPLE_PROJECT) not in sys.path:
    sys.path.insert(0, str(EXAMPLE_PROJECT))

from fraud.generator import (  # noqa: E402
    generate_labels,
    generate_transactions,
    write_daily_batches,
)

START = dt.date(2024, 3, 1)
DAYS = 30
ROWS_PER_DAY = 5000

EXPECTED_SCHEMA = pl.Schema(
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
CATEGORIES = {
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
}
VALID_CURRENCIES = {"EUR", "USD", "GBP", "PLN"}
COUNTRIES = {"DE", "FR", "NL", "ES", "IT", "GB", "US", "PL"}
CATEGORICAL_COLUMNS = ["merchant_category", "currency", "country", "device", "channel"]
MICROS_PER_DAY = 86_400_000_000


@pytest.fixture(scope="module")
def transactions() -> pl.DataFrame:
    return generate_transactions(START, DAYS, rows_per_day=ROWS_PER_DAY, seed=7)


@pytest.fixture(scope="module")
def labels(transactions: pl.DataFrame) -> pl.DataFrame:
    return generate_labels(transactions, seed=7)


def _event_date() -> pl.Expr:
    return pl.col("event_timestamp").dt.date()


def _previous_hour_counts(frame: pl.DataFrame) -> pl.Series:
    """Per row: how many earlier transactions the same customer made in the hour before."""
    indexed = frame.with_row_index("row")
    windows = indexed.rolling("event_timestamp", period="1h", group_by="customer_id").agg(
        pl.col("row").last(), previous_hour=pl.len() - 1
    )
    return indexed.join(windows.select("row", "previous_hour"), on="row").sort("row")[
        "previous_hour"
    ]


def _modal(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    counts = frame.group_by("customer_id", column).len()
    ranked = counts.sort("len", column, descending=[True, False])
    return ranked.group_by("customer_id", maintain_order=True).first().select("customer_id", column)


class TestTransactions:
    def test_schema_is_the_documented_one(self, transactions: pl.DataFrame) -> None:
        assert transactions.schema == EXPECTED_SCHEMA

    def test_every_day_has_exactly_rows_per_day_rows(self, transactions: pl.DataFrame) -> None:
        per_day = transactions.group_by(_event_date()).len().sort("event_timestamp")
        assert per_day["event_timestamp"].to_list() == [
            START + dt.timedelta(days=i) for i in range(DAYS)
        ]
        assert set(per_day["len"].to_list()) == {ROWS_PER_DAY}

    def test_no_column_has_nulls(self, transactions: pl.DataFrame) -> None:
        assert transactions.null_count().row(0) == (0,) * len(EXPECTED_SCHEMA)

    def test_values_come_from_the_documented_vocabularies(self, transactions: pl.DataFrame) -> None:
        assert set(transactions["merchant_category"].unique()) == CATEGORIES
        assert set(transactions["currency"].unique()) == VALID_CURRENCIES
        assert set(transactions["country"].unique()) == COUNTRIES
        assert set(transactions["device"].unique()) == {"ios", "android", "web", "pos"}
        assert set(transactions["channel"].unique()) == {"online", "in_store", "mobile_app"}
        assert set(transactions["is_fraud"].unique()) == {0, 1}

    def test_amounts_are_positive_with_two_decimals(self, transactions: pl.DataFrame) -> None:
        amount = transactions["amount"].to_numpy()
        assert amount.min() > 0
        assert amount.max() < 1e6
        assert np.allclose(amount, np.round(amount, 2), rtol=0, atol=1e-9)

    def test_account_age_is_never_negative(self, transactions: pl.DataFrame) -> None:
        assert transactions["account_age_days"].min() >= 0

    def test_transaction_ids_are_unique_and_name_their_day(
        self, transactions: pl.DataFrame
    ) -> None:
        ids = transactions["transaction_id"]
        assert ids.n_unique() == transactions.height
        assert ids.str.contains(r"^tx_\d{8}_\d{7}$").all()
        named_day = ids.str.slice(3, 8).str.to_date("%Y%m%d")
        assert (named_day == transactions["event_timestamp"].dt.date()).all()

    def test_timestamps_are_sorted_and_fall_inside_the_window(
        self, transactions: pl.DataFrame
    ) -> None:
        stamps = transactions["event_timestamp"]
        assert stamps.is_sorted()
        assert stamps.min() >= dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
        assert stamps.max() < dt.datetime(2024, 3, 31, tzinfo=dt.UTC)

    def test_timestamps_follow_a_daily_cycle(self, transactions: pl.DataFrame) -> None:
        hour = transactions.filter(pl.col("is_fraud") == 0)["event_timestamp"].dt.hour()
        night_share = (hour < 6).mean()
        evening_share = ((hour >= 17) & (hour < 21)).mean()
        assert night_share is not None
        assert evening_share is not None
        assert night_share < 0.05
        assert evening_share > 0.2

    def test_fraud_rate_is_between_one_and_two_percent(self, transactions: pl.DataFrame) -> None:
        assert 0.01 <= transactions["is_fraud"].mean() <= 0.02

    def test_population_is_proportional_to_volume_and_skewed(
        self, transactions: pl.DataFrame
    ) -> None:
        one_day = transactions.filter(_event_date() == START)
        per_customer = one_day.group_by("customer_id").len()["len"]
        assert 1000 <= per_customer.len() <= 2000
        assert per_customer.max() >= 10 * per_customer.median()


class TestDeterminism:
    def test_same_arguments_give_identical_frames(self) -> None:
        first = generate_transactions(START, 3, rows_per_day=800, seed=11, drift=0.3)
        again = generate_transactions(START, 3, rows_per_day=800, seed=11, drift=0.3)
        assert_frame_equal(first, again)

    def test_another_seed_gives_other_transactions_under_the_same_ids(self) -> None:
        first = generate_transactions(START, 2, rows_per_day=800, seed=11)
        other = generate_transactions(START, 2, rows_per_day=800, seed=12)
        assert first["transaction_id"].equals(other["transaction_id"])
        assert not first["amount"].equals(other["amount"])
        assert not first["customer_id"].equals(other["customer_id"])

    def test_a_window_equals_its_days_generated_one_by_one(self) -> None:
        window = generate_transactions(START, 4, rows_per_day=600, seed=3)
        days = [
            generate_transactions(START + dt.timedelta(i), 1, rows_per_day=600, seed=3)
            for i in range(4)
        ]
        assert_frame_equal(window, pl.concat(days))


class TestCustomers:
    def test_account_opening_day_is_fixed_so_age_grows_by_one_a_day(
        self, transactions: pl.DataFrame
    ) -> None:
        opened = transactions.select(
            "customer_id", opened=_event_date() - pl.duration(days=pl.col("account_age_days"))
        )
        assert opened.group_by("customer_id").agg(pl.col("opened").n_unique())["opened"].max() == 1

    def test_separately_generated_windows_agree_about_shared_customers(self) -> None:
        def opening_days(start: dt.date) -> pl.DataFrame:
            frame = generate_transactions(start, 10, rows_per_day=2000, seed=5)
            return frame.select(
                "customer_id", opened=_event_date() - pl.duration(days=pl.col("account_age_days"))
            ).unique()

        shared = opening_days(START).join(
            opening_days(START + dt.timedelta(days=40)), on="customer_id"
        )
        assert shared.height > 300
        assert (shared["opened"] == shared["opened_right"]).all()

    @pytest.mark.parametrize("attribute", ["country", "device"])
    def test_home_country_and_usual_device_persist_across_days(
        self, transactions: pl.DataFrame, attribute: str
    ) -> None:
        legit = transactions.filter(pl.col("is_fraud") == 0)
        halfway = dt.datetime(2024, 3, 16, tzinfo=dt.UTC)
        early = legit.filter(pl.col("event_timestamp") < halfway)
        late = legit.filter(pl.col("event_timestamp") >= halfway)
        regulars = (
            early.group_by("customer_id")
            .len()
            .filter(pl.col("len") >= 10)
            .join(late.group_by("customer_id").len().filter(pl.col("len") >= 10), on="customer_id")
            .select("customer_id")
        )
        both = regulars.join(_modal(early, attribute), on="customer_id").join(
            _modal(late, attribute), on="customer_id"
        )
        assert both.height > 500
        assert (both[attribute] == both[f"{attribute}_right"]).mean() > 0.99


class TestFraudPatterns:
    def _share(self, frame: pl.DataFrame, condition: pl.Expr) -> tuple[float, float]:
        shares = frame.group_by("is_fraud").agg(condition.mean()).sort("is_fraud")
        legit, fraud = shares.to_series(1).to_list()
        return legit, fraud

    def test_fraud_spends_more(self, transactions: pl.DataFrame) -> None:
        legit, fraud = self._share(transactions, pl.col("amount"))
        assert fraud > 2 * legit

    @pytest.mark.parametrize(
        "condition",
        [
            pl.col("merchant_category").is_in(["electronics", "gift_cards"]),
            pl.col("account_age_days") < 60,
            pl.col("event_timestamp").dt.hour() < 6,
            pl.col("device") == "web",
        ],
        ids=["risky_category", "young_account", "night", "web"],
    )
    def test_fraud_is_at_least_three_times_likelier_to(
        self, transactions: pl.DataFrame, condition: pl.Expr
    ) -> None:
        legit, fraud = self._share(transactions, condition)
        assert fraud > 3 * legit

    def test_fraud_comes_in_bursts_on_one_card(self, transactions: pl.DataFrame) -> None:
        in_burst = transactions.with_columns(previous_hour=_previous_hour_counts(transactions))
        legit, fraud = self._share(in_burst, pl.col("previous_hour") > 0)
        assert fraud > 0.5
        assert legit < 0.35

    def test_fraud_often_happens_away_from_home(self, transactions: pl.DataFrame) -> None:
        home = _modal(transactions.filter(pl.col("is_fraud") == 0), "country")
        located = transactions.join(home, on="customer_id", suffix="_home")
        legit, fraud = self._share(located, pl.col("country") != pl.col("country_home"))
        assert fraud > 0.4
        assert legit < 0.1

    @pytest.mark.slow
    def test_a_gradient_boosting_model_learns_fraud(self, transactions: pl.DataFrame) -> None:
        ensemble = pytest.importorskip("sklearn.ensemble")
        metrics = pytest.importorskip("sklearn.metrics")
        features = transactions.select(
            *[pl.col(column).rank("dense").cast(pl.Int64) for column in CATEGORICAL_COLUMNS],
            "amount",
            "account_age_days",
            hour=pl.col("event_timestamp").dt.hour(),
            previous_hour=_previous_hour_counts(transactions),
        ).to_numpy()
        target = transactions["is_fraud"].to_numpy()
        train = 20 * ROWS_PER_DAY
        model = ensemble.HistGradientBoostingClassifier(
            categorical_features=list(range(len(CATEGORICAL_COLUMNS))), random_state=0
        ).fit(features[:train], target[:train])
        scores = model.predict_proba(features[train:])[:, 1]
        assert metrics.roc_auc_score(target[train:], scores) > 0.85


class TestDrift:
    def test_drift_raises_the_mean_amount(self) -> None:
        calm = generate_transactions(START, 10, rows_per_day=2000, seed=1)
        drifted = generate_transactions(START, 10, rows_per_day=2000, seed=1, drift=0.5)
        assert drifted["amount"].mean() > 1.15 * calm["amount"].mean()

    def test_drift_changes_the_mix_but_keeps_the_fraud_rate_plausible(self) -> None:
        calm = generate_transactions(START, 10, rows_per_day=2000, seed=1)
        drifted = generate_transactions(START, 10, rows_per_day=2000, seed=1, drift=1.0)

        def share(frame: pl.DataFrame, column: str, value: str) -> float:
            return float((frame[column] == value).mean())

        assert share(drifted, "device", "pos") < share(calm, "device", "pos") - 0.03
        assert share(drifted, "merchant_category", "digital_goods") > share(
            calm, "merchant_category", "digital_goods"
        )
        assert 0.01 <= drifted["is_fraud"].mean() <= 0.025

    def test_drift_outside_zero_to_one_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="drift"):
            generate_transactions(START, 1, drift=1.5)


class TestNovelCategory:
    """``novel_category``: a merchant category training never saw, where fraud concentrates."""

    def test_zero_leaves_the_output_exactly_as_before_the_knob(self) -> None:
        frame = generate_transactions(START, 2, rows_per_day=300, seed=3, drift=0.5)
        explicit = generate_transactions(
            START, 2, rows_per_day=300, seed=3, drift=0.5, novel_category=0.0
        )
        assert_frame_equal(explicit, frame)
        # the frame these arguments gave before the knob existed
        digest = hashlib.sha256(frame.write_csv().encode()).hexdigest()
        assert digest == "0bb22fe52d28629435f152c4e79b2572ce3f6a02214ec9438c128c3d3d8bce53"

    def test_the_new_category_appears_with_larger_amounts(self) -> None:
        calm = generate_transactions(START, 7, rows_per_day=2000, seed=1, drift=0.5)
        novel = generate_transactions(
            START, 7, rows_per_day=2000, seed=1, drift=0.5, novel_category=1.0
        )
        assert "crypto" not in set(calm["merchant_category"])
        assert set(novel["merchant_category"]) == CATEGORIES | {"crypto"}
        crypto = novel.filter(pl.col("merchant_category") == "crypto")
        assert 0.02 < crypto.height / novel.height < 0.045  # under the contract's 5 % quarantine
        assert set(crypto["channel"]) <= {"online", "mobile_app"}  # card not present
        legit = crypto.filter(pl.col("is_fraud") == 0)["amount"].median()
        assert legit is not None and legit > 2 * (novel["amount"].median() or 0)
        fraud = crypto.filter(pl.col("is_fraud") == 1)["amount"].median()
        assert fraud is not None and fraud > 2 * legit
        shops = set(crypto["merchant_id"])
        assert not shops & set(novel.filter(pl.col("merchant_category") != "crypto")["merchant_id"])

    def test_fraud_concentrates_in_the_new_category(self) -> None:
        frame = generate_transactions(START, 7, rows_per_day=2000, seed=1, novel_category=1.0)
        crypto = pl.col("merchant_category") == "crypto"
        rate_in = frame.filter(crypto)["is_fraud"].mean()
        rate_out = frame.filter(~crypto)["is_fraud"].mean()
        assert isinstance(rate_in, float) and isinstance(rate_out, float)
        assert rate_in > 10 * rate_out
        fraud_share = frame.filter(crypto)["is_fraud"].sum() / frame["is_fraud"].sum()
        assert 0.3 < fraud_share < 0.6  # 45 % of the episodes

    def test_the_share_grows_with_the_knob(self) -> None:
        shares = [
            (
                generate_transactions(START, 5, rows_per_day=2000, seed=4, novel_category=knob)[
                    "merchant_category"
                ]
                == "crypto"
            ).mean()
            for knob in (0.0, 0.3, 0.6, 1.0)
        ]
        assert shares[0] == 0
        assert shares == sorted(shares)
        assert shares[3] > 2.5 * shares[1]  # about linear

    def test_only_category_merchant_and_amount_move(self) -> None:
        calm = generate_transactions(START, 3, rows_per_day=1000, seed=5, drift=0.3)
        novel = generate_transactions(
            START, 3, rows_per_day=1000, seed=5, drift=0.3, novel_category=0.8
        )
        moved = ["merchant_category", "merchant_id", "amount"]
        assert_frame_equal(novel.drop(moved), calm.drop(moved))
        changed = novel["merchant_category"] != calm["merchant_category"]
        assert set(novel.filter(changed)["merchant_category"]) == {"crypto"}
        unchanged = novel.filter(~changed).select(moved)
        assert_frame_equal(unchanged, calm.filter(~changed).select(moved))

    def test_it_is_deterministic_and_a_window_equals_its_days(self) -> None:
        first = generate_transactions(START, 3, rows_per_day=500, seed=6, novel_category=0.7)
        again = generate_transactions(START, 3, rows_per_day=500, seed=6, novel_category=0.7)
        assert_frame_equal(first, again)
        days = [
            generate_transactions(
                START + dt.timedelta(days=i), 1, rows_per_day=500, seed=6, novel_category=0.7
            )
            for i in range(3)
        ]
        assert_frame_equal(pl.concat(days), first)

    def test_daily_batches_carry_it(self, tmp_path: Path) -> None:
        paths = write_daily_batches(tmp_path, START, 2, rows_per_day=500, seed=2, novel_category=1)
        delivered = pl.concat([pl.read_parquet(path) for path in paths])
        truth = generate_transactions(START, 2, rows_per_day=500, seed=2, novel_category=1)
        assert_frame_equal(delivered, truth.drop("is_fraud"))

    @pytest.mark.parametrize("knob", [-0.1, 1.5])
    def test_outside_zero_to_one_is_rejected(self, knob: float) -> None:
        with pytest.raises(ValueError, match=r"novel_category must lie in \[0, 1\]"):
            generate_transactions(START, 1, novel_category=knob)


class TestLabels:
    def test_schema(self, labels: pl.DataFrame) -> None:
        assert labels.schema == pl.Schema(
            {
                "transaction_id": pl.String(),
                "label_timestamp": pl.Datetime("us", "UTC"),
                "is_chargeback": pl.Int8(),
            }
        )

    def test_one_label_per_transaction_in_arrival_order(
        self, transactions: pl.DataFrame, labels: pl.DataFrame
    ) -> None:
        assert labels.height == transactions.height
        assert labels["transaction_id"].n_unique() == labels.height
        assert set(labels["transaction_id"]) == set(transactions["transaction_id"])
        assert labels["label_timestamp"].is_sorted()

    @pytest.mark.parametrize("median_days", [10.0, 21.0, 45.0])
    def test_delays_lie_in_3_to_90_days_around_the_median(
        self, transactions: pl.DataFrame, median_days: float
    ) -> None:
        labelled = transactions.join(
            generate_labels(transactions, median_delay_days=median_days), on="transaction_id"
        )
        delay_days = (
            labelled["label_timestamp"] - labelled["event_timestamp"]
        ).dt.total_microseconds() / MICROS_PER_DAY
        assert delay_days.min() >= 3.0
        assert delay_days.max() <= 90.0
        assert abs(delay_days.median() - median_days) <= 3.0

    def test_chargebacks_are_fraud_and_most_fraud_is_charged_back(
        self, transactions: pl.DataFrame, labels: pl.DataFrame
    ) -> None:
        labelled = transactions.join(labels, on="transaction_id")
        charged_back = labelled.filter(pl.col("is_chargeback") == 1)
        assert (charged_back["is_fraud"] == 1).all()
        fraud = labelled.filter(pl.col("is_fraud") == 1)
        missed = (fraud["is_chargeback"] == 0).mean()
        assert missed is not None
        assert 0.01 <= missed <= 0.06

    def test_labels_are_deterministic(self, transactions: pl.DataFrame) -> None:
        assert_frame_equal(
            generate_labels(transactions, seed=3), generate_labels(transactions, seed=3)
        )

    def test_missing_ground_truth_is_rejected(self, transactions: pl.DataFrame) -> None:
        with pytest.raises(ValueError, match="is_fraud"):
            generate_labels(transactions.drop("is_fraud"))

    @pytest.mark.parametrize("median_days", [3.0, 90.0, -1.0])
    def test_a_median_outside_the_window_is_rejected(
        self, transactions: pl.DataFrame, median_days: float
    ) -> None:
        with pytest.raises(ValueError, match="median_delay_days"):
            generate_labels(transactions, median_delay_days=median_days)


BATCH_ROWS = 1000
BATCH_DAYS = 5


def _expected_batch_names() -> list[str]:
    days = [START + dt.timedelta(days=i) for i in range(BATCH_DAYS)]
    return [f"transactions_{day.isoformat()}.parquet" for day in days]


class TestDailyBatches:
    def test_writes_one_file_a_day_without_ground_truth_and_the_labels(
        self, tmp_path: Path
    ) -> None:
        target = tmp_path / "landing" / "payments"
        paths = write_daily_batches(target, START, BATCH_DAYS, rows_per_day=BATCH_ROWS, seed=2)
        assert [path.name for path in paths] == _expected_batch_names()
        assert sorted(p.name for p in target.iterdir()) == sorted(
            [*_expected_batch_names(), "labels.parquet"]
        )
        truth = generate_transactions(START, BATCH_DAYS, rows_per_day=BATCH_ROWS, seed=2)
        delivered = pl.concat([pl.read_parquet(path) for path in paths])
        assert_frame_equal(delivered, truth.drop("is_fraud"))
        assert_frame_equal(
            pl.read_parquet(target / "labels.parquet"), generate_labels(truth, seed=2)
        )

    def test_broken_day_has_the_documented_defects_and_only_that_day(self, tmp_path: Path) -> None:
        paths = write_daily_batches(
            tmp_path, START, BATCH_DAYS, rows_per_day=BATCH_ROWS, seed=2, broken_day=2
        )
        batches = [pl.read_parquet(path) for path in paths]
        defects = [_defects(batch) for batch in batches]
        clean = {"rows": BATCH_ROWS, "out_of_range": 0, "negative": 0, "absurd": 0}
        clean |= {"null_customer": 0, "duplicate_ids": 0, "invalid_currencies": set()}
        assert defects[:2] == [clean, clean]
        assert defects[3:] == [clean, clean]
        assert defects[2]["rows"] == BATCH_ROWS + 5
        assert defects[2]["out_of_range"] == 20
        assert defects[2]["negative"] > 0
        assert defects[2]["absurd"] > 0
        assert defects[2]["null_customer"] == 10
        assert defects[2]["duplicate_ids"] == 5
        assert defects[2]["invalid_currencies"] == {"EURO", ""}
        assert batches[2]["event_timestamp"].is_sorted()

    def test_schema_change_renames_amount_from_that_day_on(self, tmp_path: Path) -> None:
        paths = write_daily_batches(
            tmp_path, START, BATCH_DAYS, rows_per_day=BATCH_ROWS, seed=2, schema_change_day=3
        )
        batches = [pl.read_parquet(path) for path in paths]
        for before in batches[:3]:
            assert "amount" in before.columns
            assert "amount_value" not in before.columns
        for after in batches[3:]:
            assert "amount" not in after.columns
            assert after.columns[4] == "amount_value"
            assert after.schema["amount_value"] == pl.Float64()

    @pytest.mark.parametrize("knob", ["broken_day", "schema_change_day"])
    @pytest.mark.parametrize("day", [-1, BATCH_DAYS])
    def test_a_day_outside_the_window_is_rejected(
        self, tmp_path: Path, knob: str, day: int
    ) -> None:
        with pytest.raises(ValueError, match=knob):
            write_daily_batches(tmp_path, START, BATCH_DAYS, rows_per_day=BATCH_ROWS, **{knob: day})
        assert not list(tmp_path.iterdir())


def _defects(batch: pl.DataFrame) -> dict[str, object]:
    amount = batch["amount"]
    return {
        "rows": batch.height,
        "out_of_range": int(((amount <= 0) | (amount >= 1e6)).sum()),
        "negative": int((amount < 0).sum()),
        "absurd": int((amount == 1e9).sum()),
        "null_customer": batch["customer_id"].null_count(),
        "duplicate_ids": batch.height - batch["transaction_id"].n_unique(),
        "invalid_currencies": set(batch["currency"].unique()) - VALID_CURRENCIES,
    }


@settings(max_examples=25, deadline=None)
@given(
    days=st.integers(1, 3),
    rows_per_day=st.integers(1, 400),
    seed=st.integers(0, 2**32 - 1),
    drift=st.floats(0.0, 1.0),
)
def test_any_valid_arguments_give_a_well_formed_frame(
    days: int, rows_per_day: int, seed: int, drift: float
) -> None:
    frame = generate_transactions(START, days, rows_per_day=rows_per_day, seed=seed, drift=drift)
    assert frame.schema == EXPECTED_SCHEMA
    assert frame.height == days * rows_per_day
    assert frame["transaction_id"].n_unique() == frame.height
    assert frame["event_timestamp"].is_sorted()
    assert frame["amount"].min() > 0
    assert frame["account_age_days"].min() >= 0
    assert frame.null_count().sum_horizontal().item() == 0
