"""The evaluation of a model as one self-contained HTML page.

Inline CSS and SVG only, in the look of the contract validation report: no script, no
fonts or links to fetch. It reads the plain dict of ``Evaluation.to_dict()`` (and a gate
record), so a stored evaluation renders without the model. Every string is escaped;
every number is written for people, "n/a" where it is undefined.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from shipyard.contracts._html import CSS as BASE_CSS
from shipyard.evaluation._plots import (
    bar_chart,
    finite,
    line_chart,
    number,
    percent,
    reliability_chart,
)

RATES = frozenset({"accuracy", "precision", "recall", "f1", "selection_rate", "tpr", "fpr", "tnr"})
COUNTS = frozenset({"count", "positives", "single_rows_timed"})
LABELS = {
    "roc_auc": ("ROC AUC", "chance of ranking a positive above a negative"),
    "average_precision": ("Average precision", "area under the precision-recall curve"),
    "log_loss": ("Log loss", "lower is better"),
    "brier": ("Brier score", "mean squared error of the scores; lower is better"),
    "accuracy": ("Accuracy", "share of rows decided right"),
    "precision": ("Precision", "share of flagged rows that are positive"),
    "recall": ("Recall", "share of positives flagged"),
    "f1": ("F1", "harmonic mean of precision and recall"),
    "selection_rate": ("Selection rate", "share of rows flagged"),
    "tpr": ("True positive rate", "same as recall"),
    "fpr": ("False positive rate", "share of negatives flagged"),
    "tnr": ("True negative rate", "share of negatives let through"),
    "expected_calibration_error": ("Expected calibration error", "score vs outcome gap"),
    "value_per_1000": ("Value per 1,000 decisions", "at the tuned threshold"),
    "value_per_1000_at_0_5": ("Value per 1,000 at 0.5", "at the default threshold"),
    "latency_ms_p50": ("Latency, median", "one row at a time"),
    "latency_ms_p99": ("Latency, 99th percentile", "one row at a time"),
    "count": ("Rows", "test rows"),
    "positives": ("Positives", "rows with label 1"),
}
NOT_SCALAR = frozenset({"calibration", "confusion", "threshold", "note"})
SLICE_COLUMNS = ("count", "positives", "roc_auc", "precision", "recall", "fpr", "selection_rate")
GROUP_COLUMNS = ("count", "positives", "selection_rate", "tpr", "fpr", "precision", "accuracy")
CHECK_COLUMNS = ("Result", "Check", "Slice", "#Candidate", "#Baseline", "#Limit", "Note")
STATUS = {
    "failed": ("fail", "✗ FAILED"),
    "passed": ("ok", "✓ passed"),
    "skipped": ("quiet", "– skipped"),
}
UNIT = (0.0, 1.0)

CSS = (
    BASE_CSS
    + """
.charts { display: flex; flex-wrap: wrap; gap: 18px 28px; }
.charts figure { flex: 0 1 auto; } .column .charts { margin: 14px 0; }
.chart .title { font-size: 13px; font-weight: 600; fill: var(--ink); }
.chart .marker { fill: var(--fail); } .chart .na, .chart .none { font-style: italic; }
table.confusion { width: auto; } table.confusion td { min-width: 170px; }
td.note { color: var(--muted); font-style: italic; }
"""
)


def evaluation_html(
    evaluation: Mapping[str, Any], gate: Mapping[str, Any] | None = None, title: str | None = None
) -> str:
    """The whole report page of one evaluation.

    Args:
        evaluation: The dict of ``Evaluation.to_dict()``; any number may be None.
        gate: A gate record (``passed``, ``baseline``, ``note``, ``checks``) shown on top.
        title: The page heading; by default "Evaluation of <model>".

    Returns:
        A complete HTML document with inline CSS and SVG, and no script.
    """
    metrics = evaluation.get("metrics") or {}
    overall = metrics.get("overall") or {}
    heading = title or f"Evaluation of {evaluation.get('model', 'a model')}"
    sections = [
        _header(evaluation, overall, heading),
        _gate(gate) if gate is not None else "",
        _metrics(overall),
        _confusion(overall),
        _curves(evaluation, overall),
        _slices(overall, metrics.get("slices") or {}),
        _groups(metrics.get("groups") or {}),
        _latency(metrics.get("latency_ms") or {}),
    ]
    verdict = "" if gate is None else " (gate passed)" if gate.get("passed") else " (gate FAILED)"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(heading + verdict)}</title><style>{CSS}</style></head>"
        f"<body><main>{''.join(sections)}</main></body></html>\n"
    )


def write_report(
    evaluation: Mapping[str, Any],
    path: str | os.PathLike[str],
    gate: Mapping[str, Any] | None = None,
) -> Path:
    """Write :func:`evaluation_html` to ``path`` atomically: a reader sees the old or the new page.

    Args:
        evaluation: The dict of ``Evaluation.to_dict()``.
        path: Where the page goes; missing folders are made.
        gate: A gate record to show on top.

    Returns:
        The path written.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
    try:
        staged.write_text(evaluation_html(evaluation, gate), encoding="utf-8")
        os.replace(staged, target)
    finally:
        staged.unlink(missing_ok=True)
    return target


