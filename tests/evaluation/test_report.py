"""The evaluation report: what a person reads, well-formed HTML and SVG, nothing executable."""

from __future__ import annotations

import copy
import math
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from shipyard.evaluation._plots import (
    bar_chart,
    line_chart,
    number,
    percent,
    reliability_chart,
    ticks,
)
from shipyard.evaluation.report import evaluation_html, write_report

ATTACK = "<script>alert(1)</script>"
VOID = {"meta", "br", "wbr", "img", "hr", "input", "link"}


def _overall(**changes: Any) -> dict[str, Any]:
    metrics: dict[str, Any] = {
        "roc_auc": 0.9812, "average_precision": 0.7734, "log_loss": 0.05123, "brier": 0.01234,
        "accuracy": 0.9929, "precision": 0.8015, "recall": 0.7, "f1": 0.7473,
        "selection_rate": 0.0131, "tpr": 0.7, "fpr": 0.002639, "tnr": 0.997361,
        "count": 10000, "positives": 150, "confusion": {"tp": 105, "fp": 26, "fn": 45, "tn": 9824},
        "value_per_1000": -700.1, "value_per_1000_at_0_5": -900.0, "threshold": 0.27,
        "expected_calibration_error": 0.004123, "latency_ms_p50": 2.1, "latency_ms_p99": 3.45,
    }  # fmt: skip
    metrics.update(changes)
    return metrics


def _evaluation() -> dict[str, Any]:
    calibration: list[dict[str, Any]] = [
        {"lower": i / 10, "upper": (i + 1) / 10, "count": 9500 if i == 0 else 50,
         "mean_score": i / 10 + 0.05, "fraction_positive": i / 10 + 0.03}
        for i in range(9)
    ]  # fmt: skip
    calibration.append(
        {"lower": 0.9, "upper": 1.0, "count": 0, "mean_score": None, "fraction_positive": None}
    )
    group_row = {"count": 4000, "positives": 70, "selection_rate": 0.012, "tpr": 0.69,
                 "fpr": 0.0031, "precision": 0.81, "accuracy": 0.993}  # fmt: skip
    return {
        "model": "fraud:3",
        "threshold": 0.27,
        "rows": {"validation": 10000, "test": 10000},
        "validation": {"threshold": 0.27, "value_per_1000": -812.3, "rows": 10000},
        "metrics": {
            "overall": {**_overall(), "calibration": calibration},
            "slices": {
                "large": _overall(count=812, positives=40, roc_auc=0.9555, value_per_1000=-2512.0),
                "empty_slice": {"count": 0, "note": "slice empty_slice has no rows"},
            },
            "groups": {
                "country": {
                    "rows": {
                        "NL": group_row,
                        "DE": {**group_row, "count": 5990, "selection_rate": 0.0145},
                        "XX": {**group_row, "count": 10, "positives": 0, "tpr": None},
                    },
                    "difference": {"selection_rate": 0.0025, "tpr": None, "fpr": 0.0},
                    "ratio": {"selection_rate": 0.8276, "tpr": None, "fpr": 1.0},
                }
            },
            "latency_ms": {
                "p50": 2.1,
                "p99": 3.45,
                "single_rows_timed": 200,
                "batch_rows_per_s": 150_123.4,
            },
        },
        "curves": {
            "value": [[t / 100, -1500 + 30 * t - 0.4 * t * t] for t in range(1, 100)],
            "roc": [[x / 20, math.sqrt(x / 20)] for x in range(21)],
            "pr": [[x / 20, 1 - 0.5 * x / 20] for x in range(21)],
        },
    }


