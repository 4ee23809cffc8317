"""The monitoring report: what the person on call reads, well-formed HTML, nothing executable."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from shipyard.monitoring.report import render_report, write_report

ATTACK = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
VOID = {"meta", "br", "wbr", "img", "hr", "input", "link"}


def _column(
    name: str, *, drifted: bool, p: float | None = 0.4, stat: float = 0.03
) -> dict[str, Any]:
    return {
        "column": name, "kind": "numeric", "method": "ks" if p is not None else "wasserstein",
        "statistic": stat, "p_value": p, "threshold": 0.05 if p is not None else 0.1,
        "drifted": drifted, "psi": 0.31 if drifted else 0.01, "reference_rows": 180000,
        "current_rows": 5000, "current_nulls": 0, "new_categories": [], "note": "",
    }  # fmt: skip


def _window(
    day: int, *, rows: int = 5000, drift: bool = False, labels: bool = True
) -> dict[str, Any]:
    start, end = f"2026-03-{day:02d}T00:00:00+00:00", f"2026-03-{day + 1:02d}T00:00:00+00:00"
    if rows == 0:
        parts = ("drift", "score", "contract", "performance", "estimated")
        return {"start": start, "end": end, "rows": 0, "slo": [], "signals": {}} | dict.fromkeys(
            parts
        )
    columns = {
        "amount": _column("amount", drifted=drift, p=1e-9 if drift else 0.6, stat=0.2),
        ATTACK: _column(ATTACK, drifted=drift, p=None, stat=0.3 if drift else 0.02),
        "age": _column("age", drifted=False, p=0.07),
    }
    share = sum(c["drifted"] for c in columns.values()) / len(columns)
    performance = {
        "rows": rows, "labelled": rows - 100, "label_coverage": (rows - 100) / rows,
        "positives": 60, "precision": 0.71 - 0.1 * drift, "recall": 0.66 - 0.2 * drift,
        "value_per_1000": -800.0 - 400 * drift, "value_total": -4000.0 - 2000 * drift,
    }  # fmt: skip
    new = {"merchant_category": ["crypto_atm", ATTACK]} if drift else {}
    return {
        "start": start, "end": end, "rows": rows,
        "drift": {"share": share, "drifted": share >= 0.5, "weighted_share": None,
                  "columns": columns},
        "score": {"mean": 0.08 + 0.02 * drift, "quantiles": {"p10": 0.01, "p50": 0.05, "p90": 0.2,
                  "p99": 0.7}, "flag_rate": 0.013 + 0.01 * drift},
        "contract": {"checked": rows, "violations": 12, "violation_share": 12 / rows,
                     "rules": [{"rule": "merchant_category.in_set", "column": "merchant_category",
                                "failed": 12, "share": 12 / rows, "severity": "warning"}],
                     "new_categories": new},
        "performance": performance if labels else None,
        "estimated": {**performance, "precision": 0.69, "recall": 0.61 - 0.2 * drift,
                      "value_per_1000": -820.0 - 380 * drift, "estimated": True},
        "slo": [{"name": "latency_ms_p99", "objective": 50.0, "actual": 12.5, "met": True,
                 "detail": "from the log"},
                {"name": "error_rate", "objective": 0.001, "actual": 0.004 if drift else 0.0,
                 "met": not drift, "detail": ATTACK}],
        "signals": {"drift.share": share},
    }  # fmt: skip


def _alert(status: str, severity: str = "error", rule: str = "value_drop") -> dict[str, Any]:
    return {"rule": rule, "severity": severity, "status": status, "value": -1200.0,
            "at": "2026-03-30T06:00:00+00:00", "episode": "value_drop-20260330T060000",
            "message": f"value per 1,000 fell {ATTACK}", "retrain": True}  # fmt: skip


def _event_shape(alert: dict[str, Any]) -> dict[str, Any]:
    """The same alert as ``AlertEvent.to_dict()`` writes it: ``alert`` and ``when``."""
    return {"alert": alert.pop("rule"), "when": "score.flag_rate >= 0.02", **alert}


def _result() -> dict[str, Any]:
    windows = [_window(1), _window(2), _window(3, rows=0), _window(4, drift=True)]
    windows += [_window(5, drift=True, labels=False), _window(6, drift=True, labels=False)]
    return {
        "schema": "shipyard.monitor/v1", "project": "fraud-detection", "model": "fraud",
        "version": "1", "ref": "fraud@production", "generated_at": "2026-03-30T06:00:00+00:00",
        "every": "1d", "since": "2026-03-01T00:00:00+00:00", "until": "2026-03-07T00:00:00+00:00",
        "reference": {"rows": 180000, "columns": ["amount", "age", ATTACK],
                      "created_at": "2026-02-01T10:30:00+00:00"},
        "promotion": {"value_per_1000": -700.0, "recall": 0.7, "precision": 0.8, "roc_auc": 0.98},
        "threshold": 0.23, "drift_share": 0.5,
        "log": {"directory": "/srv/log", "rows": 25000, "segments": 7,
                "skipped": [f"segment-0003.arrow: not an Arrow IPC file {ATTACK}"],
                "missing": ["device_age_days"]},
        "labels": {"stored": 14700, "unknown": 12},
        "windows": windows,
        "alerts": [_alert("fired"), _event_shape(_alert("resolved", "warning", "flag_rate_high"))],
        "firing": [_alert("firing")],
        "retrain": {"triggered_by": ["value_drop"], "run_id": "run-42", "status": "succeeded",
                    "candidate": "fraud:3", "gate": {"passed": True,
                    "summary": "7 of 7 checks passed"}, "promoted": False},
        "exit_code": 1,
    }  # fmt: skip


class _Checker(HTMLParser):
    """Every element closed in order and no script anywhere."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        assert not any(name.startswith("on") for name, _ in attrs), (tag, attrs)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
        self.stack.pop()


