"""How each enforced element of a contract compares between two versions.

"Tighter" is what the engine (``_engine``) makes of an element: a change is
breaking when some batch that passed the old element can fail the new one.
Everything here is pure: elements in, ``Change`` records out.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from shipyard.contracts.contract import QualityRule

Kind = Literal["breaking", "compatible", "info"]
Bound = tuple[Any, bool]  # (value, exclusive)
Interval = tuple[float, bool, float, bool]  # (low, low closed, high, high closed)

# The changes whose kind never depends on values: what happened -> (kind, why).
EVENTS: dict[str, tuple[Kind, str]] = {
    "dataset removed": ("breaking", "consumers reading it lose it"),
    "dataset added": ("compatible", "nothing relied on it before"),
    "property removed": ("breaking", "consumers reading it lose it"),
    "property renamed": ("breaking", "likely renamed (removed, and one of the same type added)"),
    "required property added": ("breaking", "batches without the column now fail"),
    "property added": ("compatible", "it is optional: batches without it still pass"),
    "extra columns forbidden": ("breaking", "batches with columns not in the contract now fail"),
    "extra columns allowed": ("compatible", "batches with columns not in the contract now pass"),
    "warning became error": ("breaking", "what only warned now fails the batch"),
    "error became warning": ("compatible", "what failed the batch now only warns"),
    "error rule added": ("breaking", "batches must now pass it"),
    "warning rule added": ("compatible", "it only warns, so no batch fails on it"),
    "rule removed": ("compatible", "batches are no longer checked against it"),
    "text rule added": ("info", "text rules are not enforced"),
    "text rule removed": ("info", "text rules are not enforced"),
    "text rule changed": ("info", "text rules are not enforced"),
    "unit changed": ("breaking", "thresholds in rows and in percent cannot be compared"),
    "tolerance tightened": ("breaking", "some measurements that passed before now fail"),
    "tolerance loosened": ("compatible", "every measurement that passed before still passes"),
    "threshold rewritten": ("compatible", "it accepts exactly the same measurements"),
    "query changed": ("breaking", "a different query may measure more"),
    "allowed value removed": ("breaking", "the value no longer passes"),
    "allowed value added": ("compatible", "the value now passes"),
    "missing value added": ("breaking", "the value now counts as missing"),
    "missing value removed": ("compatible", "the value no longer counts as missing"),
    "SLA added": ("breaking", "batches must now meet it"),
    "SLA removed": ("compatible", "batches are no longer checked against it"),
    "SLA tightened": ("breaking", "a batch that met the old limit may miss the new one"),
    "SLA loosened": ("compatible", "every batch that met the old limit meets the new one"),
    "SLA rewritten": ("info", "the same limit, written differently"),
}

# side of the range, inclusive key, exclusive key
BOUNDS = (
    ("lower", "minimum", "exclusiveMinimum"),
    ("upper", "maximum", "exclusiveMaximum"),
    ("lower", "minLength", None),
    ("upper", "maxLength", None),
)

# Dropping a pattern accepts more; dropping a format changes how text parses (ISO instead).
TEXT_OPTIONS: dict[str, tuple[Kind, str]] = {
    "pattern": ("compatible", "values no longer have to match a pattern"),
    "format": ("breaking", "text in the old format no longer parses (ISO is the default)"),
}


@dataclass(frozen=True)
class Change:
    """One difference between two contracts, classified for the consumer.

    Attributes:
        kind: ``breaking`` (a batch that passed may now fail, or data the consumer
            used may disappear or change meaning), ``compatible`` or ``info``.
        path: the element, as ``schema.<dataset>.properties.<property>.<field>``.
        what: what happened, in a few words (``property removed``).
        old: the element's old value (``None`` when it is new).
        new: the element's new value (``None`` when it was removed).
        reason: why the change has this kind.
    """

    kind: Kind
    path: str
    what: str
    old: Any
    new: Any
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """The change with JSON-ready values (dates as ISO text)."""
        fields = ("kind", "path", "what", "old", "new", "reason")
        return {name: jsonable(getattr(self, name)) for name in fields}


def event(what: str, path: str, old: Any, new: Any, reason: str | None = None) -> Change:
    """A change of a kind listed in ``EVENTS``."""
    kind, why = EVENTS[what]
    return Change(kind, path, what, old, new, reason or why)


def jsonable(value: Any) -> Any:
    """``value`` as something ``json.dumps`` takes."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    return str(value)


