"""Validating batches: every row accepted or quarantined with its reasons, counts add up."""

from __future__ import annotations

import copy
import datetime as dt
import re
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.contracts import Contract
from shipyard.errors import ContractError, DataInputError

BASE: dict[str, Any] = {
    "apiVersion": "v3.1.0",
    "kind": "DataContract",
    "id": "payments",
    "version": "1.0.0",
    "status": "active",
    "schema": [
        {
            "name": "transactions",
            "properties": [
                {"name": "id", "logicalType": "string", "required": True, "primaryKey": True},
                {
                    "name": "amount",
                    "logicalType": "number",
                    "required": True,
                    "logicalTypeOptions": {"minimum": 0, "maximum": 1000},
                },
                {
                    "name": "currency",
                    "logicalType": "string",
                    "quality": [
                        {
                            "metric": "invalidValues",
                            "mustBe": 0,
                            "arguments": {"validValues": ["EUR", "USD"]},
                        }
                    ],
                },
                {"name": "quantity", "logicalType": "integer"},
                {"name": "at", "logicalType": "timestamp"},
            ],
        }
    ],
}


def contract(edit: Any = None) -> Contract:
    data = copy.deepcopy(BASE)
    if edit is not None:
        edit(data)
    return Contract.from_dict(data)


def frame(**overrides: list[Any]) -> pl.DataFrame:
    columns: dict[str, list[Any]] = {
        "id": ["a", "b", "c", "d"],
        "amount": [1.0, 2.5, 999.0, 0.0],
        "currency": ["EUR", "USD", "EUR", None],
        "quantity": [1, 2, 3, 4],
        "at": [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)] * 4,
    }
    columns.update(overrides)
    return pl.DataFrame(columns)


def failed(result: Any) -> dict[str, int]:
    return {r.id: r.failed_rows for r in result.report.results if not r.passed}


def test_a_clean_batch_is_accepted_whole_and_typed() -> None:
    result = contract().validate(frame())

    assert result.passed
    assert result.report.headline().endswith("4 rows in = 4 accepted + 0 quarantined")
    assert result.accepted.schema["at"] == pl.Datetime("us", "UTC")
    assert result.quarantined.height == 0


def test_bad_rows_are_quarantined_with_every_reason_and_the_rest_accepted() -> None:
    data = frame(
        amount=[-1.0, 2.5, 5000.0, 3.0],
        currency=["EUR", "GBP", "EUR", "USD"],
        id=["a", "a", "c", None],
    )
    result = contract().validate(data)
    report = result.report

    assert report.counts_add_up
    assert (report.rows_in, report.rows_accepted, report.rows_quarantined) == (4, 0, 4)
    quarantined = result.quarantined
    reasons = dict(
        zip(
            quarantined["_shipyard_row"].to_list(),
            quarantined["_shipyard_reasons"].to_list(),
            strict=True,
        )
    )
    assert reasons == {
        1: ["amount.minimum"],
        2: ["currency.invalidValues", "id.unique"],
        3: ["amount.maximum"],
        4: ["id.required"],
    }
    assert failed(result) == {
        "amount.minimum": 1,
        "amount.maximum": 1,
        "id.required": 1,
        "currency.invalidValues": 1,
        "id.unique": 1,
    }
    assert result.quarantined["amount"].to_list() == [-1.0, 2.5, 5000.0, 3.0]  # as delivered


def test_messages_say_what_was_expected_and_what_arrived() -> None:
    data = frame(amount=["1.5", "12,50", "7", "abc"]).with_columns(pl.col("amount").cast(pl.String))
    result = contract().validate(data)
    [typed] = [r for r in result.report.results if r.id == "amount.type"]

    assert typed.message == (
        "column `amount` should be a number, but 2 values are text (first: '12,50' in row 2)"
    )
    assert result.accepted["amount"].to_list() == [1.5, 7.0]


def test_text_columns_are_read_as_their_contract_types() -> None:
    data = pl.DataFrame(
        {
            "id": ["a", "b"],
            "amount": [" 10 ", "2.5"],
            "currency": ["EUR", "USD"],
            "quantity": ["3", "4.0"],
            "at": ["2026-01-01T10:00:00", "2026-01-01 11:00:00+02:00"],
        }
    )
    result = contract().validate(data)

    assert failed(result) == {"quantity.type": 1}
    assert result.accepted["amount"].to_list() == [10.0]
    assert result.accepted["at"].to_list() == [dt.datetime(2026, 1, 1, 10, tzinfo=dt.UTC)]


