"""The prediction API as an ASGI application: three wire protocols over one model.

``create_app(model)`` answers shipyard's own JSON (``POST /predict``), the Open
Inference Protocol v2 (``/v2/...``) and the MLflow scoring protocol
(``POST /invocations``). Every request is scored through one :class:`MicroBatcher`,
started and stopped by the app's lifespan, and every answered prediction is
appended to the :class:`PredictionLog` when one is given. Serve it with uvicorn::

    uvicorn.run(create_app(model, log=log, token=token), host="0.0.0.0", port=8000)

Needs ``pip install 'shipyard[serve]'``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from shipyard import __version__
from shipyard.errors import ProtocolError
from shipyard.serving._metrics import Metrics, docs_page, openapi_document
from shipyard.serving.batching import MicroBatcher
from shipyard.serving.log import PredictionLog
from shipyard.serving.protocols import (
    format_invocations,
    format_v2_infer,
    parse_invocations,
    parse_records,
    parse_v2_infer,
    records_json_schema,
    v2_metadata,
    v2_server_metadata,
)

__all__ = ["ServedModel", "create_app"]

logger = logging.getLogger(__name__)

OUTPUTS: Mapping[str, pl.DataType] = {"score": pl.Float64(), "decision": pl.Boolean()}
OPEN_PATHS = frozenset({"/health", "/v2/health/live", "/ping"})


@dataclass(frozen=True)
class ServedModel:
    """A model ready to serve: its identity, input contract and score function.

    Attributes:
        name: The model's name, as clients address it (``/v2/models/{name}``).
        version: The served version.
        schema: The input contract, column name to polars dtype.
        optional: Columns that may be missing or null.
        score: The probability of the positive class for each row of a frame.
        threshold: A row's decision is ``score >= threshold``.
    """

    name: str
    version: str
    schema: Mapping[str, pl.DataType]
    optional: frozenset[str]
    score: Callable[[pl.DataFrame], np.ndarray[Any, Any]]
    threshold: float


@dataclass
class _Call:
    request: Request
    request_id: str
    started: float


Handler = Callable[[_Call], Awaitable[Response]]


def create_app(
    model: ServedModel,
    *,
    log: PredictionLog | None = None,
    token: str | None = None,
    max_body_bytes: int = 1_048_576,
    timeout_s: float = 5.0,
    max_batch_rows: int = 256,
    max_wait_ms: float = 2.0,
) -> Starlette:
    """The ASGI application serving ``model``.

    A request of one record (``POST /predict`` with one object) still answers a
    list of one prediction, so clients parse every answer the same way.

    Args:
        model: The model to serve.
        log: Where every answered prediction is appended; closed on shutdown.
        token: When set, every endpoint but ``/health``, ``/v2/health/live`` and
            ``/ping`` requires ``Authorization: Bearer <token>``.
        max_body_bytes: Larger request bodies are refused with 413.
        timeout_s: Requests taking longer are answered 503.
        max_batch_rows: Rows above which concurrent requests stop joining a batch.
        max_wait_ms: Longest a request waits for others to share its batch.

    Returns:
        A Starlette app; its lifespan starts the batcher and closes batcher, then log.
    """
    service = _Service(model, log, token, max_body_bytes, timeout_s, max_batch_rows, max_wait_ms)
    return Starlette(routes=service.routes(), lifespan=service.lifespan)


class _Service:
    def __init__(
        self,
        model: ServedModel,
        log: PredictionLog | None,
        token: str | None,
        max_body_bytes: int,
        timeout_s: float,
        max_batch_rows: int,
        max_wait_ms: float,
    ) -> None:
        self.model = model
        self.log = log
        self.expected_auth = None if token is None else f"Bearer {token}".encode()
        self.max_body_bytes = max_body_bytes
        self.timeout_s = timeout_s
        self.batching = (max_batch_rows, max_wait_ms)
        self.metrics = Metrics(model.name, model.version)
        if log is not None:
            self.metrics.watch_log(log)
        self.batcher: MicroBatcher | None = None
        self.records_schema = records_json_schema(model.schema, model.optional)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        max_batch_rows, max_wait_ms = self.batching
        self.batcher = MicroBatcher(
            self._score_batch, max_batch_rows=max_batch_rows, max_wait_ms=max_wait_ms
        )
        try:
            yield
        finally:
            batcher, self.batcher = self.batcher, None
            await batcher.close()
            if self.log is not None:
                self.log.close()

    def _score_batch(self, frame: pl.DataFrame) -> np.ndarray[Any, Any]:
        self.metrics.batch_rows.observe(frame.height)
        return self.model.score(frame)

    def routes(self) -> list[Route]:
        v2_model = "/v2/models/{name}"
        table: list[tuple[str, str, Handler]] = [
            ("POST", "/predict", self.predict),
            ("GET", "/v2", self.v2_server),
            ("GET", "/v2/health/live", self.health),
            ("GET", "/v2/health/ready", self.v2_ready),
            ("GET", v2_model, self.v2_model),
            ("GET", v2_model + "/ready", self.v2_model_ready),
            ("POST", v2_model + "/infer", self.v2_infer),
            ("POST", v2_model + "/versions/{version}/infer", self.v2_infer),
            ("POST", "/invocations", self.invocations),
            ("GET", "/ping", self.health),
            ("GET", "/health", self.health),
            ("GET", "/ready", self.ready),
            ("GET", "/metrics", self.prometheus),
            ("GET", "/openapi.json", self.openapi),
            ("GET", "/docs", self.docs),
        ]
        return [
            Route(path, self._endpoint(path, handler), methods=[verb])
            for verb, path, handler in table
        ]

    def _endpoint(self, path: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            call = _Call(request, _request_id(request), time.perf_counter())
            response = await self._answer(call, path, handler)
            response.headers["X-Request-ID"] = call.request_id
            self.metrics.observe_request(
                path, response.status_code, time.perf_counter() - call.started
            )
            return response

        return endpoint

    async def _answer(self, call: _Call, path: str, handler: Handler) -> Response:
        deadline = asyncio.timeout(self.timeout_s)
        try:
            if path not in OPEN_PATHS:
                self._authorize(call.request)
            async with deadline:
                return await handler(call)
        except ProtocolError as exc:
            if exc.status == 422:
                return _json({"errors": exc.problems}, exc.status)
            return _json({"error": str(exc)}, exc.status)
        except HTTPException as exc:
            return _json({"error": exc.detail}, exc.status_code, exc.headers)
        except TimeoutError:
            if not deadline.expired():
                return self._failure(call)
            message = f"timed out after {self.timeout_s:g} s; try again or send fewer rows"
            return _json({"error": message}, 503)
        except Exception:
            return self._failure(call)

    def _failure(self, call: _Call) -> Response:
        logger.exception("request %s to %s failed", call.request_id, call.request.url.path)
        message = f"internal error; quote request id {call.request_id} when reporting it"
        return _json({"error": message, "request_id": call.request_id}, 500)

    def _authorize(self, request: Request) -> None:
        if self.expected_auth is None:
            return
        sent = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(sent, self.expected_auth):
            raise HTTPException(
                401,
                "missing or wrong token: send the header 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )

    async def _body(self, request: Request) -> bytes:
        too_large = f"request body larger than {self.max_body_bytes} bytes; send fewer rows"
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            raise HTTPException(413, too_large)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_bytes:
                raise HTTPException(413, too_large)
            chunks.append(chunk)
        return b"".join(chunks)

    async def _json_body(self, request: Request) -> Any:
        body = await self._body(request)
        try:
            return json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProtocolError([f"body is not valid JSON: {exc}"], status=400) from exc

    async def _predict(
        self, call: _Call, frame: pl.DataFrame
    ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """Score ``frame`` through the batcher; count and log every prediction."""
        if self.batcher is None:
            raise HTTPException(503, "not ready: the app's lifespan has not started")
        scores = np.asarray(await self.batcher.submit(frame), dtype=np.float64)
        decisions = scores >= self.model.threshold
        self.metrics.observe_decisions(decisions)
        if self.log is not None:
            self.log.append_many(self._records(call, frame, scores, decisions))
        return scores, decisions

    def _records(
        self,
        call: _Call,
        frame: pl.DataFrame,
        scores: np.ndarray[Any, Any],
        decisions: np.ndarray[Any, Any],
    ) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        latency_ms = (time.perf_counter() - call.started) * 1000
        return [
            {
                "request_id": call.request_id,
                "ts": now,
                "model": self.model.name,
                "model_version": self.model.version,
                "inputs": inputs,
                "score": float(score),
                "decision": bool(decision),
                "latency_ms": latency_ms,
            }
            for inputs, score, decision in zip(frame.to_dicts(), scores, decisions, strict=True)
        ]

    async def predict(self, call: _Call) -> Response:
        frame = parse_records(
            await self._json_body(call.request), self.model.schema, self.model.optional
        )
        scores, decisions = await self._predict(call, frame)
        body: dict[str, Any] = {
            "model": self.model.name,
            "version": self.model.version,
            "request_id": call.request_id,
            "predictions": [
                {"score": float(score), "decision": bool(decision)}
                for score, decision in zip(scores, decisions, strict=True)
            ],
        }
        if call.request.query_params.get("explain", "").lower() in ("true", "1"):
            body["features"] = frame.to_dicts()
        return _json(body)

    async def v2_infer(self, call: _Call) -> Response:
        self._check_model(call.request)
        body = await self._json_body(call.request)
        frame, meta = parse_v2_infer(body, self.model.schema, self.model.optional)
        unknown = [name for name in meta["outputs"] if name not in OUTPUTS]
        if unknown:
            known = ", ".join(OUTPUTS)
            raise ProtocolError(
                [f"unknown output '{name}' (known outputs: {known})" for name in unknown],
                status=400,
            )
        scores, decisions = await self._predict(call, frame)
        arrays = {"score": scores, "decision": decisions}
        wanted = meta["outputs"] or list(OUTPUTS)
        request_id = call.request_id if meta["id"] is None else meta["id"]
        return _json(
            format_v2_infer(
                self.model.name,
                self.model.version,
                request_id,
                {name: arrays[name] for name in wanted},
            )
        )

    def _check_model(self, request: Request) -> None:
        name = request.path_params["name"]
        version = request.path_params.get("version", self.model.version)
        if name != self.model.name:
            raise HTTPException(
                404, f"unknown model '{name}' (this server serves '{self.model.name}')"
            )
        if version != self.model.version:
            raise HTTPException(
                404,
                f"unknown version '{version}' of model '{name}' "
                f"(this server serves version '{self.model.version}')",
            )

    async def invocations(self, call: _Call) -> Response:
        content_type = call.request.headers.get("content-type", "application/json")
        body = await self._body(call.request)
        frame = parse_invocations(body, content_type, self.model.schema, self.model.optional)
        scores, _ = await self._predict(call, frame)
        return _json(format_invocations(scores))

    async def v2_server(self, call: _Call) -> Response:
        return _json(v2_server_metadata(__version__))

    async def v2_model(self, call: _Call) -> Response:
        self._check_model(call.request)
        return _json(v2_metadata(self.model.name, [self.model.version], self.model.schema, OUTPUTS))

    async def v2_model_ready(self, call: _Call) -> Response:
        self._check_model(call.request)
        ready = self.batcher is not None
        return _json({"name": self.model.name, "ready": ready}, 200 if ready else 503)

    async def v2_ready(self, call: _Call) -> Response:
        return await self.ready(call)

    async def health(self, call: _Call) -> Response:
        return _json({"status": "alive"})

    async def ready(self, call: _Call) -> Response:
        ready = self.batcher is not None
        return _json({"ready": ready}, 200 if ready else 503)

    async def prometheus(self, call: _Call) -> Response:
        text, content_type = self.metrics.render()
        return Response(text, headers={"Content-Type": content_type})

    async def openapi(self, call: _Call) -> Response:
        return _json(openapi_document(self.model.name, self.model.version, self.records_schema))

    async def docs(self, call: _Call) -> Response:
        base = str(call.request.base_url).rstrip("/")
        return HTMLResponse(
            docs_page(self.model.name, self.model.version, self.records_schema, base)
        )


def _request_id(request: Request) -> str:
    """The client's ``X-Request-ID`` when it is a sane token, else a new uuid4 hex."""
    sent = request.headers.get("x-request-id", "")
    if 0 < len(sent) <= 128 and sent.isprintable():
        return sent
    return uuid.uuid4().hex


def _json(content: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    body = json.dumps(content, default=_json_default, allow_nan=False, separators=(",", ":"))
    return Response(body, status, headers=headers, media_type="application/json")


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
