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

Webhook body (``WebhookNotifier``), one HTTP POST per event, ``Content-Type:
application/json``, with the header ``X-Shipyard-Delivery: <episode>:<status>`` so a receiver
can drop the duplicates a retry may cause::

    {
      "schema": "shipyard.alert/v1",
      "project": "fraud",                       # str or null
      "model": "fraud-detector",                # str or null
      "alert": "value-drop",                    # the rule's name
      "severity": "error",                      # "info" | "warning" | "error"
      "status": "fired",                        # "fired" | "resolved"
      "when": "performance.value_per_1000 < -300",
      "value": -412.5,                          # number, boolean, or null
      "at": "2026-11-30T01:00:00+00:00",        # ISO 8601, UTC
      "episode": "value-drop#3",                # same id on the fired and resolved events
      "message": "performance.value_per_1000 = -412.5, < -300: ...",
      "retrain": true
    }
"""

from __future__ import annotations

import json
import math
import operator
import os
import queue
import re
import threading
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from shipyard.errors import MonitoringConfigError, MonitoringError

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
Status = Literal["fired", "firing", "resolved", "unknown"]
SEVERITIES = ("info", "warning", "error")
WEBHOOK_SCHEMA = "shipyard.alert/v1"
DELIVERED = frozenset({"fired", "resolved"})
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


@dataclass(frozen=True)
class AlertEvent:
    """What happened to one rule at one evaluation.

    ``status`` is ``"fired"`` (a new episode starts), ``"firing"`` (it goes on; not delivered
    again), ``"resolved"`` (the episode ends) or ``"unknown"`` (the rule's signal has no value;
    a firing episode stays open). ``since`` is when the episode fired.
    """

    rule: str
    severity: str
    status: Status
    value: float | bool | None
    at: datetime
    episode: str
    message: str
    retrain: bool = False
    when: str = ""
    since: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """The event as plain JSON values (times in ISO 8601, NaN as null)."""
        return {
            "alert": self.rule,
            "severity": self.severity,
            "status": self.status,
            "when": self.when,
            "value": _json_value(self.value),
            "at": self.at.isoformat(),
            "since": self.since.isoformat() if self.since else None,
            "episode": self.episode,
            "message": self.message,
            "retrain": self.retrain,
        }


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


def _json_value(value: float | bool | None) -> float | bool | None:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --------------------------------------------------------------------------- notifiers


class Notifier(Protocol):
    """Where alert events go. ``send`` must not block monitoring; ``close`` is bounded."""

    def send(self, events: Sequence[AlertEvent]) -> None:
        """Deliver the ``fired`` and ``resolved`` events among ``events``."""

    def close(self, timeout: float = 5.0) -> None:
        """Finish pending deliveries, waiting at most ``timeout`` seconds."""


class _Console(Protocol):
    def print(self, *objects: Any, **options: Any) -> None: ...


_STYLES = {"info": "cyan", "warning": "yellow", "error": "bold red"}


class TerminalNotifier:
    """Print events on a Rich console (any object with Rich's ``Console.print``).

    Fired alerts are coloured by severity (info cyan, warning yellow, error bold red),
    resolved ones green. Text is printed without markup, so names are shown as written.
    """

    def __init__(self, console: Any) -> None:
        self.console: _Console = console

    def send(self, events: Sequence[AlertEvent]) -> None:
        """Print one line per ``fired`` or ``resolved`` event."""
        for event in _deliverable(events):
            style = "green" if event.status == "resolved" else _STYLES[event.severity]
            label = f"{event.severity.upper()} {event.status}"
            retrain = " (retrain)" if event.retrain and event.status == "fired" else ""
            line = f"{label}: {event.rule} [{event.episode}]{retrain}: {event.message}"
            self.console.print(line, style=style, markup=False, highlight=False)

    def close(self, timeout: float = 5.0) -> None:
        """Nothing to finish: printing is synchronous."""


class LogNotifier:
    """Append events as JSON lines (:meth:`AlertEvent.to_dict`) to a file.

    Args:
        path: The log file; it and its folder are created if missing.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def send(self, events: Sequence[AlertEvent]) -> None:
        """Append one line per ``fired`` or ``resolved`` event."""
        lines = [
            json.dumps(event.to_dict(), sort_keys=True) + "\n" for event in _deliverable(events)
        ]
        if not lines:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.writelines(lines)

    def close(self, timeout: float = 5.0) -> None:
        """Nothing to finish: lines are written by :meth:`send`."""


@dataclass(frozen=True)
class WebhookFailure:
    """An event the webhook never accepted: after how many attempts, and the last reason."""

    alert: str
    status: str
    episode: str
    attempts: int
    reason: str


class WebhookNotifier:
    """POST each ``fired`` and ``resolved`` event to a URL, from a background thread.

    :meth:`send` only queues the events and returns. A daemon thread POSTs them one by one
    (body in the module docstring); timeouts, connection errors, 429 and 5xx answers are
    retried up to ``retries`` more times, waiting ``backoff * 2**k`` seconds before retry
    ``k``; other answers and exhausted retries are recorded in :attr:`failures`. Neither the
    URL's query string or credentials nor the headers' values appear in any message.

    Args:
        url: ``http://`` or ``https://`` URL of the receiver.
        project: The project's name, sent in every body.
        model: The monitored model's name, sent in every body.
        timeout: Seconds to wait for one answer.
        retries: Attempts after the first one for a failed delivery.
        backoff: Seconds before the first retry; doubled for each next one.
        headers: Extra headers, e.g. ``{"Authorization": "Bearer ..."}``.
    """

    def __init__(
        self,
        url: str,
        *,
        project: str | None = None,
        model: str | None = None,
        timeout: float = 2.0,
        retries: int = 3,
        backoff: float = 0.5,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise MonitoringConfigError(
                f"a webhook URL must start with http:// or https:// and name a host (got "
                f"{_redact(url)!r}); fix the webhook url in [monitoring]"
            )
        self.url, self.project, self.model = url, project, model
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self.headers = dict(headers or {})
        self.failures: list[WebhookFailure] = []
        self.delivered = 0
        self._shown_url = _redact(url)
        self._secrets = [parts.query, parts.password or "", *self.headers.values()]
        self._queue: queue.SimpleQueue[AlertEvent | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def send(self, events: Sequence[AlertEvent]) -> None:
        """Queue the ``fired`` and ``resolved`` events for delivery and return at once.

        Raises:
            MonitoringError: the notifier was closed.
        """
        if self._closed:
            raise MonitoringError(
                f"the webhook notifier for {self._shown_url} is closed; create a new one"
            )
        pending = _deliverable(events)
        if not pending:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="shipyard-webhook", daemon=True
                )
                self._thread.start()
        for event in pending:
            self._queue.put(event)

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued, waiting at most ``timeout`` seconds; what is left then is
        recorded in :attr:`failures` (the thread stops after the request in flight)."""
        self._closed = True
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._stop.set()

    def body(self, event: AlertEvent) -> dict[str, Any]:
        """The JSON body POSTed for ``event`` (schema ``shipyard.alert/v1``)."""
        return {
            "schema": WEBHOOK_SCHEMA,
            "project": self.project,
            "model": self.model,
            "alert": event.rule,
            "severity": event.severity,
            "status": event.status,
            "when": event.when,
            "value": _json_value(event.value),
            "at": event.at.astimezone(UTC).isoformat(),
            "episode": event.episode,
            "message": event.message,
            "retrain": event.retrain,
        }

    def _run(self) -> None:
        while (event := self._queue.get()) is not None:
            if self._stop.is_set():
                self._fail(event, 0, "not sent: the notifier was closed before its turn")
            else:
                self._deliver(event)

    def _deliver(self, event: AlertEvent) -> None:
        data = json.dumps(self.body(event), allow_nan=False).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "shipyard-alerts"}
        headers["X-Shipyard-Delivery"] = f"{event.episode}:{event.status}"
        headers.update(self.headers)
        for attempt in range(1, self.retries + 2):
            reason, retry = self._post(data, headers)
            if reason is None:
                with self._lock:
                    self.delivered += 1
                return
            last = attempt == self.retries + 1
            if not retry or last or self._stop.wait(self.backoff * 2 ** (attempt - 1)):
                self._fail(event, attempt, reason)
                return

    def _post(self, data: bytes, headers: Mapping[str, str]) -> tuple[str | None, bool]:
        """``(None, _)`` when accepted, else ``(reason, whether to retry)``."""
        # Imported by the first delivery: monitoring without a webhook never needs them.
        import urllib.error
        import urllib.request

        # The scheme was checked to be http(s) in __init__.
        request = urllib.request.Request(  # noqa: S310
            self.url, data=data, headers=dict(headers), method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310
                answer.read()
        except urllib.error.HTTPError as exc:
            exc.close()  # its socket, or Python warns when the error is collected
            retry = exc.code >= 500 or exc.code == 429
            return f"{self._shown_url} answered {exc.code} {self._scrub(str(exc.reason))}", retry
        except (TimeoutError, urllib.error.URLError, OSError) as exc:
            why = getattr(exc, "reason", None) or exc or type(exc).__name__
            return f"{self._shown_url} could not be reached: {self._scrub(str(why))}", True
        return None, False

    def _fail(self, event: AlertEvent, attempts: int, reason: str) -> None:
        failure = WebhookFailure(event.rule, event.status, event.episode, attempts, reason)
        with self._lock:
            self.failures.append(failure)

    def _scrub(self, text: str) -> str:
        for secret in sorted(filter(None, self._secrets), key=len, reverse=True):
            text = text.replace(secret, "***")
        return text


def _deliverable(events: Sequence[AlertEvent]) -> list[AlertEvent]:
    return [event for event in events if event.status in DELIVERED]


def _redact(url: str) -> str:
    """``url`` without credentials, query or fragment, fit for messages."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))