def verb(old: Any, new: Any) -> str:
    return "added" if old is None else "removed" if new is None else "changed"


def soften(changes: list[Change], severity: str) -> list[Change]:
    """Tightenings of checks that only warn cannot fail a batch: compatible."""
    if severity != "warning":
        return changes
    note = " (but the check only warns)"
    return [
        Change("compatible", c.path, c.what, c.old, c.new, c.reason + note)
        if c.kind == "breaking"
        else c
        for c in changes
    ]


def severity_change(path: str, old: str, new: str) -> Change:
    what = "warning became error" if new == "error" else "error became warning"
    return event(what, path, old, new)


# -- types and logicalTypeOptions ---------------------------------------------------------


def option_changes(path: str, old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Bounds compare as a whole (``minimum`` 0 → ``exclusiveMinimum`` 0 tightens)."""
    changes = []
    for side, inclusive, exclusive in BOUNDS:
        keys = [k for k in (inclusive, exclusive) if k and old.get(k) != new.get(k)]
        if keys:
            before = bound(side, old, inclusive, exclusive)
            kind, reason = bound_kind(side, before, bound(side, new, inclusive, exclusive))
            for k in keys:
                a, b = old.get(k), new.get(k)
                changes.append(Change(kind, f"{path}.{k}", f"{k} {verb(a, b)}", a, b, reason))
    for key, (dropped, why) in TEXT_OPTIONS.items():
        a, b = old.get(key), new.get(key)
        if a != b:
            kind, reason = (dropped, why) if b is None else ("breaking", f"values must match {b!r}")
            changes.append(Change(kind, f"{path}.{key}", f"{key} {verb(a, b)}", a, b, reason))
    return changes


def bound(
    side: str, options: dict[str, Any], inclusive: str, exclusive: str | None
) -> Bound | None:
    """The tighter of a side's inclusive and exclusive bound (``None``: unbounded)."""
    found = [(orderable(options[inclusive]), False)] if inclusive in options else []
    if exclusive and exclusive in options:
        found.append((orderable(options[exclusive]), True))
    if not found:
        return None
    if side == "lower":
        return max(found)
    return min(found, key=lambda b: (b[0], not b[1]))


def bound_kind(side: str, old: Bound | None, new: Bound | None) -> tuple[Kind, str]:
    """Whether moving a ``lower``/``upper`` bound from ``old`` to ``new`` tightens it."""
    shown = f"{_show(side, old)} to {_show(side, new)}"
    if new is None:
        return "compatible", f"no {side} bound any more (was {_show(side, old)})"
    if old is None:
        return "breaking", f"a new {side} bound ({_show(side, new)})"
    try:
        tighter, looser = _tighter(side, new, old), _tighter(side, old, new)
    except TypeError:
        return "breaking", f"the {side} bound moved from {shown}, which cannot be compared"
    if tighter:
        return "breaking", f"the {side} bound tightened from {shown}"
    if looser:
        return "compatible", f"the {side} bound loosened from {shown}"
    return "compatible", f"the {side} bound is the same ({shown})"


def _tighter(side: str, a: Bound, b: Bound) -> bool:
    if side == "lower":
        return bool(a[0] > b[0] or (a[0] == b[0] and a[1] and not b[1]))
    return bool(a[0] < b[0] or (a[0] == b[0] and a[1] and not b[1]))


def _show(side: str, b: Bound | None) -> str:
    if b is None:
        return "none"
    sign = (">" if side == "lower" else "<") + ("" if b[1] else "=")
    return f"{sign} {jsonable(b[0])}"


def orderable(value: Any) -> Any:
    """ISO dates and timestamps as values that compare by time (naive taken as UTC)."""
    if isinstance(value, str):
        for parse in (date.fromisoformat, datetime.fromisoformat):
            try:
                value = parse(value.replace("Z", "+00:00"))
                break
            except ValueError:
                continue
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


# -- quality rules -------------------------------------------------------------------------


def rule_changes(path: str, old: list[QualityRule], new: list[QualityRule]) -> list[Change]:
    """Rules are matched by what they measure (metric and its target), not by position."""
    olds, news = _keyed(old), _keyed(new)
    changes = []
    for key, rule in olds.items():
        where = f"{path}.quality[{key}]"
        if key in news:
            changes += rule_pair(where, rule, news[key])
        else:
            changes.append(event(f"{_text(rule)}rule removed", where, key, None))
    for key, rule in news.items():
        if key not in olds:
            what = _text(rule) or ("warning " if rule.severity == "warning" else "error ")
            changes.append(event(f"{what}rule added", f"{path}.quality[{key}]", None, key))
    return changes


def _text(rule: QualityRule) -> str:
    return "text " if rule.type == "text" else ""


def rule_key(rule: QualityRule) -> str:
    """What a rule measures: ``nullValues``, ``invalidValues(validValues)``, ``sql:<name>``."""
    if rule.type in ("sql", "text"):
        return f"{rule.type}:{rule.name or rule.query or rule.description}"
    if rule.metric == "invalidValues":
        variant = "validValues" if "validValues" in rule.arguments else "pattern"
        return f"invalidValues({variant})"
    columns = rule.arguments.get("properties")
    return f"{rule.metric}({','.join(columns)})" if columns else str(rule.metric)


def _keyed(rules: list[QualityRule]) -> dict[str, QualityRule]:
    keyed: dict[str, QualityRule] = {}
    for rule in rules:
        key = base = rule_key(rule)
        count = 1
        while key in keyed:
            count += 1
            key = f"{base}#{count}"
        keyed[key] = rule
    return keyed


def rule_pair(where: str, a: QualityRule, b: QualityRule) -> list[Change]:
    """The changes within one rule; tightenings of a rule that now only warns are soft."""
    if a.type == "text" or b.type == "text":
        changed = a != b
        return [event("text rule changed", where, a.description, b.description)] if changed else []
    changes = []
    if (a.operator, a.threshold, a.unit) != (b.operator, b.threshold, b.unit):
        changes.append(threshold_change(f"{where}.threshold", a, b))
    changes += argument_changes(f"{where}.arguments", a.arguments, b.arguments)
    if a.query != b.query:
        changes.append(event("query changed", f"{where}.query", a.query, b.query))
    changes = soften(changes, b.severity)
    if a.severity != b.severity:
        changes.append(severity_change(f"{where}.severity", a.severity, b.severity))
    for attr, x, y in (("name", a.name, b.name), ("description", a.description, b.description)):
        if x != y:
            changes.append(
                Change("info", f"{where}.{attr}", f"{attr} {verb(x, y)}", x, y, "descriptive")
            )
    return changes


def threshold_of(rule: QualityRule) -> dict[str, Any]:
    return {str(rule.operator): rule.threshold, "unit": rule.unit}


def threshold_change(path: str, a: QualityRule, b: QualityRule) -> Change:
    old, new = threshold_of(a), threshold_of(b)
    if a.unit != b.unit:
        return event("unit changed", path, old, new)
    if not accepts_all(b, a):
        return event("tolerance tightened", path, old, new)
    if accepts_all(a, b):
        return event("threshold rewritten", path, old, new)
    return event("tolerance loosened", path, old, new)


def accepts_all(new: QualityRule, old: QualityRule) -> bool:
    """Whether every measurement ``old`` accepts, ``new`` accepts too."""
    wider = accepted(new)
    return all(any(_contains(n, o) for n in wider) for o in accepted(old))


_SETS: dict[str, Callable[[Any], list[Interval]]] = {
    "mustBe": lambda t: [(t, True, t, True)],
    "mustNotBe": lambda t: [(-math.inf, False, t, False), (t, False, math.inf, False)],
    "mustBeGreaterThan": lambda t: [(t, False, math.inf, False)],
    "mustBeGreaterOrEqualTo": lambda t: [(t, True, math.inf, False)],
    "mustBeLessThan": lambda t: [(-math.inf, False, t, False)],
    "mustBeLessOrEqualTo": lambda t: [(-math.inf, False, t, True)],
    "mustBeBetween": lambda t: [(t[0], True, t[1], True)],
    "mustNotBeBetween": lambda t: [(-math.inf, False, t[0], False), (t[1], False, math.inf, False)],
}


def accepted(rule: QualityRule) -> list[Interval]:
    """The measurements a rule accepts, within what its metric can measure: counts of rows
    are whole numbers >= 0, percentages 0..100, SQL results any number."""
    if rule.type == "sql":
        low, high, whole = -math.inf, math.inf, False
    elif rule.unit == "percent":
        low, high, whole = 0.0, 100.0, False
    else:
        low, high, whole = 0.0, math.inf, True
    intervals = _SETS[rule.operator or "mustBe"](rule.threshold)
    clipped = sorted(c for c in (_clip(i, low, high, whole) for i in intervals) if c is not None)
    return _merge(clipped, whole)


def _merge(intervals: list[Interval], whole: bool) -> list[Interval]:
    """Joins intervals that touch (``mustNotBe 1.5`` leaves no whole count out), so that an
    interval lies within the union only if it lies within one of them."""
    merged: list[Interval] = []
    for a, a_closed, b, b_closed in intervals:
        if merged:
            low, low_closed, high, high_closed = merged[-1]
            touch = (
                a <= high + 1 if whole else a < high or (a == high and (a_closed or high_closed))
            )
            if touch:
                closed = b_closed if b > high else high_closed or (b == high and b_closed)
                merged[-1] = (low, low_closed, max(high, b), closed)
                continue
        merged.append((a, a_closed, b, b_closed))
    return merged


def _clip(interval: Interval, low: float, high: float, whole: bool) -> Interval | None:
    a, a_closed, b, b_closed = interval
    if a < low:
        a, a_closed = low, math.isfinite(low)
    if b > high:
        b, b_closed = high, math.isfinite(high)
    if whole:  # counts: the whole numbers inside, as a closed interval
        a, a_closed = (math.ceil(a) if a_closed else math.floor(a) + 1), True
        if math.isfinite(b):
            b, b_closed = (math.floor(b) if b_closed else math.ceil(b) - 1), True
    empty = a > b or (a == b and not (a_closed and b_closed))
    return None if empty else (a, a_closed, b, b_closed)


def _contains(outer: Interval, inner: Interval) -> bool:
    low = outer[0] < inner[0] or (outer[0] == inner[0] and (outer[1] or not inner[1]))
    high = inner[2] < outer[2] or (inner[2] == outer[2] and (outer[3] or not inner[3]))
    return low and high


def argument_changes(path: str, old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    changes = []
    for key in sorted(old.keys() | new.keys()):
        a, b = old.get(key), new.get(key)
        where = f"{path}.{key}"
        if a == b:
            continue
        if key in _VALUE_LISTS and isinstance(a, list) and isinstance(b, list):
            noun = _VALUE_LISTS[key]
            changes += [event(f"{noun} removed", where, v, None) for v in a if v not in b]
            changes += [event(f"{noun} added", where, None, v) for v in b if v not in a]
        elif b is None:
            changes.append(Change("compatible", where, f"{key} removed", a, b, "no longer checked"))
        else:
            reason = f"values that passed the old {key} may not pass the new one"
            changes.append(Change("breaking", where, f"{key} {verb(a, b)}", a, b, reason))
    return changes


# Lists of values compared one by one (see EVENTS for what adding or removing one means).
_VALUE_LISTS = {"validValues": "allowed value", "missingValues": "missing value"}
