"""Adaptive micro-batching: concurrent prediction requests scored together.

A lone request at an idle batcher is scored at once. While a batch is being scored, new
requests queue; the next batch is formed as soon as ``max_batch_rows`` rows wait or the
oldest request has waited ``max_wait_ms``. Batches are scored one at a time in an executor
(one worker thread by default), so the event loop never blocks on the model.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from shipyard.errors import BatcherClosedError, ScoreCountError

Scorer = Callable[[pl.DataFrame], np.ndarray]


@dataclass(eq=False)
class _Request:
    frame: pl.DataFrame
    future: asyncio.Future[np.ndarray]
    arrived: float
    immediate: bool
    rows: int = field(init=False)

    def __post_init__(self) -> None:
        self.rows = self.frame.height


class MicroBatcher:
    """Collects concurrent scoring requests and scores them as one frame.

    Args:
        score: Scores a frame, returning one score per row in row order.
        max_batch_rows: Rows above which no more requests join a batch; a single request
            larger than this is scored alone, never split.
        max_wait_ms: Longest a queued request waits for others before its batch is scored.
        executor: Where ``score`` runs; by default one thread owned by the batcher.
        history: How many recent batch sizes ``batch_sizes`` keeps.
        inline_below_ms: An idle batcher scores a request on the event loop itself, with no
            thread hop, while ``score`` takes less than this per batch on average (a fast
            model: ONNX, a compiled tree ensemble); slower models always use the executor.

    Attributes:
        batches: Batches handed to ``score`` so far, failed ones included.
        rows: Rows handed to ``score`` so far.
        batch_sizes: Rows of each recent batch, oldest first, for a size histogram.

    Example:
        >>> batcher = MicroBatcher(model.predict, max_batch_rows=512)
        >>> scores = await batcher.submit(frame)  # exactly ``frame``'s scores, in order
    """

    def __init__(
        self,
        score: Scorer,
        *,
        max_batch_rows: int = 256,
        max_wait_ms: float = 2.0,
        executor: concurrent.futures.Executor | None = None,
        history: int = 1024,
        inline_below_ms: float = 0.5,
    ) -> None:
        if max_batch_rows < 1 or max_wait_ms < 0:
            raise ValueError(
                f"MicroBatcher needs max_batch_rows >= 1 and max_wait_ms >= 0 "
                f"(got max_batch_rows={max_batch_rows}, max_wait_ms={max_wait_ms})"
            )
        self.score = score
        self.inline_below_s = inline_below_ms / 1000
        self.cost_s: float | None = None  # a moving average of score's time per batch
        self.max_batch_rows = max_batch_rows
        self.max_wait_ms = max_wait_ms
        self.executor = executor
        self.batches = 0
        self.rows = 0
        self.batch_sizes: deque[int] = deque(maxlen=history)
        self._queue: deque[_Request] = deque()
        self._wakeup = asyncio.Event()
        self._busy = False
        self._closed = False
        self._worker: asyncio.Task[None] | None = None
        self._own_executor: concurrent.futures.ThreadPoolExecutor | None = None

    def queue_depth(self) -> int:
        """Requests waiting for a batch (not counting the batch being scored)."""
        return sum(not request.future.done() for request in self._queue)

    async def submit(self, frame: pl.DataFrame) -> np.ndarray:
        """Score ``frame`` together with concurrent requests.

        Args:
            frame: The rows of one request.

        Returns:
            The scores of ``frame``'s rows, in order.

        Raises:
            BatcherClosedError: The batcher was closed.
            ScoreCountError: ``score`` returned the wrong number of scores for the batch.
            Exception: Whatever ``score`` raised on the batch holding this request.
        """
        if self._closed:
            raise BatcherClosedError(
                "MicroBatcher.submit() after close(); create a new MicroBatcher to serve again"
            )
        loop = asyncio.get_running_loop()
        idle = not self._busy and not self.queue_depth()
        if idle and self.cost_s is not None and self.cost_s < self.inline_below_s:
            return self._score_inline(frame)
        request = _Request(frame, loop.create_future(), loop.time(), immediate=idle)
        self._queue.append(request)
        self._wakeup.set()
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._serve())
        return await request.future

    def _score_inline(self, frame: pl.DataFrame) -> np.ndarray:
        """The fast path: an idle batcher and a model that scores a batch in about as long
        as the round trip to the worker thread (~0.1 ms each way, more on a busy machine)
        scores on the event loop, at once; nothing else is waiting for it."""
        self.batches += 1
        self.rows += frame.height
        self.batch_sizes.append(frame.height)
        return self._checked(self._timed(frame), frame.height, 1)

    def _timed(self, frame: pl.DataFrame) -> np.ndarray:
        started = time.perf_counter()
        scores = np.asarray(self.score(frame))
        spent = time.perf_counter() - started
        self.cost_s = spent if self.cost_s is None else 0.8 * self.cost_s + 0.2 * spent
        return scores

    def _checked(self, scores: np.ndarray, rows: int, requests: int) -> np.ndarray:
        if scores.ndim == 0 or len(scores) != rows:
            raise ScoreCountError(
                f"score returned {scores.size} scores with shape {scores.shape} for a batch of "
                f"{rows} rows from {requests} requests; it must return one score "
                "per row, in row order"
            )
        return scores

    async def close(self) -> None:
        """Score every queued request, then stop; later ``submit`` calls raise."""
        self._closed = True
        self._wakeup.set()
        if self._worker is not None:
            await self._worker
        if self._own_executor is not None:
            self._own_executor.shutdown(wait=False)

    async def _serve(self) -> None:
        while True:
            self._drop_cancelled()
            if not self._queue:
                if self._closed:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._wait_until_ready()
            batch = self._take_batch()
            if batch:
                await self._score_batch(batch)

    def _drop_cancelled(self) -> None:
        while self._queue and self._queue[0].future.done():
            self._queue.popleft()

    def _ready(self) -> bool:
        waiting_rows = sum(request.rows for request in self._queue)
        return self._closed or self._queue[0].immediate or waiting_rows >= self.max_batch_rows

    async def _wait_until_ready(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue and not self._ready():
            remaining = self._queue[0].arrived + self.max_wait_ms / 1000 - loop.time()
            if remaining <= 0:
                return
            self._wakeup.clear()
            try:
                async with asyncio.timeout(remaining):
                    await self._wakeup.wait()
            except TimeoutError:
                return
            self._drop_cancelled()

    def _take_batch(self) -> list[_Request]:
        """Takes the oldest request and the later ones that share its schema and fit."""
        self._drop_cancelled()
        if not self._queue:
            return []
        first = self._queue.popleft()
        batch, rows, skipped = [first], first.rows, deque[_Request]()
        while self._queue and rows < self.max_batch_rows:
            request = self._queue.popleft()
            if request.future.done():
                continue
            if request.frame.schema != first.frame.schema:
                skipped.append(request)
            elif rows + request.rows <= self.max_batch_rows:
                batch.append(request)
                rows += request.rows
            else:
                self._queue.appendleft(request)
                break
        self._queue.extendleft(reversed(skipped))
        return batch

    async def _score_batch(self, batch: list[_Request]) -> None:
        self._busy = True
        try:
            scores = await self._run(batch)
        except Exception as exc:
            for request in batch:
                if not request.future.done():
                    request.future.set_exception(exc)
        except BaseException:
            for request in batch:
                request.future.cancel()
            raise
        else:
            splits = np.cumsum([request.rows for request in batch])[:-1]
            for request, part in zip(batch, np.split(scores, splits), strict=True):
                if not request.future.done():
                    request.future.set_result(part)
        finally:
            self._busy = False

    async def _run(self, batch: list[_Request]) -> np.ndarray:
        frames = [request.frame for request in batch]
        frame = frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical")
        loop = asyncio.get_running_loop()
        self.batches += 1
        self.rows += frame.height
        self.batch_sizes.append(frame.height)
        scores = await loop.run_in_executor(self._executor(), self._timed, frame)
        return self._checked(scores, frame.height, len(batch))

    def _executor(self) -> concurrent.futures.Executor:
        if self.executor is not None:
            return self.executor
        if self._own_executor is None:
            self._own_executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="shipyard-batcher"
            )
        return self._own_executor
