"""SLOs of shipyard.monitoring.slo on real Prometheus text and a real /metrics server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import polars as pl
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shipyard.errors import MonitoringConfigError, MonitoringError
from shipyard.monitoring.slo import (
    RequestCounts,
    SLOResult,
    SLOSettings,
    check_slos,
    parse_slo,
    request_counts,
    scrape,
    signals,
)
from shipyard.serving._metrics import Metrics

SOURCE = "shipyard.toml"


def _service_metrics(answers: dict[tuple[str, int], int], seconds: float = 0.004) -> str:
    """The /metrics text of a real serving Metrics registry after ``answers`` requests."""
    metrics = Metrics("fraud", "3")
    for (endpoint, status), count in answers.items():
        for _ in range(count):
            metrics.observe_request(endpoint, status, seconds)
    return metrics.render()[0].decode()


TRAFFIC = {
    ("/predict", 200): 900,
    ("/v2/models/{name}/infer", 200): 80,
    ("/invocations", 200): 10,
    ("/predict", 422): 6,
    ("/predict", 500): 3,
    ("/v2/models/{name}/infer", 503): 1,
    ("/health", 200): 5000,  # not a prediction request
    ("/metrics", 401): 40,
}


# --------------------------------------------------------------------------- settings


def test_parse_slo_reads_the_table() -> None:
    settings = parse_slo(
        {
            "latency_ms_p99": 50,
            "error_rate": 0.001,
            "availability": 0.999,
            "feature_freshness": "2h",
            "metrics_url": "http://127.0.0.1:8000/metrics",
        },
        SOURCE,
    )
    assert settings == SLOSettings(
        50.0, 0.001, 0.999, timedelta(hours=2), "http://127.0.0.1:8000/metrics"
    )
    assert parse_slo({}, SOURCE) == SLOSettings()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("30m", timedelta(minutes=30)),
        ("2h", timedelta(hours=2)),
        (" 1.5 d ", timedelta(hours=36)),
        ("1w", timedelta(weeks=1)),
    ],
)
def test_parse_slo_durations(text: str, expected: timedelta) -> None:
    assert parse_slo({"feature_freshness": text}, SOURCE).feature_freshness == expected


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            {"latency_p99": 50},
            "shipyard.toml: [monitoring.slo] has unknown key(s) 'latency_p99'; the keys are "
            "latency_ms_p99, error_rate, availability, feature_freshness, metrics_url",
        ),
        (
            {"availability": 99.9},
            "shipyard.toml: [monitoring.slo]: availability must be a share between 0 and 1 "
            "(got 99.9); for 99.9% write 0.999",
        ),
        (
            {"error_rate": "1%"},
            "error_rate must be a share between 0 and 1 (got '1%'); write e.g. error_rate = 0.001",
        ),
        (
            {"latency_ms_p99": True},
            "latency_ms_p99 must be a positive number of milliseconds (got True)",
        ),
        (
            {"latency_ms_p99": -5},
            "latency_ms_p99 must be a positive number of milliseconds (got -5)",
        ),
        (
            {"feature_freshness": "2 hours"},
            "[monitoring.slo]: feature_freshness: expected a duration such as '30m', '2h' or '1d'"
            " (a number and one of the units s, m, h, d, w), got '2 hours'",
        ),
        ({"feature_freshness": 7200}, "feature_freshness: expected a duration"),
        ({"feature_freshness": "0h"}, "feature_freshness must be positive (got '0h')"),
        (
            {"metrics_url": "127.0.0.1:8000"},
            "metrics_url must be an http:// or https:// URL (got '127.0.0.1:8000')",
        ),
    ],
)
def test_parse_slo_errors(table: dict[str, Any], message: str) -> None:
    with pytest.raises(MonitoringConfigError) as caught:
        parse_slo(table, SOURCE)
    assert message in str(caught.value)


# --------------------------------------------------------------------------- metrics text


def test_request_counts_from_real_service_metrics() -> None:
    text = _service_metrics(TRAFFIC)
    assert request_counts(text) == RequestCounts(total=1000, server_errors=4, client_errors=6)
    # The same numbers through prometheus_client's own parser of the text format.
    [family] = [f for f in text_string_to_metric_families(text) if f.name == "shipyard_requests"]
    samples = [s for s in family.samples if s.name == "shipyard_requests_total"]
    predictions = [s for s in samples if s.labels["endpoint"] != "/health"]
    predictions = [s for s in predictions if s.labels["endpoint"] != "/metrics"]
    assert sum(s.value for s in predictions) == 1000
    assert sum(s.value for s in predictions if s.labels["status"].startswith("5")) == 4


def test_request_counts_parses_escaped_labels_and_timestamps() -> None:
    text = (
        "# HELP shipyard_requests_total Requests.\n"
        "# TYPE shipyard_requests_total counter\n"
        'shipyard_requests_total{endpoint="/predict",status="200",note="a \\"q\\" \\\\ }"} '
        "7.0 1700000000000\n"
        'shipyard_requests_total{status="502",endpoint="/predict"} 1e0\n'
        'shipyard_requests_total_other{endpoint="/predict",status="500"} 100\n'
    )
    assert request_counts(text) == RequestCounts(8.0, 1.0, 0.0)
    assert request_counts("# nothing\nup 1\n") is None


def test_request_counts_rejects_garbage() -> None:
    with pytest.raises(MonitoringError, match="line 2 of the metrics has no number as value"):
        request_counts('# ok\nshipyard_requests_total{endpoint="/predict"} lots\n')


# --------------------------------------------------------------------------- checks


def test_error_rate_and_availability_from_metrics() -> None:
    settings = SLOSettings(error_rate=0.001, availability=0.995)
    results = check_slos(settings, metrics=_service_metrics(TRAFFIC))
    detail = (
        "4 of 1,000 prediction requests answered 5xx since the service started; "
        "4xx (not counted): 6 (0.60%)"
    )
    assert results == [
        SLOResult("error_rate", 0.001, 0.004, False, detail, "share"),
        SLOResult("availability", 0.995, 0.996, True, detail, "share"),
    ]
    assert signals(results) == {
        "slo.error_rate": 0.004,
        "slo.error_rate.breached": True,
        "slo.availability": 0.996,
        "slo.availability.breached": False,
    }


def test_latency_p99_from_the_log_window() -> None:
    latency = np.arange(1, 1001, dtype=float)  # 1..1000 ms
    window = pl.DataFrame({"latency_ms": [*latency, None]})
    [result] = check_slos(SLOSettings(latency_ms_p99=50), window=window)
    expected = float(np.quantile(latency, 0.99))
    assert result == SLOResult(
        "latency_ms_p99", 50.0, expected, False, "p99 of 1,000 logged predictions", "ms"
    )
    [fast] = check_slos(SLOSettings(latency_ms_p99=2000), window=window)
    assert fast.met is True


def test_latency_p99_estimated_from_the_histogram_without_a_window() -> None:
    metrics = Metrics("fraud", "3")
    for _ in range(990):
        metrics.observe_request("/predict", 200, 0.003)  # bucket (0.0025, 0.005]
    for _ in range(10):
        metrics.observe_request("/predict", 200, 0.04)  # bucket (0.025, 0.05]
    for _ in range(10_000):
        metrics.observe_request("/health", 200, 5.0)  # not a prediction: ignored
    [result] = check_slos(SLOSettings(latency_ms_p99=10), metrics=metrics.render()[0].decode())
    # histogram_quantile: rank 990 of 1000 ends the (2.5, 5] ms bucket exactly.
    assert result.actual == pytest.approx(5.0)
    assert result.met is True
    assert result.detail == "estimated from the service's latency histogram (since it started)"


def test_freshness_is_the_stalest_view() -> None:
    ages = {"merchant": timedelta(minutes=30), "card": timedelta(hours=3)}
    [result] = check_slos(SLOSettings(feature_freshness=timedelta(hours=2)), freshness=ages)
    assert result == SLOResult(
        "feature_freshness",
        7200.0,
        10800.0,
        False,
        "stalest view 'card': newest value 10,800 s old",
        "s",
    )
    [never] = check_slos(
        SLOSettings(feature_freshness=timedelta(hours=2)), freshness={**ages, "device": None}
    )
    assert (never.met, never.detail) == (
        False,
        "no values online for the view(s) device: materialize them",
    )


@pytest.mark.parametrize(
    ("kwargs", "settings", "detail"),
    [
        ({}, SLOSettings(error_rate=0.01), "no metrics_url configured in [monitoring.slo]"),
        (
            {},
            SLOSettings(availability=0.9, metrics_url="http://x/metrics"),
            "the service's metrics were not scraped",
        ),
        (
            {"metrics": "# HELP up 1\nup 1\n"},
            SLOSettings(error_rate=0.01),
            "no shipyard_requests_total in the metrics: is this a shipyard service?",
        ),
        (
            {"metrics": _service_metrics({("/health", 200): 3})},
            SLOSettings(error_rate=0.01),
            "the service has answered no prediction requests yet",
        ),
        (
            {},
            SLOSettings(latency_ms_p99=50),
            "no prediction log window and no metrics_url configured in [monitoring.slo]",
        ),
        (
            {"window": pl.DataFrame({"latency_ms": []}, schema={"latency_ms": pl.Float64})},
            SLOSettings(latency_ms_p99=50),
            "no predictions with a latency in the window",
        ),
        (
            {"window": pl.DataFrame({"score": [0.1]})},
            SLOSettings(latency_ms_p99=50),
            "the prediction log window has no latency_ms column",
        ),
        ({}, SLOSettings(feature_freshness=timedelta(hours=1)), "online freshness not measured"),
        (
            {"freshness": {}},
            SLOSettings(feature_freshness=timedelta(hours=1)),
            "no online feature views",
        ),
    ],
)
def test_unknown_objectives_say_why(
    kwargs: dict[str, Any], settings: SLOSettings, detail: str
) -> None:
    [result] = check_slos(settings, **kwargs)
    assert (result.actual, result.met, result.detail) == (None, None, detail)
    assert signals([result])[f"slo.{result.name}.breached"] is None


def test_no_objectives_no_results() -> None:
    assert check_slos(SLOSettings(), metrics=_service_metrics(TRAFFIC)) == []


# --------------------------------------------------------------------------- scrape


@pytest.fixture
def service() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A tiny real HTTP server that serves a shipyard registry's /metrics behind a token."""
    text = _service_metrics(TRAFFIC).encode()
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(dict(self.headers))
            allowed = self.headers.get("Authorization") == "Bearer s3cret"
            self.send_response(200 if allowed else 401)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(text if allowed else b"missing or wrong token")

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test reads what arrived, not the server's log."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/metrics", seen
    server.shutdown()
    server.server_close()


