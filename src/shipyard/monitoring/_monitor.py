"""``monitor``: one pass over a model's recent traffic, from the log to alerts and retraining.

For each window (a day, an hour, or N predictions) of the prediction log it measures:

- drift of every model input and of the score against the version's reference profile;
- the score distribution and the share of predictions flagged;
- contract health: the share of requests breaking each rule of the data contract;
- performance and business value on the rows whose labels arrived, and the same estimated
  from the scores (CBPE) for every row, marked as estimated;
- latency from the log; error rate and availability from the service's ``/metrics``, and the
  freshness of the online features, for the newest window.

The newest known value of every signal feeds the alert rules: an alert fires once per
episode and resolves once. With ``retrain=True`` a firing rule marked ``retrain`` starts the
training pipeline; the candidate then goes through the gate.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from shipyard.errors import MonitoringError
from shipyard.monitoring.settings import MonitorSettings, window_size

SCHEMA_VERSION = "shipyard.monitor/v1"
SCORE = "score"


@dataclass(frozen=True)
class MonitorResult:
    """What one monitoring pass found; :meth:`to_dict` is the ``--json`` output."""

    data: dict[str, Any]

    @property
    def exit_code(self) -> int:
        """1 when an alert of severity error is firing, else 0 (for cron and CI)."""
        return int(any(a["severity"] == "error" for a in self.data["firing"]))

    @property
    def windows(self) -> list[dict[str, Any]]:
        """The windows, oldest first."""
        return list(self.data["windows"])

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (docs/monitoring.md describes the shape)."""
        return {**self.data, "exit_code": self.exit_code}


def monitor(
    project: Any,
    ref: str | None = None,
    *,
    every: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    retrain: bool = False,
    notifiers: list[Any] | None = None,
    log_dir: Path | None = None,
    metrics_text: str | None = None,
    settings: MonitorSettings | None = None,
    progress: Callable[[str], None] | None = None,
) -> MonitorResult:
    """Watch ``ref`` (``name@alias`` or ``name:version``) over ``[since, until)``.

    Args:
        project: the project.
        ref: the model; default ``[monitoring] model``.
        every: the window (``"1d"``, ``"1h"``, ``"10000"``); default ``[monitoring] every``.
        since: first prediction time; default ``until - [monitoring] lookback``.
        until: end of the range (excluded); default now.
        retrain: start the training pipeline when a rule marked ``retrain`` fires.
        notifiers: where alert events go (terminal, log, webhook); the webhook of the
            settings and the project's alert log are added by the CLI.
        log_dir: the prediction log (default ``.shipyard/predictions/<model>``).
        metrics_text: the service's ``/metrics`` text; scraped from ``[monitoring.slo]
            metrics_url`` when not given and configured.
        settings: default ``MonitorSettings.from_project(project)``.
        progress: called with a short message as each stage starts.
    """
    from shipyard.monitoring.reference import profile_version
    from shipyard.registry.registry import Registry

    settings = settings or MonitorSettings.from_project(project)
    say = progress or (lambda _message: None)
    ref = _model_ref(ref, settings)
    registry = Registry(project)
    version = registry.get(ref)
    say(f"profile of {version.ref}")
    profile = profile_version(project, version.ref)
    until = _utc(until) if until is not None else dt.datetime.now(dt.UTC)
    since = _utc(since) if since is not None else until - settings.lookback
    if since >= until:
        raise MonitoringError(
            f"--since ({since:%Y-%m-%d %H:%M}) must be before --until ({until:%Y-%m-%d %H:%M})."
        )
    every = every or settings.every
    window_size(every, "--window")
    evaluation = registry.evaluation(version) or {}
    watch = _Watch(project, settings, version, profile, evaluation, until)
    say("prediction log")
    log = watch.read(log_dir, since, until)
    say("windows")
    windows = [watch.window(part) for part in _split(log.frame, every, since, until)]
    watch.add_service_slos(windows, metrics_text)
    signals = latest_signals(windows)
    say("alerts")
    events, firing = _alerts(project, version.name, settings, signals, until, notifiers or [])
    data = {
        "schema": SCHEMA_VERSION,
        "project": project.settings.project.name,
        "model": version.name,
        "version": str(version.version),
        "ref": ref,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(),
        "every": every,
        "since": since.isoformat(),
        "until": until.isoformat(),
        "reference": {
            "rows": profile.rows,
            "columns": list(profile.columns),
            "created_at": profile.created_at,
        },
        "promotion": evaluation.get("metrics", {}).get("overall"),
        "threshold": watch.threshold,
        "drift_share": settings.drift.share,
        "service": watch.service,
        "log": watch.log_summary(log),
        "labels": watch.labels_summary,
        "windows": windows,
        "signals": signals,
        "alerts": [e.to_dict() for e in events],
        "firing": [e.to_dict() for e in firing],
        "retrain": None,
    }
    triggers = sorted({e.rule for e in firing if e.retrain})
    if retrain and triggers:
        if settings.retrain is None:
            raise MonitoringError(
                f"Alerts {triggers} ask for retraining, but shipyard.toml has no "
                "[monitoring.retrain] table. Add one naming the pipeline, step and test rows."
            )
        from shipyard.monitoring.retrain import retrain as run_retrain

        say("retraining")
        data["retrain"] = run_retrain(
            project,
            ref,
            settings.retrain,
            since=since,
            until=until,
            label=settings.label,
            triggered_by=triggers,
        )
    return MonitorResult(data)


