"""Service-level objectives of a served model, checked from its metrics and prediction log.

The objectives come from ``[monitoring.slo]`` in ``shipyard.toml``::

    [monitoring.slo]
    latency_ms_p99 = 50             # p99 of the logged latency_ms, in milliseconds
    error_rate = 0.001              # share of prediction requests answered 5xx
    availability = 0.999            # share of prediction requests not answered 5xx
    feature_freshness = "2h"        # age of the newest value of every online view (s, m, h, d, w)
    metrics_url = "http://127.0.0.1:8000/metrics"

Where each number comes from:

- ``latency_ms_p99``: the 99th percentile (linear interpolation) of ``latency_ms`` in the
  window of the prediction log; without a window, estimated from the service's
  ``shipyard_request_duration_seconds`` histogram as Prometheus' ``histogram_quantile`` does.
- ``error_rate`` and ``availability``: from the ``shipyard_requests_total{endpoint,status}``
  counters of the service's ``/metrics`` (cumulative since the service started). Prediction
  requests are those to ``/predict``, ``/invocations`` and the v2 ``.../infer`` endpoints;
  4xx answers (the client's fault) are reported in the detail, not counted as errors.
- ``feature_freshness``: the largest age over the online views (in seconds).

An objective without data is *unknown* (``met is None``) and its detail says why. Signals for
alert rules (:func:`signals`): ``slo.<name>`` (the measured value: milliseconds, shares or
seconds) and ``slo.<name>.breached`` (a boolean, or ``None`` when unknown).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from shipyard.errors import MonitoringConfigError
from shipyard.monitoring._prometheus import (
    _REQUESTS,
    RequestCounts,
    _histogram_p99,
    request_counts,
    scrape,
)

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "RequestCounts",
    "SLOResult",
    "SLOSettings",
    "check_slos",
    "parse_slo",
    "request_counts",
    "scrape",
    "signals",
]

_KEYS = ("latency_ms_p99", "error_rate", "availability", "feature_freshness", "metrics_url")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


@dataclass(frozen=True)
class SLOSettings:
    """The objectives to check; ``None`` leaves one out.

    Args:
        latency_ms_p99: Highest acceptable p99 latency, in milliseconds.
        error_rate: Highest acceptable share of prediction requests answered 5xx.
        availability: Lowest acceptable share of prediction requests not answered 5xx.
        feature_freshness: Oldest acceptable newest value of an online feature view.
        metrics_url: The service's ``/metrics`` URL, scraped by ``shipyard monitor``.
    """

    latency_ms_p99: float | None = None
    error_rate: float | None = None
    availability: float | None = None
    feature_freshness: timedelta | None = None
    metrics_url: str | None = None


@dataclass(frozen=True)
class SLOResult:
    """One objective against what was measured.

    Attributes:
        name: The setting's name (``latency_ms_p99``, ``error_rate``...).
        objective: The objective, in ``unit``.
        actual: The measured value in ``unit``, or ``None`` when unknown.
        met: Whether the objective is met; ``None`` when unknown.
        detail: Where the number comes from, or why it is unknown.
        unit: ``"ms"``, ``"share"`` or ``"s"``.
    """

    name: str
    objective: float
    actual: float | None
    met: bool | None
    detail: str
    unit: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON values."""
        return {
            "name": self.name,
            "objective": self.objective,
            "actual": self.actual,
            "met": self.met,
            "detail": self.detail,
            "unit": self.unit,
        }


# --------------------------------------------------------------------------- settings


def parse_slo(raw: Mapping[str, Any], source: str) -> SLOSettings:
    """Read the ``[monitoring.slo]`` table of ``source`` (a file name, for messages).

    Raises:
        MonitoringConfigError: an unknown key, or a value of the wrong type or range; the
            message says what was expected and what arrived.
    """
    where = f"{source}: [monitoring.slo]"
    if not isinstance(raw, Mapping):
        raise MonitoringConfigError(f"{where} must be a table (got {raw!r})")
    unknown = sorted(set(raw) - set(_KEYS))
    if unknown:
        raise MonitoringConfigError(
            f"{where} has unknown key(s) {', '.join(map(repr, unknown))}; the keys are "
            f"{', '.join(_KEYS)}: fix the spelling or remove them"
        )
    latency = _number(raw, "latency_ms_p99", where, share=False)
    freshness = raw.get("feature_freshness")
    url = raw.get("metrics_url")
    if url is not None and (
        not isinstance(url, str) or not url.startswith(("http://", "https://"))
    ):
        raise MonitoringConfigError(
            f"{where}: metrics_url must be an http:// or https:// URL (got {url!r}); "
            'write e.g. metrics_url = "http://127.0.0.1:8000/metrics"'
        )
    return SLOSettings(
        latency_ms_p99=latency,
        error_rate=_number(raw, "error_rate", where, share=True),
        availability=_number(raw, "availability", where, share=True),
        feature_freshness=None if freshness is None else _duration(freshness, where),
        metrics_url=url,
    )


def _number(raw: Mapping[str, Any], key: str, where: str, *, share: bool) -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        expected = "a share between 0 and 1" if share else "a positive number of milliseconds"
        raise MonitoringConfigError(
            f"{where}: {key} must be {expected} (got {value!r}); write e.g. "
            f"{key} = {0.999 if key == 'availability' else 0.001 if share else 50}"
        )
    if share and not 0 <= value <= 1:
        hint = f"; for {value}% write {value / 100:g}" if 1 < value <= 100 else ""
        raise MonitoringConfigError(
            f"{where}: {key} must be a share between 0 and 1 (got {value!r}){hint}"
        )
    if not share and value <= 0:
        raise MonitoringConfigError(
            f"{where}: {key} must be a positive number of milliseconds (got {value!r})"
        )
    return float(value)


