"""The validation report as one self-contained HTML page.

Inline CSS and SVG only: no script, no fonts or links to fetch, so the page opens
from a file, an e-mail or a CI artifact as it is. Every value from the data or the
contract is escaped; pass and fail are words and icons, so color is a bonus.
"""

from __future__ import annotations

import datetime as dt
import json
from html import escape
from typing import Any

from shipyard.contracts._svg import figure, value_label
from shipyard.contracts.report import RuleResult, ValidationReport

MAX_VALUE_CHARS = 120

CSS = """
:root { --ok: #1a7f37; --fail: #c62828; --warn: #8a5a00; --ink: #1f2328;
  --muted: #59636e; --line: #d1d9e0; --soft: #f6f8fa; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--ink); margin: 0; background: #fff; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 30px; margin: 0 0 6px; }
h2 { font-size: 20px; margin: 36px 0 10px; padding-bottom: 6px;
  border-bottom: 2px solid var(--line); }
h3 { font-size: 17px; margin: 0; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  white-space: pre-wrap; word-break: break-all; }
.verdict { border: 2px solid; border-left-width: 10px; border-radius: 8px;
  padding: 16px 22px; margin-bottom: 18px; }
.verdict.ok { border-color: var(--ok); background: #eef8f0; }
.verdict.warn { border-color: var(--warn); background: #fff8e5; }
.verdict.fail { border-color: var(--fail); background: #fdeeee; }
section.verdict { color: var(--ink); }
.verdict .why { margin: 0; color: var(--muted); }
.counts { display: flex; flex-wrap: wrap; align-items: center; gap: 10px 14px;
  margin-top: 14px; font-size: 17px; }
.counts b { font-size: 26px; font-variant-numeric: tabular-nums; }
.counts .op { font-size: 24px; color: var(--muted); }
.tally { margin-left: 8px; padding: 3px 10px; border: 1px solid; border-radius: 999px;
  font-size: 14px; font-weight: 600; }
.meta { display: grid; grid-template-columns: max-content 1fr; gap: 3px 16px;
  margin: 0; font-size: 14px; }
.meta dt { color: var(--muted); }
.meta dd { margin: 0; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { text-align: left; vertical-align: top; padding: 6px 8px;
  border-bottom: 1px solid var(--line); }
th { background: var(--soft); font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.ok { color: var(--ok); } .fail { color: var(--fail); } .warn { color: var(--warn); }
.status { font-weight: 700; white-space: nowrap; }
tr.failed td { background: #fff7f7; } tr.warned td { background: #fffbef; }
.column { border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px;
  margin: 14px 0; }
.column.failed { border-left: 6px solid var(--fail); }
.column.warned { border-left: 6px solid var(--warn); }
.column header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 14px;
  margin-bottom: 10px; }
.badge { font-size: 13px; padding: 1px 8px; border: 1px solid var(--line);
  border-radius: 999px; color: var(--muted); }
.body { display: flex; flex-wrap: wrap; gap: 16px 24px; }
.rules { flex: 1 1 520px; min-width: 0; }
.rules p.none { color: var(--muted); margin: 0; }
figure { flex: 0 0 370px; margin: 0; }
figcaption { font-size: 12.5px; color: var(--muted); margin-top: 4px; }
.chart text { font: 11px system-ui, sans-serif; fill: var(--muted); }
.chart .bin, .chart .bar { fill: #4a79c7; } .chart .rest { fill: #a9b3bd; }
.chart .bad { fill: var(--fail); }
.chart .axis { stroke: var(--muted); }
.id { white-space: nowrap; }
.sev { display: block; font-size: 12px; color: var(--muted); }
.detail { margin: 0; }
.measure { margin: 4px 0 0; color: var(--muted); font-size: 13px; }
.examples { display: flex; flex-wrap: wrap; gap: 4px 6px; margin: 6px 0 0;
  padding: 0; list-style: none; font-size: 13px; }
.examples li { border: 1px solid var(--line); border-radius: 4px; padding: 0 6px;
  background: var(--soft); }
.examples .row { color: var(--muted); }
.null { font-style: italic; color: var(--muted); }
.drift { border: 1px dashed var(--warn); border-radius: 6px; padding: 8px 12px;
  margin: 0 0 12px; }
.quiet { color: var(--muted); }
a { color: inherit; }
"""


