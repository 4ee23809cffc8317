"""The prediction API fuzzed from its own OpenAPI document, on a real server on 127.0.0.1.

Schemathesis reads ``/openapi.json`` and generates requests for every operation it
lists: valid ones, which must be answered as documented, and invalid ones, which
must be refused with a 4xx. No request may ever get a 5xx.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import polars as pl
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import CheckFunction

from shipyard.serving.app import ServedModel, create_app

SCHEMA: dict[str, pl.DataType] = {
    "amount": pl.Float64(),
    "items": pl.Int32(),
    "country": pl.String(),
    "is_new": pl.Boolean(),
    "seen_at": pl.Datetime("us"),
}
# About 10 s of CPU for the whole file, most of it in generating the cases.
pytestmark = pytest.mark.slow

TOKEN = "fuzz-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EXAMPLES = 40
CONFORMANCE = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
]


def score(frame: pl.DataFrame) -> np.ndarray[Any, Any]:
    # tanh never overflows, whatever amount the fuzzer sends.
    return np.asarray(0.5 + 0.5 * np.tanh((frame["amount"].to_numpy() - 50.0) / 20.0))


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    model = ServedModel(
        name="fraud",
        version="3",
        schema=SCHEMA,
        optional=frozenset({"country"}),
        score=score,
        threshold=0.5,
    )
    config = uvicorn.Config(create_app(model, token=TOKEN), log_level="critical", ws="none")
    server = uvicorn.Server(config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
    thread.start()
    try:
        for _ in range(250):
            if server.started:
                break
            time.sleep(0.02)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="module")
def api(base_url: str) -> Any:
    return schemathesis.openapi.from_url(f"{base_url}/openapi.json", headers=AUTH)


def checks(*names: str) -> list[CheckFunction]:
    return [getattr(schemathesis.checks, name) for name in names]


def fuzz(
    api: Any, mode: GenerationMode, run: Callable[[Any], None], examples: int = EXAMPLES
) -> list[str]:
    """Run ``run(case)`` on generated cases of every operation; the labels fuzzed."""
    labels = []
    for result in api.get_all_operations():
        operation = result.ok()
        if mode == GenerationMode.NEGATIVE and not negatable(operation):
            continue
        labels.append(operation.label)

        @settings(
            max_examples=examples,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def one(case: Any) -> None:
            run(case)

        one()
    return labels


def negatable(operation: Any) -> bool:
    """Whether the operation takes anything a request could get wrong."""
    return bool(len(operation.body) or len(operation.path_parameters) or len(operation.query))


def test_the_document_is_valid_openapi_listing_every_operation(api: Any) -> None:
    api.validate()
    labels = [result.ok().label for result in api.get_all_operations()]
    # Loaded from a URL, schemathesis leaves out the operation serving the document itself.
    assert labels == [
        "POST /predict",
        "POST /v2/models/{name}/infer",
        "POST /v2/models/{name}/versions/{version}/infer",
        "GET /v2/models/{name}",
        "GET /v2/models/{name}/ready",
        "GET /v2/models/{name}/versions/{version}",
        "GET /v2/models/{name}/versions/{version}/ready",
        "GET /v2",
        "GET /v2/health/live",
        "GET /v2/health/ready",
        "POST /invocations",
        "GET /ping",
        "GET /health",
        "GET /ready",
        "GET /metrics",
        "GET /docs",
    ]


def test_valid_requests_are_answered_as_documented(api: Any, base_url: str) -> None:
    statuses: dict[str, set[int]] = {}

    def run(case: Any) -> None:
        response = case.call_and_validate(
            base_url=base_url, headers=AUTH, checks=checks(*CONFORMANCE)
        )
        statuses.setdefault(case.operation.label, set()).add(response.status_code)

    fuzz(api, GenerationMode.POSITIVE, run)

    # Generated records reach the model; generated v2 tensors rarely agree on a row count.
    assert 200 in statuses["POST /predict"] and 200 in statuses["POST /invocations"]
    assert statuses["GET /v2/models/{name}"] == {200}


def test_invalid_requests_get_a_4xx_never_a_5xx(api: Any, base_url: str) -> None:
    fuzzed = fuzz(
        api,
        GenerationMode.NEGATIVE,
        lambda case: case.call_and_validate(
            base_url=base_url,
            headers=AUTH,
            checks=checks("not_a_server_error", "negative_data_rejection"),
        ),
    )

    assert fuzzed == [
        "POST /predict",
        "POST /v2/models/{name}/infer",
        "POST /v2/models/{name}/versions/{version}/infer",
        "GET /v2/models/{name}",
        "GET /v2/models/{name}/ready",
        "GET /v2/models/{name}/versions/{version}",
        "GET /v2/models/{name}/versions/{version}/ready",
        "POST /invocations",
    ]


def test_without_the_token_every_guarded_operation_answers_401(api: Any, base_url: str) -> None:
    statuses: dict[str, set[int]] = {}

    def run(case: Any) -> None:
        response = case.call_and_validate(base_url=base_url, checks=checks(*CONFORMANCE))
        statuses.setdefault(case.operation.label, set()).add(response.status_code)

    fuzz(api, GenerationMode.POSITIVE, run, examples=5)

    answered = {label for label, seen in statuses.items() if seen != {401}}
    assert answered == {"GET /health", "GET /ping", "GET /v2/health/live"}
    assert len(statuses) == 16
