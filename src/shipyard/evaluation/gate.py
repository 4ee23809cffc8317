"""The gate: does a candidate model meet the objectives, alone and against the baseline?

Pure logic over the metrics an evaluation produced (no models here). The metrics
of one model, :data:`EvaluationMetrics`, are a plain mapping::

    {
        "overall": {"recall": 0.71, "value_per_1000": -512.0, ...},
        "slices": {
            "large": {"count": 812, "recall": 0.64, ...},
            "by_country=FR": {...},                       # one per value of a `by` slice
            "night": {"count": 0, "note": "slice night has no rows"},
        },
        "groups": {                                       # per sensitive feature
            "country": {"difference": {"selection_rate": 0.04, ...},
                        "ratio": {"selection_rate": 0.91, ...}},
        },
        "latency_ms": {"p50": 1.2, "p99": 3.4},          # single-row predictions
    }

Every key may be missing: a check whose number is missing fails and says why.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from shipyard.evaluation.objectives import Fairness, Objectives, Threshold

EvaluationMetrics = Mapping[str, Any]
"""The metrics of one model on one dataset; the shape is in this module's docstring."""

_REL_TOL = 1e-9  # values this close count as equal: float rounding must not fail an edge
_ABS_TOL = 1e-12


@dataclass(frozen=True)
class Check:
    """One bound checked on one number.

    Attributes:
        kind: "value", "change", "fairness" or "latency".
        metric: the metric's name.
        slice: the slice it was checked on; None for the whole data.
        candidate: the candidate's number (for fairness: the gap between groups).
        baseline: the baseline's number, when there is a baseline and it has one.
        limit: the bound, readable: ">= 0.6", "change >= -0.02 (relative)".
        passed: whether the bound holds (True for a skipped check: it does not block).
        note: why a check failed without a number, or the change that was measured.
        group: the sensitive feature of a fairness check.
        skipped: a change check without a baseline to compare with; it counts as passed.
    """

    kind: str
    metric: str
    slice: str | None
    candidate: float | None
    baseline: float | None
    limit: str
    passed: bool
    note: str = ""
    group: str | None = None
    skipped: bool = False

    @property
    def failed(self) -> bool:
        """Whether this check fails the gate."""
        return not self.passed

    def describe(self) -> str:
        """One line: ``value recall on large: 0.55, needs >= 0.6``."""
        where = f" on {self.slice}" if self.slice else ""
        where += f" across {self.group}" if self.group else ""
        value = "n/a" if self.candidate is None else f"{self.candidate:.6g}"
        if self.baseline is not None:
            value += f" (baseline {self.baseline:.6g})"
        note = f" ({self.note})" if self.note else ""
        return f"{self.kind} {self.metric}{where}: {value}, needs {self.limit}{note}"