def test_scrape_a_live_service(service: tuple[str, list[dict[str, str]]]) -> None:
    url, seen = service
    text = scrape(url, token="s3cret")
    assert seen[-1]["Authorization"] == "Bearer s3cret"
    assert request_counts(text) == RequestCounts(1000, 4, 6)
    [availability] = check_slos(SLOSettings(availability=0.999), metrics=text)
    assert availability.met is False


def test_scrape_without_the_token_says_so(service: tuple[str, list[dict[str, str]]]) -> None:
    url, _ = service
    with pytest.raises(MonitoringError) as caught:
        scrape(url + "?key=s3cret", token="wrong-t0ken")
    message = str(caught.value)
    assert message == (
        f"the service at {url} answered 401 Unauthorized to the metrics scrape "
        "(pass the service's token)"
    )


def test_scrape_an_unreachable_service() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
    server.server_close()  # nothing listens on the port any more
    with pytest.raises(MonitoringError) as caught:
        scrape(url, timeout=1, token="t0ken")
    message = str(caught.value)
    assert message.startswith(f"cannot scrape the service's metrics at {url}: ")
    assert "Is `shipyard serve` running there? Check metrics_url in [monitoring.slo]" in message
    assert "t0ken" not in message


def test_scrape_needs_http() -> None:
    with pytest.raises(MonitoringError, match="must be an http:// or https:// URL"):
        scrape("file:///etc/passwd")


def test_results_are_plain_json() -> None:
    result = SLOResult("availability", 0.999, 0.5, False, "d", "share")
    assert result.to_dict() == {
        "name": "availability",
        "objective": 0.999,
        "actual": 0.5,
        "met": False,
        "detail": "d",
        "unit": "share",
    }