GATE: dict[str, Any] = {  # as GateRecord.to_dict() writes it
    "passed": False,
    "baseline": "fraud@production v2",
    "note": "",
    "created_at": "2024-05-01T12:00:00+00:00",
    "checks": [
        {"kind": "value", "metric": "roc_auc", "slice": None, "candidate": 0.9812,
         "baseline": 0.9755, "limit": ">= 0.95", "passed": True, "note": "", "group": None,
         "skipped": False},
        {"kind": "change", "metric": "precision", "slice": None, "candidate": 0.8015,
         "baseline": None, "limit": "change >= -0.02 (absolute)", "passed": True,
         "note": "skipped: no baseline to compare with", "group": None, "skipped": True},
        {"kind": "change", "metric": "recall", "slice": "large", "candidate": 0.612,
         "baseline": 0.7345, "limit": "change >= -0.05 (absolute)", "passed": False,
         "note": "change -0.1225", "group": None, "skipped": False},
        {"kind": "fairness", "metric": "selection_rate", "slice": None, "candidate": 0.8276,
         "baseline": 0.9, "limit": "ratio >= 0.8", "passed": True, "note": "",
         "group": "country", "skipped": False},
        {"kind": "latency", "metric": "latency_ms_p99", "slice": None, "candidate": 3.45,
         "baseline": 3.1, "limit": "<= 10", "passed": True, "note": "", "group": None,
         "skipped": False},
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def page() -> str:
    return evaluation_html(_evaluation(), GATE)


def _text(page: str) -> str:
    """The page as a person reads it: tags dropped, entities kept escaped."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def _svgs(page: str) -> list[ET.Element]:
    found = re.findall(r"<svg\b.*?</svg>", page, flags=re.DOTALL)
    return [ET.fromstring(svg) for svg in found]


class _Balance(HTMLParser):
    """Checks that every tag is closed in order (void elements aside)."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        pass  # <line .../> in SVG closes itself

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.open[-1:] or 'nothing'}")
        else:
            self.open.pop()


def _assert_well_formed(page: str) -> None:
    checker = _Balance()
    checker.feed(page)
    checker.close()
    assert checker.errors == []
    assert checker.open == []
    assert page.startswith("<!DOCTYPE html>")


def test_the_header_names_the_model_rows_threshold_and_value(page: str) -> None:
    text = _text(page)

    assert "<title>Evaluation of fraud:3 (gate FAILED)</title>" in page
    assert "<h1>Evaluation of fraud:3</h1>" in page
    assert "Model fraud:3" in text
    assert "10,000 test · 10,000 validation" in text
    assert "Threshold 0.27, tuned on the validation rows, applied to the test rows" in text
    assert "-812 per 1,000 decisions" in text
    assert "-700 at the tuned threshold 0.27 vs -900 at 0.5 +200 from tuning" in text


def test_the_gate_lists_the_failed_check_first_with_both_values(page: str) -> None:
    gate = page[page.index("<h2>Gate</h2>") : page.index("<h2>Metrics")]
    rows = [_text(row).strip() for row in re.findall(r"<tr class=\"\w*\">(.*?)</tr>", gate)]

    assert "✗ Gate FAILED" in gate
    assert "1 of 5 checks failed. Compared with fraud@production v2." in gate
    assert rows == [
        "✗ FAILED change Recall large 61.2% 73.5% change &gt;= -0.05 (absolute) change -0.1225",
        "✓ passed value ROC AUC overall 0.981 0.976 &gt;= 0.95",
        "✓ passed fairness Selection rate across country 0.828 0.9 ratio &gt;= 0.8",
        "✓ passed latency Latency, 99th percentile overall 3.45 ms 3.1 ms &lt;= 10",
        "– skipped change Precision overall 80.2% n/a change &gt;= -0.02 (absolute) "
        "skipped: no baseline to compare with",
    ]
    assert '<tr class="failed"><td class="status fail">✗ FAILED</td>' in gate


def test_every_overall_metric_is_shown_for_people(page: str) -> None:
    metrics = _text(page[page.index("<h2>Metrics") : page.index("<h2>Confusion")])

    expected = {
        "ROC AUC": "0.981", "Average precision": "0.773", "Log loss": "0.0512",
        "Brier score": "0.0123", "Accuracy": "99.3%", "Precision": "80.2%", "Recall": "70%",
        "F1": "74.7%", "Selection rate": "1.31%", "True positive rate": "70%",
        "False positive rate": "0.264%", "True negative rate": "99.7%",
        "Expected calibration error": "0.00412", "Value per 1,000 decisions": "-700",
        "Value per 1,000 at 0.5": "-900", "Latency, median": "2.1 ms",
        "Latency, 99th percentile": "3.45 ms", "Rows": "10,000", "Positives": "150",
    }  # fmt: skip
    for label, value in expected.items():
        assert f" {label} {value} " in metrics, label


def test_the_confusion_matrix_counts_each_cell_with_its_share(page: str) -> None:
    text = _text(page[page.index("<h2>Confusion") : page.index("<h2>Curves")])

    assert "Confusion matrix at threshold 0.27" in text
    assert "Positive 105 true positives (1.05%) 45 missed (0.45%)" in text
    assert "Negative 26 false alarms (0.26%) 9,824 true negatives (98.2%)" in text


def test_slices_show_their_metrics_and_the_note_of_an_empty_slice(page: str) -> None:
    text = _text(page[page.index("<h2>Slices") : page.index("<h2>Groups")])

    assert "overall 10,000 150 0.981 80.2% 70% 0.264% 1.31% -700" in text
    assert "large 812 40 0.956 80.2% 70% 0.264% 1.31% -2,510" in text
    assert "empty_slice 0 slice empty_slice has no rows" in text


def test_groups_show_each_group_bars_and_gaps_with_na_for_undefined(page: str) -> None:
    section = page[page.index("<h2>Groups") : page.index("<h2>Latency")]
    text = _text(section)

    assert "country" in text and "3 groups" in text
    assert "NL 4,000 70 1.2% 69% 0.31% 81% 99.3%" in text
    assert "DE 5,990 70 1.45% 69%" in text
    assert "XX 10 0 1.2% n/a 0.31%" in text
    assert "Selection rate 0.25 pp 0.828" in text
    assert "True positive rate n/a n/a" in text
    assert "False positive rate 0 pp 1" in text
    assert "<title>Selection rate by country</title>" in section
    assert "<title>DE: 1.45%</title>" in section
    assert '<text class="na"' in section  # the XX bar of TPR


def test_curves_and_latency_are_drawn(page: str) -> None:
    curves = page[page.index("<h2>Curves") : page.index("<h2>Slices")]
    latency = _text(page[page.index("<h2>Latency") :])

    titles = re.findall(r"<svg[^>]*><title>([^<]*)</title>", curves)
    assert titles == ["Value per 1,000 decisions by threshold", "ROC curve",
                      "Precision and recall", "Calibration"]  # fmt: skip
    assert "tuned 0.27</text>" in curves
    assert "ROC AUC 0.981." in curves and "Average precision 0.773." in curves
    assert "Expected calibration error 0.00412" in curves
    assert curves.count("<circle") == 9  # one dot per non-empty calibration bin
    assert "scores 0 to 0.1: 9,500 rows, mean score 5%, 3% positive" in curves
    assert "Median, one row 2.1 ms" in latency
    assert "Batch throughput 150,000 rows/s" in latency


def test_the_page_and_every_chart_are_well_formed_without_script_or_links(page: str) -> None:
    _assert_well_formed(page)
    charts = _svgs(page)

    assert len(charts) == 4 + 2  # curves, then the two bar charts of country
    assert all(chart.tag == "svg" for chart in charts)
    assert "<script" not in page.lower()
    assert "http" not in page.replace('lang="en"', "")
    assert "src=" not in page and "href=" not in page


def test_every_string_from_the_evaluation_and_gate_is_escaped() -> None:
    evaluation: dict[str, Any] = _evaluation()
    evaluation["model"] = ATTACK
    evaluation["metrics"]["slices"] = {ATTACK: {"count": 0, "note": ATTACK}}
    evaluation["metrics"]["groups"] = {
        ATTACK: {"rows": {ATTACK: {"count": 3}}, "difference": {ATTACK: 0.1}, "ratio": {}}
    }
    gate = copy.deepcopy(GATE)
    gate.update(baseline=ATTACK, note=ATTACK)
    gate["checks"][2].update(kind=ATTACK, metric=ATTACK, slice=ATTACK, note=ATTACK, limit=ATTACK)
    gate["checks"][3].update(group=ATTACK)

    page = evaluation_html(evaluation, gate, title=ATTACK)

    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    _assert_well_formed(page)
    for chart in _svgs(page):
        assert chart.tag == "svg"


def test_an_evaluation_with_nothing_defined_still_renders() -> None:
    evaluation = {
        "model": "empty",
        "threshold": None,
        "rows": {},
        "validation": {},
        "metrics": {
            "overall": {"count": 0, "roc_auc": None, "precision": None, "calibration": []},
            "slices": {},
            "groups": {"country": {"rows": {}, "difference": {}, "ratio": {}}},
            "latency_ms": {"p50": None, "p99": None},
        },
        "curves": {"value": [], "roc": [[None, None], [float("nan"), 0.5]]},
    }

    page = evaluation_html(evaluation)
    text = _text(page)

    _assert_well_formed(page)
    assert "<h2>Gate</h2>" not in page
    assert page.count('<text class="none" x="0" y="40">no data</text>') == 6  # 4 curves, 2 bars
    assert "n/a at the tuned threshold n/a vs n/a at 0.5" in text
    assert " ROC AUC n/a " in text and " Precision n/a " in text
    assert "No slices are defined" in text
    assert "Median, one row n/a" in text
    assert len(_svgs(page)) == 6


def test_no_groups_and_a_gate_without_checks() -> None:
    evaluation = _evaluation()
    evaluation["metrics"]["groups"] = {}
    gate: dict[str, Any] = {"passed": True, "baseline": None, "note": "", "checks": []}

    page = evaluation_html(evaluation, gate)

    assert "✓ Gate passed" in page
    assert "No baseline: absolute limits only." in page
    assert "No sensitive features are set in the objectives." in page
    _assert_well_formed(page)


def test_write_report_replaces_the_file_atomically(tmp_path: Path) -> None:
    target = tmp_path / "reports" / "fraud.html"

    written = write_report(_evaluation(), target, gate=GATE)
    first = target.read_text(encoding="utf-8")
    write_report({**_evaluation(), "model": "fraud:4"}, target)

    assert written == target
    assert "fraud:3" in first and "✗ Gate FAILED" in first
    assert "Evaluation of fraud:4" in target.read_text(encoding="utf-8")
    assert [p.name for p in target.parent.iterdir()] == ["fraud.html"]


# -- the chart helpers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [(None, "n/a"), (float("nan"), "n/a"), (True, "n/a"), (0.0, "0"), (0.27, "0.27"),
     (-812.34, "-812"), (999.6, "1,000"), (150123.4, "150,000"), (0.0041234, "0.00412")],
)  # fmt: skip
def test_numbers_have_three_significant_digits(value: Any, shown: str) -> None:
    assert number(value) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [(None, "n/a"), (0.7, "70%"), (0.002639, "0.264%"), (1.0, "100%"), (0.99999, ">99.9%"),
     (0.0, "0%"), (1e-9, "<0.0001%")],
)  # fmt: skip
def test_rates_read_as_percentages(value: Any, shown: str) -> None:
    assert percent(value) == shown


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0, 1, [0, 0.2, 0.4, 0.6, 0.8, 1]),
        (-1512.5, -700.0, [-1600, -1400, -1200, -1000, -800, -600]),
        (0.27, 0.27, [0.24, 0.26, 0.28, 0.3]),
        (0, 0, [-1, -0.5, 0, 0.5, 1]),
    ],
)
def test_ticks_are_round_numbers_covering_the_range(
    low: float, high: float, expected: list[float]
) -> None:
    assert ticks(low, high) == expected


