"""What a prediction API says about itself: an OpenAPI 3.1 document and a docs page.

The document lists every endpoint with each status it can answer and the JSON Schema
of each body, so that clients, and the schemathesis fuzzing in
``tests/serving/test_fuzz.py``, can hold the server to it.
"""

from __future__ import annotations

import html
import json
from typing import Any

_ENDPOINTS = (
    ("POST", "/predict", "Score records in shipyard's JSON (one object, a list, or {records})"),
    ("POST", "/v2/models/{name}/infer", "Score with the Open Inference Protocol v2"),
    ("POST", "/v2/models/{name}/versions/{version}/infer", "v2 inference of one version"),
    ("GET", "/v2/models/{name}", "v2 model metadata: input and output tensors"),
    ("GET", "/v2/models/{name}/ready", "v2 model readiness"),
    ("GET", "/v2/models/{name}/versions/{version}", "v2 metadata of one version"),
    ("GET", "/v2/models/{name}/versions/{version}/ready", "v2 readiness of one version"),
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


def _single(key: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {key: schema},
        "required": [key],
        "additionalProperties": False,
    }


def _content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


_STRING = {"type": "string"}
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
        "model": _STRING,
        "version": _STRING,
        "request_id": _STRING,
        "predictions": {"type": "array", "items": _PREDICTION},
        "features": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["model", "version", "request_id", "predictions"],
}
_TENSOR = {
    "type": "object",
    "properties": {
        "name": _STRING,
        "shape": {"type": "array", "items": {"type": "integer"}},
        "datatype": _STRING,
        "data": {"type": "array"},
    },
    "required": ["name", "shape", "datatype", "data"],
}
_V2_REQUEST = {
    "type": "object",
    "properties": {
        "id": _STRING,
        "parameters": {"type": "object"},
        "inputs": {"type": "array", "items": _TENSOR},
        "outputs": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"enum": ["score", "decision"]}},
                "required": ["name"],
            },
        },
    },
    "required": ["inputs"],
}
_V2_ANSWER = {
    "type": "object",
    "properties": {
        "model_name": _STRING,
        "model_version": {"type": ["string", "null"]},
        "id": _STRING,
        "outputs": {"type": "array", "items": _TENSOR},
    },
    "required": ["model_name", "model_version", "id", "outputs"],
}
_TENSOR_META = {
    "type": "object",
    "properties": {
        "name": _STRING,
        "datatype": _STRING,
        "shape": {"type": "array", "items": {"type": "integer"}},
    },
    "required": ["name", "datatype", "shape"],
}
_V2_MODEL = {
    "type": "object",
    "properties": {
        "name": _STRING,
        "versions": {"type": "array", "items": _STRING},
        "platform": _STRING,
        "inputs": {"type": "array", "items": _TENSOR_META},
        "outputs": {"type": "array", "items": _TENSOR_META},
    },
    "required": ["name", "versions", "platform", "inputs", "outputs"],
}
_V2_SERVER = {
    "type": "object",
    "properties": {
        "name": _STRING,
        "version": _STRING,
        "extensions": {"type": "array", "items": _STRING},
    },
    "required": ["name", "version", "extensions"],
}
_MLFLOW_BODY = {
    "oneOf": [
        _single(
            "dataframe_split",
            {
                "type": "object",
                "properties": {
                    "columns": {"type": "array", "items": _STRING},
                    "data": {"type": "array", "items": {"type": "array"}},
                },
                "required": ["columns", "data"],
            },
        ),
        _single("dataframe_records", _RECORDS),
        _single("instances", {"type": "array", "minItems": 1}),
        _single("inputs", {"type": "object", "additionalProperties": {"type": "array"}}),
    ]
}
_MLFLOW_ANSWER = {
    "type": "object",
    "properties": {"predictions": {"type": "array", "items": {"type": "number"}}},
    "required": ["predictions"],
}
_ALIVE = {"type": "object", "properties": {"status": {"const": "alive"}}, "required": ["status"]}
_READY = {
    "type": "object",
    "properties": {"ready": {"type": "boolean"}, "name": _STRING},
    "required": ["ready"],
}
_PROBLEMS = {
    "type": "object",
    "properties": {"errors": {"type": "array", "items": _STRING}},
    "required": ["errors"],
}
_ERROR = {
    "type": "object",
    "properties": {"error": _STRING, "request_id": _STRING},
    "required": ["error"],
}
_FAILURES = {
    "400": "Body or parameters break the protocol",
    "401": "Missing or wrong bearer token (when the server has one)",
    "404": "No such model or version",
    "413": "Body too large",
    "503": "Timed out or not ready",
}
# Which failures each endpoint can answer besides 200; all but the open ones can answer 401.
_SCORING = ("400", "401", "413", "503")
_ANSWERS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "/predict": (_ANSWER, _SCORING),
    "/v2/models/{name}/infer": (_V2_ANSWER, (*_SCORING, "404")),
    "/v2/models/{name}/versions/{version}/infer": (_V2_ANSWER, (*_SCORING, "404")),
    "/v2/models/{name}": (_V2_MODEL, ("401", "404")),
    "/v2/models/{name}/ready": (_READY, ("401", "404", "503")),
    "/v2/models/{name}/versions/{version}": (_V2_MODEL, ("401", "404")),
    "/v2/models/{name}/versions/{version}/ready": (_READY, ("401", "404", "503")),
    "/v2": (_V2_SERVER, ("401",)),
    "/v2/health/live": (_ALIVE, ()),
    "/v2/health/ready": (_READY, ("401", "503")),
    "/invocations": (_MLFLOW_ANSWER, _SCORING),
    "/ping": (_ALIVE, ()),
    "/health": (_ALIVE, ()),
    "/ready": (_READY, ("401", "503")),
    "/metrics": (_STRING, ("401",)),
    "/openapi.json": ({"type": "object"}, ("401",)),
    "/docs": (_STRING, ("401",)),
}
_MEDIA = {"/metrics": "text/plain", "/docs": "text/html"}


