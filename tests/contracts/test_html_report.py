"""The HTML report: what a person sees first, every failure with its examples, and charts."""

from __future__ import annotations

import datetime as dt
import re
import sys
from html import escape
from pathlib import Path

import polars as pl
import pytest

from shipyard.contracts import Contract, RuleResult, ValidationReport
from shipyard.contracts._html import report_html
from shipyard.contracts._profile import profile

EXAMPLE_PROJECT = Path(__file__).resolve().parents[2] / "examples" / "fraud"
ATTACK = "<script>alert(1)</script>"

CONTRACT = """
apiVersion: v3.1.0
kind: DataContract
id: payments
version: 2.0.0
status: active
schema:
  - name: transactions
    properties:
      - name: id
        logicalType: string
        required: true
        unique: true
      - name: amount
        logicalType: number
        logicalTypeOptions: {exclusiveMinimum: 0}
      - name: currency
        logicalType: string
        quality:
          - metric: invalidValues
            arguments: {validValues: [EUR, USD]}
            mustBe: 0
      - name: at
        logicalType: timestamp
    quality:
      - metric: rowCount
        mustBeGreaterThan: 3
"""


def _batch() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": ["t1", "t2", "t3", "t4", "t5", "t6"],
            "amount": [10.0, -4.5, 12.0, 8.0, 3.0, 7.25],
            "currency": ["EUR", "USD", ATTACK, "EUR", "EUR", "USD"],
            "at": [dt.datetime(2024, 3, 2, h, tzinfo=dt.UTC) for h in range(6)],
            "device": ["ios", "web", "ios", "pos", "ios", "web"],
        }
    )


@pytest.fixture(scope="module")
def checked() -> tuple[ValidationReport, dict[str, dict[str, object]], str]:
    batch = _batch()
    report = Contract.from_yaml(CONTRACT).validate(batch).report
    profiles = profile(batch.lazy(), batch.columns)
    return report, profiles, report_html(report, profiles)


def test_the_headline_gives_the_verdict_and_counts_that_add_up(checked) -> None:  # type: ignore[no-untyped-def]
    report, _, page = checked

    assert (report.rows_in, report.rows_accepted, report.rows_quarantined) == (6, 4, 2)
    assert "✓ Batch passed, 2 rows quarantined" in page
    assert "<b>6</b> rows in" in page
    assert '<b class="ok">4</b> accepted' in page
    assert '<b class="fail">2</b> quarantined (33.3%)' in page
    assert "✓ counts add up" in page
    assert "<title>transactions: batch passed</title>" in page


def test_the_page_names_the_contract_and_when_it_was_checked(checked) -> None:  # type: ignore[no-untyped-def]
    report, _, page = checked
    checked_at = dt.datetime.fromtimestamp(report.checked_at, tz=dt.UTC)

    assert "<code>payments</code> version <code>2.0.0</code>" in page
    assert "<dt>Dataset</dt><dd><code>transactions</code></dd>" in page
    assert f"<code>{report.source}</code>" in page
    assert checked_at.strftime("%Y-%m-%d %H:%M:%S UTC") in page


def test_every_failed_check_is_listed_with_its_message(checked) -> None:  # type: ignore[no-untyped-def]
    report, _, page = checked
    failed = [r for r in report.results if not r.passed]

    assert sorted(r.id for r in failed) == [
        "amount.exclusiveMinimum",
        "currency.invalidValues",
        "schema.new_columns",
    ]
    assert "3 of " in page and " checks did not pass</h2>" in page
    for result in failed:
        assert escape(result.id).replace(".", ".<wbr>") in page
        assert escape(result.message) in page
    assert page.count("✗ FAILED") == 2 * 2  # in the summary and in the column section


def test_failing_rows_show_their_row_number_and_value(checked) -> None:  # type: ignore[no-untyped-def]
    _, _, page = checked

    assert '<span class="row">row 2:</span> <code>-4.5</code>' in page
    assert f'<span class="row">row 3:</span> <code>{escape(ATTACK)}</code>' in page


