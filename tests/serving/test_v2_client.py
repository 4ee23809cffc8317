"""A stock Open Inference Protocol v2 client works unchanged: NVIDIA's ``tritonclient``
(the HTTP client of Triton, also used against KServe and MLServer) calls a real server
on 127.0.0.1 with its own methods, and gets the scores ``/predict`` answers.

The client's default, binary input tensors (the binary tensor data extension), is read
too; answers are always JSON, which the client reads the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from shipyard.serving.app import create_app
from tests.serving.live import running
from tests.serving.test_app import ROWS, served


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    with running(create_app(served())) as found:
        yield found


@pytest.fixture
def client(address: str) -> Iterator[Any]:
    triton = httpclient.InferenceServerClient(url=address)
    try:
        yield triton
    finally:
        triton.close()


def column(name: str, values: np.ndarray[Any, Any], datatype: str) -> Any:
    tensor = httpclient.InferInput(name, list(values.shape), datatype)
    return tensor.set_data_from_numpy(values, binary_data=False)


def inputs() -> list[Any]:
    return [
        column("amount", np.array([50.0, 80.0, 20.0]), "FP64"),
        column("items", np.array([1, 3, 2], dtype=np.int32), "INT32"),
        column("country", np.array(["DE", "", "FR"], dtype=np.object_), "BYTES"),
    ]


def predicted(address: str) -> dict[str, list[Any]]:
    rows = [{**row, "country": row["country"] or ""} for row in ROWS]
    body = httpx.post(f"http://{address}/predict", json=rows).json()
    return {
        "score": [p["score"] for p in body["predictions"]],
        "decision": [p["decision"] for p in body["predictions"]],
    }


def test_health_server_metadata_and_model_readiness(client: Any) -> None:
    assert client.is_server_live() is True
    assert client.is_server_ready() is True
    assert client.is_model_ready("fraud") is True
    assert client.is_model_ready("churn") is False
    assert client.get_server_metadata() == {
        "name": "shipyard",
        "version": "0.1.0",
        "extensions": [],
    }


def test_model_metadata_describes_one_tensor_per_column(client: Any) -> None:
    metadata = client.get_model_metadata("fraud")

    assert metadata["name"] == "fraud" and metadata["versions"] == ["3"]
    assert metadata["inputs"] == [
        {"name": "amount", "datatype": "FP64", "shape": [-1]},
        {"name": "items", "datatype": "INT32", "shape": [-1]},
        {"name": "country", "datatype": "BYTES", "shape": [-1]},
    ]
    assert metadata["outputs"] == [
        {"name": "score", "datatype": "FP64", "shape": [-1]},
        {"name": "decision", "datatype": "BOOL", "shape": [-1]},
    ]


def test_infer_with_requested_outputs_equals_predict(client: Any, address: str) -> None:
    outputs = [
        httpclient.InferRequestedOutput("score", binary_data=False),
        httpclient.InferRequestedOutput("decision", binary_data=False),
    ]

    result = client.infer("fraud", inputs(), outputs=outputs, request_id="abc-1")

    expected = predicted(address)
    response = result.get_response()
    assert response["model_name"] == "fraud" and response["model_version"] == "3"
    assert response["id"] == "abc-1"
    score, decision = result.as_numpy("score"), result.as_numpy("decision")
    assert score.dtype == np.float64 and decision.dtype == np.bool_
    assert score.tolist() == expected["score"]
    assert decision.tolist() == expected["decision"] == [True, True, False]


def test_infer_of_a_version_and_without_requested_outputs(client: Any, address: str) -> None:
    # Without outputs the client asks for binary outputs; the server answers JSON, which
    # the client reads the same way.
    result = client.infer("fraud", inputs(), model_version="3")

    assert result.as_numpy("score").tolist() == predicted(address)["score"]
    assert result.as_numpy("decision").tolist() == [True, True, False]


def test_the_client_raises_the_servers_message_for_a_bad_request(client: Any) -> None:
    wrong = [column("amount", np.array(["a lot"], dtype=np.object_), "BYTES")]

    with pytest.raises(InferenceServerException) as raised:
        client.infer("fraud", wrong)

    assert raised.value.status() == "400"
    assert raised.value.message() == (
        "2 problems in the request:\n"
        "- input 'amount': datatype BYTES cannot carry a number (expected one of FP16, "
        "FP32, FP64, INT8, INT16, INT32, INT64, UINT8, UINT16, UINT32, UINT64)\n"
        "- missing required input 'items'"
    )


def binary_inputs() -> list[Any]:
    """The client's defaults: ``set_data_from_numpy`` sends raw bytes after the JSON."""
    made = []
    for name, values, datatype in (
        ("amount", np.array([50.0, 80.0, 20.0]), "FP64"),
        ("items", np.array([1, 3, 2], dtype=np.int32), "INT32"),
        ("country", np.array(["DE", "", "FR"], dtype=np.object_), "BYTES"),
    ):
        tensor = httpclient.InferInput(name, list(values.shape), datatype)
        made.append(tensor.set_data_from_numpy(values))
    return made


def test_binary_input_tensors_the_clients_default_give_the_same_scores(
    client: Any, address: str
) -> None:
    result = client.infer("fraud", binary_inputs())

    assert result.as_numpy("score").tolist() == predicted(address)["score"]
    assert result.as_numpy("decision").tolist() == [True, True, False]


def test_a_binary_body_whose_sizes_do_not_add_up_is_a_400(address: str) -> None:
    header = b'{"inputs":[{"name":"amount","shape":[2],"datatype":"FP64",'
    header += b'"parameters":{"binary_data_size":16}}]}'
    response = httpx.post(
        f"http://{address}/v2/models/fraud/infer",
        content=header + np.array([1.0]).tobytes(),  # 8 bytes where 16 were announced
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert response.status_code == 400
    assert "binary_data_size 16 runs past the end of the body" in response.json()["error"]


def test_a_version_has_its_own_metadata_and_readiness(client: Any) -> None:
    assert client.is_model_ready("fraud", "3") is True
    assert client.get_model_metadata("fraud", "3")["versions"] == ["3"]
    assert client.is_model_ready("fraud", "4") is False


def test_an_unknown_path_answers_json(address: str) -> None:
    response = httpx.get(f"http://{address}/v2/nothing/here")
    assert response.status_code == 404
    assert response.json() == {"error": "no endpoint /v2/nothing/here; see /docs or /openapi.json"}
    assert httpx.get(f"http://{address}/predict").status_code == 405
