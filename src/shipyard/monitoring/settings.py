"""The ``[monitoring]`` table of ``shipyard.toml``: what production monitoring watches.

Every key is optional; an empty table watches drift with Evidently's default tests,
daily windows over the last 28 days. A full table, with what each key means::

    [monitoring]
    model = "fraud@production"     # what `shipyard monitor` watches when not told
    every = "1d"                    # window: 1h, 6h, 1d, 7d ... or a row count ("10000")
    lookback = "28d"                # --since defaults to this long before --until
    label = "is_chargeback"         # the label column of the files `labels ingest` reads
    label_key = "transaction_id"    # the column holding the request id, or
                                    # ["customer_id", "event_timestamp"]: entity and time
    min_label_coverage = 0.9        # realised performance counts once 90% of a window
                                    # is labelled; before that it is estimated (CBPE)
    contract = "contracts/transactions.yaml"  # checked on the logged requests
    drift_share = 0.5               # dataset drift: this share of the columns drifted

    [monitoring.drift.amount]       # any column: another test or threshold
    method = "psi"                  # ks, chisquare, z, wasserstein, jensenshannon, psi
    threshold = 0.2

    [monitoring.weights]            # important features: dataset drift is then the
    amount = 3.0                    # weighted share of drifted columns
    merchant_category = 2.0

    [monitoring.slo]                # see shipyard.monitoring.slo
    latency_ms_p99 = 50
    metrics_url = "http://127.0.0.1:8000/metrics"

    [monitoring.webhook]            # alerts are POSTed here (see shipyard.monitoring.alerts)
    url_env = "FRAUD_ALERT_WEBHOOK" # the URL is read from this variable: it holds secrets

    [[monitoring.alerts]]           # see shipyard.monitoring.alerts
    name = "value-drop"
    when = "performance.value_per_1000 < -250"
    severity = "error"
    retrain = true

    [monitoring.retrain]            # what `shipyard monitor --retrain` runs
    pipeline = "training"
    step = "train_model"            # the step whose output is the model
    test = "split_by_time.test"     # the rows the gate scores the candidate on
    params = { end = "{until-7d}", labels_as_of = "{until}" }
    promote = true                  # promote a candidate that passes the gate
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.errors import MonitoringConfigError
from shipyard.monitoring.alerts import AlertRule, parse_rules
from shipyard.monitoring.drift import DriftRule, DriftSettings
from shipyard.monitoring.slo import SLOSettings, parse_slo

_KEYS = {
    "model",
    "every",
    "lookback",
    "label",
    "label_key",
    "min_label_coverage",
    "contract",
    "drift_share",
    "drift",
    "weights",
    "slo",
    "webhook",
    "alerts",
    "retrain",
}
_DURATION = re.compile(r"^(\d+)\s*([mhdw])$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_TEMPLATE = re.compile(r"\{(since|until)(?:\s*([+-])\s*(\d+)d)?\}")


@dataclass(frozen=True)
class Webhook:
    """Where alerts are POSTed: ``url`` (or the variable ``url_env`` holding it)."""

    url: str
    timeout: float = 2.0
    retries: int = 3


@dataclass(frozen=True)
class Retrain:
    """What ``shipyard monitor --retrain`` runs, and how its candidate is gated."""

    pipeline: str = "training"
    step: str = "train_model"
    output: str = "output"
    test: str = ""
    label: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    promote: bool = True

    def params_for(self, since: dt.datetime, until: dt.datetime) -> dict[str, Any]:
        """The pipeline params, with ``{until}``, ``{until-7d}``, ``{since}`` filled in as
        ISO dates of the monitored range."""
        moments = {"since": since, "until": until}

        def fill(match: re.Match[str]) -> str:
            moment = moments[match.group(1)]
            if match.group(2):
                days = int(match.group(3)) * (1 if match.group(2) == "+" else -1)
                moment += dt.timedelta(days=days)
            return moment.date().isoformat()

        return {
            k: _TEMPLATE.sub(fill, v) if isinstance(v, str) else v for k, v in self.params.items()
        }


@dataclass(frozen=True)
class MonitorSettings:
    """The checked ``[monitoring]`` table (see the module docstring for every key)."""

    model: str | None = None
    every: str = "1d"
    lookback: dt.timedelta = dt.timedelta(days=28)
    label: str = "label"
    label_key: str | tuple[str, str] = "request_id"
    min_label_coverage: float = 0.9
    contract: Path | None = None
    drift: DriftSettings = field(default_factory=DriftSettings)
    slo: SLOSettings = field(default_factory=SLOSettings)
    webhook: Webhook | None = None
    alerts: tuple[AlertRule, ...] = ()
    retrain: Retrain | None = None

    @classmethod
    def from_project(
        cls, project: Any, environ: Mapping[str, str] | None = None
    ) -> MonitorSettings:
        """The settings of a project (a ``Project``); relative paths resolve against it."""
        settings = project.settings
        source = str(settings.source or "shipyard.toml")
        return parse_settings(
            settings.monitoring, source, root=settings.root, environ=environ or os.environ
        )


def parse_settings(
    raw: Mapping[str, Any],
    source: str = "shipyard.toml",
    *,
    root: Path = Path("."),
    environ: Mapping[str, str] | None = None,
) -> MonitorSettings:
    """Check the ``[monitoring]`` table as ``tomllib`` returns it.

    Raises:
        MonitoringConfigError: naming the key, what was expected, what arrived and the fix.
    """
    where = f"{source}: [monitoring]"
    if unknown := sorted(set(raw) - _KEYS):
        raise MonitoringConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}. Known keys: "
            f"{', '.join(sorted(_KEYS))}. Remove them or fix their spelling."
        )
    every = _text(raw, "every", "1d", where)
    window_size(every, f"{where} every")
    contract = raw.get("contract")
    return MonitorSettings(
        model=_text(raw, "model", None, where),
        every=every,
        lookback=parse_duration(_text(raw, "lookback", "28d", where), f"{where} lookback"),
        label=_text(raw, "label", "label", where) or "label",
        label_key=_label_key(raw.get("label_key", "request_id"), where),
        min_label_coverage=_share(raw, "min_label_coverage", 0.9, where),
        contract=None if contract is None else root / _text(raw, "contract", "", where),
        drift=_drift(raw, where),
        slo=parse_slo(_table(raw, "slo", where), source),
        webhook=_webhook(_table(raw, "webhook", where), f"{where} webhook", environ or {}),
        alerts=tuple(parse_rules(_alert_list(raw, where), source)),
        retrain=_retrain(raw.get("retrain"), f"{where} retrain"),
    )


def parse_duration(text: str, label: str) -> dt.timedelta:
    """``"30m"``, ``"6h"``, ``"1d"``, ``"2w"`` as a timedelta."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise MonitoringConfigError(
            f"{label} must be a duration such as 30m, 6h, 1d or 2w, got {text!r}. "
            "Write a positive number followed by m, h, d or w."
        )
    return dt.timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def window_size(text: str, label: str = "window") -> dt.timedelta | int:
    """A window: a duration (``"1d"``) or a number of predictions (``"10000"``)."""
    if text.strip().isdigit() and int(text) > 0:
        return int(text)
    try:
        return parse_duration(text, label)
    except MonitoringConfigError:
        raise MonitoringConfigError(
            f"{label} must be a duration such as 1h, 1d or 7d, or a number of predictions "
            f"such as 10000, got {text!r}."
        ) from None


