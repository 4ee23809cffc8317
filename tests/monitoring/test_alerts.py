"""Alert rules, episodes and notifiers of shipyard.monitoring.alerts (webhook on a real server)."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from shipyard.errors import MonitoringConfigError, MonitoringError
from shipyard.monitoring.alerts import (
    AlertBook,
    AlertEvent,
    AlertRule,
    LogNotifier,
    TerminalNotifier,
    WebhookNotifier,
    parse_rules,
)

T0 = datetime(2026, 11, 1, 12, tzinfo=UTC)
SOURCE = "shipyard.toml"


def _at(hours: int) -> datetime:
    return T0 + timedelta(hours=hours)


# --------------------------------------------------------------------------- rules


@pytest.mark.parametrize(
    ("when", "value", "holds"),
    [
        ("drift.share >= 0.5", 0.5, True),
        ("drift.share >= 0.5", 0.49, False),
        ("performance.value_per_1000 < -300", -300.0, False),
        ("performance.value_per_1000 < -300", -300.5, True),
        ("estimated.recall<0.5", 0.4, True),
        ("contract.violation_share > 1e-2", 0.02, True),
        ("slo.latency_ms_p99 <= 50", 50.0, True),
        ("x == 3", 3.0, True),
        ("x != 3", 3.0, False),
        ("dataset_drift is true", True, True),
        ("dataset_drift is true", False, False),
        ("slo.error_rate.breached is false", False, True),
        ("drift.share >= 0.5", None, None),
        ("drift.share >= 0.5", float("nan"), None),
    ],
)
def test_rule_conditions(when: str, value: float | bool | None, holds: bool | None) -> None:
    assert AlertRule("r", when).holds(value) is holds


def test_rule_exposes_its_parsed_condition() -> None:
    rule = AlertRule("drop", "performance.value_per_1000 < -300", "error", retrain=True)
    assert (rule.signal, rule.op, rule.threshold) == ("performance.value_per_1000", "<", -300.0)
    boolean = AlertRule("drift", " dataset_drift is true ")
    assert (boolean.signal, boolean.op, boolean.threshold) == ("dataset_drift", "is", True)


@pytest.mark.parametrize(
    "when",
    ["drift.share => 0.5", "drift.share >= high", "__import__('os') > 1", "a > 1 and b < 2", ""],
)
def test_rule_conditions_are_parsed_never_evaluated(when: str) -> None:
    with pytest.raises(MonitoringConfigError, match="'when' must be 'SIGNAL OP NUMBER'"):
        AlertRule("r", when)


def test_parse_rules_reads_tables() -> None:
    rules = parse_rules(
        [
            {"name": "drift", "when": "drift.share >= 0.5"},
            {
                "name": "value",
                "when": "performance.value_per_1000 < -300",
                "severity": "error",
                "retrain": True,
                "description": "Value fell.",
            },
        ],
        SOURCE,
    )
    assert rules == [
        AlertRule("drift", "drift.share >= 0.5"),
        AlertRule("value", "performance.value_per_1000 < -300", "error", True, "Value fell."),
    ]
    assert rules[0].severity == "warning" and rules[0].retrain is False


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        (
            [{"name": "a", "when": "x > 1", "severty": "error"}],
            "shipyard.toml: [[monitoring.alerts]] #1 ('a') has unknown key(s) 'severty'; the keys"
            " are name, when, severity, retrain, description: fix the spelling or remove them",
        ),
        (
            [{"name": "a", "when": "x > 1"}, {"when": "x > 2"}],
            "shipyard.toml: [[monitoring.alerts]] #2 has no 'name'; add e.g. name = \"value-drop\"",
        ),
        (
            [{"name": "a"}],
            "[[monitoring.alerts]] #1 ('a') has no 'when'; add e.g. when = \"drift.share >= 0.5\"",
        ),
        (
            [{"name": "a", "when": "x > 1", "retrain": "yes"}],
            "[[monitoring.alerts]] #1 ('a'): 'retrain' must be a bool (got 'yes', a str); "
            "write e.g. retrain = true",
        ),
        (
            [{"name": "a", "when": "x > 1", "severity": "critical"}],
            "[[monitoring.alerts]] #1 ('a'): severity must be one of info, warning, error "
            "(got 'critical'); fix it in the rule's table",
        ),
        (
            [{"name": "a", "when": "x >> 1"}],
            "[[monitoring.alerts]] #1 ('a'): 'when' must be 'SIGNAL OP NUMBER' with OP one of "
            "< <= > >= == != (e.g. 'drift.share >= 0.5') or 'SIGNAL is true' / 'SIGNAL is "
            "false' (e.g. 'dataset_drift is true') (got 'x >> 1'); fix it in the rule's table",
        ),
        (
            [{"name": "a", "when": "x > 1"}, {"name": "a", "when": "y > 1"}],
            "shipyard.toml: [[monitoring.alerts]] #2 is named 'a', like #1; alert names must be "
            "unique: rename one of them",
        ),
        (
            ["a > 1"],
            "[[monitoring.alerts]] #1 must be a table with keys name, when, severity, retrain, "
            "description (got 'a > 1')",
        ),
    ],
)
def test_parse_rules_errors_name_the_rule_and_the_fix(tables: list[Any], message: str) -> None:
    with pytest.raises(MonitoringConfigError) as caught:
        parse_rules(tables, SOURCE)
    assert message in str(caught.value)


def test_parse_rules_needs_an_array() -> None:
    with pytest.raises(MonitoringConfigError, match=r"must be an array of tables \(got dict\)"):
        parse_rules({"name": "a"}, SOURCE)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- episodes


RULES = [
    AlertRule("drift", "drift.share >= 0.5", "warning"),
    AlertRule("value", "performance.value_per_1000 < -300", "error", retrain=True),
]


def _statuses(events: list[AlertEvent]) -> list[tuple[str, str, str]]:
    return [(event.rule, event.status, event.episode) for event in events]


def test_an_alert_fires_once_per_episode_and_resolves_once(tmp_path: Path) -> None:
    book = AlertBook(tmp_path / "alerts.json")
    quiet = {"drift.share": 0.1, "performance.value_per_1000": 50.0}
    drifting = {"drift.share": 0.7, "performance.value_per_1000": 50.0}

    assert book.evaluate(RULES, quiet, _at(0)) == []
    fired = book.evaluate(RULES, drifting, _at(1))
    assert _statuses(fired) == [("drift", "fired", "drift#1")]
    assert fired[0].value == 0.7 and fired[0].since == _at(1) and fired[0].severity == "warning"
    assert fired[0].message == "drift.share = 0.7: 'drift.share >= 0.5' holds"
    assert _statuses(book.evaluate(RULES, drifting, _at(2))) == [("drift", "firing", "drift#1")]
    resolved = book.evaluate(RULES, quiet, _at(3))
    assert _statuses(resolved) == [("drift", "resolved", "drift#1")]
    assert resolved[0].message == (
        "drift.share = 0.1: 'drift.share >= 0.5' no longer holds "
        "(firing since 2026-11-01T13:00:00+00:00)"
    )
    assert book.evaluate(RULES, quiet, _at(4)) == []
    assert _statuses(book.evaluate(RULES, drifting, _at(5))) == [("drift", "fired", "drift#2")]


def test_episodes_persist_across_runs(tmp_path: Path) -> None:
    """A second `shipyard monitor` (a new AlertBook on the same file) does not fire again."""
    path = tmp_path / "state" / "alerts.json"
    bad = {"drift.share": 0.9, "performance.value_per_1000": -400.0}
    first = AlertBook(path).evaluate(RULES, bad, _at(0))
    assert _statuses(first) == [("drift", "fired", "drift#1"), ("value", "fired", "value#1")]
    assert first[1].retrain is True
    second = AlertBook(path).evaluate(RULES, bad, _at(1))
    assert _statuses(second) == [("drift", "firing", "drift#1"), ("value", "firing", "value#1")]
    assert second[0].since == _at(0)
    assert [(event.rule, event.episode, event.since) for event in AlertBook(path).firing()] == [
        ("drift", "drift#1", _at(0)),
        ("value", "value#1", _at(0)),
    ]
    assert not list(path.parent.glob("*.tmp"))


def test_unknown_signals_neither_fire_nor_resolve(tmp_path: Path) -> None:
    book = AlertBook(tmp_path / "alerts.json")
    assert _statuses(book.evaluate(RULES, {"drift.share": 0.9}, _at(0))) == [
        ("drift", "fired", "drift#1"),
        ("value", "unknown", ""),
    ]
    unknown = book.evaluate(RULES, {"drift.share": None}, _at(1))
    assert _statuses(unknown) == [("drift", "unknown", "drift#1"), ("value", "unknown", "")]
    assert unknown[0].message == "drift.share is missing: the rule cannot be checked"
    assert [event.rule for event in book.firing()] == ["drift"]
    assert _statuses(book.evaluate(RULES, {"drift.share": 0.8}, _at(2)))[0] == (
        "drift",
        "firing",
        "drift#1",
    )


def test_a_removed_rule_resolves_its_open_episode(tmp_path: Path) -> None:
    book = AlertBook(tmp_path / "alerts.json")
    book.evaluate(RULES, {"drift.share": 0.9, "performance.value_per_1000": 0.0}, _at(0))
    events = book.evaluate(RULES[1:], {"performance.value_per_1000": 0.0}, _at(1))
    assert _statuses(events) == [("drift", "resolved", "drift#1")]
    assert "removed from the configuration" in events[0].message
    assert book.firing() == []


def test_a_naive_time_is_taken_as_utc(tmp_path: Path) -> None:
    event = AlertBook(tmp_path / "a.json").evaluate(
        RULES, {"drift.share": 1.0}, datetime(2026, 1, 1)
    )
    assert event[0].at == datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("{not json", "it is not valid JSON"),
        ('{"schema": "other"}', "it is not a shipyard.alert-state/v1 document"),
        (
            '{"schema": "shipyard.alert-state/v1", "episodes": {}, "firing": {"a": 1}}',
            "it is not a shipyard.alert-state/v1 document",
        ),
        (
            '{"schema": "shipyard.alert-state/v1", "episodes": {"a": "1"}, "firing": {}}',
            "it is not a shipyard.alert-state/v1 document",
        ),
        (
            '{"schema": "shipyard.alert-state/v1", "episodes": {"a": 1}, "firing": {"a": '
            '{"episode": "a#1", "since": "yesterday", "severity": "info", "when": "x > 1", '
            '"retrain": false, "at": "2026-01-01T00:00:00+00:00"}}}',
            "it is not a shipyard.alert-state/v1 document",
        ),
    ],
)
def test_a_corrupted_state_file_says_how_to_reset(tmp_path: Path, content: str, why: str) -> None:
    path = tmp_path / "alerts.json"
    path.write_text(content)
    with pytest.raises(MonitoringError) as caught:
        AlertBook(path).evaluate(RULES, {}, T0)
    assert str(caught.value).startswith(f"the alert state file {path} is corrupted: {why}")
    assert "delete it to reset" in str(caught.value)


def test_event_to_dict() -> None:
    event = AlertEvent("r", "info", "fired", float("inf"), T0, "r#1", "m", since=T0)
    assert event.to_dict() == {
        "alert": "r",
        "severity": "info",
        "status": "fired",
        "when": "",
        "value": None,
        "at": "2026-11-01T12:00:00+00:00",
        "since": "2026-11-01T12:00:00+00:00",
        "episode": "r#1",
        "message": "m",
        "retrain": False,
    }


# --------------------------------------------------------------------------- terminal and log


def _events(tmp_path: Path) -> list[AlertEvent]:
    book = AlertBook(tmp_path / "book.json")
    bad = {"drift.share": 0.9, "performance.value_per_1000": -400.0}
    fired = book.evaluate(RULES, bad, _at(0))
    firing = book.evaluate(RULES, bad, _at(1))
    resolved = book.evaluate(
        RULES, {"drift.share": 0.0, "performance.value_per_1000": -400.0}, _at(2)
    )
    return fired + firing + resolved


def test_terminal_notifier_prints_fired_and_resolved(tmp_path: Path) -> None:
    console = Console(
        file=io.StringIO(), record=True, width=200, force_terminal=True, color_system="truecolor"
    )
    TerminalNotifier(console).send(_events(tmp_path))
    lines = console.export_text(clear=False).splitlines()
    assert lines == [
        "WARNING fired: drift [drift#1]: drift.share = 0.9: 'drift.share >= 0.5' holds",
        "ERROR fired: value [value#1] (retrain): performance.value_per_1000 = -400: "
        "'performance.value_per_1000 < -300' holds",
        "WARNING resolved: drift [drift#1]: drift.share = 0: 'drift.share >= 0.5' no longer "
        "holds (firing since 2026-11-01T12:00:00+00:00)",
    ]
    styled = console.export_text(styles=True)
    assert "\x1b[1;31mERROR fired" in styled  # bold red
    assert "\x1b[33mWARNING fired" in styled  # yellow
    assert "\x1b[32mWARNING resolved" in styled  # green


def test_log_notifier_appends_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "alerts.jsonl"
    notifier = LogNotifier(path)
    events = _events(tmp_path)
    notifier.send(events)
    notifier.send(events[:1])
    notifier.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(line["alert"], line["status"]) for line in lines] == [
        ("drift", "fired"),
        ("value", "fired"),
        ("drift", "resolved"),
        ("drift", "fired"),
    ]
    assert lines[1] == {**events[1].to_dict(), "at": "2026-11-01T12:00:00+00:00"}


# --------------------------------------------------------------------------- webhook


class Receiver:
    """A real HTTP server on 127.0.0.1 whose answers follow a script of (status, delay)."""

    def __init__(self, script: Callable[[int], tuple[int, float]]) -> None:
        self.requests: list[tuple[dict[str, str], bytes, float]] = []
        self.script = script
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body, time.monotonic()))
                status, delay = receiver.script(len(receiver.requests))
                time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:  # the client gave up waiting: nothing left to answer
                    return

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test reads what arrived, not the server's log."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body, _ in self.requests]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Callable[[Callable[[int], tuple[int, float]]], Receiver]]:
    started: list[Receiver] = []

    def start(script: Callable[[int], tuple[int, float]]) -> Receiver:
        started.append(Receiver(script))
        return started[-1]

    yield start
    for one in started:
        one.stop()


def test_webhook_posts_the_documented_body(tmp_path: Path, receiver: Any) -> None:
    server = receiver(lambda n: (200, 0.0))
    notifier = WebhookNotifier(
        server.url, project="fraud", model="fraud-detector", headers={"X-Token": "s3cret"}
    )
    notifier.send(_events(tmp_path))
    notifier.close(timeout=5)
    assert notifier.failures == [] and notifier.delivered == 3
    assert server.bodies() == [
        {
            "schema": "shipyard.alert/v1",
            "project": "fraud",
            "model": "fraud-detector",
            "alert": "drift",
            "severity": "warning",
            "status": "fired",
            "when": "drift.share >= 0.5",
            "value": 0.9,
            "at": "2026-11-01T12:00:00+00:00",
            "episode": "drift#1",
            "message": "drift.share = 0.9: 'drift.share >= 0.5' holds",
            "retrain": False,
        },
        {
            "schema": "shipyard.alert/v1",
            "project": "fraud",
            "model": "fraud-detector",
            "alert": "value",
            "severity": "error",
            "status": "fired",
            "when": "performance.value_per_1000 < -300",
            "value": -400.0,
            "at": "2026-11-01T12:00:00+00:00",
            "episode": "value#1",
            "message": "performance.value_per_1000 = -400: "
            "'performance.value_per_1000 < -300' holds",
            "retrain": True,
        },
        {
            "schema": "shipyard.alert/v1",
            "project": "fraud",
            "model": "fraud-detector",
            "alert": "drift",
            "severity": "warning",
            "status": "resolved",
            "when": "drift.share >= 0.5",
            "value": 0.0,
            "at": "2026-11-01T14:00:00+00:00",
            "episode": "drift#1",
            "message": "drift.share = 0: 'drift.share >= 0.5' no longer holds "
            "(firing since 2026-11-01T12:00:00+00:00)",
            "retrain": False,
        },
    ]
    headers = server.requests[0][0]
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Token"] == "s3cret"
    assert headers["X-Shipyard-Delivery"] == "drift#1:fired"


def test_webhook_retries_5xx_with_backoff_and_delivers_once(tmp_path: Path, receiver: Any) -> None:
    server = receiver(lambda n: (500, 0.0) if n <= 2 else (200, 0.0))
    notifier = WebhookNotifier(server.url, retries=3, backoff=0.1)
    notifier.send(_events(tmp_path)[:1])
    notifier.close(timeout=5)
    assert notifier.failures == [] and notifier.delivered == 1
    assert len(server.requests) == 3
    assert len({body for _, body, _ in server.requests}) == 1
    times = [at for _, _, at in server.requests]
    assert times[1] - times[0] >= 0.1 and times[2] - times[1] >= 0.2  # backoff doubles


def test_webhook_gives_up_on_a_slow_receiver_without_blocking(
    tmp_path: Path, receiver: Any
) -> None:
    server = receiver(lambda n: (200, 1.0))
    notifier = WebhookNotifier(server.url + "?token=s3cret", timeout=0.2, retries=2, backoff=0.05)
    events = _events(tmp_path)[:1]
    started = time.perf_counter()
    notifier.send(events)
    assert time.perf_counter() - started < 0.05
    started = time.perf_counter()
    notifier.close(timeout=5)
    assert time.perf_counter() - started < 2.0
    assert len(server.requests) == 3 and notifier.delivered == 0
    [failure] = notifier.failures
    assert (failure.alert, failure.status, failure.episode, failure.attempts) == (
        "drift",
        "fired",
        "drift#1",
        3,
    )
    assert failure.reason.startswith(f"{server.url} could not be reached: ")
    assert "timed out" in failure.reason and "s3cret" not in failure.reason


def test_webhook_close_is_bounded(tmp_path: Path, receiver: Any) -> None:
    server = receiver(lambda n: (503, 0.0))
    notifier = WebhookNotifier(server.url, retries=5, backoff=10.0)
    notifier.send(_events(tmp_path))
    started = time.perf_counter()
    notifier.close(timeout=0.3)
    assert time.perf_counter() - started < 0.8  # the timeout, and some slack for a busy CI
    deadline = time.monotonic() + 2
    while len(notifier.failures) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [(f.alert, f.status, f.attempts) for f in notifier.failures] == [
        ("drift", "fired", 1),
        ("value", "fired", 0),
        ("drift", "resolved", 0),
    ]
    assert notifier.failures[0].reason == f"{server.url} answered 503 Service Unavailable"
    assert "closed before its turn" in notifier.failures[1].reason


def test_webhook_does_not_retry_a_4xx(tmp_path: Path, receiver: Any) -> None:
    server = receiver(lambda n: (404, 0.0))
    notifier = WebhookNotifier(server.url, backoff=0.01)
    notifier.send(_events(tmp_path)[:1])
    notifier.close(timeout=5)
    assert len(server.requests) == 1
    assert [(f.attempts, f.reason) for f in notifier.failures] == [
        (1, f"{server.url} answered 404 Not Found")
    ]


def test_webhook_unreachable_is_recorded_without_secrets(tmp_path: Path, receiver: Any) -> None:
    server = receiver(lambda n: (200, 0.0))
    url = server.url
    server.stop()  # nothing listens on the port any more
    notifier = WebhookNotifier(
        url.replace("http://", "http://user:pw0rd@") + "?key=s3cret",
        retries=1,
        backoff=0.01,
        headers={"Authorization": "Bearer t0ken"},
    )
    notifier.send(_events(tmp_path)[:1])
    notifier.close(timeout=5)
    [failure] = notifier.failures
    assert failure.attempts == 2 and failure.reason.startswith(f"{url} could not be reached")
    assert not any(secret in failure.reason for secret in ("s3cret", "pw0rd", "t0ken"))


def test_webhook_sends_nothing_for_firing_events(tmp_path: Path, receiver: Any) -> None:
    server = receiver(lambda n: (200, 0.0))
    notifier = WebhookNotifier(server.url)
    firing = [event for event in _events(tmp_path) if event.status == "firing"]
    assert firing
    notifier.send(firing)
    notifier.close(timeout=1)
    assert server.requests == [] and notifier.delivered == 0


def test_webhook_refuses_events_once_closed(tmp_path: Path) -> None:
    notifier = WebhookNotifier("http://127.0.0.1:9/hook?token=s3cret")
    notifier.close()
    with pytest.raises(MonitoringError) as caught:
        notifier.send(_events(tmp_path))
    assert str(caught.value) == (
        "the webhook notifier for http://127.0.0.1:9/hook is closed; create a new one"
    )


def test_webhook_url_must_be_http() -> None:
    with pytest.raises(MonitoringConfigError) as caught:
        WebhookNotifier("ftp://host/hook?token=s3cret")
    assert "(got 'ftp://host/hook')" in str(caught.value)
