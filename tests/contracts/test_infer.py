"""Drafting a contract from data: the types, keys, ranges and values a reviewer would expect,
YAML that other ODCS tools accept, and a draft that accepts the data it came from."""

from __future__ import annotations

import datetime as dt
import re
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml
from open_data_contract_standard.model import OpenDataContractStandard

from shipyard.contracts import Contract
from shipyard.contracts.infer import infer_contract, infer_yaml, widen
from shipyard.errors import DataInputError

EXAMPLE_PROJECT = Path(__file__).resolve().parents[2] / "examples" / "fraud"
if str(EXAMPLE_PROJECT) not in sys.path:
    sys.path.insert(0, str(EXAMPLE_PROJECT))

from fraud.generator import generate_transactions  # noqa: E402


@pytest.fixture(scope="module")
def fraud() -> pl.DataFrame:
    return generate_transactions(dt.date(2026, 1, 1), 3, rows_per_day=2000)


@pytest.fixture(scope="module")
def drafted(fraud: pl.DataFrame) -> tuple[Contract, str]:
    return infer_contract(fraud, name="transactions")


def _valid_values(contract: Contract, column: str) -> list[object]:
    (rule,) = contract.dataset().property(column).quality
    assert (rule.metric, rule.operator, rule.threshold) == ("invalidValues", "mustBe", 0)
    return list(rule.arguments["validValues"])


def _comment_above(text: str, column: str) -> str:
    """The review comment lines right above the property ``column`` in the YAML."""
    lines = text.splitlines()
    at = lines.index(f"  - name: {column}")
    above = []
    for line in reversed(lines[:at]):
        if not line.lstrip().startswith("#"):
            break
        above.insert(0, line.strip().lstrip("#").strip())
    return " ".join(above)


class TestFraudData:
    def test_each_column_gets_the_type_it_holds(self, drafted: tuple[Contract, str]) -> None:
        types = {p.name: p.logical_type for p in drafted[0].dataset().properties}
        assert types == {
            "transaction_id": "string",
            "customer_id": "string",
            "merchant_id": "string",
            "merchant_category": "string",
            "amount": "number",
            "currency": "string",
            "country": "string",
            "device": "string",
            "channel": "string",
            "account_age_days": "integer",
            "event_timestamp": "timestamp",
            "is_fraud": "integer",
        }

    def test_nothing_is_null_so_everything_is_required(self, drafted: tuple[Contract, str]) -> None:
        assert all(p.required for p in drafted[0].dataset().properties)

    def test_transaction_id_is_the_only_key(self, drafted: tuple[Contract, str]) -> None:
        obj = drafted[0].dataset()
        assert [p.name for p in obj.properties if p.primary_key] == ["transaction_id"]
        assert [p.name for p in obj.properties if p.unique] == ["transaction_id"]
        assert obj.property("transaction_id").options == {
            "pattern": r"^[a-z]+_\d{8}_\d{7}$",
            "minLength": 19,
            "maxLength": 19,
        }
        assert obj.property("customer_id").options["pattern"] == r"^[a-z]+_\d{8}$"

    def test_amount_range_starts_at_zero_and_covers_what_was_seen(
        self, fraud: pl.DataFrame, drafted: tuple[Contract, str]
    ) -> None:
        options = drafted[0].dataset().property("amount").options
        seen = float(fraud["amount"].max())
        assert options["minimum"] == 0
        assert seen < options["maximum"] <= seen * 1.1 + 100
        assert "range widened by 10%" in _comment_above(drafted[1], "amount")

    def test_categories_become_allowed_values(self, drafted: tuple[Contract, str]) -> None:
        contract, text = drafted
        assert _valid_values(contract, "currency") == ["EUR", "GBP", "PLN", "USD"]
        assert _valid_values(contract, "channel") == ["in_store", "mobile_app", "online"]
        assert len(_valid_values(contract, "merchant_category")) == 10
        assert _valid_values(contract, "is_fraud") == [0, 1]
        assert "4 distinct values seen: allowed values below are only those seen" in (
            _comment_above(text, "currency")
        )

    def test_timestamps_get_no_range(self, drafted: tuple[Contract, str]) -> None:
        prop = drafted[0].dataset().property("event_timestamp")
        assert (prop.options, prop.quality, prop.unique) == ({}, [], False)
        assert "seen from 2026-01-01T" in _comment_above(drafted[1], "event_timestamp")

    def test_row_count_is_expected_between_half_and_twice(
        self, drafted: tuple[Contract, str]
    ) -> None:
        (rule,) = drafted[0].dataset().quality
        assert (rule.metric, rule.operator, rule.threshold, rule.severity) == (
            "rowCount",
            "mustBeBetween",
            [3000, 12000],
            "warning",
        )

    def test_yaml_says_where_it_came_from(self, drafted: tuple[Contract, str]) -> None:
        first = drafted[1].splitlines()[0]
        assert re.fullmatch(
            r"# Inferred by shipyard from 6000 rows of a DataFrame of 6000 rows "
            r"on \d{4}-\d{2}-\d{2}; review every rule\.",
            first,
        )

    def test_yaml_is_valid_odcs_and_the_same_contract(self, drafted: tuple[Contract, str]) -> None:
        contract, text = drafted
        OpenDataContractStandard.model_validate(yaml.safe_load(text))
        assert yaml.safe_load(text) == contract.to_dict()
        assert Contract.from_yaml(text).to_dict() == contract.to_dict()

    def test_infer_yaml_is_the_text_of_infer_contract(
        self, fraud: pl.DataFrame, drafted: tuple[Contract, str]
    ) -> None:
        assert infer_yaml(fraud, name="transactions") == drafted[1]