def _text(raw: Mapping[str, Any], key: str, default: Any, where: str) -> Any:
    value = raw.get(key, default)
    if value is not None and not isinstance(value, str):
        raise MonitoringConfigError(
            f"{where} {key} must be a string, got {value!r} (a {type(value).__name__}). "
            f'Quote it: {key} = "{value}".'
        )
    return value


def _share(raw: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = raw.get(key, default)
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1:
        return float(value)
    raise MonitoringConfigError(
        f"{where} {key} must be a share between 0 and 1, got {value!r}. Use e.g. 0.5."
    )


def _table(raw: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, Mapping):
        raise MonitoringConfigError(
            f"{where} {key} must be a table ([monitoring.{key}]), got {value!r}."
        )
    return value


def _label_key(value: Any, where: str) -> str | tuple[str, str]:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
        return (value[0], value[1])
    raise MonitoringConfigError(
        f"{where} label_key must be the column holding the request id (a string) or "
        f'[entity column, time column], got {value!r}. E.g. label_key = "transaction_id".'
    )


def _drift(raw: Mapping[str, Any], where: str) -> DriftSettings:
    rules = {}
    for column, rule in _table(raw, "drift", where).items():
        label = f"{where}.drift.{column}"
        if not isinstance(rule, Mapping) or set(rule) - {"method", "threshold"}:
            raise MonitoringConfigError(
                f"{label} must be a table with method and/or threshold, got {rule!r}. "
                'E.g. [monitoring.drift.amount] method = "psi" threshold = 0.2.'
            )
        threshold = rule.get("threshold")
        if threshold is not None and (
            isinstance(threshold, bool) or not isinstance(threshold, int | float)
        ):
            raise MonitoringConfigError(f"{label} threshold must be a number, got {threshold!r}.")
        try:
            rules[column] = DriftRule(
                method=rule.get("method"),
                threshold=None if threshold is None else float(threshold),
            )
        except (ValueError, TypeError) as exc:
            raise MonitoringConfigError(f"{label}: {exc}") from None
    weights = {}
    for column, weight in _table(raw, "weights", where).items():
        if isinstance(weight, bool) or not isinstance(weight, int | float) or weight <= 0:
            raise MonitoringConfigError(
                f"{where}.weights {column} must be a positive number, got {weight!r}."
            )
        weights[column] = float(weight)
    share = _share(raw, "drift_share", 0.5, where)
    return DriftSettings(share=share, rules=rules, weights=weights)


def _webhook(raw: Mapping[str, Any], where: str, environ: Mapping[str, str]) -> Webhook | None:
    if not raw:
        return None
    if unknown := sorted(set(raw) - {"url", "url_env", "timeout", "retries"}):
        raise MonitoringConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}. Known: url, url_env, timeout, retries."
        )
    url = raw.get("url")
    if "url_env" in raw:
        url = environ.get(str(raw["url_env"]))
        if not url:
            raise MonitoringConfigError(
                f"{where} url_env names the variable {raw['url_env']!r}, which is not set. "
                "Export it with the webhook's URL, or remove [monitoring.webhook]."
            )
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise MonitoringConfigError(
            f"{where} needs url (or url_env) holding an http:// or https:// URL. "
            "Set one, or remove [monitoring.webhook]."
        )
    timeout, retries = raw.get("timeout", 2.0), raw.get("retries", 3)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise MonitoringConfigError(f"{where} timeout must be seconds above 0, got {timeout!r}.")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise MonitoringConfigError(f"{where} retries must be an integer >= 0, got {retries!r}.")
    return Webhook(url, float(timeout), retries)