def report_html(report: ValidationReport, profiles: dict[str, dict[str, Any]] | None = None) -> str:
    """The whole page for ``report``; ``profiles`` (from ``_profile.profile``) add charts."""
    profiles = profiles or {}
    anchors = {name: f"col-{i}" for i, name in enumerate(_column_order(report, profiles), 1)}
    body = "".join(
        [
            _verdict(report),
            _meta(report),
            _failures(report, anchors),
            _schema(report),
            _dataset(report),
            _columns(report, profiles, anchors),
        ]
    )
    title = f"{report.dataset}: batch {'passed' if report.batch_passed else 'FAILED'}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )


# -- the top: verdict, counts, where the batch came from ----------------------------------


def _verdict(report: ValidationReport) -> str:
    quarantined = report.rows_quarantined
    if not report.batch_passed:
        css, head = "fail", "✗ Batch FAILED"
        why = "A batch check failed, so no row is accepted: every row is quarantined."
    elif quarantined:
        css, head = (
            "warn",
            f"✓ Batch passed, {quarantined:,} {_plural(quarantined, 'row')} quarantined",
        )
        why = "Rows that broke an error check were set aside; the rest were accepted."
    else:
        css, head = "ok", "✓ Batch passed, every row accepted"
        why = "No row broke an error check."
    warnings = len(report.warnings)
    if warnings:
        why += f" {warnings} {'warning' if warnings == 1 else 'warnings'} (see below)."
    return (
        f'<section class="verdict {css}"><h1 class="{css}">{_e(head)}</h1>'
        f'<p class="why">{_e(why)}</p>{_counts(report)}</section>'
    )


def _counts(report: ValidationReport) -> str:
    if report.counts_add_up:
        tally = '<span class="tally ok">✓ counts add up</span>'
    else:
        missing = report.rows_in - report.rows_accepted - report.rows_quarantined
        tally = (
            f'<span class="tally fail">✗ counts do NOT add up: {missing:,} rows '
            "unaccounted for</span>"
        )
    share = f" ({report.rows_quarantined / report.rows_in:.1%})" if report.rows_in else ""
    return (
        f'<div class="counts"><span><b>{report.rows_in:,}</b> rows in</span>'
        '<span class="op">=</span>'
        f'<span><b class="ok">{report.rows_accepted:,}</b> accepted</span>'
        '<span class="op">+</span>'
        f'<span><b class="fail">{report.rows_quarantined:,}</b> quarantined{share}</span>'
        f"{tally}</div>"
    )


def _meta(report: ValidationReport) -> str:
    items = [
        (
            "Contract",
            f"<code>{_e(report.contract_id)}</code> version "
            f"<code>{_e(report.contract_version)}</code>",
        ),
        ("Dataset", f"<code>{_e(report.dataset)}</code>"),
        ("Source", f"<code>{_e(report.source)}</code>"),
        ("Checked", _e(_when(report.checked_at)) + f" in {report.seconds:.2f} s"),
    ]
    rows = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in items)
    return f'<dl class="meta">{rows}</dl>'


def _when(seconds: float) -> str:
    if not seconds:
        return "at an unknown time"
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# -- what failed, the schema, the checks on the whole batch ------------------------------