class TestAcceptsItsOwnData:
    def test_the_frame(self, fraud: pl.DataFrame, drafted: tuple[Contract, str]) -> None:
        result = Contract.from_yaml(drafted[1]).validate(fraud)
        assert (result.report.rows_accepted, result.report.rows_quarantined) == (6000, 0)
        assert result.passed

    def test_a_csv_of_it(self, fraud: pl.DataFrame, tmp_path: Path) -> None:
        path = tmp_path / "transactions.csv"
        fraud.write_csv(path)
        contract, text = infer_contract(path)
        OpenDataContractStandard.model_validate(yaml.safe_load(text))
        types = {p.name: p.logical_type for p in contract.dataset().properties}
        assert (
            types["amount"],
            types["account_age_days"],
            types["event_timestamp"],
            types["is_fraud"],
        ) == ("number", "integer", "timestamp", "integer")
        assert "text, and every value reads as a number." in _comment_above(text, "amount")
        result = Contract.from_yaml(text).validate(path)
        assert (result.report.rows_in, result.report.rows_quarantined) == (6000, 0)

    def test_a_pandas_frame(self, fraud: pl.DataFrame) -> None:
        frame = fraud.to_pandas()
        contract, text = infer_contract(frame)
        assert contract.dataset().property("event_timestamp").logical_type == "timestamp"
        assert Contract.from_yaml(text).validate(frame).report.rows_quarantined == 0

    def test_but_quarantines_an_out_of_range_and_an_unseen_category(
        self, fraud: pl.DataFrame, drafted: tuple[Contract, str]
    ) -> None:
        batch = fraud.with_columns(
            amount=pl.when(pl.int_range(pl.len()) == 10).then(1e6).otherwise("amount"),
            currency=pl.when(pl.int_range(pl.len()) == 20)
            .then(pl.lit("CHF"))
            .otherwise("currency"),
        )
        result = Contract.from_yaml(drafted[1]).validate(batch)
        assert result.quarantined is not None
        rows = result.quarantined.select("_shipyard_row", "_shipyard_reasons").to_dicts()
        assert rows == [
            {"_shipyard_row": 11, "_shipyard_reasons": ["amount.maximum"]},
            {"_shipyard_row": 21, "_shipyard_reasons": ["currency.invalidValues"]},
        ]


