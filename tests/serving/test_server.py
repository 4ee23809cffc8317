"""``shipyard serve`` as a user runs it: a real process on 127.0.0.1, a registered model,
a promotion while clients call it, SIGTERM while clients call it, tokens, workers."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import polars as pl
import pytest
from sklearn.linear_model import LogisticRegression

from shipyard import pipeline, step
from shipyard.core.project import Project
from shipyard.registry.registry import Registry
from shipyard.serving.log import read_log
from tests.helpers import CLI

FEATURES = ["amount", "items"]
ROW = {"amount": 70.0, "items": 2}


@step(cache=False)
def fit(c: float) -> LogisticRegression:
    rng = np.random.default_rng(0)
    frame = pl.DataFrame({"amount": rng.uniform(0, 100, 300), "items": rng.integers(1, 5, 300)})
    label = (frame["amount"].to_numpy() > 50).astype(int)
    return LogisticRegression(C=c, max_iter=500).fit(frame, label)


@pipeline
def training(c: float = 1.0) -> Any:
    return fit(c)


def add_version(registry: Registry, c: float, threshold: float) -> int:
    version = registry.register_run(
        "plain",
        training(c=c),
        step="fit",
        features=FEATURES,
        lineage={"input_schema": {"amount": "Float64", "items": "Int64"}},
    )
    evaluation = {"evaluation": {"threshold": threshold}}
    registry.record_gate("plain", version.version, evaluation, passed=True)
    return version.version


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``shipyard serve`` in a subprocess, its stderr kept for failure messages."""

    def __init__(self, cwd: Path, env: dict[str, str], *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [*CLI, "serve", *args, "--port", str(self.port)]
        self.stderr = ""
        self.process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )

    def wait_ready(self, timeout: float = 30.0, headers: dict[str, str] | None = None) -> float:
        started = time.perf_counter()
        while time.perf_counter() - started < timeout:
            if self.process.poll() is not None:
                stderr = self.process.stderr.read().decode()  # type: ignore[union-attr]
                raise AssertionError(f"server exited: {stderr}")
            with contextlib.suppress(httpx.TransportError):  # not listening yet
                if httpx.get(self.url + "/ready", headers=headers, timeout=1).status_code == 200:
                    return time.perf_counter() - started
            time.sleep(0.05)
        raise AssertionError("the server was not ready in time")

    def stop(self) -> bool:
        """SIGTERM, then whether it drained and exited cleanly (uvicorn re-raises the
        signal once shut down, so the exit status is SIGTERM's)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        self.stderr = self.process.stderr.read().decode()  # type: ignore[union-attr]
        self.process.stdout.close()  # type: ignore[union-attr]
        self.process.stderr.close()  # type: ignore[union-attr]
        return code in (0, -signal.SIGTERM) and "Traceback" not in self.stderr


class Load:
    """Client threads calling /predict until stopped; every answer kept."""

    def __init__(self, url: str, threads: int = 4) -> None:
        self.url = url
        self.answers: list[tuple[int, dict[str, Any]]] = []
        self.by_client: list[list[dict[str, Any]]] = [[] for _ in range(threads)]
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(mine,)) for mine in self.by_client
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _run(self, mine: list[dict[str, Any]]) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self._stop.is_set():
                try:
                    response = client.post("/predict", json=ROW)
                except httpx.TransportError as exc:
                    self.errors.append(repr(exc))
                    return  # the server went away (SIGTERM): stop this client
                self.answers.append((response.status_code, response.json()))
                mine.append(response.json())


@pytest.fixture
def served_project(project: Project, cli_env: dict[str, str]) -> Registry:
    registry = Registry(project)
    add_version(registry, 1.0, threshold=0.5)
    registry.promote("plain", 1)
    return registry


def test_serve_answers_and_follows_a_promotion_without_a_failed_request(
    project_dir: Path, served_project: Registry, cli_env: dict[str, str]
) -> None:
    server = Server(project_dir, cli_env, "plain@production", "--reload", "0.2")
    try:
        server.wait_ready()
        first = httpx.post(server.url + "/predict", json=ROW).json()
        assert (first["model"], first["version"]) == ("plain", "1")
        with Load(server.url) as load:
            time.sleep(0.5)
            add_version(served_project, 0.01, threshold=0.9)
            served_project.promote("plain", 2)
            deadline = time.time() + 15
            while time.time() < deadline:
                if any(body.get("version") == "2" for _, body in load.answers[-20:]):
                    break
                time.sleep(0.1)
            time.sleep(0.5)
        statuses = {status for status, _ in load.answers}
        versions = [body["version"] for _, body in load.answers]
        assert statuses == {200}, [a for a in load.answers if a[0] != 200][:3]
        assert load.errors == []
        assert "1" in versions and "2" in versions
        for answers in load.by_client:  # each client's requests follow one another:
            seen = [body["version"] for body in answers]
            switch = seen.index("2") if "2" in seen else len(seen)  # once the new version
            assert set(seen[switch:]) <= {"2"}  # answered, no later request got the old one
        metrics = httpx.get(server.url + "/metrics").text
        assert 'shipyard_model_info{name="plain",role="primary",version="2"} 1.0' in metrics
        assert "shipyard_model_reloads_total 1.0" in metrics
    finally:
        assert server.stop(), server.stderr


def test_sigterm_under_load_drains_and_every_answer_is_in_the_log(
    project_dir: Path, served_project: Registry, cli_env: dict[str, str], tmp_path: Path
) -> None:
    log_dir = tmp_path / "log"
    server = Server(
        project_dir, cli_env, "plain:1", "--log-dir", str(log_dir), "--flush", "5"
    )  # a long flush interval: only the shutdown flush can save the answers
    server.wait_ready()
    with Load(server.url) as load:
        time.sleep(1.0)
        assert server.stop(), server.stderr
    answered = [body["request_id"] for status, body in load.answers if status == 200]
    assert len(answered) > 20
    assert {status for status, _ in load.answers} <= {200, 503}
    logged = read_log(log_dir).collect()
    assert set(answered) <= set(logged["request_id"].to_list())
    assert logged["model_version"].unique().to_list() == ["1"]


def test_a_shadow_is_scored_and_logged_never_answered(
    project_dir: Path, served_project: Registry, cli_env: dict[str, str], tmp_path: Path
) -> None:
    add_version(served_project, 0.01, threshold=0.9)
    served_project.promote("plain", 2, alias="shadow")
    log_dir = tmp_path / "log"
    server = Server(project_dir, cli_env, "plain@production", "--log-dir", str(log_dir))
    try:
        server.wait_ready()
        ready = httpx.get(server.url + "/ready").json()
        assert ready["shadow"] == {"name": "plain", "version": "2"}
        answer = httpx.post(server.url + "/predict", json=[ROW, ROW]).json()
        assert answer["version"] == "1"
    finally:
        assert server.stop(), server.stderr
    logged = read_log(log_dir).collect().filter(pl.col("request_id") == answer["request_id"])
    assert sorted(zip(logged["model_version"], logged["shadow"], strict=True)) == [
        ("1", False),
        ("1", False),
        ("2", True),
        ("2", True),
    ]


def test_a_public_interface_needs_a_token(
    project_dir: Path, served_project: Registry, cli_env: dict[str, str]
) -> None:
    refused = subprocess.run(
        [*CLI, "serve", "plain:1", "--host", "0.0.0.0"],
        cwd=project_dir,
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert "refusing to serve on 0.0.0.0 without a token" in refused.stderr
    assert "SHIPYARD_API_TOKEN" in refused.stderr
    env = {**cli_env, "SHIPYARD_API_TOKEN": "t0ken"}
    server = Server(project_dir, env, "plain:1", "--workers", "2")
    auth = {"Authorization": "Bearer t0ken"}
    try:
        server.wait_ready(headers=auth)
        assert httpx.get(server.url + "/ready").status_code == 401
        assert httpx.post(server.url + "/predict", json=ROW).status_code == 401
        for _ in range(20):  # two worker processes, one port
            answer = httpx.post(server.url + "/predict", json=ROW, headers=auth)
            assert answer.status_code == 200, answer.text
    finally:
        assert server.stop(), server.stderr
    assert "t0ken" not in server.stderr


def test_an_unknown_model_is_a_clear_error(
    project_dir: Path, served_project: Registry, cli_env: dict[str, str]
) -> None:
    result = subprocess.run(
        [*CLI, "serve", "nope@production"],
        cwd=project_dir,
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "nope" in result.stderr and "plain" in result.stderr