def _alert_list(raw: Mapping[str, Any], where: str) -> list[Mapping[str, Any]]:
    alerts = raw.get("alerts", [])
    if not isinstance(alerts, list):
        raise MonitoringConfigError(
            f"{where} alerts must be an array of tables ([[monitoring.alerts]]), got {alerts!r}."
        )
    return alerts


def _retrain(raw: Any, where: str) -> Retrain | None:
    if raw is None:
        return None
    known = {"pipeline", "step", "output", "test", "label", "params", "promote"}
    if not isinstance(raw, Mapping) or set(raw) - known:
        raise MonitoringConfigError(
            f"{where} must be a table with keys among {', '.join(sorted(known))}, got {raw!r}."
        )
    strings = {k: raw[k] for k in ("pipeline", "step", "output", "test", "label") if k in raw}
    for key, value in strings.items():
        if not isinstance(value, str) or not value:
            raise MonitoringConfigError(f"{where} {key} must be a non-empty string, got {value!r}.")
    test = strings.get("test", "")
    if test and "." not in test:
        raise MonitoringConfigError(
            f"{where} test must be STEP.OUTPUT (the rows the gate scores), got {test!r}. "
            'E.g. test = "split_by_time.test".'
        )
    params = raw.get("params", {})
    promote = raw.get("promote", True)
    if not isinstance(params, Mapping) or not isinstance(promote, bool):
        raise MonitoringConfigError(
            f"{where} params must be a table and promote true or false, got {params!r} and "
            f"{promote!r}."
        )
    return Retrain(**strings, params=dict(params), promote=promote)