# -- the top: what was evaluated, the value it brings, the gate -------------------------


def _header(evaluation: Mapping[str, Any], overall: Mapping[str, Any], heading: str) -> str:
    rows = evaluation.get("rows") or {}
    tuned = evaluation.get("validation") or {}
    threshold = number(evaluation.get("threshold"))
    items = [
        ("Model", f"<code>{_e(evaluation.get('model', 'n/a'))}</code>"),
        ("Rows", f"{_count(rows.get('test'))} test · {_count(rows.get('validation'))} validation"),
        ("Threshold", f"{threshold}, tuned on the validation rows, applied to the test rows"),
        ("On validation", f"{number(tuned.get('value_per_1000'))} per 1,000 decisions"),
    ]
    meta = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in items)
    return f'<h1>{_e(heading)}</h1>{_value_box(overall, threshold)}<dl class="meta">{meta}</dl>'


def _value_box(overall: Mapping[str, Any], threshold: str) -> str:
    tuned = finite(overall.get("value_per_1000"))
    default = finite(overall.get("value_per_1000_at_0_5"))
    gain = None if tuned is None or default is None else tuned - default
    tone = "warn" if gain is None or gain < 0 else "ok"
    sign = "+" if gain is not None and gain > 0 else ""
    return (
        f'<section class="verdict {tone}"><p class="why">Value per 1,000 decisions on the '
        f'test rows</p><div class="counts"><span><b>{number(tuned)}</b> at the tuned threshold '
        f'{threshold}</span><span class="op">vs</span><span><b>{number(default)}</b> at 0.5'
        f'</span><span class="tally {tone}">{sign}{number(gain)} from tuning</span></div></section>'
    )


def _gate(gate: Mapping[str, Any]) -> str:
    tone, head = ("ok", "✓ Gate passed") if gate.get("passed") else ("fail", "✗ Gate FAILED")
    checks = sorted(gate.get("checks") or [], key=lambda c: (bool(c.get("passed")), _skipped(c)))
    failed = sum(not check.get("passed") for check in checks)
    why = f"{failed} of {len(checks)} checks failed. " if checks else "The gate has no checks. "
    baseline = gate.get("baseline")
    why += f"Compared with {baseline}." if baseline else "No baseline: absolute limits only."
    why += f" {gate['note']}" if gate.get("note") else ""
    table = _table(CHECK_COLUMNS, "".join(_check_row(c) for c in checks)) if checks else ""
    return (
        f'<h2>Gate</h2><section class="verdict {tone}"><h1 class="{tone}">{head}</h1>'
        f'<p class="why">{_e(why)}</p></section>{table}'
    )


def _check_row(check: Mapping[str, Any]) -> str:
    """A check; a fairness check's numbers are gaps between groups, so they stay plain."""
    metric, passed = str(check.get("metric", "")), bool(check.get("passed"))
    state = "failed" if not passed else "skipped" if _skipped(check) else "passed"
    css, word = STATUS[state]
    shown = "" if check.get("kind") == "fairness" else metric
    values = (_metric_value(shown, check.get(key)) for key in ("candidate", "baseline", "limit"))
    where = f"across {check['group']}" if check.get("group") else check.get("slice") or "overall"
    return (
        f'<tr class="{"" if passed else "failed"}"><td class="status {css}">{word}</td><td><code>'
        f"{_e(check.get('kind', ''))}</code> {_label(metric)}</td><td>{_e(where)}</td>"
        f"{_cells(values)}<td>{_e(check.get('note') or '')}</td></tr>"
    )


def _skipped(check: Mapping[str, Any]) -> bool:
    return bool(check.get("skipped"))


# -- the metrics on the test rows --------------------------------------------------------


