"""Alert rules over monitoring signals, alert episodes, and where alerts are delivered.

A rule is a small condition ``SIGNAL OP NUMBER`` (``OP`` one of ``< <= > >= == !=``) or
``SIGNAL is true`` / ``SIGNAL is false``, read from ``[[monitoring.alerts]]`` tables::

    [[monitoring.alerts]]
    name = "value-drop"
    when = "performance.value_per_1000 < -300"
    severity = "error"          # info | warning | error
    retrain = true              # start the training pipeline with `shipyard monitor --retrain`
    description = "Business value per 1,000 predictions fell below the floor."

Signals are flat names (``drift.share``, ``dataset_drift``, ``estimated.recall``,
``slo.latency_ms_p99.breached``...) mapped to a number, a boolean or ``None``. A rule whose
signal is missing or ``None`` is *unknown*: it neither fires nor resolves.

No alert storms: :class:`AlertBook` keeps, in a small JSON file, which rules are firing. A rule
*fires* once when its condition starts to hold (a new episode, with an id such as
``value-drop#3``), stays *firing* while it holds (nothing is sent again, even by the next cron
run of ``shipyard monitor``), and *resolves* once when it stops holding. Only ``fired`` and
``resolved`` events are delivered by the notifiers.

The notifiers (:class:`TerminalNotifier`, :class:`LogNotifier`, :class:`WebhookNotifier`,
with the webhook's body) live in :mod:`shipyard.monitoring.notify` and are re-exported here.
"""

from __future__ import annotations

import json
import math
import operator
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shipyard.errors import MonitoringConfigError, MonitoringError
from shipyard.monitoring._alert_event import AlertEvent, Status, _json_value
from shipyard.monitoring.notify import (
    WEBHOOK_SCHEMA,
    LogNotifier,
    Notifier,
    TerminalNotifier,
    WebhookFailure,
    WebhookNotifier,
)

__all__ = [
    "SEVERITIES",
    "WEBHOOK_SCHEMA",
    "AlertBook",
    "AlertEvent",
    "AlertRule",
    "LogNotifier",
    "Notifier",
    "Signals",
    "TerminalNotifier",
    "WebhookFailure",
    "WebhookNotifier",
    "parse_rules",
]