def test_a_line_chart_draws_lines_legend_and_marker() -> None:
    svg = line_chart(
        [("a", [[0, 0], [1, 2], [None, 3], [2, 1], [3, float("inf")], [4, 4]]), ("b", [[0, 1]])],
        title="T",
        x_label="x",
        y_label="y",
        marker_x=2.5,
        reference=("chance", [[0, 0], [4, 4]]),
    )
    chart = ET.fromstring(svg)

    lines = chart.findall("polyline")
    assert [line.findtext("title") for line in lines] == ["a", "a", "a", "b", "chance"]
    assert [len(line.get("points", "").split()) for line in lines] == [2, 2, 2, 2, 2]
    assert lines[-1].get("stroke-dasharray") == "5 4"
    legend = [t.text for t in chart.findall("text")]
    assert {"T", "a", "b", "chance", "2.5", "x", "y"} <= set(legend)
    assert [t for t in legend if t and t[0].isdigit()][:5] == ["0", "1", "2", "3", "4"]


def test_charts_with_nothing_to_draw_say_so() -> None:
    for svg in (
        line_chart([], title="T", x_label="x", y_label="y"),
        line_chart([("a", [[None, 1], ["x", 2]])], title="T", x_label="x", y_label="y",
                   reference=("chance", [[0, 0], [1, 1]]), marker_x=0.5),
        bar_chart([], title="T"),
        reliability_chart([{"count": 0, "mean_score": None, "fraction_positive": None}]),
    ):  # fmt: skip
        chart = ET.fromstring(svg)
        assert [t.text for t in chart.findall("text")][-1] == "no data"


def test_bars_start_at_zero_and_write_na_for_missing_values() -> None:
    chart = ET.fromstring(
        bar_chart([("up", 0.5), ("none", None), ("down", -0.25)], title="T", value_format=percent)
    )

    rects = chart.findall("rect")
    assert [r.findtext("title") for r in rects] == ["up: 50%", "down: -25%"]
    widths = [float(r.get("width", "0")) for r in rects]
    assert widths[0] == pytest.approx(2 * widths[1], abs=0.2)
    assert float(rects[0].get("x", "0")) == pytest.approx(
        float(rects[1].get("x", "0")) + widths[1], abs=0.2
    )
    assert "n/a" in [t.text for t in chart.findall("text")]
