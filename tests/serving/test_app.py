"""The prediction API end to end: three protocols, errors, auth, metrics, lifespan, log."""

from __future__ import annotations

import asyncio
import json
import math
import socket
import statistics
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import polars as pl
import pytest
import uvicorn
from starlette.exceptions import StarletteDeprecationWarning

from shipyard.serving.app import ServedModel, create_app
from shipyard.serving.log import PredictionLog, read_log

with warnings.catch_warnings():
    # Starlette 1.10 prefers the httpx2 fork for its TestClient; plain httpx still works.
    warnings.filterwarnings(
        "ignore", "Using `httpx` with `starlette.testclient`", StarletteDeprecationWarning
    )
    from starlette.testclient import TestClient

SCHEMA: dict[str, pl.DataType] = {
    "amount": pl.Float64(),
    "items": pl.Int32(),
    "country": pl.String(),
}
ROWS: list[dict[str, Any]] = [
    {"amount": 50.0, "items": 1, "country": "DE"},
    {"amount": 80.0, "items": 3, "country": None},
    {"amount": 20.0, "items": 2, "country": "FR"},
]
TOKEN = "s3cret-token"
V2_ONE_ROW = {
    "inputs": [
        {"name": "amount", "shape": [1], "datatype": "FP64", "data": [55.0]},
        {"name": "items", "shape": [1], "datatype": "INT32", "data": [2]},
    ]
}


def sigmoid_score(frame: pl.DataFrame) -> np.ndarray[Any, Any]:
    amount = frame["amount"].to_numpy()
    return np.asarray(1.0 / (1.0 + np.exp(-(amount - 50.0) / 10.0)))


def expected(amount: float) -> float:
    return 1.0 / (1.0 + math.exp(-(amount - 50.0) / 10.0))


def served(score: Any = sigmoid_score) -> ServedModel:
    return ServedModel(
        name="fraud",
        version="3",
        schema=SCHEMA,
        optional=frozenset({"country"}),
        score=score,
        threshold=0.5,
    )


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app(served())) as test_client:
        yield test_client


def test_predict_answers_one_prediction_per_record_in_order(client: TestClient) -> None:
    response = client.post("/predict", json=ROWS, headers={"X-Request-ID": "req-1"})

    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "fraud" and body["version"] == "3"
    assert body["request_id"] == "req-1" == response.headers["x-request-id"]
    assert body["predictions"] == [
        {"score": 0.5, "decision": True},
        {"score": pytest.approx(expected(80.0)), "decision": True},
        {"score": pytest.approx(expected(20.0)), "decision": False},
    ]
    assert "features" not in body


def test_predict_one_object_answers_a_list_of_one_and_explains(client: TestClient) -> None:
    response = client.post("/predict?explain=true", json={"amount": 70.0, "items": 2})

    body = response.json()
    assert len(body["request_id"]) == 32  # a fresh uuid4 hex
    assert body["predictions"] == [{"score": pytest.approx(expected(70.0)), "decision": True}]
    assert body["features"] == [{"amount": 70.0, "items": 2, "country": None}]


def test_the_three_protocols_give_identical_scores(client: TestClient) -> None:
    own = client.post("/predict", json={"records": ROWS}).json()
    v2 = client.post(
        "/v2/models/fraud/infer",
        json={
            "id": "abc",
            "inputs": [
                {"name": "amount", "shape": [3], "datatype": "FP64", "data": [50.0, 80.0, 20.0]},
                {"name": "items", "shape": [3, 1], "datatype": "INT32", "data": [[1], [3], [2]]},
                {"name": "country", "shape": [3], "datatype": "BYTES", "data": ["DE", None, "FR"]},
            ],
        },
    ).json()
    split = {"columns": list(SCHEMA), "data": [list(row.values()) for row in ROWS]}
    mlflow_json = client.post("/invocations", json={"dataframe_split": split}).json()
    csv = "amount,items,country\n50,1,DE\n80,3,\n20,2,FR\n"
    mlflow_csv = client.post(
        "/invocations", content=csv, headers={"Content-Type": "text/csv"}
    ).json()

    scores = [prediction["score"] for prediction in own["predictions"]]
    assert scores == [expected(50.0), expected(80.0), expected(20.0)]
    assert v2["model_name"] == "fraud" and v2["model_version"] == "3" and v2["id"] == "abc"
    assert v2["outputs"] == [
        {"name": "score", "shape": [3], "datatype": "FP64", "data": scores},
        {"name": "decision", "shape": [3], "datatype": "BOOL", "data": [True, True, False]},
    ]
    assert mlflow_json == {"predictions": scores}
    assert mlflow_csv == {"predictions": scores}