Signals = Mapping[str, float | bool | None]
SEVERITIES = ("info", "warning", "error")
_STATE_SCHEMA = "shipyard.alert-state/v1"
_RULE_KEYS = ("name", "when", "severity", "retrain", "description")
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_WHEN = re.compile(
    r"^\s*(?P<signal>[A-Za-z_][\w.:/-]*)\s*(?:"
    rf"(?P<op><=|>=|==|!=|<|>)\s*(?P<number>{_NUMBER})|is\s+(?P<truth>true|false))\s*$"
)
_WHEN_FORMS = (
    "'SIGNAL OP NUMBER' with OP one of < <= > >= == != (e.g. 'drift.share >= 0.5') "
    "or 'SIGNAL is true' / 'SIGNAL is false' (e.g. 'dataset_drift is true')"
)


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class AlertRule:
    """A named condition on one signal, with a severity.

    Args:
        name: Unique name of the rule; names the alert and its episodes.
        when: ``"SIGNAL OP NUMBER"`` or ``"SIGNAL is true|false"``.
        severity: ``"info"``, ``"warning"`` or ``"error"`` (``shipyard monitor`` exits 1
            while an error-severity alert is firing).
        retrain: Whether a firing alert starts the training pipeline (``--retrain``).
        description: What the alert means, added to its message.

    Raises:
        MonitoringConfigError: ``when`` or ``severity`` cannot be used.
    """

    name: str
    when: str
    severity: str = "warning"
    retrain: bool = False
    description: str = ""
    signal: str = field(init=False, compare=False)
    op: str = field(init=False, compare=False)
    threshold: float | bool = field(init=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise MonitoringConfigError(f"an alert needs a non-empty name (got {self.name!r})")
        if self.severity not in SEVERITIES:
            raise MonitoringConfigError(
                f"severity must be one of {', '.join(SEVERITIES)} (got {self.severity!r})"
            )
        match = _WHEN.match(self.when) if isinstance(self.when, str) else None
        if match is None:
            raise MonitoringConfigError(f"'when' must be {_WHEN_FORMS} (got {self.when!r})")
        truth = match["truth"]
        object.__setattr__(self, "signal", match["signal"])
        object.__setattr__(self, "op", "is" if truth else match["op"])
        object.__setattr__(self, "threshold", truth == "true" if truth else float(match["number"]))

    def holds(self, value: float | bool | None) -> bool | None:
        """Whether the condition holds for ``value``; ``None`` when the value is unknown."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        if self.op == "is":
            return bool(value) is self.threshold
        return _OPERATORS[self.op](float(value), self.threshold)


def parse_rules(raw: Sequence[Mapping[str, Any]], source: str) -> list[AlertRule]:
    """Read the ``[[monitoring.alerts]]`` tables of ``source`` (a file name, for messages).

    Raises:
        MonitoringConfigError: a table is not a table, has an unknown or missing key, a value
            of the wrong type, a ``when`` that cannot be parsed, or a name used twice. The
            message names the rule (index and name), what was expected, what arrived, the fix.
    """
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
        raise MonitoringConfigError(
            f"{source}: [[monitoring.alerts]] must be an array of tables (got "
            f"{type(raw).__name__}); write each rule as its own [[monitoring.alerts]] table"
        )
    rules: list[AlertRule] = []
    seen: dict[str, int] = {}
    for index, table in enumerate(raw):
        rule = _parse_rule(table, f"{source}: [[monitoring.alerts]] #{index + 1}")
        if rule.name in seen:
            raise MonitoringConfigError(
                f"{source}: [[monitoring.alerts]] #{index + 1} is named {rule.name!r}, like "
                f"#{seen[rule.name] + 1}; alert names must be unique: rename one of them"
            )
        seen[rule.name] = index
        rules.append(rule)
    return rules


def _parse_rule(table: Any, where: str) -> AlertRule:
    if not isinstance(table, Mapping):
        raise MonitoringConfigError(
            f"{where} must be a table with keys {', '.join(_RULE_KEYS)} (got {table!r})"
        )
    name = table.get("name")
    if isinstance(name, str) and name.strip():
        where = f"{where} ({name!r})"
    unknown = sorted(set(table) - set(_RULE_KEYS))
    if unknown:
        raise MonitoringConfigError(
            f"{where} has unknown key(s) {', '.join(map(repr, unknown))}; the keys are "
            f"{', '.join(_RULE_KEYS)}: fix the spelling or remove them"
        )
    for key, example in (("name", '"value-drop"'), ("when", '"drift.share >= 0.5"')):
        if key not in table:
            raise MonitoringConfigError(f"{where} has no {key!r}; add e.g. {key} = {example}")
    for key, kind, example in (
        ("name", str, '"value-drop"'),
        ("when", str, '"drift.share >= 0.5"'),
        ("severity", str, '"warning"'),
        ("retrain", bool, "true"),
        ("description", str, '"what it means"'),
    ):
        if key in table and not isinstance(table[key], kind):
            raise MonitoringConfigError(
                f"{where}: {key!r} must be a {kind.__name__} (got {table[key]!r}, a "
                f"{type(table[key]).__name__}); write e.g. {key} = {example}"
            )
    try:
        return AlertRule(**{key: table[key] for key in _RULE_KEYS if key in table})
    except MonitoringConfigError as exc:
        raise MonitoringConfigError(f"{where}: {exc}; fix it in the rule's table") from None


# --------------------------------------------------------------------------- episodes


class AlertBook:
    """Which alerts are firing, kept in a JSON file between runs of ``shipyard monitor``.

    Args:
        state_path: The JSON file; created on the first :meth:`evaluate`, replaced atomically.
    """

    def __init__(self, state_path: Path) -> None:
        self.state_path = Path(state_path)

    def evaluate(
        self, rules: Sequence[AlertRule], signals: Signals, at: datetime
    ) -> list[AlertEvent]:
        """Check every rule against ``signals`` at time ``at`` and record the episodes.

        Returns one event per rule that fired, is firing, resolved or is unknown (rules that
        hold nothing and were not firing give no event), plus a ``resolved`` event for each
        episode whose rule was removed from the configuration.

        Raises:
            MonitoringError: the state file is corrupted (the message says how to reset it).
        """
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        state = self._load()
        open_episodes: dict[str, dict[str, Any]] = state["firing"]
        events = [self._check(rule, signals.get(rule.signal), at, state) for rule in rules]
        names = {rule.name for rule in rules}
        for name in sorted(set(open_episodes) - names):
            events.append(_removed(name, open_episodes.pop(name), at))
        self._save(state)
        return [event for event in events if event is not None]

    def firing(self) -> list[AlertEvent]:
        """The alerts firing after the last evaluation, oldest episode first."""
        episodes = self._load()["firing"]
        events = [_event_from_state(name, data, "firing") for name, data in episodes.items()]
        return sorted(events, key=lambda event: (event.since or event.at, event.rule))

    def _check(
        self, rule: AlertRule, value: float | bool | None, at: datetime, state: dict[str, Any]
    ) -> AlertEvent | None:
        open_episode = state["firing"].get(rule.name)
        holds = rule.holds(value)
        if holds is None:
            episode = open_episode["episode"] if open_episode else ""
            why = "missing" if value is None else "not a number"
            text = f"{rule.signal} is {why}: the rule cannot be checked"
            return _event(rule, "unknown", value, at, episode, text, open_episode)
        if holds and open_episode is None:
            count = state["episodes"].get(rule.name, 0) + 1
            state["episodes"][rule.name] = count
            open_episode = {"episode": f"{rule.name}#{count}", "since": at.isoformat()}
            state["firing"][rule.name] = open_episode
            status: Status = "fired"
        elif holds:
            status = "firing"
        elif open_episode is not None:
            del state["firing"][rule.name]
            status = "resolved"
        else:
            return None
        open_episode.update(_rule_state(rule, value, at))
        return _event(rule, status, value, at, open_episode["episode"], "", open_episode)

    def _load(self) -> dict[str, Any]:
        try:
            text = self.state_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {"schema": _STATE_SCHEMA, "episodes": {}, "firing": {}}
        except OSError as exc:
            raise self._corrupted(f"it cannot be read: {exc.strerror}") from exc
        try:
            state = json.loads(text)
        except ValueError as exc:
            raise self._corrupted(f"it is not valid JSON ({exc})") from None
        if not _valid_state(state):
            raise self._corrupted(f"it is not a {_STATE_SCHEMA} document")
        return dict(state)

    def _save(self, state: dict[str, Any]) -> None:
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        staged = self.state_path.with_name(f".{self.state_path.name}.{os.getpid()}.tmp")
        staged.write_text(json.dumps(state, indent=2, sort_keys=True), encoding="utf-8")
        os.replace(staged, self.state_path)

    def _corrupted(self, why: str) -> MonitoringError:
        return MonitoringError(
            f"the alert state file {self.state_path} is corrupted: {why}. It records which "
            "alerts are firing; delete it to reset (alerts whose condition still holds will "
            "fire again on the next run)"
        )


def _valid_state(state: Any) -> bool:
    if not isinstance(state, dict) or state.get("schema") != _STATE_SCHEMA:
        return False
    episodes, firing = state.get("episodes"), state.get("firing")
    if not isinstance(episodes, dict) or not isinstance(firing, dict):
        return False
    if not all(isinstance(count, int) for count in episodes.values()):
        return False
    return all(_valid_episode(episode) for episode in firing.values())


def _valid_episode(episode: Any) -> bool:
    required = ("episode", "since", "severity", "when", "retrain", "at")
    if not isinstance(episode, dict) or not all(key in episode for key in required):
        return False
    try:
        datetime.fromisoformat(episode["since"])
        datetime.fromisoformat(episode["at"])
    except (TypeError, ValueError):
        return False
    return True


def _rule_state(rule: AlertRule, value: float | bool | None, at: datetime) -> dict[str, Any]:
    return {
        "severity": rule.severity,
        "when": rule.when,
        "retrain": rule.retrain,
        "description": rule.description,
        "value": _json_value(value),
        "at": at.isoformat(),
    }


def _event(
    rule: AlertRule,
    status: Status,
    value: float | bool | None,
    at: datetime,
    episode: str,
    text: str,
    open_episode: Mapping[str, Any] | None,
) -> AlertEvent:
    since = datetime.fromisoformat(open_episode["since"]) if open_episode else None
    message = text or _message(rule.signal, value, rule.when, status, since)
    if rule.description:
        message = f"{message}. {rule.description}"
    return AlertEvent(
        rule.name, rule.severity, status, value, at, episode, message,
        retrain=rule.retrain, when=rule.when, since=since,
    )  # fmt: skip


def _message(
    signal: str, value: float | bool | None, when: str, status: Status, since: datetime | None
) -> str:
    shown = f"{signal} = {_format(value)}"
    if status == "resolved":
        started = f" (firing since {since.isoformat()})" if since else ""
        return f"{shown}: '{when}' no longer holds{started}"
    return f"{shown}: '{when}' holds"


def _removed(name: str, data: Mapping[str, Any], at: datetime) -> AlertEvent:
    event = _event_from_state(name, data, "resolved")
    return AlertEvent(
        name, event.severity, "resolved", None, at, event.episode,
        f"the rule {name!r} was removed from the configuration; its episode is closed",
        event.retrain, event.when, event.since,
    )  # fmt: skip


def _event_from_state(name: str, data: Mapping[str, Any], status: Status) -> AlertEvent:
    since = datetime.fromisoformat(data["since"])
    last = _format(data.get("value"))
    text = f"'{data['when']}' holds since {since.isoformat()} (last value {last})"
    return AlertEvent(
        name, data["severity"], status, data.get("value"), datetime.fromisoformat(data["at"]),
        data["episode"], text, bool(data["retrain"]), data["when"], since,
    )  # fmt: skip


def _format(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower() if value is not None else "null"
    return f"{value:.6g}"
