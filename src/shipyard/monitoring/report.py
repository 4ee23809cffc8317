"""One ``shipyard monitor`` run as a self-contained HTML page, for the person on call.

It reads the plain dict of ``MonitorResult.to_dict()``, so a stored result renders again
later. Inline CSS and SVG only, in the look of the evaluation report: no script, no fonts
or links to fetch. The verdict comes first (alerts firing by severity, or all clear), then
the log's warnings, the alerts and any retraining, then plots with one point per window:
drift, scores, performance (estimates dashed and labelled), business value, contract health
and SLOs. Every value from the result is escaped; any part may be missing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shipyard.evaluation._plots import finite
from shipyard.evaluation.report import CSS as BASE_CSS
from shipyard.monitoring._report_html import _e, _short, _View
from shipyard.monitoring._report_sections import (
    _alerts,
    _contract,
    _drift,
    _headline,
    _meta,
    _notes,
    _performance,
    _retrain,
    _scores,
    _slos,
    _value,
    _verdict,
    _windows,
)

CSS = (
    BASE_CSS
    + """
.notes { border: 2px solid var(--warn); border-left-width: 10px; border-radius: 8px;
  background: #fff8e5; padding: 10px 20px; margin: 18px 0; }
.notes h2 { border: 0; margin: 4px 0; color: var(--warn); } .notes li { margin: 3px 0; }
.chart .name { fill: var(--ink); font-size: 12px; } .chart .note { font-size: 10px; }
.estimated { font-style: italic; } svg.chart { max-width: 100%; height: auto; }
"""
)


def render_report(result: Mapping[str, Any]) -> str:
    """The whole report page of one monitoring run.

    Args:
        result: The dict of ``MonitorResult.to_dict()``; any part may be None or missing.

    Returns:
        A complete HTML document with inline CSS and SVG, and no script.
    """
    windows = [w for w in result.get("windows") or [] if isinstance(w, Mapping)]
    view = _View(
        result,
        windows,
        [_short(w.get("start")) for w in windows],
        [i for i, w in enumerate(windows) if not finite(w.get("rows"))],
    )
    sections = (
        _verdict(result),
        _meta(view),
        _notes(result),
        _alerts(result),
        _retrain(result.get("retrain")),
        _drift(view),
        _scores(view),
        _performance(view),
        _value(view),
        _contract(view),
        _slos(view),
        _windows(view),
    )
    title = f"Monitoring {result.get('model', 'a model')}: {_headline(result)[1]}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{''.join(sections)}</main></body></html>\n"
    )


def write_report(result: Mapping[str, Any], path: Path) -> Path:
    """Write :func:`render_report` to ``path`` atomically: a reader sees the old or the new page.

    Args:
        result: The dict of ``MonitorResult.to_dict()``.
        path: Where the page goes; missing folders are made.

    Returns:
        The path written.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
    try:
        staged.write_text(render_report(result), encoding="utf-8")
        os.replace(staged, target)
    finally:
        staged.unlink(missing_ok=True)
    return target
