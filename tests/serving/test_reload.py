"""Replacing the served model while requests are in flight: each finishes on the model it
started with, none fails, and the replaced model's batcher closes once they are done."""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

import httpx
import polars as pl

from shipyard.serving.app import INLINE_ROWS, create_app
from shipyard.serving.model import ServedModel
from tests.serving.live import running
from tests.serving.test_app import ROWS, served


class Flip:
    """A watcher that offers ``new`` once ``go`` is set."""

    interval_s = 0.02

    def __init__(self, new: ServedModel) -> None:
        self.new = new
        self.go = threading.Event()
        self.done = False

    def check(self) -> tuple[ServedModel, ServedModel | None] | None:
        if self.done or not self.go.is_set():
            return None
        self.done = True
        return self.new, None


def test_a_request_admitted_before_a_reload_finishes_on_its_model() -> None:
    entered, release = threading.Event(), threading.Event()

    def slow_features(frame: pl.DataFrame) -> pl.DataFrame:
        entered.set()  # the request holds version 3 and waits here, in a worker thread
        assert release.wait(10)
        return frame

    old = dataclasses.replace(served(), features=slow_features)
    new = dataclasses.replace(served(), version="4")
    watcher = Flip(new)
    rows = [ROWS[0]] * (INLINE_ROWS + 1)  # large enough to be enriched off the event loop
    answers: list[httpx.Response] = []
    with running(create_app(old, watcher=watcher)) as address:
        base = f"http://{address}"
        admitted = threading.Thread(
            target=lambda: answers.append(httpx.post(base + "/predict", json=rows, timeout=10))
        )
        admitted.start()
        assert entered.wait(10)
        watcher.go.set()
        deadline = time.monotonic() + 10
        while httpx.get(base + "/ready").json()["model"]["version"] != "4":
            assert time.monotonic() < deadline, "the new model was never served"
            time.sleep(0.02)
        fresh = httpx.post(base + "/predict", json=ROWS[0]).json()
        release.set()
        admitted.join(10)
    assert fresh["version"] == "4"
    (answer,) = answers
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    assert body["version"] == "3" and len(body["predictions"]) == len(rows)
