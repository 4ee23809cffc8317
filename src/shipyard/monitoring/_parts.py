"""What one window of the prediction log says: each part of a monitor result, and its signals.

Signal names (what ``[[monitoring.alerts]] when`` rules read):

- ``rows``: predictions in the window;
- ``drift.share``, ``drift.weighted_share``, ``dataset_drift`` (true/false),
  ``drift.<column>`` (the test's statistic or p-value) and ``drift.<column>.drifted``;
  the score is the column ``score``;
- ``score.mean``, ``score.flag_rate``;
- ``contract.violation_share``, ``contract.new_categories`` (how many values never seen);
- ``performance.<metric>`` once ``min_label_coverage`` of the window is labelled, and
  ``performance.<metric>.change`` against the evaluation at promotion (relative for
  value_per_1000, absolute otherwise);
- ``estimated.<metric>``: the same estimated from the scores (CBPE), for every window;
- ``slo.<name>`` (the measured value) and ``slo.<name>.breached``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

SCORE = "score"
_METRICS = ("precision", "recall", "fpr", "f1", "accuracy", "roc_auc", "value_per_1000")


def window_parts(watch: Any, part: Any) -> dict[str, Any]:
    """Every part of one window of the log (see ``MonitorResult`` for the shape)."""
    frame: pl.DataFrame = part.frame
    drift = _drift(watch, frame)
    window: dict[str, Any] = {
        "start": part.start.isoformat(),
        "end": part.end.isoformat(),
        "rows": frame.height,
        "versions": _versions(frame),
        "drift": None if drift is None else drift.to_dict(),
        "score": _score(frame, watch.threshold),
        "contract": _contract(watch, frame, drift),
        "performance": _performance(watch, frame),
        "estimated": _estimated(watch, frame),
        "slo": _slos(watch, frame, metrics=None, freshness=None),
    }
    window["signals"] = signals_of(window, watch.settings.min_label_coverage)
    return window


def service_slos(watch: Any, windows: list[dict[str, Any]], metrics_text: str | None) -> None:
    """Error rate and availability (from ``/metrics``) and feature freshness are measured
    now: they join the newest window's SLOs."""
    if not windows:
        return
    settings = watch.settings.slo
    if metrics_text is None and getattr(settings, "metrics_url", None):
        from shipyard.errors import MonitoringError
        from shipyard.monitoring.slo import scrape

        try:
            metrics_text = scrape(settings.metrics_url)
        except MonitoringError as exc:  # an unreachable service is reported, not fatal
            watch.service["scrape_error"] = str(exc)
    newest = windows[-1]
    results = _slos(watch, None, metrics=metrics_text, freshness=_freshness(watch))
    known = {r["name"]: r for r in results if r["met"] is not None}
    newest["slo"] = [known.pop(r["name"], r) for r in newest["slo"]] + list(known.values())
    newest["signals"] = signals_of(newest, watch.settings.min_label_coverage)


def signals_of(window: Mapping[str, Any], min_coverage: float) -> dict[str, Any]:
    """The flat signals of one window (names in the module docstring)."""
    signals: dict[str, Any] = {"rows": window["rows"]}
    signals.update(_drift_signals(window.get("drift")))
    if score := window.get("score"):
        signals["score.mean"], signals["score.flag_rate"] = score["mean"], score["flag_rate"]
    if contract := window.get("contract"):
        signals["contract.violation_share"] = contract["violation_share"]
        signals["contract.new_categories"] = sum(
            len(v) for v in contract["new_categories"].values()
        )
    performance = window.get("performance")
    if performance and (performance.get("label_coverage") or 0) >= min_coverage:
        signals.update(_metric_signals("performance", performance.get("metrics") or {}))
        for metric, change in (performance.get("against_promotion") or {}).items():
            signals[f"performance.{metric}.change"] = change.get(
                "relative_change" if metric == "value_per_1000" else "change"
            )
    if estimated := window.get("estimated"):
        signals.update(_metric_signals("estimated", estimated.get("metrics") or {}))
    for slo in window.get("slo") or []:
        signals[f"slo.{slo['name']}"] = slo["actual"]
        signals[f"slo.{slo['name']}.breached"] = None if slo["met"] is None else not slo["met"]
    return signals