def test_v2_versioned_infer_and_requested_outputs(client: TestClient) -> None:
    request = {
        "inputs": [
            {"name": "amount", "shape": [1], "datatype": "FP32", "data": [60]},
            {"name": "items", "shape": [1], "datatype": "INT64", "data": [1]},
        ],
        "outputs": [{"name": "decision"}],
    }
    response = client.post("/v2/models/fraud/versions/3/infer", json=request)

    body = response.json()
    assert body["id"] == response.headers["x-request-id"]
    assert body["outputs"] == [
        {"name": "decision", "shape": [1], "datatype": "BOOL", "data": [True]}
    ]


def test_v2_metadata_health_and_unknown_models(client: TestClient) -> None:
    assert client.get("/v2").json() == {"name": "shipyard", "version": "0.1.0", "extensions": []}
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2/models/fraud/ready").json() == {"name": "fraud", "ready": True}
    metadata = client.get("/v2/models/fraud").json()
    assert metadata["versions"] == ["3"]
    assert metadata["inputs"] == [
        {"name": "amount", "datatype": "FP64", "shape": [-1]},
        {"name": "items", "datatype": "INT32", "shape": [-1]},
        {"name": "country", "datatype": "BYTES", "shape": [-1]},
    ]
    assert [output["datatype"] for output in metadata["outputs"]] == ["FP64", "BOOL"]

    unknown = client.get("/v2/models/churn")
    assert unknown.status_code == 404
    assert unknown.json() == {"error": "unknown model 'churn' (this server serves 'fraud')"}
    wrong_version = client.post("/v2/models/fraud/versions/9/infer", json={"inputs": []})
    assert wrong_version.status_code == 404
    assert "unknown version '9'" in wrong_version.json()["error"]


def test_mlflow_ping_health_and_ready(client: TestClient) -> None:
    assert client.get("/ping").status_code == 200
    assert client.get("/health").json() == {"status": "alive"}
    assert client.get("/ready").json() == {
        "ready": True,
        "model": {"name": "fraud", "version": "3"},
    }


def test_ready_is_503_before_the_lifespan_starts() -> None:
    client = TestClient(create_app(served()))  # not entered: no lifespan, no batcher

    assert client.get("/ready").status_code == 503
    response = client.post("/predict", json=ROWS[0])
    assert response.status_code == 503
    assert response.json() == {"error": "not ready: the server is starting or shutting down"}


def test_422_lists_every_problem_of_every_record(client: TestClient) -> None:
    response = client.post(
        "/predict", json=[{"amount": "a lot", "items": 1}, {"items": 2.5, "colour": "red"}]
    )

    assert response.status_code == 422
    assert response.json() == {
        "errors": [
            "record 1: unknown field 'colour' (known fields: amount, items, country)",
            "record 1: missing required field 'amount'",
            "record 0: amount: expected a number, got 'a lot' (a string)",
            "record 1: items: expected an integer from -2147483648 to 2147483647, "
            "got 2.5 (a number)",
        ]
    }


def test_400_for_invalid_json_and_malformed_v2_and_mlflow(client: TestClient) -> None:
    bad_json = client.post("/predict", content=b"{not json")
    assert bad_json.status_code == 400
    assert bad_json.json()["error"].startswith("body is not valid JSON: Expecting property name")

    v2 = client.post("/v2/models/fraud/infer", json={"inputs": "amount"})
    assert v2.status_code == 400
    assert v2.json() == {
        "error": 'expected an object with "inputs": [tensor, ...], got an object with keys inputs'
    }
    unknown_output = client.post(
        "/v2/models/fraud/infer",
        json={
            "inputs": [
                {"name": "amount", "shape": [1], "datatype": "FP64", "data": [1.0]},
                {"name": "items", "shape": [1], "datatype": "INT32", "data": [1]},
            ],
            "outputs": [{"name": "proba"}],
        },
    )
    assert unknown_output.status_code == 400
    assert unknown_output.json() == {
        "error": "unknown output 'proba' (known outputs: score, decision)"
    }

    mlflow = client.post("/invocations", json={"records": ROWS})
    assert mlflow.status_code == 400
    assert mlflow.json()["error"].startswith("expected exactly one of dataframe_split")


