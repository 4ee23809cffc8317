"""The service's Prometheus text exposition: scraping ``/metrics`` and reading its samples.

Re-exported by :mod:`shipyard.monitoring.slo` (:func:`scrape`, :func:`request_counts`,
:class:`RequestCounts`), which checks the objectives from these numbers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

from shipyard.errors import MonitoringError

__all__ = ["RequestCounts", "request_counts", "scrape"]

_REQUESTS = "shipyard_requests_total"
_DURATION_BUCKETS = "shipyard_request_duration_seconds_bucket"
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?\s*$")
_LABEL = re.compile(r'\s*([a-zA-Z_]\w*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')
_ESCAPES = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


@dataclass(frozen=True)
class RequestCounts:
    """Prediction requests counted by the service since it started, by kind of answer."""

    total: float
    server_errors: float
    client_errors: float


def request_counts(metrics: str) -> RequestCounts | None:
    """Prediction requests in ``shipyard_requests_total``; ``None`` when there is no such
    counter in ``metrics`` (Prometheus text exposition).

    Raises:
        MonitoringError: a line of ``metrics`` is not Prometheus text exposition.
    """
    found = False
    total = server = client = 0.0
    for labels, value in _samples(metrics, _REQUESTS):
        found = True
        if not _is_prediction(labels.get("endpoint", "")):
            continue
        total += value
        status = labels.get("status", "")
        server += value if status.startswith("5") else 0.0
        client += value if status.startswith("4") else 0.0
    return RequestCounts(total, server, client) if found else None


def _is_prediction(endpoint: str) -> bool:
    return endpoint in ("/predict", "/invocations") or endpoint.endswith("/infer")


def _histogram_p99(metrics: str, q: float = 0.99) -> float | None:
    """``histogram_quantile(q, ...)`` over the prediction endpoints, in milliseconds."""
    buckets: dict[float, float] = {}
    for labels, value in _samples(metrics, _DURATION_BUCKETS):
        if _is_prediction(labels.get("endpoint", "")):
            bound = float(labels.get("le", "+Inf"))
            buckets[bound] = buckets.get(bound, 0.0) + value
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] == 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        if buckets[bound] >= rank:
            if math.isinf(bound):  # Prometheus answers the highest finite bound
                return lower * 1000
            share = (rank - below) / (buckets[bound] - below)
            return (lower + (bound - lower) * share) * 1000
        lower, below = bound, buckets[bound]
    return lower * 1000


def _samples(text: str, name: str) -> Iterator[tuple[dict[str, str], float]]:
    """The labels and value of every sample of ``name`` in the text exposition ``text``."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.startswith(name):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            raise MonitoringError(f"line {number} of the metrics is not a sample: {line[:120]!r}")
        if match[1] != name:
            continue
        try:
            value = float(match[3])
        except ValueError:
            raise MonitoringError(
                f"line {number} of the metrics has no number as value: {line[:120]!r}"
            ) from None
        yield _labels(match[2] or ""), value


def _labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for match in _LABEL.finditer(text):
        value = re.sub(r"\\[\\\"n]", lambda escape: _ESCAPES[escape[0]], match[2])
        labels[match[1]] = value
    return labels


def scrape(url: str, timeout: float = 2.0, *, token: str | None = None) -> str:
    """GET the service's ``/metrics`` text; ``token`` is sent as ``Authorization: Bearer``.

    Raises:
        MonitoringError: the service cannot be reached or refuses; the message names the URL
            (without its query or credentials), never the token.
    """
    import urllib.error  # only a scrape needs the HTTP client
    import urllib.parse
    import urllib.request

    parts = urllib.parse.urlsplit(url)
    shown = urllib.parse.urlunsplit(
        (parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", "")
    )
    if parts.scheme not in ("http", "https"):
        raise MonitoringError(f"metrics_url must be an http:// or https:// URL (got {shown!r})")
    headers = {"Accept": "text/plain"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (scheme checked above)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            body: bytes = answer.read()
    except urllib.error.HTTPError as exc:
        exc.close()  # its socket, or Python warns when the error is collected
        hint = " (pass the service's token)" if exc.code == 401 else ""
        raise MonitoringError(
            f"the service at {shown} answered {exc.code} {exc.reason} to the metrics scrape{hint}"
        ) from None
    except (TimeoutError, OSError) as exc:
        why = getattr(exc, "reason", None) or exc or type(exc).__name__
        raise MonitoringError(
            f"cannot scrape the service's metrics at {shown}: {why}. Is `shipyard serve` "
            "running there? Check metrics_url in [monitoring.slo]"
        ) from None
    return body.decode("utf-8", errors="replace")