def _drift_signals(drift: Mapping[str, Any] | None) -> dict[str, Any]:
    if not drift:
        return {}
    found: dict[str, Any] = {
        "drift.share": drift["share"],
        "dataset_drift": drift["drifted"],
        "drift.weighted_share": drift.get("weighted_share"),
    }
    for name, column in drift["columns"].items():
        if column.get("statistic") is None:
            continue
        found[f"drift.{name}"] = column["statistic"]
        found[f"drift.{name}.drifted"] = column["drifted"]
    return found


def _metric_signals(prefix: str, values: Mapping[str, Any]) -> dict[str, Any]:
    found = {}
    for metric in _METRICS:
        value = values.get(metric)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            found[f"{prefix}.{metric}"] = float(value)
    return found


def _versions(frame: pl.DataFrame) -> dict[str, int]:
    if frame.height == 0:
        return {}
    counts = frame.group_by("model_version").len().sort("model_version")
    return {str(v): int(n) for v, n in counts.iter_rows()}


def _drift(watch: Any, frame: pl.DataFrame) -> Any:
    from shipyard.monitoring.drift import detect_drift

    if frame.height == 0:
        return None
    # The inputs are compared whichever version answered; the score only where the version
    # watched answered (another version's scores come from another model).
    mine = pl.col("model_version") == str(watch.version.version)
    frame = frame.with_columns(pl.when(mine).then(pl.col(SCORE)).alias(SCORE))
    return detect_drift(watch.profile, frame, watch.settings.drift)


def _score(frame: pl.DataFrame, threshold: float) -> dict[str, Any] | None:
    if frame.height == 0:
        return None
    scores = frame[SCORE].drop_nulls().to_numpy()
    if scores.size == 0:
        return None
    levels = {"p10": 0.1, "p50": 0.5, "p90": 0.9, "p99": 0.99}
    return {
        "mean": float(scores.mean()),
        "quantiles": {k: float(np.quantile(scores, q)) for k, q in levels.items()},
        "flag_rate": float((scores >= threshold).mean()),
    }


def _contract(watch: Any, frame: pl.DataFrame, drift: Any) -> dict[str, Any] | None:
    if watch.health is None or frame.height == 0:
        return None
    new = {} if drift is None else {c: d.new_categories for c, d in drift.columns.items()}
    result: dict[str, Any] = watch.health.check(frame, new)
    return result


def _performance(watch: Any, frame: pl.DataFrame) -> dict[str, Any] | None:
    from shipyard.monitoring.performance import against_promotion, realised

    if (
        frame.height == 0
        or "label" not in frame.columns
        or frame["label"].null_count() == frame.height
    ):
        return None
    found: dict[str, Any] = realised(
        frame, threshold=watch.threshold, objectives=watch.objectives, decision="decision"
    )
    if watch.evaluation:
        found["against_promotion"] = against_promotion(found["metrics"], watch.evaluation)
    return found


def _estimated(watch: Any, frame: pl.DataFrame) -> dict[str, Any] | None:
    from shipyard.monitoring.performance import estimated

    if frame.height == 0:
        return None
    found: dict[str, Any] = estimated(
        frame, threshold=watch.threshold, objectives=watch.objectives, decision="decision"
    )
    return found


def _slos(
    watch: Any,
    frame: pl.DataFrame | None,
    *,
    metrics: str | None,
    freshness: Mapping[str, Any] | None,
) -> list[dict[str, Any]]:
    from shipyard.monitoring.slo import check_slos

    window = None if frame is None or frame.height == 0 else frame
    results = check_slos(watch.settings.slo, window=window, metrics=metrics, freshness=freshness)
    return [r.to_dict() if hasattr(r, "to_dict") else dict(vars(r)) for r in results]


def _freshness(watch: Any) -> dict[str, Any] | None:
    """The age of each online view's newest value, when the model reads online features."""
    if getattr(watch.settings.slo, "feature_freshness", None) is None:
        return None
    from shipyard.monitoring._freshness import online_freshness

    return online_freshness(watch.project, watch.until)
