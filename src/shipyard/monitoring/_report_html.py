"""Small HTML helpers of the monitoring report: the view of the windows, cells, tables,
figures, escaping and how values and moments are shown."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from shipyard.evaluation._plots import finite, number


@dataclass(frozen=True)
class _View:
    """The result and what every section needs of its windows."""

    result: Mapping[str, Any]
    windows: list[Mapping[str, Any]]
    times: list[str]
    gaps: list[int]

    def each(self, part: str, key: str) -> list[Any]:
        """``window[part][key]`` per window, None where missing."""
        return [_get(w, part, key) for w in self.windows]


def _alerts_of(result: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    return [a for a in result.get(key) or [] if isinstance(a, Mapping)]


def _rule(alert: Mapping[str, Any]) -> str:
    """The alert's rule name (``rule`` in the plan, ``alert`` in ``AlertEvent.to_dict()``)."""
    return str(alert.get("rule", alert.get("alert", "?")))


def _get(window: Mapping[str, Any], part: str, key: str) -> Any:
    """``window[part][key]``; for performance and estimated parts, a metric is read from
    their ``metrics`` table (``value_total`` is its ``value``)."""
    found = window.get(part)
    if not isinstance(found, Mapping):
        return None
    if key in found or part not in ("performance", "estimated"):
        return found.get(key)
    metrics = found.get("metrics")
    if not isinstance(metrics, Mapping):
        return None
    return metrics.get("value" if key == "value_total" else key)


def _short(value: Any) -> str:
    """A moment as people read it: the date, with the time unless it is midnight UTC."""
    if value is None:
        return "n/a"
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    if (moment.hour, moment.minute, moment.second) == (0, 0, 0):
        return moment.strftime("%Y-%m-%d")
    return moment.strftime("%Y-%m-%d %H:%M")


def _fmt(value: Any) -> str:
    """Any value from the result, escaped: numbers for people, booleans as yes or no."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None or finite(value) is not None or isinstance(value, float):
        return _e(number(value))
    if isinstance(value, (dict, list)):
        return _e(json.dumps(value, default=str))
    return _e(value)


def _charts(*figures: str) -> str:
    return f'<div class="charts">{"".join(figures)}</div>'


def _figure(svg: str, caption: str = "") -> str:
    text = f"<figcaption>{_e(caption)}</figcaption>" if caption else ""
    return f"<figure>{svg}{text}</figure>"


def _table(head: Sequence[str], rows: str) -> str:
    """A table under ``head`` (a name starting with "#" heads a column of numbers)."""
    cells = "".join(
        f'<th class="num">{_e(name[1:])}</th>' if name.startswith("#") else f"<th>{_e(name)}</th>"
        for name in head
    )
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{rows}</tbody></table>"


def _cells(values: Iterable[str]) -> str:
    return "".join(f'<td class="num">{value}</td>' for value in values)


def _count(value: Any) -> str:
    found = finite(value)
    return "n/a" if found is None else f"{found:,.0f}"


def _e(value: Any) -> str:
    return escape(str(value), quote=True)