def test_413_for_a_body_over_the_limit() -> None:
    with TestClient(create_app(served(), max_body_bytes=100)) as client:
        declared = client.post("/predict", json=ROWS * 10)

        # A generator has no Content-Length: the streamed size is what gets checked.
        streamed = client.post("/predict", content=(b" " * 50 for _ in range(10)))
        small = client.post("/predict", json=ROWS[0])

    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.json() == {"error": "request body larger than 100 bytes; send fewer rows"}
    assert small.status_code == 200


def test_503_when_scoring_takes_longer_than_the_timeout() -> None:
    def slow(frame: pl.DataFrame) -> np.ndarray[Any, Any]:
        time.sleep(0.5)
        return sigmoid_score(frame)

    with TestClient(create_app(served(slow), timeout_s=0.1)) as client:
        response = client.post("/predict", json=ROWS[0])

    assert response.status_code == 503
    assert response.json() == {"error": "timed out after 0.1 s; try again or send fewer rows"}


def test_500_from_a_failing_score_function_then_the_server_keeps_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def fragile(frame: pl.DataFrame) -> np.ndarray[Any, Any]:
        if (frame["amount"] < 0).any():
            raise RuntimeError("negative amount broke the model")
        return sigmoid_score(frame)

    with TestClient(create_app(served(fragile))) as client:
        failed = client.post("/predict", json={"amount": -1.0, "items": 1})
        answered = client.post("/predict", json={"amount": 50.0, "items": 1})

    request_id = failed.headers["x-request-id"]
    assert failed.status_code == 500
    assert failed.json() == {
        "error": f"internal error; quote request id {request_id} when reporting it",
        "request_id": request_id,
    }
    assert f"request {request_id} to /predict failed" in caplog.text
    assert "negative amount broke the model" in caplog.text
    assert answered.status_code == 200
    assert answered.json()["predictions"] == [{"score": 0.5, "decision": True}]


