"""Where alert events are delivered: the terminal, a JSON-lines log, a webhook.

Only ``fired`` and ``resolved`` events are delivered; rules and episodes are in
:mod:`shipyard.monitoring.alerts`.

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
import queue
import threading
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any, Protocol

from shipyard.errors import MonitoringConfigError, MonitoringError
from shipyard.monitoring._alert_event import DELIVERED, AlertEvent, _json_value

__all__ = [
    "WEBHOOK_SCHEMA",
    "LogNotifier",
    "Notifier",
    "TerminalNotifier",
    "WebhookFailure",
    "WebhookNotifier",
]

WEBHOOK_SCHEMA = "shipyard.alert/v1"


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