def test_timestamps_with_and_without_time_zones_are_compared_in_utc() -> None:
    def bound(data: dict[str, Any]) -> None:
        data["schema"][0]["properties"][4]["logicalTypeOptions"] = {
            "minimum": "2026-01-01T09:30:00Z"
        }

    naive = frame(at=[dt.datetime(2026, 1, 1, 9), dt.datetime(2026, 1, 1, 10)] * 2)
    aware = frame(
        at=[
            dt.datetime(2026, 1, 1, 11, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            dt.datetime(2026, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        ]
        * 2
    )
    assert failed(contract(bound).validate(naive)) == {"at.minimum": 2}
    assert failed(contract(bound).validate(aware)) == {"at.minimum": 2}


def test_a_missing_required_column_fails_the_batch_and_suggests_the_rename() -> None:
    data = frame().rename({"amount": "amount_value"})
    result = contract().validate(data)
    report = result.report

    assert not report.batch_passed
    assert report.rows_quarantined == 4
    assert result.accepted.height == 0
    [missing] = [r for r in report.results if r.id == "amount.missing"]
    assert missing.message == (
        "column `amount` is required but missing from the batch (the "
        "batch has `amount_value`: was it renamed?)"
    )
    assert result.quarantined["_shipyard_reasons"].to_list()[0] == ["amount.missing"]


def test_new_columns_are_schema_drift_kept_or_refused_by_the_contract() -> None:
    data = frame().with_columns(pl.lit("x").alias("new_field"))
    allowed = contract().validate(data)
    assert allowed.report.new_columns == ["new_field"]
    assert allowed.passed  # drift is a warning: reported, not failed
    assert [w.id for w in allowed.report.warnings] == ["schema.new_columns"]
    assert allowed.accepted.columns[-1] == "new_field"

    def closed(d: dict[str, Any]) -> None:
        d["schema"][0]["customProperties"] = [
            {"property": "shipyard.allowExtraColumns", "value": False}
        ]

    refused = contract(closed).validate(data)
    assert not refused.report.batch_passed
    assert refused.report.rows_quarantined == 4


def test_a_column_of_the_wrong_kind_is_a_schema_error_not_a_crash() -> None:
    result = contract().validate(frame(at=[True, False, True, False]))
    [issue] = [r for r in result.report.results if r.id == "at.type"]
    assert issue.message == "column `at` should be a timestamp, but the data holds Boolean values"
    assert not result.report.batch_passed


def test_a_batch_where_every_row_is_bad_is_quarantined_whole() -> None:
    result = contract().validate(frame(amount=[-1.0, -2.0, -3.0, -4.0]))
    assert (result.report.rows_accepted, result.report.rows_quarantined) == (0, 4)
    assert result.report.counts_add_up


def test_an_empty_batch_validates_to_zero_rows() -> None:
    result = contract().validate(frame().clear())
    assert (result.report.rows_in, result.report.rows_accepted) == (0, 0)
    assert result.report.batch_passed


def test_batch_rules_use_tolerances_and_fail_the_whole_batch() -> None:
    def rules(d: dict[str, Any]) -> None:
        d["schema"][0]["quality"] = [{"metric": "rowCount", "mustBeGreaterOrEqualTo": 10}]
        d["schema"][0]["properties"][3]["quality"] = [
            {"metric": "nullValues", "mustBeLessThan": 30, "unit": "percent"}
        ]

    result = contract(rules).validate(frame(quantity=[1, None, 3, 4]))
    by_id = {r.id: r for r in result.report.results}
    assert by_id["quantity.nullValues"].passed
    assert by_id["quantity.nullValues"].measured == 25.0
    assert not by_id["rowCount"].passed
    assert by_id["rowCount"].message == ("the number of rows: measured 4, rows must be >= 10")
    assert (result.report.rows_accepted, result.report.rows_quarantined) == (0, 4)
    assert result.quarantined["_shipyard_reasons"].to_list()[0] == ["rowCount"]


def test_the_quarantine_share_limit_fails_the_batch() -> None:
    def limit(d: dict[str, Any]) -> None:
        d["schema"][0]["customProperties"] = [
            {"property": "shipyard.maxQuarantineShare", "value": 0.2}
        ]

    result = contract(limit).validate(frame(amount=[-1.0, 2.0, 3.0, 4.0]))
    share = next(r for r in result.report.results if r.id == "maxQuarantineShare")
    assert not share.passed
    assert share.message == "at most 20.00% of rows may be quarantined: 1 of 4 (25.00%) were"
    assert result.report.rows_quarantined == 4


def test_warnings_report_but_never_quarantine() -> None:
    def soft(d: dict[str, Any]) -> None:
        d["schema"][0]["properties"][1]["customProperties"] = [
            {"property": "shipyard.severity", "value": "warning"}
        ]

    result = contract(soft).validate(frame(amount=[-1.0, 2.0, 3.0, 4.0]))
    assert result.report.rows_quarantined == 0
    assert [w.id for w in result.report.warnings] == ["amount.minimum"]


def test_sql_rules_run_in_duckdb_on_typed_columns() -> None:
    def sql(d: dict[str, Any]) -> None:
        d["schema"][0]["quality"] = [
            {
                "type": "sql",
                "mustBeLessThan": 1,
                "query": "SELECT COUNT(*) FROM {object} WHERE amount > 500",
            }
        ]

    result = contract(sql).validate(frame())
    rule = next(r for r in result.report.results if r.id == "sql")
    assert (rule.passed, rule.measured) == (False, 1)


def test_an_sql_rule_on_a_missing_column_names_the_column() -> None:
    def sql(d: dict[str, Any]) -> None:
        d["schema"][0]["quality"] = [
            {"type": "sql", "mustBe": 0, "query": "SELECT COUNT(*) FROM {object} WHERE price > 1"}
        ]

    with pytest.raises(ContractError, match='"price" not found'):
        contract(sql).validate(frame())


def test_freshness_and_frequency_slas() -> None:
    def slas(d: dict[str, Any]) -> None:
        d["slaProperties"] = [
            {"property": "freshness", "value": 1, "unit": "d", "element": "transactions.at"},
            {"property": "frequency", "value": 2, "unit": "h", "element": "transactions.at"},
        ]

    at = [dt.datetime(2026, 1, 1, h, tzinfo=dt.UTC) for h in (0, 1, 5, 6)]
    now = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC).timestamp()
    result = contract(slas).validate(frame(at=at), now=now)
    by_id = {r.id: r for r in result.report.results}
    assert by_id["sla.freshness"].passed
    assert by_id["sla.freshness"].measured == 6 * 3600
    assert not by_id["sla.frequency"].passed
    assert by_id["sla.frequency"].measured == 4 * 3600


@pytest.mark.parametrize("kind", ["pandas", "arrow", "lazy"])
def test_other_frame_kinds_validate_the_same(kind: str) -> None:
    data = frame(amount=[-1.0, 2.0, 3.0, 4.0])
    converted = {"pandas": data.to_pandas, "arrow": data.to_arrow, "lazy": data.lazy}[kind]()
    assert contract().validate(converted).report.rows_quarantined == 1


def test_a_pandas_column_of_mixed_types_is_read_as_text() -> None:
    data = frame().to_pandas()
    data["amount"] = pd.Series([1.0, "2", "oops", None], dtype=object)
    result = contract().validate(data)
    assert failed(result) == {"amount.type": 1, "amount.required": 1}


@pytest.mark.parametrize("suffix", ["parquet", "csv", "jsonl"])
def test_files_and_globs_validate_and_stream_to_parquet(tmp_path: Path, suffix: str) -> None:
    for part in (1, 2):
        data = frame(amount=[-1.0, 2.0, 3.0, 4.0], id=[f"{part}{i}" for i in "abcd"])
        data = data.with_columns(pl.col("at").cast(pl.String))
        path = tmp_path / f"batch{part}.{suffix}"
        {"parquet": data.write_parquet, "csv": data.write_csv, "jsonl": data.write_ndjson}[suffix](
            path
        )
    result = contract().validate(
        str(tmp_path / f"*.{suffix}"),
        accepted_path=tmp_path / "ok.parquet",
        quarantine_path=tmp_path / "bad.parquet",
    )

    assert (result.report.rows_in, result.report.rows_quarantined) == (8, 2)
    assert pl.read_parquet(tmp_path / "ok.parquet").height == 6
    assert pl.read_parquet(tmp_path / "bad.parquet")["_shipyard_row"].to_list() == [1, 5]


def test_unreadable_inputs_are_explained(tmp_path: Path) -> None:
    (tmp_path / "empty.parquet").write_bytes(b"")
    (tmp_path / "fake.parquet").write_text("id,amount\na,1\n")
    cases = {
        str(tmp_path / "empty.parquet"): "is empty (0 bytes)",
        str(tmp_path / "fake.parquet"): "is not a Parquet file, whatever its extension says",
        str(tmp_path / "none-*.csv"): "No file matches",
        str(tmp_path / "data.xlsx"): "does not exist",
    }
    for path, message in cases.items():
        with pytest.raises(DataInputError, match=re.escape(message)):
            contract().validate(path)
    with pytest.raises(DataInputError, match="Cannot validate a dict"):
        contract().validate({"id": [1]})


def test_unicode_column_names_work() -> None:
    def unicode(d: dict[str, Any]) -> None:
        d["schema"][0]["properties"].append(
            {"name": "montant_€", "logicalType": "number", "logicalTypeOptions": {"minimum": 0}}
        )

    result = contract(unicode).validate(frame().with_columns(pl.Series("montant_€", [1, -2, 3, 4])))
    assert failed(result) == {"montant_€.minimum": 1}


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.sampled_from("abcde")),
            st.floats(-10, 2000, allow_nan=False),
            st.sampled_from(["EUR", "USD", "GBP", None]),
        ),
        max_size=30,
    )
)
def test_every_row_is_accepted_or_quarantined_exactly_once(rows: list[tuple[Any, ...]]) -> None:
    data = pl.DataFrame(
        {
            "id": [r[0] for r in rows],
            "amount": [r[1] for r in rows],
            "currency": [r[2] for r in rows],
            "quantity": [1] * len(rows),
            "at": [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)] * len(rows),
        },
        schema={
            "id": pl.String,
            "amount": pl.Float64,
            "currency": pl.String,
            "quantity": pl.Int64,
            "at": pl.Datetime("us", "UTC"),
        },
    )
    result = contract().validate(data)
    report = result.report
    assert report.counts_add_up
    assert result.accepted.height + result.quarantined.height == len(rows)
    seen: set[str] = set()
    expected_bad = 0
    for row_id, amount, currency in rows:
        bad = (
            row_id is None
            or row_id in seen
            or not 0 <= amount <= 1000
            or currency not in ("EUR", "USD", None)
        )
        if row_id is not None:
            seen.add(row_id)
        expected_bad += bad
    assert report.rows_quarantined == expected_bad