def test_a_token_guards_every_endpoint_but_the_liveness_ones(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with TestClient(create_app(served(), token=TOKEN)) as client:
        for path in ("/health", "/v2/health/live", "/ping"):
            assert client.get(path).status_code == 200, path
        for path in ("/ready", "/metrics", "/openapi.json", "/docs", "/v2", "/v2/models/fraud"):
            assert client.get(path).status_code == 401, path
        refused = client.post("/predict", json=ROWS[0], headers={"Authorization": "Bearer nope"})
        allowed = client.post(
            "/predict", json=ROWS[0], headers={"Authorization": f"Bearer {TOKEN}"}
        )

    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert refused.json() == {
        "error": "missing or wrong token: send the header 'Authorization: Bearer <token>'"
    }
    assert allowed.status_code == 200
    assert TOKEN not in caplog.text


def test_metrics_count_requests_predictions_and_batches(client: TestClient) -> None:
    client.post("/predict", json=ROWS)
    client.post("/predict", json=[{"amount": "x", "items": 1}])
    client.get("/v2/models/nope")

    response = client.get("/metrics")

    text = response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert 'shipyard_requests_total{endpoint="/predict",status="200"} 1.0' in text
    assert 'shipyard_requests_total{endpoint="/predict",status="422"} 1.0' in text
    assert 'shipyard_requests_total{endpoint="/v2/models/{name}",status="404"} 1.0' in text
    assert 'shipyard_request_duration_seconds_count{endpoint="/predict"} 2.0' in text
    assert 'shipyard_predictions_total{decision="true"} 2.0' in text
    assert 'shipyard_predictions_total{decision="false"} 1.0' in text
    assert "shipyard_batch_rows_count 1.0" in text and "shipyard_batch_rows_sum 3.0" in text
    assert 'shipyard_model_info{name="fraud",role="primary",version="3"} 1.0' in text
    assert "shipyard_prediction_log_lag_seconds 0.0" in text


def test_two_apps_in_one_process_keep_separate_metrics() -> None:
    with TestClient(create_app(served())) as first, TestClient(create_app(served())) as second:
        first.post("/predict", json=ROWS[0])
        assert 'status="200"} 1.0' in first.get("/metrics").text
        assert 'endpoint="/predict"' not in second.get("/metrics").text


def test_openapi_describes_predict_with_the_records_schema(client: TestClient) -> None:
    document = json.loads(client.get("/openapi.json").content)

    assert document["openapi"] == "3.1.0"
    assert document["components"]["schemas"]["Record"] == {
        "type": "object",
        "properties": {
            "amount": {"type": "number"},
            "items": {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1},
            "country": {"type": ["string", "null"]},
        },
        "required": ["amount", "items"],
        "additionalProperties": False,
    }
    predict = document["paths"]["/predict"]["post"]
    assert set(predict["responses"]) == {"200", "400", "401", "413", "422", "503"}
    answer = predict["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer["required"] == ["model", "version", "request_id", "predictions"]
    assert {"/invocations", "/v2/models/{name}/infer", "/metrics", "/docs"} <= set(
        document["paths"]
    )


def test_docs_page_lists_endpoints_with_curl_examples(client: TestClient) -> None:
    page = client.get("/docs")

    assert page.headers["content-type"].startswith("text/html")
    assert "curl -X POST http://testserver/predict" in page.text
    assert "/v2/models/{name}/infer" in page.text
    assert "<script" not in page.text


def free_socket() -> socket.socket:
    # proto=IPPROTO_TCP, as uvicorn's own sockets have: asyncio sets TCP_NODELAY only then,
    # and without it every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.mark.slow
def test_a_real_server_logs_every_answered_request(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "log", model="fraud", flush_seconds=0.2)
    server = uvicorn.Server(
        uvicorn.Config(create_app(served(), log=log), log_level="warning", ws="none")
    )
    sock = free_socket()
    port = sock.getsockname()[1]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.02)
        base = f"http://127.0.0.1:{port}"

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=base) as http:
                requests = [
                    http.post("/predict", json={"amount": float(i), "items": i}) for i in range(60)
                ]
                requests += [
                    http.post("/invocations", json={"dataframe_records": [ROWS[0]]})
                    for _ in range(20)
                ]
                requests += [
                    http.post("/v2/models/fraud/infer", json=V2_ONE_ROW) for _ in range(20)
                ]
                return await asyncio.gather(*requests)

        responses = asyncio.run(burst())
        latencies = single_row_latencies(base, 500)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()

    assert not thread.is_alive()
    assert [response.status_code for response in responses] == [200] * 100
    answered = {response.headers["x-request-id"] for response in responses}
    logged = read_log(tmp_path / "log").collect()
    assert answered <= set(logged["request_id"])
    assert logged.height == 100 + 500
    p50, p99 = (
        statistics.quantiles(latencies, n=100)[49],
        statistics.quantiles(latencies, n=100)[98],
    )
    print(f"single-row /predict over 500 sequential requests: p50 {p50:.2f} ms, p99 {p99:.2f} ms")


def single_row_latencies(base: str, count: int) -> list[float]:
    latencies = []
    with httpx.Client(base_url=base) as http:
        for i in range(count):
            started = time.perf_counter()
            response = http.post("/predict", json={"amount": float(i % 100), "items": 1})
            latencies.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
    return latencies


def test_a_request_of_many_rows_is_logged_as_one_table_like_single_rows(tmp_path: Path) -> None:
    many = [{**ROWS[i % 3], "amount": float(i)} for i in range(40)]
    log = PredictionLog(tmp_path / "log", model="fraud", flush_seconds=60)
    with TestClient(create_app(served(), log=log)) as client:
        alone = client.post("/predict", json=many[7], headers={"X-Request-ID": "one"}).json()
        batch = client.post("/predict", json=many, headers={"X-Request-ID": "many"}).json()
    logged = read_log(tmp_path / "log").collect()
    assert logged.height == 41
    rows = logged.filter(pl.col("request_id") == "many")
    assert [json.loads(text) for text in rows["inputs_json"]] == many
    assert rows["score"].to_list() == [p["score"] for p in batch["predictions"]]
    assert rows["decision"].to_list() == [int(p["decision"]) for p in batch["predictions"]]
    single = logged.filter(pl.col("request_id") == "one").row(0, named=True)
    twin = rows.row(7, named=True)
    same = ("inputs_json", "features_json", "score", "decision", "model_version", "shadow")
    assert {k: single[k] for k in same} == {k: twin[k] for k in same}
    assert single["score"] == alone["predictions"][0]["score"]