@dataclass(frozen=True)
class GateRecord:
    """The outcome of a gate: every check, and whether all that count passed."""

    passed: bool
    checks: tuple[Check, ...]
    baseline: str | None = None
    note: str = ""
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def failed_checks(self) -> tuple[Check, ...]:
        """The checks that fail the gate."""
        return tuple(check for check in self.checks if check.failed)

    def summary(self) -> str:
        """A verdict line, then one line per failed check."""
        against = f" against {self.baseline}" if self.baseline else ""
        noted = f" ({self.note})" if self.note else ""
        counted = sum(not check.skipped for check in self.checks)
        checks = f"{counted} check{'s' * (counted != 1)}"
        failed = self.failed_checks
        if not failed:
            skipped = len(self.checks) - counted
            extra = f", {skipped} skipped" if skipped else ""
            return f"gate passed{against}: {checks}{extra}{noted}"
        lines = [f"gate failed{against}: {len(failed)} of {checks} failed{noted}"]
        return "\n".join([*lines, *(f"  {check.describe()}" for check in failed)])

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values; :meth:`from_dict` reads them back."""
        return {
            "passed": self.passed,
            "baseline": self.baseline,
            "note": self.note,
            "created_at": self.created_at.isoformat(),
            "checks": [asdict(check) for check in self.checks],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateRecord:
        """The record :meth:`to_dict` wrote."""
        return cls(
            passed=bool(data["passed"]),
            checks=tuple(Check(**check) for check in data["checks"]),
            baseline=data.get("baseline"),
            note=data.get("note", ""),
            created_at=datetime.fromisoformat(data["created_at"]),
        )


def run_gate(
    objectives: Objectives,
    candidate: EvaluationMetrics,
    baseline: EvaluationMetrics | None,
    *,
    baseline_name: str | None = None,
) -> GateRecord:
    """Check the candidate's metrics against every bound in ``objectives``.

    Each threshold is checked on its slice (a ``by`` slice: on each of its groups).
    Value bounds are inclusive; change bounds follow
    :class:`~shipyard.evaluation.objectives.Threshold`; a fairness limit passes when
    the gap across a sensitive feature is ``<= max_difference`` and the ratio
    ``>= min_ratio``; the latency budget when p99 ``<= latency_ms_p99``. Numbers
    equal within float rounding (relative 1e-9) count as equal. A missing number
    fails its check with a note. Without a baseline, change checks are skipped.
    The gate passes when no check fails.

    Args:
        objectives: the bounds.
        candidate: the candidate model's metrics.
        baseline: the baseline (production) model's metrics on the same data, or None.
        baseline_name: how to name the baseline in the record, e.g. "fraud@production v3".
    """
    by_slices = {part.name for part in objectives.slices if part.by is not None}
    checks: list[Check] = []
    for threshold in objectives.thresholds:
        for name in _slice_names(threshold.slice, by_slices, candidate):
            checks.append(_threshold_check(threshold, name, candidate, baseline))
    if objectives.fairness is not None:
        checks.extend(_fairness_checks(objectives.fairness, candidate, baseline))
    if objectives.latency_ms_p99 is not None:
        checks.append(_latency_check(objectives.latency_ms_p99, candidate, baseline))
    return GateRecord(
        passed=all(check.passed for check in checks),
        checks=tuple(checks),
        baseline=baseline_name if baseline is not None else None,
        note=_record_note(checks),
    )


def _record_note(checks: list[Check]) -> str:
    if not checks:
        return "the objectives declare no thresholds, fairness limits or latency budget"
    if skipped := sum(check.skipped for check in checks):
        return (
            f"no baseline model: {skipped} change check(s) skipped; "
            "only value, fairness and latency checks apply"
        )
    return ""


def _slice_names(
    name: str | None, by_slices: set[str], metrics: EvaluationMetrics
) -> list[str | None]:
    if name not in by_slices:
        return [name]
    groups = sorted(key for key in metrics.get("slices") or {} if key.startswith(f"{name}="))
    return [*groups] or [name]


def _threshold_check(
    threshold: Threshold,
    name: str | None,
    candidate: EvaluationMetrics,
    baseline: EvaluationMetrics | None,
) -> Check:
    value, problem = _lookup(candidate, threshold.metric, name, "candidate")
    base, base_problem = _lookup(baseline, threshold.metric, name, "baseline")
    if threshold.change is None:
        bounds = ((">=", threshold.lower), ("<=", threshold.upper))
        limit = " and ".join(f"{sign} {bound:g}" for sign, bound in bounds if bound is not None)
        low, high = threshold.lower, threshold.upper
        passed = (low is None or _at_least(value, low)) and (high is None or _at_least(high, value))
        return Check("value", threshold.metric, name, value, base, limit, passed, problem)
    sign = ">=" if threshold.higher_is_better else "<="
    limit = f"change {sign} {threshold.tolerance:g} ({threshold.change})"
    check = Check("change", threshold.metric, name, value, base, limit, False, problem)
    if baseline is None:
        note = "skipped: no baseline to compare with"
        return replace(check, passed=True, note=note, skipped=True)
    if value is None or base is None:
        return replace(check, note=problem or base_problem)
    if threshold.change == "relative" and base == 0:
        note = 'the baseline is 0, so a relative change is undefined; use change = "absolute"'
        return replace(check, note=note)
    delta = value - base if threshold.change == "absolute" else (value - base) / abs(base)
    if threshold.higher_is_better:
        passed = _at_least(delta, threshold.tolerance)
    else:
        passed = _at_least(threshold.tolerance, delta)
    return replace(check, passed=passed, note=f"change {delta:+.6g}")


def _fairness_checks(
    fairness: Fairness, candidate: EvaluationMetrics, baseline: EvaluationMetrics | None
) -> list[Check]:
    return [
        _fairness_check(feature, limit.metric, measure, bound, candidate, baseline)
        for feature in fairness.sensitive
        for limit in fairness.limits
        for measure, bound in (("difference", limit.max_difference), ("ratio", limit.min_ratio))
        if bound is not None
    ]


def _fairness_check(
    feature: str,
    metric: str,
    measure: str,
    bound: float,
    candidate: EvaluationMetrics,
    baseline: EvaluationMetrics | None,
) -> Check:
    value, problem = _group_value(candidate, feature, measure, metric)
    base, _ = _group_value(baseline, feature, measure, metric)
    if measure == "difference":
        limit, passed = f"difference <= {bound:g}", _at_least(bound, value)
    else:
        limit, passed = f"ratio >= {bound:g}", _at_least(value, bound)
    return Check("fairness", metric, None, value, base, limit, passed, problem, group=feature)


def _group_value(
    metrics: EvaluationMetrics | None, feature: str, measure: str, metric: str
) -> tuple[float | None, str]:
    groups = (metrics or {}).get("groups") or {}
    if feature not in groups:
        known = ", ".join(map(repr, groups)) or "none"
        return None, f"no groups for {feature!r} in the metrics (groups: {known})"
    value = (groups[feature].get(measure) or {}).get(metric)
    return _number(value, f"{metric} {measure} across {feature!r}")


def _latency_check(
    budget: float, candidate: EvaluationMetrics, baseline: EvaluationMetrics | None
) -> Check:
    value, problem = _lookup(candidate, "latency_ms_p99", None, "candidate")
    base, _ = _lookup(baseline, "latency_ms_p99", None, "baseline")
    limit = f"p99 <= {budget:g} ms"
    passed = _at_least(budget, value)
    return Check("latency", "latency_ms_p99", None, value, base, limit, passed, problem)


def _lookup(
    metrics: EvaluationMetrics | None, metric: str, name: str | None, whose: str
) -> tuple[float | None, str]:
    if metrics is None:
        return None, f"there is no {whose}"
    if name is None:
        table = dict(metrics.get("overall") or {})
        latency = metrics.get("latency_ms") or {}
        if metric.startswith("latency_ms_") and metric not in table:
            table[metric] = latency.get(metric.removeprefix("latency_ms_"))
        return _number(table.get(metric), f"the {whose}'s {metric}")
    slices = metrics.get("slices") or {}
    if name not in slices:
        known = ", ".join(map(repr, slices)) or "none"
        return None, f"the {whose}'s metrics have no slice {name!r} (slices: {known})"
    table = slices[name] or {}
    if table.get("count") == 0 or not table:
        return None, f"slice {name} has no rows"
    value, problem = _number(table.get(metric), f"the {whose}'s {metric} on slice {name}")
    if value is None and table.get("note"):
        problem += f": {table['note']}"
    return value, problem


def _number(value: object, what: str) -> tuple[float | None, str]:
    if value is None:
        return None, f"{what} was not computed"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None, f"{what} is {value!r}, not a number"
    if math.isnan(value):
        return None, f"{what} is NaN (undefined on these rows)"
    return float(value), ""


def _at_least(value: float | None, bound: float | None) -> bool:
    """``value >= bound``, equality within float rounding included; False if either is None."""
    if value is None or bound is None:
        return False
    return value >= bound or math.isclose(value, bound, rel_tol=_REL_TOL, abs_tol=_ABS_TOL)