def test_arrow_tables_with_a_bad_value_count_the_same() -> None:
    table = pa.table(
        {
            "id": ["x"],
            "amount": [-5.0],
            "currency": ["EUR"],
            "quantity": [1],
            "at": pa.array([dt.datetime(2026, 1, 1)], pa.timestamp("us")),
        }
    )
    assert failed(contract().validate(table)) == {"amount.minimum": 1}


def test_a_failed_write_leaves_no_partial_output(tmp_path: Path) -> None:
    good = tmp_path / "ok.parquet"
    good.write_bytes(b"accepted earlier")
    data = (
        frame().lazy().with_columns(pl.col("quantity").map_batches(_explode, return_dtype=pl.Int64))
    )
    with pytest.raises(Exception, match="upstream died"):
        contract().validate(data, accepted_path=good, quarantine_path=tmp_path / "bad.parquet")

    assert good.read_bytes() == b"accepted earlier"  # nothing already accepted is touched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.parquet"]


def _explode(series: pl.Series) -> pl.Series:
    raise RuntimeError("upstream died mid-read")


def test_a_truncated_parquet_file_is_unusable_input(tmp_path: Path) -> None:
    path = tmp_path / "cut.parquet"
    frame().write_parquet(path)
    data = path.read_bytes()
    path.write_bytes(data[:40] + data[-8:])  # the markers survive, the pages do not
    with pytest.raises(DataInputError, match="Cannot read"):
        contract().validate(str(path))


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.sampled_from("abcdef")), st.floats(-10, 2000, allow_nan=False)
        ),
        max_size=25,
    )
)
def test_streaming_to_files_splits_exactly_like_memory(rows: list[tuple[Any, float]]) -> None:
    import tempfile

    data = pl.DataFrame(
        {
            "id": [r[0] for r in rows],
            "amount": [r[1] for r in rows],
            "currency": ["EUR"] * len(rows),
            "quantity": [1] * len(rows),
            "at": [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)] * len(rows),
        },
        schema={
            "id": pl.String,
            "amount": pl.Float64,
            "currency": pl.String,
            "quantity": pl.Int64,
            "at": pl.Datetime("us", "UTC"),
        },
    )
    in_memory = contract().validate(data)
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "batch.parquet"
        data.write_parquet(source)
        streamed = contract().validate(
            str(source),
            accepted_path=Path(folder) / "ok.parquet",
            quarantine_path=Path(folder) / "bad.parquet",
        )
        accepted = pl.read_parquet(Path(folder) / "ok.parquet")
        quarantined = pl.read_parquet(Path(folder) / "bad.parquet")
    assert streamed.report.rows_quarantined == in_memory.report.rows_quarantined
    assert sorted(accepted.rows()) == sorted(in_memory.accepted.rows())
    assert (
        quarantined["_shipyard_row"].to_list() == in_memory.quarantined["_shipyard_row"].to_list()
    )
    assert (
        quarantined["_shipyard_reasons"].to_list()
        == in_memory.quarantined["_shipyard_reasons"].to_list()
    )