def openapi_document(name: str, version: str, record: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API, ``record`` being the JSON Schema of one input."""
    paths: dict[str, Any] = {
        path: {verb.lower(): _operation(path, summary, name, version)}
        for verb, path, summary in _ENDPOINTS
    }
    predict = paths["/predict"]["post"]
    predict["parameters"] = [{"name": "explain", "in": "query", "schema": {"type": "boolean"}}]
    predict["requestBody"] = {"required": True, "content": _content(_PREDICT_BODY)}
    predict["responses"]["422"] = {
        "description": "Records that break the input contract",
        "content": _content(_PROBLEMS),
    }
    for path in ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer"):
        paths[path]["post"]["requestBody"] = {"required": True, "content": _content(_V2_REQUEST)}
    paths["/invocations"]["post"]["requestBody"] = {
        "required": True,
        "content": {**_content(_MLFLOW_BODY), "text/csv": {"schema": _STRING}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": f"{name} prediction API", "version": version},
        "paths": paths,
        "components": {
            "schemas": {"Record": record},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        # The token is optional: a server started without one answers everyone.
        "security": [{"bearer": []}, {}],
    }


def _operation(path: str, summary: str, name: str, version: str) -> dict[str, Any]:
    ok, failures = _ANSWERS[path]
    media = _MEDIA.get(path, "application/json")
    responses = {"200": {"description": "OK", "content": {media: {"schema": ok}}}}
    for code in failures:
        responses[code] = {"description": _FAILURES[code], "content": _content(_ERROR)}
    operation: dict[str, Any] = {"summary": summary, "responses": responses}
    served = {"name": name, "version": version}
    parameters = [
        {"name": key, "in": "path", "required": True, "schema": {"type": "string", "enum": [value]}}
        for key, value in served.items()
        if f"{{{key}}}" in path
    ]
    if parameters:
        operation["parameters"] = parameters
    if "401" not in failures:
        operation["security"] = []
    return operation


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