def _parse(page: str) -> _Checker:
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert checker.stack == ["html"] or checker.stack == [], checker.stack
    return checker


def _text(page: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def _svgs(page: str) -> list[ET.Element]:
    return [ET.fromstring(svg) for svg in re.findall(r"<svg.*?</svg>", page, flags=re.S)]


def _chart(page: str, title: str) -> str:
    found = [s for s in re.findall(r"<svg.*?</svg>", page, flags=re.S) if f"<title>{title}" in s]
    assert len(found) == 1, title
    return found[0]


def test_verdict_names_the_firing_alerts_by_severity() -> None:
    page = render_report(_result())
    verdict = re.search(r'<section class="verdict (\w+)"><h1[^>]*>(.*?)</h1>', page)
    assert verdict is not None
    assert verdict.groups() == ("fail", "✗ 1 firing: 1 error")
    assert "Monitoring fraud: ✗ 1 firing: 1 error</title>" in page
    assert "Firing: value_drop. shipyard monitor exits 1 for this run." in _text(page)


def test_all_clear_when_nothing_fires() -> None:
    result = _result() | {"firing": [], "alerts": [], "exit_code": 0}
    page = render_report(result)
    assert '<section class="verdict ok"><h1 class="ok">✓ All clear: no alert is firing</h1>' in page
    assert "No alert fired or resolved in this run." in page


def test_warning_only_is_a_warning() -> None:
    result = _result() | {"firing": [_alert("firing", "warning"), _alert("firing", "info")]}
    assert '<h1 class="warn">⚠ 2 firing: 1 warning, 1 info</h1>' in render_report(result)


def test_header_says_what_was_watched() -> None:
    text = _text(render_report(_result()))
    assert "fraud version 1 ( fraud@production ) in project fraud-detection" in text
    assert "6 of 1d, from 2026-03-01 to 2026-03-07" in text
    assert "180,000 rows, 3 columns, built 2026-02-01 10:30" in text
    assert "25,000 predictions from 7 log segments in /srv/log" in text
    assert "Threshold 0.23" in text


def test_every_section_is_there() -> None:
    page = render_report(_result())
    heads = re.findall(r"<h2>(.*?)</h2>", page)
    assert heads == [
        "⚠ Log notes", "Alerts", "Retraining", "Drift", "Scores", "Performance",
        "Business value", "Contract health", "SLOs (newest window)", "Windows",
    ]  # fmt: skip
    titles = [svg.findtext("title") for svg in _svgs(page)]
    assert titles == [
        "Share of drifted columns", "Drift per column and window", "Scores per window",
        "Share of requests flagged", "Precision", "Recall", "Label coverage",
        "Value per 1,000 decisions", "Total value per window",
        "Share of requests violating the input contract",
    ]  # fmt: skip


def test_log_notes_are_warnings_on_top() -> None:
    page = render_report(_result())
    notes = page[page.index('<section class="notes">') : page.index("<h2>Alerts</h2>")]
    assert f"Skipped log segment: segment-0003.arrow: not an Arrow IPC file {ESCAPED}" in notes
    assert "Feature missing from the log: device_age_days" in notes
    assert "12 labels name request ids that are not in the log." in notes


def test_hostile_strings_are_escaped_everywhere() -> None:
    page = render_report(_result())
    assert "<script" not in page.lower()
    assert ESCAPED in page  # column name, category, message, SLO detail, skipped segment
    checker = _parse(page)
    assert "script" not in checker.tags
    for svg in _svgs(page):  # each chart is well-formed XML on its own
        assert svg.tag.endswith("svg")
    assert f"<code>{ESCAPED}</code> (2026-03-04)" in page  # a new category, first seen


def test_hostile_model_and_rule_names_are_escaped() -> None:
    result = _result()
    result["model"] = result["project"] = ATTACK
    result["firing"][0]["rule"] = result["retrain"]["candidate"] = ATTACK
    result["every"] = '"><img src=x onerror=alert(1)>'
    page = render_report(result)
    assert "<script" not in page and "<img" not in page
    _parse(page)


def test_drift_heat_map_marks_drifted_cells_with_method_and_threshold() -> None:
    heat = _chart(render_report(_result()), "Drift per column and window")
    rows = re.findall(r'<text class="name"[^>]*>(.*?)<title>', heat)
    assert rows == [ESCAPED, "amount", "age"]  # drifted ones first
    assert "ks · threshold 0.05" in heat and "wasserstein · threshold 0.1" in heat
    cells = re.findall(r'<rect class="cell (\w+)"', heat)
    assert cells.count("drifted") == 6  # two columns in three windows
    assert cells.count("close") == 5  # age: p 0.07 < 2 * 0.05, in the five windows with traffic
    assert cells.count("none") == 3  # the window without traffic
    assert "2026-03-04: amount DRIFTED: ks 0.2, p-value 1e-09, threshold 0.05, PSI 0.31" in heat


def test_drift_share_draws_the_dataset_threshold() -> None:
    share = _chart(render_report(_result()), "Share of drifted columns")
    assert "dataset drift at 50%" in share
    assert "2026-03-04: share of drifted columns 66.7%" in share


def test_empty_windows_are_gaps() -> None:
    page = render_report(_result())
    scores = _chart(page, "Scores per window")
    assert scores.count('<rect class="gap"') == 1
    assert "2026-03-03: no traffic" in scores
    median = re.findall(r'<polyline class="series"[^>]*><title>median</title>', scores)
    assert len(median) == 2  # broken at the empty window, not drawn across it
    assert "2026-03-03: median" not in scores
    row = re.search(r'<tr class="quiet"><td>2026-03-03</td>.*?</tr>', page)
    assert row is not None and "n/a" in row.group(0)


def test_estimated_performance_is_dashed_and_labelled() -> None:
    page = render_report(_result())
    recall = _chart(page, "Recall")
    dashed = re.findall(r'stroke-dasharray="6 4" points="[^"]*"><title>(.*?)</title>', recall)
    assert dashed == ["recall (estimated)"] * 2  # broken at the empty window too
    solid = re.findall(r'stroke-width="2" points="[^"]*"><title>(.*?)</title>', recall)
    assert solid == ["recall", "recall"]  # realised stops where labels have not arrived
    assert "2026-03-06: recall (estimated) 41%" in recall
    assert "2026-03-06: recall 46%" not in recall
    assert "at promotion 70%" in recall
    assert "2 of 6 windows have no labels yet." in page
    per_1000 = _chart(page, "Value per 1,000 decisions")
    assert "2026-03-06: value per 1,000 (estimated) -1,200" in per_1000
    assert "at promotion -700" in per_1000
    assert '-1,200 <span class="estimated">estimated</span>' in page


def test_contract_slos_alerts_and_retraining_read_right() -> None:
    page = render_report(_result())
    text = _text(page)
    contract = _chart(page, "Share of requests violating the input contract")
    assert "merchant_category.in_set</text>" in contract  # the column is in the rule id
    assert f"error_rate 0.001 0.004 ✗ missed 2 of 5 {ESCAPED}" in text  # met in 2 windows
    assert "latency_ms_p99 50 12.5 ✓ met 5 of 5 from the log" in text
    assert (
        "error value_drop ↻ retrains firing -1,200 2026-03-30 06:00 value_drop-20260330T060000"
        in text
    )
    assert "warning flag_rate_high ↻ retrains when score.flag_rate &gt;= 0.02 resolved" in text
    assert "Triggered by value_drop Run run-42 (succeeded) Candidate fraud:3" in text
    assert (
        "Gate ✓ passed: 7 of 7 checks passed Promotion not promoted (it stays a candidate)" in text
    )


def test_many_windows_keep_the_charts_small_and_the_axis_readable() -> None:
    result = _result()
    result["windows"] = [_window(1 + i % 27) for i in range(240)]
    page = render_report(result)
    _parse(page)
    heat = _chart(page, "Drift per column and window")
    width = float(ET.fromstring(heat).attrib["width"])
    assert width <= 800
    assert heat.count('<rect class="cell') == 3 * 240
    scores = ET.fromstring(_chart(page, "Scores per window"))
    assert scores.attrib["width"] == "500"
    axis = [t.text for t in scores.iter("text")]
    assert len([t for t in axis if t and t.startswith("2026-03")]) == 4


def test_an_unread_service_is_a_note() -> None:
    result = _result() | {"service": {"scrape_error": f"connection refused {ATTACK}"}}
    page = render_report(result)
    assert f"Service metrics not read: connection refused {ESCAPED}" in page


def test_missing_parts_still_render() -> None:
    result = _result()
    result.update(reference=None, promotion=None, labels=None, retrain=None, alerts=[], firing=[])
    for window in result["windows"]:
        window.update(drift=None, performance=None, estimated=None, contract=None, slo=[])
    page = render_report(result)
    _parse(page)
    text = _text(page)
    assert "No reference profile for this model version: drift was not computed." in text
    assert "No window has drift results." in text
    assert "No retraining was triggered." in text
    assert "No SLO was checked." in text
    assert "No unseen categories arrived." in text
    assert _chart(page, "Precision: no data").count("no data") == 2


def test_zero_windows_and_a_bare_result_render() -> None:
    result = _result() | {"windows": []}
    page = render_report(result)
    _parse(page)
    assert "No windows: nothing in the log to watch." in page
    assert "6 of" not in _text(page) and "0 of 1d" in _text(page)
    bare = render_report({})
    _parse(bare)
    assert "✓ All clear: no alert is firing" in bare


def test_nan_and_strings_where_numbers_belong() -> None:
    result = copy.deepcopy(_result())
    result["windows"][0]["score"]["mean"] = float("nan")
    result["windows"][1]["performance"]["recall"] = "oops"
    result["threshold"] = None
    page = render_report(result)
    _parse(page)
    assert "nan" not in _text(page).lower().split()


def test_write_report_is_atomic_and_makes_the_folder(tmp_path: Path) -> None:
    target = tmp_path / "reports" / "daily" / "monitor.html"
    assert write_report(_result(), target) == target
    assert target.read_text(encoding="utf-8") == render_report(_result())
    write_report(_result() | {"firing": []}, target)
    assert "All clear" in target.read_text(encoding="utf-8")
    assert [p.name for p in target.parent.iterdir()] == ["monitor.html"]


def test_a_failed_write_leaves_the_old_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "monitor.html"
    write_report(_result(), target)
    before = target.read_text(encoding="utf-8")

    def broken(*_: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("shipyard.monitoring.report.os.replace", broken)
    with pytest.raises(OSError, match="disk full"):
        write_report(_result() | {"firing": []}, target)
    assert target.read_text(encoding="utf-8") == before
    assert [p.name for p in tmp_path.iterdir()] == ["monitor.html"]


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium on PATH")
def test_headless_chromium_parses_the_page(tmp_path: Path) -> None:
    target = write_report(_result(), tmp_path / "monitor.html")
    done = subprocess.run(
        [shutil.which("chromium") or "chromium", "--headless", "--no-sandbox", "--disable-gpu",
         "--dump-dom", target.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    dom = done.stdout
    assert dom.count("<svg") == 10
    assert "✗ 1 firing: 1 error" in dom
    assert ESCAPED in dom and "<script" not in dom