def _parse_duration(text: str) -> timedelta:
    """``"30s"``, ``"30m"``, ``"2h"``, ``"1d"``, ``"1w"`` (a number and one unit) as a timedelta.

    Raises:
        ValueError: ``text`` is not of that form.
    """
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            f"expected a duration such as '30m', '2h' or '1d' (a number and one of the units "
            f"s, m, h, d, w), got {text!r}"
        )
    return timedelta(seconds=float(match[1]) * _UNITS[match[2]])


def _duration(value: Any, where: str) -> timedelta:
    try:
        duration = _parse_duration(value)
    except ValueError as exc:
        raise MonitoringConfigError(f"{where}: feature_freshness: {exc}") from None
    if duration <= timedelta(0):
        raise MonitoringConfigError(f"{where}: feature_freshness must be positive (got {value!r})")
    return duration


# --------------------------------------------------------------------------- checks


def check_slos(
    settings: SLOSettings,
    *,
    window: pl.DataFrame | None = None,
    metrics: str | None = None,
    freshness: Mapping[str, timedelta | None] | None = None,
) -> list[SLOResult]:
    """Check every objective set in ``settings``, in the order of its fields.

    Args:
        settings: The objectives.
        window: Rows of the prediction log, with a ``latency_ms`` column.
        metrics: The Prometheus text exposition scraped from the service's ``/metrics``.
        freshness: Age of the newest value of each online feature view (``None``: no value).

    Raises:
        MonitoringError: ``metrics`` is not Prometheus text exposition.
    """
    results: list[SLOResult] = []
    if settings.latency_ms_p99 is not None:
        results.append(_latency(settings.latency_ms_p99, window, metrics, settings))
    if settings.error_rate is not None or settings.availability is not None:
        counts, why = _counts(metrics, settings)
        if settings.error_rate is not None:
            results.append(_errors("error_rate", settings.error_rate, counts, why))
        if settings.availability is not None:
            results.append(_errors("availability", settings.availability, counts, why))
    if settings.feature_freshness is not None:
        results.append(_freshness(settings.feature_freshness, freshness))
    return results


def signals(results: Sequence[SLOResult]) -> dict[str, float | bool | None]:
    """Alert signals: ``slo.<name>`` (the measured value) and ``slo.<name>.breached``."""
    flat: dict[str, float | bool | None] = {}
    for result in results:
        flat[f"slo.{result.name}"] = result.actual
        flat[f"slo.{result.name}.breached"] = None if result.met is None else not result.met
    return flat


def _latency(
    objective: float, window: pl.DataFrame | None, metrics: str | None, settings: SLOSettings
) -> SLOResult:
    def result(actual: float | None, detail: str) -> SLOResult:
        met = None if actual is None else actual <= objective
        return SLOResult("latency_ms_p99", objective, actual, met, detail, "ms")

    if window is None:
        if metrics is None:
            return result(None, "no prediction log window and " + _no_metrics(settings))
        p99 = _histogram_p99(metrics)
        if p99 is None:
            return result(None, "no window, and no prediction in the latency histogram")
        return result(p99, "estimated from the service's latency histogram (since it started)")
    if "latency_ms" not in window.columns:
        return result(None, "the prediction log window has no latency_ms column")
    latency = window.get_column("latency_ms").drop_nulls().drop_nans()
    if latency.is_empty():
        return result(None, "no predictions with a latency in the window")
    p99 = latency.quantile(0.99, interpolation="linear")
    assert p99 is not None  # a non-empty float column has a quantile
    return result(float(p99), f"p99 of {len(latency):,} logged predictions")


def _errors(name: str, objective: float, counts: RequestCounts | None, why: str) -> SLOResult:
    unit = "share"
    if counts is None:
        return SLOResult(name, objective, None, None, why, unit)
    share = counts.server_errors / counts.total
    client = counts.client_errors / counts.total
    detail = (
        f"{counts.server_errors:,.0f} of {counts.total:,.0f} prediction requests answered 5xx "
        f"since the service started; 4xx (not counted): {counts.client_errors:,.0f} "
        f"({client:.2%})"
    )
    if name == "error_rate":
        return SLOResult(name, objective, share, share <= objective, detail, unit)
    return SLOResult(name, objective, 1 - share, 1 - share >= objective, detail, unit)


def _counts(metrics: str | None, settings: SLOSettings) -> tuple[RequestCounts | None, str]:
    if metrics is None:
        return None, _no_metrics(settings)
    counts = request_counts(metrics)
    if counts is None:
        return None, f"no {_REQUESTS} in the metrics: is this a shipyard service?"
    if counts.total == 0:
        return None, "the service has answered no prediction requests yet"
    return counts, ""


def _freshness(objective: timedelta, ages: Mapping[str, timedelta | None] | None) -> SLOResult:
    limit = objective.total_seconds()
    name = "feature_freshness"
    if not ages:
        why = "no online feature views" if ages is not None else "online freshness not measured"
        return SLOResult(name, limit, None, None, why, "s")
    never = sorted(view for view, age in ages.items() if age is None)
    if never:
        detail = f"no values online for the view(s) {', '.join(never)}: materialize them"
        return SLOResult(name, limit, None, False, detail, "s")
    stalest = max(ages, key=lambda view: ages[view] or timedelta(0))
    actual = (ages[stalest] or timedelta(0)).total_seconds()
    detail = f"stalest view {stalest!r}: newest value {actual:,.0f} s old"
    return SLOResult(name, limit, actual, actual <= limit, detail, "s")


def _no_metrics(settings: SLOSettings) -> str:
    if settings.metrics_url is None:
        return "no metrics_url configured in [monitoring.slo]"
    return "the service's metrics were not scraped"
