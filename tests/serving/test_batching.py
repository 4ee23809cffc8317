"""MicroBatcher: each request gets exactly its own scores, however requests are batched."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Coroutine
from typing import Any

import numpy as np
import polars as pl
import pytest

from shipyard.serving.batching import BatcherClosedError, MicroBatcher, ScoreCountError


class IdScorer:
    """Scores each row with its ``id``, so a mis-split batch shows as wrong numbers."""

    def __init__(self, delay: float = 0.0, poison: int | None = None) -> None:
        self.delay = delay
        self.poison = poison
        self.batches: list[list[int]] = []

    def __call__(self, frame: pl.DataFrame) -> np.ndarray:
        self.batches.append(frame["id"].to_list())
        time.sleep(self.delay)
        if self.poison is not None and self.poison in self.batches[-1]:
            raise RuntimeError(f"model failed on row {self.poison}")
        return frame["id"].cast(pl.Float64).to_numpy()


def rows(start: int, count: int, **extra: list[float]) -> pl.DataFrame:
    return pl.DataFrame({"id": list(range(start, start + count)), **extra})


def ids(start: int, count: int) -> list[float]:
    return [float(i) for i in range(start, start + count)]


def run(coroutine: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coroutine)


async def submit_later(batcher: MicroBatcher, frame: pl.DataFrame) -> np.ndarray:
    """Submits once a first request keeps the batcher busy, so this one must queue."""
    await asyncio.sleep(0.01)
    return await batcher.submit(frame)


def test_200_concurrent_requests_each_get_their_own_scores() -> None:
    scorer = IdScorer(delay=0.001)
    sizes = [random.Random(7).randint(1, 40) for _ in range(200)] + [100]
    starts = np.cumsum([0, *sizes])[:-1].tolist()

    async def scenario() -> None:
        batcher = MicroBatcher(scorer, max_batch_rows=64)
        results = await asyncio.gather(
            *(batcher.submit(rows(s, n)) for s, n in zip(starts, sizes, strict=True))
        )
        for start, size, scores in zip(starts, sizes, results, strict=True):
            assert scores.tolist() == ids(start, size)
        assert batcher.rows == sum(sizes)
        assert batcher.batches == len(scorer.batches) < len(sizes)
        await batcher.close()

    run(scenario())
    oversize = [batch for batch in scorer.batches if len(batch) > 64]
    assert oversize == [list(range(starts[-1], starts[-1] + 100))]


def test_an_idle_batcher_scores_a_lone_request_without_waiting() -> None:
    async def scenario() -> None:
        batcher = MicroBatcher(IdScorer(), max_wait_ms=50)
        for start in (0, 10):
            began = time.perf_counter()
            scores = await batcher.submit(rows(start, 1))
            assert time.perf_counter() - began < 0.02
            assert scores.tolist() == ids(start, 1)
        assert list(batcher.batch_sizes) == [1, 1]
        await batcher.close()

    run(scenario())


def test_requests_arriving_while_a_batch_is_scored_are_combined() -> None:
    scorer = IdScorer(delay=0.05)

    async def scenario() -> None:
        batcher = MicroBatcher(scorer)
        later = [submit_later(batcher, rows(10 * i, 3)) for i in range(1, 11)]
        first, *rest = await asyncio.gather(batcher.submit(rows(0, 2)), *later)
        assert first.tolist() == ids(0, 2)
        assert [r.tolist() for r in rest] == [ids(10 * i, 3) for i in range(1, 11)]
        assert list(batcher.batch_sizes) == [2, 30]

    run(scenario())


def test_a_failing_batch_fails_only_its_own_requests() -> None:
    scorer = IdScorer(delay=0.03, poison=0)

    async def scenario() -> None:
        batcher = MicroBatcher(scorer)
        results = await asyncio.gather(
            batcher.submit(rows(0, 1)),
            submit_later(batcher, rows(10, 2)),
            submit_later(batcher, rows(20, 1)),
            return_exceptions=True,
        )
        assert [r.tolist() if isinstance(r, np.ndarray) else str(r) for r in results] == [
            "model failed on row 0",
            ids(10, 2),
            ids(20, 1),
        ]
        shared = await asyncio.gather(
            batcher.submit(rows(30, 1)),
            submit_later(batcher, rows(40, 1)),
            submit_later(batcher, rows(0, 1)),
            return_exceptions=True,
        )
        assert [type(r).__name__ for r in shared] == ["ndarray", "RuntimeError", "RuntimeError"]
        assert (await batcher.submit(rows(50, 2))).tolist() == ids(50, 2)

    run(scenario())
    assert scorer.batches == [[0], [10, 11, 20], [30], [40, 0], [50, 51]]


def test_frames_with_different_columns_are_scored_in_separate_batches() -> None:
    scorer = IdScorer(delay=0.02)

    async def scenario() -> None:
        batcher = MicroBatcher(scorer)
        results = await asyncio.gather(
            batcher.submit(rows(0, 1)),
            submit_later(batcher, rows(10, 2, x=[0.5, 1.5])),
            submit_later(batcher, rows(20, 1)),
            submit_later(batcher, rows(30, 1, x=[2.5])),
        )
        assert [r.tolist() for r in results] == [ids(0, 1), ids(10, 2), ids(20, 1), ids(30, 1)]

    run(scenario())
    assert scorer.batches == [[0], [10, 11, 30], [20]]


def test_a_cancelled_caller_does_not_break_the_batch_for_others() -> None:
    scorer = IdScorer(delay=0.03)

    async def scenario() -> None:
        batcher = MicroBatcher(scorer)
        first = asyncio.create_task(batcher.submit(rows(0, 1)))
        await asyncio.sleep(0.01)
        queued = [asyncio.create_task(batcher.submit(rows(10 * i, 1))) for i in (1, 2, 3)]
        await asyncio.sleep(0)
        assert batcher.queue_depth() == 3
        first.cancel()
        queued[1].cancel()
        await asyncio.sleep(0)
        assert batcher.queue_depth() == 2
        done = await asyncio.gather(*queued, return_exceptions=True)
        outcomes = [r.tolist() if isinstance(r, np.ndarray) else type(r).__name__ for r in done]
        assert outcomes == [ids(10, 1), "CancelledError", ids(30, 1)]
        assert first.cancelled()

    run(scenario())
    assert scorer.batches == [[0], [10, 30]]


def test_a_wrong_number_of_scores_is_reported_to_the_batch() -> None:
    async def scenario() -> None:
        batcher = MicroBatcher(lambda frame: np.zeros(frame.height - 1))
        with pytest.raises(ScoreCountError, match=r"returned 2 scores .* batch of 3 rows"):
            await batcher.submit(rows(0, 3))

    run(scenario())


def test_close_scores_what_is_queued_then_refuses_new_requests() -> None:
    scorer = IdScorer(delay=0.02)

    async def scenario() -> None:
        batcher = MicroBatcher(scorer, max_wait_ms=1000)
        pending = [asyncio.create_task(batcher.submit(rows(10 * i, 2))) for i in range(3)]
        await asyncio.sleep(0.005)
        pending.append(asyncio.create_task(batcher.submit(rows(90, 1))))
        await asyncio.sleep(0)
        began = time.perf_counter()
        await batcher.close()
        assert time.perf_counter() - began < 0.5
        assert [task.result().tolist() for task in pending] == [
            *(ids(10 * i, 2) for i in range(3)),
            ids(90, 1),
        ]
        with pytest.raises(BatcherClosedError, match=r"after close\(\); create a new"):
            await batcher.submit(rows(0, 1))

    run(scenario())
    assert scorer.batches == [[0, 1, 10, 11, 20, 21], [90]]


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="max_batch_rows >= 1 and max_wait_ms >= 0"):
        MicroBatcher(IdScorer(), max_batch_rows=0)


def test_a_fast_model_at_an_idle_batcher_is_scored_on_the_event_loop() -> None:
    threads: list[str] = []

    def score(frame: pl.DataFrame) -> np.ndarray:
        threads.append(threading.current_thread().name)
        return frame["id"].cast(pl.Float64).to_numpy()

    async def scenario() -> None:
        batcher = MicroBatcher(score, inline_below_ms=50)
        for start in range(5):
            assert (await batcher.submit(rows(start, 1))).tolist() == ids(start, 1)
        assert batcher.batches == 5 and batcher.rows == 5
        await batcher.close()

    run(scenario())
    # the first batch measures the model in the worker thread; the rest run inline
    assert threads[0].startswith("shipyard-batcher")
    assert threads[1:] == [threading.main_thread().name] * 4


def test_a_slow_model_always_leaves_the_event_loop() -> None:
    scorer = IdScorer(delay=0.002)

    async def scenario() -> None:
        batcher = MicroBatcher(scorer, inline_below_ms=0.5)
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0)
                ticks += 1

        ticker = asyncio.get_running_loop().create_task(tick())
        for start in range(5):
            await batcher.submit(rows(start, 1))
        ticker.cancel()
        assert ticks >= 5  # the loop ran while each batch was scored elsewhere
        assert batcher.cost_s is not None and batcher.cost_s > 0.0005
        await batcher.close()

    run(scenario())
