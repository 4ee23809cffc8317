"""The sections of the monitoring report, top to bottom: verdict, what was watched, notes,
alerts, retraining, drift, scores, performance, business value, contract health, SLOs and
the windows. Each takes the result (or its :class:`_View`) and returns an HTML fragment."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from shipyard.evaluation._plots import COLORS, finite, number, percent
from shipyard.monitoring._report_html import (
    _alerts_of,
    _cells,
    _charts,
    _count,
    _e,
    _figure,
    _fmt,
    _get,
    _rule,
    _short,
    _table,
    _View,
)
from shipyard.monitoring._report_plots import Series, drift_rows, heat_map, time_chart

SEVERITIES = ("error", "warning", "info")
TONE = {"error": "fail", "warning": "warn", "info": "quiet"}
ALERT_COLUMNS = ("Severity", "Rule", "Status", "#Value", "At", "Episode", "Message")
MAX_CATEGORIES = 20
ESTIMATED = (
    "Solid lines are realised from the labels that arrived; dashed lines marked "
    '"estimated" come from the calibrated scores (CBPE) before labels arrive.'
)


# -- the top: verdict, what was watched, warnings, alerts, retraining --------------------


def _headline(result: Mapping[str, Any]) -> tuple[str, str]:
    firing = _alerts_of(result, "firing")
    counts = {s: sum(a.get("severity") == s for a in firing) for s in SEVERITIES}
    if not firing:
        return "ok", "✓ All clear: no alert is firing"
    tone = "fail" if counts["error"] else "warn" if counts["warning"] else "ok"
    shown = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    return tone, f"{'✗' if tone == 'fail' else '⚠'} {len(firing)} firing: {shown}"


def _verdict(result: Mapping[str, Any]) -> str:
    tone, head = _headline(result)
    firing = _alerts_of(result, "firing")
    rules = ", ".join(_rule(a) for a in firing)
    why = f"Firing: {rules}." if firing else "Every alert rule is quiet for this run."
    why += f" shipyard monitor exits {result.get('exit_code', 'n/a')} for this run."
    tallies = "".join(
        f'<span class="tally {TONE[s]}">{sum(a.get("severity") == s for a in firing)} {s}</span>'
        for s in SEVERITIES
    )
    return (
        f'<section class="verdict {tone}"><h1 class="{tone}">{_e(head)}</h1>'
        f'<p class="why">{_e(why)}</p><div class="counts">{tallies}</div></section>'
    )


def _meta(view: _View) -> str:
    result = view.result
    reference = result.get("reference") or {}
    log = result.get("log") or {}
    labels = result.get("labels") or {}
    model = f"<code>{_e(result.get('model', 'n/a'))}</code> version <code>"
    model += f"{_e(result.get('version', 'n/a'))}</code> (<code>{_e(result.get('ref', ''))}</code>)"
    items = [
        ("Model", model + f" in project <code>{_e(result.get('project', 'n/a'))}</code>"),
        ("Windows", f"{len(view.windows)} of {_e(result.get('every', 'n/a'))}, from "
         f"{_e(_short(result.get('since')))} to {_e(_short(result.get('until')))}"),
        ("Traffic", f"{_count(log.get('rows'))} predictions from {_count(log.get('segments'))} "
         f"log segments in <code>{_e(log.get('directory', 'n/a'))}</code>"),
        ("Reference", f"{_count(reference.get('rows'))} rows, "
         f"{len(reference.get('columns') or [])} columns, built "
         f"{_e(_short(reference.get('created_at')))}" if reference else "none"),
        ("Threshold", _e(number(result.get("threshold")))),
        ("Labels", f"{_count(labels.get('stored'))} stored" if labels else "none ingested"),
        ("Generated", _e(_short(result.get("generated_at")))),
    ]  # fmt: skip
    rows = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in items)
    return f'<dl class="meta">{rows}</dl>'


def _notes(result: Mapping[str, Any]) -> str:
    log = result.get("log") or {}
    notes = [f"Skipped log segment: {text}" for text in log.get("skipped") or []]
    notes += [f"Feature missing from the log: {name}" for name in log.get("missing") or []]
    unknown = finite((result.get("labels") or {}).get("unknown"))
    if unknown:
        notes.append(f"{unknown:,.0f} labels name request ids that are not in the log.")
    if (result.get("service") or {}).get("scrape_error"):
        notes.append(f"Service metrics not read: {result['service']['scrape_error']}")
    if not result.get("reference"):
        notes.append("No reference profile for this model version: drift was not computed.")
    if not notes:
        return ""
    items = "".join(f"<li>{_e(note)}</li>" for note in notes)
    return f'<section class="notes"><h2>⚠ Log notes</h2><ul>{items}</ul></section>'


def _alerts(result: Mapping[str, Any]) -> str:
    firing, events = _alerts_of(result, "firing"), _alerts_of(result, "alerts")
    if not firing and not events:
        return '<h2>Alerts</h2><p class="quiet">No alert fired or resolved in this run.</p>'
    parts = ["<h2>Alerts</h2>"]
    for head, found in (("Firing now", firing), ("Events of this run", events)):
        rows = "".join(_alert_row(a) for a in found) or (
            f'<tr><td colspan="{len(ALERT_COLUMNS)}" class="quiet">none</td></tr>'
        )
        parts.append(f"<h3>{head}</h3>{_table(ALERT_COLUMNS, rows)}")
    return "".join(parts)


def _alert_row(alert: Mapping[str, Any]) -> str:
    severity = str(alert.get("severity", ""))
    retrain = ' <span class="badge">↻ retrains</span>' if alert.get("retrain") else ""
    when = f'<span class="sev">when {_e(alert["when"])}</span>' if alert.get("when") else ""
    return (
        f'<tr class="{"failed" if severity == "error" else ""}"><td class="status '
        f'{TONE.get(severity, "")}">{_e(severity)}</td><td><code>{_e(_rule(alert))}'
        f"</code>{retrain}{when}</td><td>{_e(alert.get('status', ''))}</td>"
        f'<td class="num">{_fmt(alert.get("value"))}</td><td>{_e(_short(alert.get("at")))}</td>'
        f"<td><code>{_e(alert.get('episode', ''))}</code></td><td>{_e(alert.get('message', ''))}"
        "</td></tr>"
    )


def _retrain(retrain: Any) -> str:
    if not isinstance(retrain, Mapping):
        return '<h2>Retraining</h2><p class="quiet">No retraining was triggered.</p>'
    gate = retrain.get("gate") or {}
    passed = gate.get("passed")
    verdict = "✓ passed" if passed else "✗ failed" if passed is False else "not run"
    rules, status = retrain.get("triggered_by") or [], _e(retrain.get("status", "n/a"))
    promoted = "✓ promoted" if retrain.get("promoted") else "not promoted (it stays a candidate)"
    items = [
        ("Triggered by", ", ".join(f"<code>{_e(r)}</code>" for r in rules)),
        ("Run", f"<code>{_e(retrain.get('run_id', 'n/a'))}</code> ({status})"),
        ("Candidate", f"<code>{_e(retrain.get('candidate', 'n/a'))}</code>"),
        ("Gate", f"{verdict}: {_e(gate.get('summary', ''))}"),
        ("Promotion", promoted),
    ]  # fmt: skip
    rows = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in items)
    return f'<h2>Retraining</h2><dl class="meta">{rows}</dl>'


# -- drift ------------------------------------------------------------------------------


def _drift(view: _View) -> str:
    if not any(isinstance(w.get("drift"), Mapping) for w in view.windows):
        return '<h2>Drift</h2><p class="quiet">No window has drift results.</p>'
    share = time_chart(
        view.times,
        [
            Series("share of drifted columns", view.each("drift", "share")),
            Series("weighted share", view.each("drift", "weighted_share"), COLORS[1]),
        ],
        title="Share of drifted columns",
        y_label="share",
        levels=[("dataset drift at", view.result.get("drift_share"))],
        gaps=view.gaps,
        fmt=percent,
        y_domain=(0.0, 1.0),
    )
    heat = heat_map(
        view.times, drift_rows(view.times, view.windows), title="Drift per column and window"
    )
    caption = "Hover a cell for its statistic, p-value, threshold and PSI."
    return f"<h2>Drift</h2>{_charts(_figure(share))}{_figure(heat, caption)}"


# -- scores, performance, business value -----------------------------------------------


def _scores(view: _View) -> str:
    quantiles = [(_get(w, "score", "quantiles") or {}) for w in view.windows]
    scores = time_chart(
        view.times,
        [
            Series("median", [q.get("p50") for q in quantiles]),
            Series("mean", view.each("score", "mean"), COLORS[1]),
        ],
        title="Scores per window",
        y_label="score",
        band=("10th to 90th percentile", [q.get("p10") for q in quantiles],
              [q.get("p90") for q in quantiles]),
        levels=[("threshold", view.result.get("threshold"))],
        gaps=view.gaps,
    )  # fmt: skip
    flags = time_chart(
        view.times,
        [Series("flag rate", view.each("score", "flag_rate"))],
        title="Share of requests flagged",
        y_label="flag rate",
        gaps=view.gaps,
        fmt=percent,
    )
    caption = "The band spans the 10th to 90th percentile of the scores."
    return f"<h2>Scores</h2>{_charts(_figure(scores, caption), _figure(flags))}"


def _performance(view: _View) -> str:
    coverage = [_coverage(w) for w in view.windows]
    charts = [
        _estimated_chart(view, metric, title, percent)
        for metric, title in (("precision", "Precision"), ("recall", "Recall"))
    ]
    charts.append(
        time_chart(
            view.times,
            [Series("labelled share", coverage)],
            title="Label coverage",
            y_label="labelled share",
            gaps=view.gaps,
            fmt=percent,
            y_domain=(0.0, 1.0),
        )
    )
    waiting = sum(1 for w in view.windows if w.get("rows") and not w.get("performance"))
    text = (
        f"{waiting} of {len(view.windows)} windows have no labels yet. " if waiting else ""
    ) + ESTIMATED
    figures = _charts(*(_figure(chart) for chart in charts))
    return f'<h2>Performance</h2><p class="estimated">{_e(text)}</p>{figures}'


def _value(view: _View) -> str:
    per_1000 = _estimated_chart(view, "value_per_1000", "Value per 1,000 decisions", number)
    total = time_chart(
        view.times,
        [
            Series("total value", view.each("performance", "value_total")),
            Series(
                "total value (estimated)",
                view.each("estimated", "value_total"),
                COLORS[0],
                dashed=True,
            ),
        ],
        title="Total value per window",
        y_label="value",
        gaps=view.gaps,
    )
    return f"<h2>Business value</h2>{_charts(_figure(per_1000), _figure(total))}"


def _estimated_chart(view: _View, metric: str, title: str, fmt: Callable[[Any], str]) -> str:
    """Realised (solid), estimated (dashed) and the value at promotion (a level)."""
    promotion = (view.result.get("promotion") or {}).get(metric)
    name = "value per 1,000" if metric == "value_per_1000" else metric
    return time_chart(
        view.times,
        [
            Series(name, view.each("performance", metric)),
            Series(f"{name} (estimated)", view.each("estimated", metric), COLORS[0], dashed=True),
        ],
        title=title,
        y_label=name,
        levels=[("at promotion", promotion)],
        gaps=view.gaps,
        fmt=fmt,
    )  # fmt: skip


def _coverage(window: Mapping[str, Any]) -> Any:
    performance = window.get("performance") or {}
    if performance.get("label_coverage") is not None:
        return performance["label_coverage"]
    labelled, rows = finite(performance.get("labelled")), finite(window.get("rows"))
    return labelled / rows if labelled is not None and rows else (0.0 if rows else None)


# -- contract health, SLOs, the windows --------------------------------------------------


def _contract(view: _View) -> str:
    shares: dict[str, list[Any]] = {}
    for index, window in enumerate(view.windows):
        for rule in _get(window, "contract", "rules") or []:
            name, column = str(rule.get("rule")), rule.get("column")
            name += f" ({column})" if column and not name.startswith(f"{column}.") else ""
            shares.setdefault(name, [None] * len(view.windows))[index] = rule.get("share")
    worst = sorted(shares, key=lambda n: -max(finite(v) or 0.0 for v in shares[n]))[:4]
    series = [Series(n, shares[n], COLORS[1 + i]) for i, n in enumerate(worst)]
    series.append(Series("any rule", view.each("contract", "violation_share")))  # drawn on top
    chart = time_chart(
        view.times,
        series,
        title="Share of requests violating the input contract",
        y_label="share of requests",
        gaps=view.gaps,
        fmt=percent,
    )
    caption = f"The {len(worst)} most violated of {len(shares)} failing rules are drawn."
    caption = caption if len(shares) > len(worst) else ""
    return f"<h2>Contract health</h2>{_figure(chart, caption)}{_new_categories(view)}"


def _new_categories(view: _View) -> str:
    found: dict[str, dict[str, str]] = {}  # column -> value -> first window
    for time, window in zip(view.times, view.windows, strict=True):
        for column, values in (_get(window, "contract", "new_categories") or {}).items():
            for value in values or []:
                found.setdefault(str(column), {}).setdefault(str(value), time)
    if not found:
        return '<p class="quiet">No unseen categories arrived.</p>'
    rows = "".join(_category_row(column, values) for column, values in found.items())
    return "<h3>New unseen categories</h3>" + _table(("Column", "Values (first seen)"), rows)


def _category_row(column: str, values: Mapping[str, str]) -> str:
    shown = list(values.items())[:MAX_CATEGORIES]
    text = ", ".join(f"<code>{_e(v)}</code> ({_e(t)})" for v, t in shown)
    more = len(values) - len(shown)
    text += f" and {more} more" if more else ""
    return f"<tr><td><code>{_e(column)}</code></td><td>{text}</td></tr>"


def _slos(view: _View) -> str:
    checked = [w for w in view.windows if w.get("slo")]
    if not checked:
        return '<h2>SLOs</h2><p class="quiet">No SLO was checked.</p>'
    rows = "".join(_slo_row(slo, checked) for slo in checked[-1]["slo"])
    head = ("Objective", "#Target", "#Actual", "Met", "Met in windows", "Detail")
    return "<h2>SLOs (newest window)</h2>" + _table(head, rows)


def _slo_row(slo: Mapping[str, Any], checked: Sequence[Mapping[str, Any]]) -> str:
    met = slo.get("met")
    tone, word = ("ok", "✓ met") if met else ("fail", "✗ missed") if met is False else ("", "?")
    history = [s.get("met") for w in checked for s in w["slo"] if s.get("name") == slo.get("name")]
    return (
        f'<tr class="{"failed" if met is False else ""}"><td><code>{_e(slo.get("name", ""))}'
        f'</code></td><td class="num">{_fmt(slo.get("objective"))}</td><td class="num">'
        f'{_fmt(slo.get("actual"))}</td><td class="status {tone}">{word}</td><td>'
        f"{sum(m is True for m in history)} of {len(history)}</td>"
        f"<td>{_e(slo.get('detail') or '')}</td></tr>"
    )


def _windows(view: _View) -> str:
    if not view.windows:
        return '<h2>Windows</h2><p class="quiet">No windows: nothing in the log to watch.</p>'
    head = ("Start", "End", "#Rows", "#Drifted share", "#Flag rate", "#Labelled", "#Value/1,000")
    rows = "".join(_window_row(w) for w in view.windows)
    return "<h2>Windows</h2>" + _table(head, rows)


def _window_row(window: Mapping[str, Any]) -> str:
    value = _fmt(_get(window, "performance", "value_per_1000"))
    guess = _get(window, "estimated", "value_per_1000")
    if value == "n/a" and guess is not None:
        value = f'{_fmt(guess)} <span class="estimated">estimated</span>'
    cells = (
        _count(window.get("rows")),
        percent(_get(window, "drift", "share")),
        percent(_get(window, "score", "flag_rate")),
        _count(_get(window, "performance", "labelled")),
        value,
    )
    start, end = _e(_short(window.get("start"))), _e(_short(window.get("end")))
    quiet = ' class="quiet"' if not finite(window.get("rows")) else ""
    return f"<tr{quiet}><td>{start}</td><td>{end}</td>{_cells(cells)}</tr>"