def _failures(report: ValidationReport, anchors: dict[str, str]) -> str:
    failed = _worst_first([r for r in report.results if not r.passed])
    checks = len(report.results)
    if not failed:
        return f'<h2>Checks</h2><p class="ok status">✓ All {checks} checks passed.</p>'
    rows = "".join(
        f'<tr class="{_row_class(r)}"><td class="status {_tone(r)}">{_status(r)}</td>'
        f'<td><a href="#{_anchor(r, anchors)}">{_check_id(r)}</a></td>'
        f"<td>{_e(r.severity)}</td><td class=num>{_failed_rows(r, report.rows_in)}</td>"
        f"<td>{_e(r.message or r.description)}</td></tr>"
        for r in failed
    )
    return (
        f"<h2>{len(failed)} of {checks} checks did not pass</h2><table><thead><tr>"
        "<th>Result</th><th>Check</th><th>Severity</th><th class=num>Failed rows</th>"
        f"<th>What happened</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _schema(report: ValidationReport) -> str:
    issues = [r for r in report.results if r.kind == "schema"]
    if not issues and not report.new_columns:
        return (
            '<h2 id="schema">Schema</h2><p class="ok status">✓ The batch has the '
            "contract's columns, and no others.</p>"
        )
    drift = ""
    if report.new_columns:
        names = ", ".join(f"<code>{_e(c)}</code>" for c in report.new_columns)
        drift = (
            f'<p class="drift"><b class="warn">⚠ Schema drift:</b> '
            f"{len(report.new_columns)} new {_plural(len(report.new_columns), 'column')} "
            f"not in the contract: {names}</p>"
        )
    return f'<h2 id="schema">Schema</h2>{drift}{_rules_table(issues, report.rows_in)}'


def _dataset(report: ValidationReport) -> str:
    checks = [r for r in report.results if r.kind != "schema" and r.column is None]
    if not checks:
        return ""
    return f'<h2 id="dataset">Checks on the whole batch</h2>{_rules_table(checks, report.rows_in)}'


# -- one section per column -------------------------------------------------------------


def _column_order(report: ValidationReport, profiles: dict[str, dict[str, Any]]) -> list[str]:
    named = [r.column for r in report.results if r.column is not None and r.kind != "schema"]
    return list(dict.fromkeys([*profiles, *named]))


def _columns(
    report: ValidationReport, profiles: dict[str, dict[str, Any]], anchors: dict[str, str]
) -> str:
    if not anchors:
        return ""
    sections = [
        _column(report, name, anchor, profiles.get(name)) for name, anchor in anchors.items()
    ]
    return "<h2>Columns</h2>" + "".join(sections)


def _column(
    report: ValidationReport, name: str, anchor: str, profile: dict[str, Any] | None
) -> str:
    results = [r for r in report.results if r.column == name and r.kind != "schema"]
    failed = [r for r in results if not r.passed]
    css = "failed" if any(r.blocking for r in failed) else "warned" if failed else ""
    badges = [_column_badge(results, failed)]
    if name in report.new_columns:
        badges.append('<span class="badge warn">⚠ new: not in the contract</span>')
    rules = (
        _rules_table(_worst_first(results), report.rows_in)
        if results
        else f'<p class="none">{_unchecked(name in report.new_columns)}</p>'
    )
    chart = figure(profile, _flagged(failed), report.rows_in) if profile else ""
    return (
        f'<section class="column {css}" id="{anchor}"><header><h3><code>{_e(name)}</code></h3>'
        f'{"".join(badges)}</header><div class="body"><div class="rules">{rules}</div>'
        f"{chart}</div></section>"
    )


def _unchecked(new: bool) -> str:
    if new:
        return "Not in the contract: kept as delivered, unchecked."
    return "The contract has no checks for this column."


def _column_badge(results: list[RuleResult], failed: list[RuleResult]) -> str:
    if not results:
        return '<span class="badge">no checks</span>'
    if not failed:
        return f'<span class="badge ok">✓ {_count(len(results), "check")} passed</span>'
    tone = "fail" if any(r.blocking for r in failed) else "warn"
    icon = "✗" if tone == "fail" else "⚠"
    return (
        f'<span class="badge {tone}">{icon} {len(failed)} of '
        f"{_count(len(results), 'check')} did not pass</span>"
    )


def _flagged(failed: list[RuleResult]) -> frozenset[str]:
    """The values seen in failing rows, as the bar chart labels them."""
    return frozenset(value_label(e.get("value")) for r in failed for e in r.examples)


# -- tables of check results ------------------------------------------------------------


def _rules_table(results: list[RuleResult], rows_in: int) -> str:
    if not results:
        return ""
    rows = "".join(_rule_row(r, rows_in) for r in results)
    return (
        "<table><thead><tr><th>Result</th><th>Check</th>"
        "<th class=num>Failed rows</th><th>Details</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _rule_row(result: RuleResult, rows_in: int) -> str:
    details = f'<p class="detail">{_e(result.message or result.description)}</p>'
    if result.kind == "batch" and (result.expectation or result.measured is not None):
        details += (
            f'<p class="measure">measured <code>{_e(_shown(result.measured))}</code>'
            f" · expected <code>{_e(result.expectation)}</code></p>"
        )
    if result.examples and not result.passed:
        details += _examples(result.examples)
    return (
        f'<tr class="{_row_class(result)}"><td class="status {_tone(result)}">'
        f"{_status(result)}</td><td>{_check_id(result)}"
        f'<span class="sev">{_e(result.severity)} check</span></td>'
        f"<td class=num>{_failed_rows(result, rows_in)}</td>"
        f"<td>{details}</td></tr>"
    )


def _examples(examples: list[dict[str, Any]]) -> str:
    items = "".join(
        f'<li><span class="row">row {_e(_shown(e.get("row")))}:</span> {_value(e.get("value"))}'
        "</li>"
        for e in examples
    )
    return f'<ul class="examples" aria-label="example failing rows">{items}</ul>'


def _value(value: Any) -> str:
    """An example value as a person should read it: null and empty text are named."""
    if value is None:
        return '<span class="null">null</span>'
    if value == "":
        return '<span class="null">(empty text)</span>'
    text = _shown(value)
    if len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 1] + "…"
    return f"<code>{_e(text)}</code>"


def _shown(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return "null" if value is None else str(value)


def _failed_rows(result: RuleResult, rows_in: int) -> str:
    if result.kind != "row":
        return '<span class="quiet">—</span>'
    if not result.failed_rows or not rows_in:
        return f"{result.failed_rows:,}"
    return f"{result.failed_rows:,} ({result.failed_rows / rows_in:.1%})"


def _check_id(result: RuleResult) -> str:
    """The check's id, kept on one line except after a dot or comma."""
    text = _e(result.id).replace(".", ".<wbr>").replace(",", ",<wbr>")
    return f'<code class="id">{text}</code>'


def _status(result: RuleResult) -> str:
    if result.passed:
        return "✓ passed"
    return "✗ FAILED" if result.severity == "error" else "⚠ warning"


def _tone(result: RuleResult) -> str:
    if result.passed:
        return "ok"
    return "fail" if result.severity == "error" else "warn"


def _row_class(result: RuleResult) -> str:
    return {"ok": "", "fail": "failed", "warn": "warned"}[_tone(result)]


def _worst_first(results: list[RuleResult]) -> list[RuleResult]:
    order = {"fail": 0, "warn": 1, "ok": 2}
    return sorted(results, key=lambda r: order[_tone(r)])


def _anchor(result: RuleResult, anchors: dict[str, str]) -> str:
    if result.kind == "schema":
        return "schema"
    if result.column is None:
        return "dataset"
    return anchors.get(result.column, "dataset")


def _plural(count: int, noun: str) -> str:
    return noun if count == 1 else noun + "s"


def _count(count: int, noun: str) -> str:
    return f"{count} {_plural(count, noun)}"


def _e(value: Any) -> str:
    return escape(str(value), quote=True)