class TestText:
    def test_csv_text_columns_read_as_numbers_dates_and_flags(self, tmp_path: Path) -> None:
        n = 200
        frame = pl.DataFrame(
            {
                "qty": [str(i % 7) for i in range(n)],
                "price": [f"{i * 1.25:.2f}" for i in range(n)],
                "day": [(dt.date(2026, 1, 1) + dt.timedelta(days=i)).isoformat() for i in range(n)],
                "at": [f"2026-01-01T{i % 24:02d}:00:00" for i in range(n)],
                "active": ["true" if i % 3 else "false" for i in range(n)],
                "zip": [f"{i:05d}" for i in range(n)],
            }
        )
        path = tmp_path / "text.csv"
        frame.write_csv(path)
        contract, text = infer_contract(path)
        obj = contract.dataset()
        assert {p.name: p.logical_type for p in obj.properties} == {
            "qty": "integer",
            "price": "number",
            "day": "date",
            "at": "timestamp",
            "active": "boolean",
            "zip": "string",
        }
        assert obj.property("qty").options == {"minimum": 0, "maximum": 7}
        assert obj.property("price").options == {"minimum": 0, "maximum": 280}
        assert obj.property("zip").options["pattern"] == r"^\d{5}$"
        assert obj.property("zip").unique
        assert Contract.from_yaml(text).validate(path).report.rows_quarantined == 0

    def test_a_few_unreadable_values_make_the_type_checks_warnings(self, tmp_path: Path) -> None:
        values = [str(i) for i in range(2000)]
        values[500] = "n/a"
        path = tmp_path / "counts.csv"
        pl.DataFrame({"count": values}).write_csv(path)
        contract, text = infer_contract(path)
        prop = contract.dataset().property("count")
        assert (prop.logical_type, prop.severity) == ("integer", "warning")
        assert "1 of 2000 values (0.05%) do not read as a whole number (e.g. 'n/a')" in (
            _comment_above(text, "count")
        )
        result = Contract.from_yaml(text).validate(path)
        assert (result.report.rows_quarantined, result.report.batch_passed) == (0, True)

    def test_more_unreadable_values_keep_the_column_text(self) -> None:
        values = [str(i) for i in range(500)] + ["n/a"] * 5
        contract, _ = infer_contract(pl.DataFrame({"count": values}))
        assert contract.dataset().property("count").logical_type == "string"

    def test_uuids_emails_and_letter_codes_get_patterns(self) -> None:
        import uuid

        n = 100
        frame = pl.DataFrame(
            {
                "ref": [str(uuid.UUID(int=i * 7919 + 1)) for i in range(n)],
                "mail": [f"user{i}@example.org" for i in range(n)],
                "code": [chr(65 + i % 26) + chr(65 + i // 26 % 26) + "X" for i in range(n)],
                "note": [f"free text number {i} here" if i % 2 else f"other {i}" for i in range(n)],
            }
        )
        contract, text = infer_contract(frame)
        obj = contract.dataset()
        assert obj.property("ref").options["pattern"].startswith("^[0-9a-fA-F]{8}-")
        assert obj.property("ref").primary_key
        assert obj.property("mail").options["pattern"] == r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
        assert obj.property("code").options == {
            "pattern": "^[A-Z]{3}$",
            "minLength": 3,
            "maxLength": 3,
        }
        assert obj.property("note").options == {}
        assert Contract.from_yaml(text).validate(frame).report.rows_quarantined == 0


class TestEdges:
    def test_an_all_null_column_is_optional_text(self) -> None:
        frame = pl.DataFrame(
            {
                "id": [1, 2, 3],
                "nothing": [None, None, None],
                "empty": pl.Series([None] * 3, dtype=pl.String),
            }
        )
        contract, text = infer_contract(frame)
        for name in ("nothing", "empty"):
            prop = contract.dataset().property(name)
            assert (prop.logical_type, prop.required, prop.options, prop.quality) == (
                "string",
                False,
                {},
                [],
            )
            assert _comment_above(text, name) == (
                "no value seen: all 3 rows are null. Typed as string and not required; set the "
                "real type."
            )
        assert Contract.from_yaml(text).validate(frame).report.rows_quarantined == 0

    def test_an_empty_frame_has_nothing_to_infer_from(self, tmp_path: Path) -> None:
        with pytest.raises(DataInputError, match="has no rows: there is nothing to infer"):
            infer_contract(pl.DataFrame({"a": pl.Series([], dtype=pl.Int64)}))
        header_only = tmp_path / "empty.csv"
        header_only.write_text("a,b\n", encoding="utf-8")
        with pytest.raises(DataInputError, match=r"empty\.csv has no rows"):
            infer_contract(header_only)
        with pytest.raises(DataInputError, match="has no columns"):
            infer_contract(pl.DataFrame())

    def test_unicode_column_names(self) -> None:
        frame = pl.DataFrame(
            {
                "Betrag (€)": [1.5, 2.5, 30.0] * 10,
                "日付": ["東京", "大阪", "京都"] * 10,
                "größe": list(range(30)),
            }
        )
        _, text = infer_contract(frame, name="zahlungen")
        assert "- name: Betrag (€)" in text and "- name: 日付" in text
        assert [p.name for p in Contract.from_yaml(text).dataset().properties] == [
            "Betrag (€)",
            "日付",
            "größe",
        ]
        OpenDataContractStandard.model_validate(yaml.safe_load(text))
        assert Contract.from_yaml(text).validate(frame).report.rows_quarantined == 0

    def test_sample_rows_infers_from_the_first_rows_and_counts_all(
        self, fraud: pl.DataFrame
    ) -> None:
        contract, text = infer_contract(fraud, sample_rows=1000, contract_id="tx-draft")
        assert contract.id == "tx-draft"
        assert "from the first 1000 of 6000 rows" in text.splitlines()[0]
        assert contract.dataset().quality[0].threshold == [3000, 12000]


@pytest.mark.parametrize(
    ("low", "high", "integer", "expected"),
    [
        (0.88, 2772.05, False, (0, 3100)),  # never below 0 when nothing negative was seen
        (1000, 2000, True, (900, 2100)),
        (-50, 50, True, (-60, 60)),
        (0.12, 0.31, False, (0.1, 0.33)),
        (5, 5, True, (4, 6)),  # one value seen: widened by 10% of the value
        (0, 0, True, (0, 1)),
    ],
)
def test_ranges_widen_by_a_tenth_of_the_span_and_round_outward(
    low: float, high: float, integer: bool, expected: tuple[float, float]
) -> None:
    assert widen(low, high, integer=integer) == expected