def latest_signals(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """The newest known value of every signal: each window's signals, newer ones winning
    where they are known (a performance figure is known only once labels arrived)."""
    latest: dict[str, Any] = {}
    for window in windows:
        latest.update({k: v for k, v in window["signals"].items() if v is not None})
    return latest


def _model_ref(ref: str | None, settings: MonitorSettings) -> str:
    if ref:
        return ref
    if settings.model:
        return settings.model
    raise MonitoringError(
        "Which model? Name it (`shipyard monitor fraud@production`) or set "
        '[monitoring] model = "fraud@production" in shipyard.toml.'
    )


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _split(frame: pl.DataFrame, every: str, since: dt.datetime, until: dt.datetime) -> list[Any]:
    from shipyard.monitoring.window import split_windows

    return list(split_windows(frame, every, start=since, end=until))


def _alerts(
    project: Any,
    model: str,
    settings: MonitorSettings,
    signals: Mapping[str, Any],
    at: dt.datetime,
    notifiers: list[Any],
) -> tuple[list[Any], list[Any]]:
    from shipyard.monitoring.alerts import AlertBook

    book = AlertBook(project.settings.state_dir / "monitoring" / model / "alerts.json")
    events = book.evaluate(list(settings.alerts), signals, at)
    delivered = [e for e in events if e.status in ("fired", "resolved")]
    for notifier in notifiers:
        if delivered:
            notifier.send(delivered)
    return events, list(book.firing())


class _Watch:
    """What every window of one pass shares: the profile, threshold, labels, contract."""

    def __init__(
        self,
        project: Any,
        settings: MonitorSettings,
        version: Any,
        profile: Any,
        evaluation: Mapping[str, Any],
        until: dt.datetime,
    ) -> None:
        from shipyard.evaluation.objectives import Objectives
        from shipyard.monitoring._health import ContractHealth

        self.project, self.settings, self.version, self.profile = (
            project,
            settings,
            version,
            profile,
        )
        self.threshold = float(evaluation.get("threshold", 0.5))
        self.evaluation = dict(evaluation)
        self.objectives = Objectives.from_project(project)
        self.health = None if settings.contract is None else ContractHealth(settings.contract)
        self.labels_summary: dict[str, Any] | None = None
        self.until = until
        self.service: dict[str, Any] = {}

    def read(self, log_dir: Path | None, since: dt.datetime, until: dt.datetime) -> Any:
        from shipyard.monitoring.window import read_window
        from shipyard.serving.model import dtype_of

        name = self.version.name
        folder = log_dir or self.project.settings.state_dir / "predictions" / name
        self.log_dir = Path(folder)
        schema = {c: dtype_of(p.dtype) for c, p in self.profile.columns.items() if c != SCORE}
        for column, text in (self.version.lineage.get("input_schema") or {}).items():
            schema.setdefault(column, dtype_of(text))
        log = read_window(self.log_dir, since=since, until=until, model=name, schema=schema)
        log = _with_labels(self, log)
        return log

    def log_summary(self, log: Any) -> dict[str, Any]:
        summary = {
            "directory": str(self.log_dir),
            "rows": log.frame.height,
            "segments": log.segments,
            "skipped": list(log.skipped),
            "missing": list(getattr(log, "missing", [])),
        }
        if log.frame.height == 0:
            summary["newest"] = _newest(self.log_dir, self.version.name)
        return summary

    def window(self, part: Any) -> dict[str, Any]:
        from shipyard.monitoring._parts import window_parts

        return window_parts(self, part)

    def add_service_slos(self, windows: list[dict[str, Any]], metrics_text: str | None) -> None:
        from shipyard.monitoring._parts import service_slos

        service_slos(self, windows, metrics_text)


def _newest(directory: Path, model: str) -> str | None:
    """When the newest prediction of ``model`` anywhere in the log was made (for the hint
    that the range watched holds none), or None for an empty log."""
    from shipyard.serving.log import read_log

    try:
        newest = read_log(directory, model=model).select(pl.col("ts").max()).collect().item()
    except pl.exceptions.PolarsError:  # a corrupted segment: read_window already said so
        return None
    return None if newest is None else newest.isoformat()


def _with_labels(watch: _Watch, log: Any) -> Any:
    from shipyard.monitoring.labels import LabelStore, attach

    store = LabelStore(watch.project.settings.state_dir / "labels" / watch.version.name)
    by_request = isinstance(watch.settings.label_key, str)
    key = "request_id" if by_request else ("entity_key", "ts")
    frame = attach(log.frame, store, key)
    stored = store.read("request_id" if by_request else "entity").select(pl.len()).collect()
    labelled = int(frame["label"].is_not_null().sum()) if "label" in frame.columns else 0
    watch.labels_summary = {"stored": int(stored.item()), "attached": labelled}
    return dataclasses.replace(log, frame=frame)
