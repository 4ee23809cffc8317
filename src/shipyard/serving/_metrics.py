"""What a prediction API says about itself: Prometheus metrics (OpenAPI is in ``_openapi``).

Each app gets its own ``CollectorRegistry``, never the process-wide default, so
several apps (tests, a shadow model next to the live one) can share a process
without their metric names colliding.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from shipyard.serving._openapi import docs_page, openapi_document
from shipyard.serving.log import PredictionLog

# app.py imports the self-description from here.
__all__ = ["Metrics", "docs_page", "openapi_document"]

# Request latency in seconds: fine below 10 ms, where a single-row prediction lands.
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


class Metrics:
    """The counters, histograms and gauges of one served model.

    Args:
        name: The served model's name (a label of ``shipyard_model_info``).
        version: The served model's version.
    """

    def __init__(self, name: str, version: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "shipyard_requests",
            "Requests answered, by endpoint and HTTP status.",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "shipyard_request_duration_seconds",
            "Time from request arrival to response, by endpoint.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "shipyard_predictions",
            "Predictions answered, by decision.",
            ["decision"],
            registry=self.registry,
        )
        self.batch_rows = Histogram(
            "shipyard_batch_rows",
            "Rows per batch handed to the model's score function.",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.info = Gauge(
            "shipyard_model_info",
            "The served models, by role (primary, shadow); always 1.",
            ["name", "version", "role"],
            registry=self.registry,
        )
        self.info.labels(name=name, version=version, role="primary").set(1)
        self.reloads = Counter(
            "shipyard_model_reloads",
            "Times the served model was replaced while serving (its alias moved).",
            registry=self.registry,
        )
        self.shadow = Counter(
            "shipyard_shadow_predictions",
            "Predictions of the shadow model (logged, never answered), by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.log_lag = Gauge(
            "shipyard_prediction_log_lag_seconds",
            "Age of the oldest prediction not yet written to the prediction log.",
            registry=self.registry,
        )

    def serving(self, primary: tuple[str, str], shadow: tuple[str, str] | None) -> None:
        """Name the models now served in ``shipyard_model_info``."""
        self.info.clear()
        self.info.labels(name=primary[0], version=primary[1], role="primary").set(1)
        if shadow is not None:
            self.info.labels(name=shadow[0], version=shadow[1], role="shadow").set(1)

    def watch_log(self, log: PredictionLog) -> None:
        """Report the lag of ``log`` whenever the metrics are scraped."""
        self.log_lag.set_function(log.lag_seconds)

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        """Count one answered request and its duration."""
        self.requests.labels(endpoint=endpoint, status=str(status)).inc()
        self.duration.labels(endpoint=endpoint).observe(seconds)

    def observe_decisions(self, decisions: np.ndarray[Any, Any]) -> None:
        """Count answered predictions by decision."""
        positive = int(np.count_nonzero(decisions))
        if positive:
            self.predictions.labels(decision="true").inc(positive)
        if len(decisions) - positive:
            self.predictions.labels(decision="false").inc(len(decisions) - positive)

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition of every metric, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
