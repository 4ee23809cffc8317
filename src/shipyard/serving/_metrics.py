"""What a prediction API says about itself: Prometheus metrics, OpenAPI, a docs page.

Each app gets its own ``CollectorRegistry``, never the process-wide default, so
several apps (tests, a shadow model next to the live one) can share a process
without their metric names colliding.
"""

from __future__ import annotations

import html
import json
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

from shipyard.serving.log import PredictionLog

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
        info = Gauge(
            "shipyard_model_info",
            "The served model; always 1.",
            ["name", "version"],
            registry=self.registry,
        )
        info.labels(name=name, version=version).set(1)
        self.log_lag = Gauge(
            "shipyard_prediction_log_lag_seconds",
            "Age of the oldest prediction not yet written to the prediction log.",
            registry=self.registry,
        )

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


# The self-description: an OpenAPI 3.1 document and a small HTML page with curl examples.

_ENDPOINTS = (
    ("POST", "/predict", "Score records in shipyard's JSON (one object, a list, or {records})"),
    ("POST", "/v2/models/{name}/infer", "Score with the Open Inference Protocol v2"),
    ("POST", "/v2/models/{name}/versions/{version}/infer", "v2 inference of one version"),
    ("GET", "/v2/models/{name}", "v2 model metadata: input and output tensors"),
    ("GET", "/v2/models/{name}/ready", "v2 model readiness"),
    ("GET", "/v2", "v2 server metadata"),
    ("GET", "/v2/health/live", "v2 liveness (no token needed)"),
    ("GET", "/v2/health/ready", "v2 readiness"),
    ("POST", "/invocations", "Score with the MLflow protocol (JSON or text/csv)"),
    ("GET", "/ping", "MLflow liveness (no token needed)"),
    ("GET", "/health", "Liveness (no token needed)"),
    ("GET", "/ready", "Readiness: 200 once the model and batcher run, else 503"),
    ("GET", "/metrics", "Prometheus metrics"),
    ("GET", "/openapi.json", "This API as OpenAPI 3.1"),
    ("GET", "/docs", "This API as an HTML page"),
)
_SAMPLES = {"integer": 0, "number": 0.5, "boolean": False}


_RECORD = {"$ref": "#/components/schemas/Record"}
_RECORDS = {"type": "array", "items": _RECORD, "minItems": 1}
_PREDICT_BODY = {
    "oneOf": [
        _RECORD,
        _RECORDS,
        {"type": "object", "properties": {"records": _RECORDS}, "required": ["records"]},
    ]
}
_PREDICTION = {
    "type": "object",
    "properties": {"score": {"type": "number"}, "decision": {"type": "boolean"}},
    "required": ["score", "decision"],
}
_ANSWER = {
    "type": "object",
    "properties": {
        "model": {"type": "string"},
        "version": {"type": "string"},
        "request_id": {"type": "string"},
        "predictions": {"type": "array", "items": _PREDICTION},
        "features": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["model", "version", "request_id", "predictions"],
}
_PROBLEMS = {
    "type": "object",
    "properties": {"errors": {"type": "array", "items": {"type": "string"}}},
}
_ERROR = {"type": "object", "properties": {"error": {"type": "string"}}}
_FAILURES = {
    "400": "Body is not valid JSON",
    "401": "Missing or wrong bearer token",
    "413": "Body too large",
    "503": "Timed out or not ready",
}


def openapi_document(name: str, version: str, record: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API, ``record`` being the JSON Schema of one input."""
    paths: dict[str, Any] = {
        path: {verb.lower(): {"summary": summary, "responses": {"200": {"description": "OK"}}}}
        for verb, path, summary in _ENDPOINTS
    }
    responses = {
        "200": {"description": "One prediction per record, in order", "content": _content(_ANSWER)},
        "422": {
            "description": "Records that break the input contract",
            "content": _content(_PROBLEMS),
        },
    }
    for code, text in _FAILURES.items():
        responses[code] = {"description": text, "content": _content(_ERROR)}
    paths["/predict"]["post"] = {
        "summary": _ENDPOINTS[0][2],
        "parameters": [{"name": "explain", "in": "query", "schema": {"type": "boolean"}}],
        "requestBody": {"required": True, "content": _content(_PREDICT_BODY)},
        "responses": responses,
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": f"{name} prediction API", "version": version},
        "paths": paths,
        "components": {
            "schemas": {"Record": record},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def docs_page(name: str, version: str, record: dict[str, Any], base: str) -> str:
    """A self-contained HTML page listing the endpoints, with curl examples against ``base``."""
    example = {column: _sample(prop) for column, prop in record["properties"].items()}
    columns = ",".join(example)
    values = ",".join(
        str(value).lower() if isinstance(value, bool) else str(value) for value in example.values()
    )
    curls = {
        "/predict": f"curl -X POST {base}/predict -H 'Content-Type: application/json' "
        f"-d '{json.dumps(example)}'",
        "/invocations": f"curl -X POST {base}/invocations -H 'Content-Type: text/csv' "
        f"--data-binary $'{columns}\\n{values}'",
    }
    rows = "".join(
        f"<tr><td>{verb}</td><td><code>{html.escape(path)}</code></td><td>{html.escape(summary)}"
        + (f"<pre>{html.escape(curls[path])}</pre>" if path in curls else "")
        + "</td></tr>"
        for verb, path, summary in _ENDPOINTS
    )
    title = html.escape(f"{name} {version}")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head><body>"
        f"<h1>{title}</h1><p>Input record schema:</p>"
        f"<pre>{html.escape(json.dumps(record, indent=2))}</pre>"
        f"<table>{rows}</table><p>Machine-readable: <a href='openapi.json'>openapi.json</a></p>"
        "</body></html>"
    )


def _sample(prop: dict[str, Any]) -> Any:
    kinds = prop.get("type", "string")
    kind = kinds[0] if isinstance(kinds, list) else kinds
    if prop.get("format") == "date-time":
        return "2024-01-01T00:00:00"
    if prop.get("format") == "date":
        return "2024-01-01"
    return _SAMPLES.get(kind, "text")