def _metrics(overall: Mapping[str, Any]) -> str:
    names = [n for n in LABELS if n in overall]
    names += [n for n in overall if n not in LABELS and n not in NOT_SCALAR]
    rows = "".join(
        f"<tr><td>{_label(n)}</td>{_cells([_metric_value(n, overall[n])])}"
        f'<td class="quiet">{_e(LABELS.get(n, ("", ""))[1])}</td></tr>'
        for n in names
    )
    return "<h2>Metrics on the test rows</h2>" + _table(("Metric", "#Value", "Meaning"), rows)


def _confusion(overall: Mapping[str, Any]) -> str:
    cells = overall.get("confusion") or {}
    total = sum(v for v in (finite(cells.get(k)) for k in ("tp", "fp", "fn", "tn")) if v) or None

    def cell(key: str, name: str) -> str:
        value = finite(cells.get(key))
        share = percent(value / total) if value is not None and total else "n/a"
        return f'<td class="num">{_count(value)} <span class="sev">{name} ({share})</span></td>'

    return (
        f"<h2>Confusion matrix at threshold {number(overall.get('threshold'))}</h2>"
        '<table class="confusion"><thead><tr><th></th><th class="num">Flagged</th>'
        '<th class="num">Not flagged</th></tr></thead><tbody>'
        f"<tr><th>Positive</th>{cell('tp', 'true positives')}{cell('fn', 'missed')}</tr>"
        f"<tr><th>Negative</th>{cell('fp', 'false alarms')}{cell('tn', 'true negatives')}</tr>"
        "</tbody></table>"
    )


def _curves(evaluation: Mapping[str, Any], overall: Mapping[str, Any]) -> str:
    curves, threshold = evaluation.get("curves") or {}, finite(evaluation.get("threshold"))
    count, positives = finite(overall.get("count")), finite(overall.get("positives"))
    rate = positives / count if count and positives is not None else None
    value = line_chart(
        [("test rows", curves.get("value") or [])],
        title="Value per 1,000 decisions by threshold",
        x_label="threshold",
        y_label="value per 1,000 decisions",
        marker_x=threshold,
        marker_label=f"tuned {number(threshold)}",
    )
    diagonal, flat = [[0.0, 0.0], [1.0, 1.0]], None if rate is None else [[0.0, rate], [1.0, rate]]
    roc = _rates(
        curves.get("roc"), "ROC curve", ("false positive rate", "true positive rate"), diagonal
    )
    pr = _rates(curves.get("pr"), "Precision and recall", ("recall", "precision"), flat)
    figures = [
        _figure(value, "The dashed line marks the threshold tuned on the validation rows."),
        _figure(roc, f"ROC AUC {number(overall.get('roc_auc'))}."),
        _figure(pr, f"Average precision {number(overall.get('average_precision'))}."),
        _figure(
            reliability_chart(overall.get("calibration") or []),
            f"Expected calibration error {number(overall.get('expected_calibration_error'))}; "
            "each dot is a bin of scores (hover for its rows).",
        ),
    ]
    return f'<h2>Curves</h2><div class="charts">{"".join(figures)}</div>'


def _rates(
    points: Any, title: str, labels: tuple[str, str], chance: list[list[float]] | None
) -> str:
    """One rate against another on [0, 1]², beside the line that guessing would draw."""
    return line_chart(
        [("model", points or [])],
        title=title,
        x_label=labels[0],
        y_label=labels[1],
        reference=None if chance is None else ("chance", chance),
        x_domain=UNIT,
        y_domain=UNIT,
    )


def _figure(svg: str, caption: str = "") -> str:
    text = f"<figcaption>{_e(caption)}</figcaption>" if caption else ""
    return f"<figure>{svg}{text}</figure>"


# -- slices, groups, latency -------------------------------------------------------------


def _slices(overall: Mapping[str, Any], slices: Mapping[str, Any]) -> str:
    if not slices:
        return '<h2>Slices</h2><p class="quiet">No slices are defined in the objectives.</p>'
    rows = _slice_row("overall", overall) + "".join(_slice_row(n, s) for n, s in slices.items())
    head = ("Slice", *(f"#{LABELS[n][0]}" for n in SLICE_COLUMNS), "#Value per 1,000")
    return "<h2>Slices</h2>" + _table(head, rows)