def test_batch_checks_show_what_was_measured_and_expected(checked) -> None:  # type: ignore[no-untyped-def]
    _, _, page = checked

    assert "measured <code>6</code> · expected <code>rows must be &gt; 3</code>" in page


def test_new_columns_are_called_schema_drift(checked) -> None:  # type: ignore[no-untyped-def]
    _, _, page = checked

    assert "⚠ Schema drift:</b> 1 new column not in the contract: <code>device</code>" in page
    assert "⚠ new: not in the contract" in page


def test_each_profiled_column_has_one_chart(checked) -> None:  # type: ignore[no-untyped-def]
    _, profiles, page = checked

    assert len(profiles) == 5
    assert page.count("<svg") == 5
    assert page.count('class="bin"') == 2 * 20  # amount and at are histograms
    assert "2024-03-02 00:00" in page and "2024-03-02 05:00" in page  # the time axis
    assert "✗ " + escape(ATTACK) in page  # the failing category is marked in its chart


def test_untrusted_text_is_escaped_everywhere(checked) -> None:  # type: ignore[no-untyped-def]
    _, _, page = checked

    assert ATTACK not in page
    assert "<script" not in page
    assert escape(ATTACK) in page


def test_the_page_is_self_contained(checked) -> None:  # type: ignore[no-untyped-def]
    _, _, page = checked

    assert "http://" not in page and "https://" not in page
    assert not re.search(r"<(script|link|img|iframe)\b", page)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")


def test_a_failed_batch_and_missing_rows_are_said_plainly() -> None:
    result = RuleResult(
        f"rowCount{ATTACK}",
        None,
        "batch",
        "error",
        "the number of rows",
        passed=False,
        measured=2,
        expectation="rows must be > 3",
        message=f"too few rows {ATTACK}",
    )
    report = ValidationReport(
        contract_id=f'c"{ATTACK}',
        contract_version="1",
        dataset="d&d",
        source="s",
        rows_in=5,
        rows_accepted=0,
        rows_quarantined=3,
        batch_passed=False,
        results=[result],
    )

    page = report_html(report)

    assert "✗ Batch FAILED" in page
    assert "✗ counts do NOT add up: 2 rows unaccounted for" in page
    assert "at an unknown time" in page
    assert "d&amp;d" in page and "c&quot;&lt;script&gt;" in page
    assert escape(f"too few rows {ATTACK}") in page
    assert ATTACK not in page and "<svg" not in page
    assert page == report.to_html()


def test_a_clean_batch_says_every_row_was_accepted() -> None:
    batch = _batch().filter(pl.col("amount") > 0, pl.col("currency") != ATTACK).drop("device")

    page = Contract.from_yaml(CONTRACT).validate(batch).report.to_html()

    assert "✓ Batch passed, every row accepted" in page
    assert "✓ All 5 checks passed." in page
    assert "✓ The batch has the contract's columns, and no others." in page


def test_a_broken_fraud_delivery_renders(tmp_path: Path) -> None:
    if str(EXAMPLE_PROJECT) not in sys.path:
        sys.path.insert(0, str(EXAMPLE_PROJECT))
    from fraud.generator import write_daily_batches

    paths = write_daily_batches(tmp_path, dt.date(2024, 3, 1), 2, rows_per_day=1000, broken_day=1)
    contract = Contract.from_yaml(
        CONTRACT.replace("name: id", "name: transaction_id").replace(
            "[EUR, USD]", "[EUR, USD, GBP, PLN]"
        )
    )
    frame = pl.scan_parquet(paths[1])
    report = contract.validate(paths[1]).report
    page = report_html(report, profile(frame, frame.collect_schema().names()))

    assert report.counts_add_up and report.rows_quarantined > 0
    assert f"<b>{report.rows_in:,}</b> rows in" in page
    assert page.count("<svg") == len(frame.collect_schema().names())
    assert '<span class="row">' in page and "(empty text)" in page  # a blank currency