def _slice_row(name: str, metrics: Mapping[str, Any]) -> str:
    if metrics.get("note"):
        count = _cells([_count(metrics.get("count"))])
        note = f'<td class="note" colspan="{len(SLICE_COLUMNS)}">{_e(metrics["note"])}</td>'
        return f"<tr><td><code>{_e(name)}</code></td>{count}{note}</tr>"
    shown = [_metric_value(n, metrics.get(n)) for n in (*SLICE_COLUMNS, "value_per_1000")]
    return f"<tr><td><code>{_e(name)}</code></td>{_cells(shown)}</tr>"


def _groups(groups: Mapping[str, Any]) -> str:
    if not groups:
        return (
            '<h2>Groups</h2><p class="quiet">No sensitive features are set in the objectives.</p>'
        )
    return "<h2>Groups</h2>" + "".join(_group(name, found or {}) for name, found in groups.items())


def _group(feature: str, found: Mapping[str, Any]) -> str:
    rows: Mapping[str, Any] = found.get("rows") or {}
    body = "".join(
        f"<tr><td><code>{_e(group)}</code></td>"
        f"{_cells(_metric_value(n, (row or {}).get(n)) for n in GROUP_COLUMNS)}</tr>"
        for group, row in rows.items()
    )
    bars = "".join(
        _figure(bar_chart(_per_group(rows, n), title=f"{label} by {feature}", value_format=percent))
        for n, label in (("selection_rate", "Selection rate"), ("tpr", "True positive rate"))
    )
    head = ("Group", *(f"#{LABELS[n][0]}" for n in GROUP_COLUMNS))
    return (
        f'<section class="column"><header><h3><code>{_e(feature)}</code></h3>'
        f'<span class="badge">{len(rows)} group{"s" * (len(rows) != 1)}</span></header>'
        f'{_table(head, body)}<div class="charts">{bars}</div>{_gaps(found)}</section>'
    )


def _per_group(rows: Mapping[str, Any], metric: str) -> list[tuple[str, Any]]:
    return [(str(group), (row or {}).get(metric)) for group, row in rows.items()]


def _gaps(found: Mapping[str, Any]) -> str:
    difference, ratio = found.get("difference") or {}, found.get("ratio") or {}
    rows = "".join(
        f"<tr><td>{_label(n)}</td>{_cells([_points(difference.get(n)), number(ratio.get(n))])}</tr>"
        for n in dict.fromkeys([*difference, *ratio])
    )
    head = ("Metric", "#Largest difference between groups", "#Smallest ratio between groups")
    return _table(head, rows) if rows else ""


def _latency(latency: Mapping[str, Any]) -> str:
    throughput = finite(latency.get("batch_rows_per_s"))
    items = [
        ("Median, one row", _ms(latency.get("p50"))),
        ("99th percentile, one row", _ms(latency.get("p99"))),
        ("Single rows timed", _count(latency.get("single_rows_timed"))),
        ("Batch throughput", "n/a" if throughput is None else f"{number(throughput)} rows/s"),
    ]
    rows = "".join(f"<dt>{name}</dt><dd>{_e(value)}</dd>" for name, value in items)
    return f'<h2>Latency</h2><dl class="meta">{rows}</dl>'


# -- tables, numbers and text for people ------------------------------------------------


def _table(head: Sequence[str], rows: str) -> str:
    """A table under ``head`` (a name starting with "#" heads a column of numbers)."""
    cells = "".join(
        f'<th class="num">{_e(name[1:])}</th>' if name.startswith("#") else f"<th>{_e(name)}</th>"
        for name in head
    )
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{rows}</tbody></table>"


def _cells(values: Iterable[str]) -> str:
    """Cells of numbers, already escaped."""
    return "".join(f'<td class="num">{value}</td>' for value in values)


def _metric_value(name: str, value: Any) -> str:
    """A metric's value as people read it: rates as percentages, counts whole, escaped."""
    if isinstance(value, str):
        return _e(value)
    if name in RATES:
        return percent(value)
    if name in COUNTS:
        return _count(value)
    return _ms(value) if name.startswith("latency_ms") else number(value)


def _label(name: str) -> str:
    return _e(LABELS[name][0] if name in LABELS else name.replace("_", " "))


def _count(value: Any) -> str:
    found = finite(value)
    return "n/a" if found is None else f"{found:,.0f}"


def _ms(value: Any) -> str:
    return "n/a" if finite(value) is None else f"{number(value)} ms"


def _points(value: Any) -> str:
    """A difference of two rates, in percentage points."""
    return "n/a" if finite(value) is None else percent(value)[:-1] + " pp"


def _e(value: Any) -> str:
    return escape(str(value), quote=True)
