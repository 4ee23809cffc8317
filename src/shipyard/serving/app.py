"""The prediction API as an ASGI application: three wire protocols over one model.

``create_app(model)`` answers shipyard's own JSON (``POST /predict``), the Open
Inference Protocol v2 (``/v2/...``) and the MLflow scoring protocol
(``POST /invocations``). Each request is checked against the model's request contract,
enriched with the features computed on the server (online store, request features),
scored through a :class:`MicroBatcher` started and stopped by the app's lifespan, and
every answered prediction is appended to the :class:`PredictionLog` when one is given.
A shadow model is scored on the same requests after the answer, logged, never returned.
A watcher (see :class:`shipyard.serving.model.AliasWatcher`) swaps in the version an
alias moves to: requests already admitted finish on the model they started with, so
no request fails during the switch. Serve it with uvicorn::

    uvicorn.run(create_app(model, log=log, token=token), host="0.0.0.0", port=8000)

Needs ``pip install 'shipyard[serve]'``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import hmac
import importlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from shipyard import __version__
from shipyard.errors import DataInputError, ProtocolError, StoreError
from shipyard.serving._metrics import Metrics, docs_page, openapi_document
from shipyard.serving._v2 import decode_binary_infer
from shipyard.serving.batching import MicroBatcher
from shipyard.serving.log import PredictionLog
from shipyard.serving.model import ServedModel, Watcher
from shipyard.serving.protocols import (
    format_invocations,
    format_v2_infer,
    load_json,
    parse_invocations,
    parse_records,
    parse_v2_infer,
    records_json_schema,
    v2_metadata,
    v2_server_metadata,
)

try:  # the serve extra installs it; answers are encoded by the standard library without it
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised when the extra is not installed
    _orjson = None  # type: ignore[assignment]

__all__ = ["ServedModel", "create_app"]

logger = logging.getLogger(__name__)

OUTPUTS: Mapping[str, pl.DataType] = {"score": pl.Float64(), "decision": pl.Boolean()}
OPEN_PATHS = frozenset({"/health", "/v2/health/live", "/ping"})
INLINE_ROWS = 16  # requests this small are enriched on the event loop; larger in a thread


@dataclass(eq=False)
class _Slot:
    """A model being served, the batcher scoring its requests, and how many requests
    (or shadow scorings) hold it: a replaced slot is closed once none does."""

    model: ServedModel
    batcher: MicroBatcher
    records_schema: dict[str, Any]
    users: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    def take(self) -> _Slot:
        self.users += 1
        self.idle.clear()
        return self

    def release(self) -> None:
        self.users -= 1
        if self.users == 0:
            self.idle.set()

    async def retire(self) -> None:
        """Wait until no request holds this slot, then drain and close its batcher."""
        if self.users:
            await self.idle.wait()
        await self.batcher.close()


@dataclass
class _Call:
    request: Request
    request_id: str
    started: float
    held: list[_Slot] = field(default_factory=list)


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
    shadow: ServedModel | None = None,
    watcher: Watcher | None = None,
    threads: int = 1,
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
        shadow: A model scored on the same requests after each answer and logged with
            ``shadow=True``; its scores are never returned and its failures never fail
            a request.
        watcher: Checked every ``watcher.interval_s`` seconds; when it returns new
            models (an alias moved), they replace the served ones without a failed request.
        threads: Threads the model's native code (OpenMP, BLAS) may use per batch; one by
            default, as batches are small and the event loop needs the other cores.

    Returns:
        A Starlette app; its lifespan starts the batchers and closes batchers, then log.
    """
    service = _Service(
        model,
        log,
        token,
        max_body_bytes,
        timeout_s,
        (max_batch_rows, max_wait_ms),
        shadow,
        watcher,
        threads,
    )
    handlers = {404: _unrouted, 405: _unrouted}
    return Starlette(
        routes=service.routes(),
        lifespan=service.lifespan,
        exception_handlers=handlers,  # type: ignore[arg-type]
    )


class _Service:
    def __init__(
        self,
        model: ServedModel,
        log: PredictionLog | None,
        token: str | None,
        max_body_bytes: int,
        timeout_s: float,
        batching: tuple[int, float],
        shadow: ServedModel | None,
        watcher: Watcher | None,
        threads: int,
    ) -> None:
        self.models = (model, shadow)
        self.log = log
        self.expected_auth = None if token is None else f"Bearer {token}".encode()
        self.max_body_bytes = max_body_bytes
        self.timeout_s = timeout_s
        self.batching = batching
        self.watcher = watcher
        self.threads = threads
        self.metrics = Metrics(model.name, model.version)
        self.metrics.serving(_identity(model), None if shadow is None else _identity(shadow))
        if log is not None:
            self.metrics.watch_log(log)
        self.primary: _Slot | None = None
        self.shadow: _Slot | None = None
        self.executor: concurrent.futures.ThreadPoolExecutor | None = None
        self.pending: set[asyncio.Task[None]] = set()

    @property
    def model(self) -> ServedModel:
        return self.models[0] if self.primary is None else self.primary.model

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix="shipyard-score",
            initializer=_limit_threads,
            initargs=(self.threads,),
        )
        primary, shadow = self.models
        self.primary = self._slot(primary)
        self.shadow = None if shadow is None else self._slot(shadow)
        watching = None
        if self.watcher is not None:
            watching = asyncio.get_running_loop().create_task(self._watch(self.watcher))
        try:
            yield
        finally:
            if watching is not None:
                watching.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watching
            slots = [slot for slot in (self.primary, self.shadow) if slot is not None]
            self.primary = None  # uvicorn has drained the requests; now /ready says 503
            if self.pending:  # shadow scoring started by the last answers
                await asyncio.gather(*self.pending, return_exceptions=True)
            for slot in slots:
                await slot.batcher.close()
            self.executor.shutdown(wait=True)
            if self.log is not None:
                self.log.close()

    def _slot(self, model: ServedModel) -> _Slot:
        max_batch_rows, max_wait_ms = self.batching
        batcher = MicroBatcher(
            functools.partial(self._score_batch, model),
            max_batch_rows=max_batch_rows,
            max_wait_ms=max_wait_ms,
            executor=self.executor,
        )
        return _Slot(model, batcher, records_json_schema(model.schema, model.optional))

    def _score_batch(self, model: ServedModel, frame: pl.DataFrame) -> np.ndarray[Any, Any]:
        self.metrics.batch_rows.observe(frame.height)
        return model.score(frame)

    async def _watch(self, watcher: Watcher) -> None:
        while True:
            await asyncio.sleep(watcher.interval_s)
            try:
                found = await asyncio.to_thread(watcher.check)
            except Exception:
                logger.exception("checking for a new model version failed; serving on")
                continue
            if found is not None:
                await self._swap(*found)

    async def _swap(self, primary: ServedModel, shadow: ServedModel | None) -> None:
        """Serve new models: new requests go to the new slots at once; requests already
        admitted finish on the old ones, whose batchers are then drained and closed."""
        old = [self.primary, self.shadow]
        if self.primary is None:
            return
        if _identity(primary) != _identity(self.primary.model):
            self.primary = self._slot(primary)
        if shadow is None:
            self.shadow = None
        elif self.shadow is None or _identity(shadow) != _identity(self.shadow.model):
            self.shadow = self._slot(shadow)
        self.metrics.serving(_identity(primary), None if shadow is None else _identity(shadow))
        self.metrics.reloads.inc()
        logger.info(
            "now serving %s:%s%s",
            primary.name,
            primary.version,
            "" if shadow is None else f" (shadow {shadow.name}:{shadow.version})",
        )
        for slot in old:
            if slot is not None and slot not in (self.primary, self.shadow):
                await slot.retire()

    def routes(self) -> list[Route]:
        v2_model = "/v2/models/{name}"
        table: list[tuple[str, str, Handler]] = [
            ("POST", "/predict", self.predict),
            ("GET", "/v2", self.v2_server),
            ("GET", "/v2/health/live", self.health),
            ("GET", "/v2/health/ready", self.v2_ready),
            ("GET", v2_model, self.v2_model),
            ("GET", v2_model + "/ready", self.v2_model_ready),
            ("GET", v2_model + "/versions/{version}", self.v2_model),
            ("GET", v2_model + "/versions/{version}/ready", self.v2_model_ready),
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
            try:
                response = await self._answer(call, path, handler)
            finally:
                for slot in call.held:
                    slot.release()
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

    def _serving(self, call: _Call) -> _Slot:
        """The primary slot, held by ``call`` until it is answered (so a reload that
        replaces it meanwhile waits for this request before closing it)."""
        if self.primary is None:
            raise HTTPException(503, "not ready: the server is starting or shutting down")
        call.held.append(self.primary.take())
        return self.primary

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
            return load_json(body)
        except ValueError as exc:  # bad UTF-8, bad JSON, an integer of 4,300+ digits
            raise ProtocolError([f"body is not valid JSON: {exc}"], status=400) from exc

    async def _predict(
        self, call: _Call, slot: _Slot, frame: pl.DataFrame
    ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], pl.DataFrame]:
        """Enrich and score ``frame``; count and log every prediction, then start the
        shadow model on the same rows. Returns scores, decisions and the enriched rows."""
        model = slot.model
        enriched = await _enrich(model, frame)
        scores = np.asarray(await slot.batcher.submit(enriched), dtype=np.float64)
        if not np.isfinite(scores).all():
            raise ValueError(f"{model.name}:{model.version} returned a score that is not a number")
        decisions = scores >= model.threshold
        self.metrics.observe_decisions(decisions)
        if self.log is not None:
            _log(self.log, call, model, frame, enriched, scores, decisions)
        if self.shadow is not None:
            task = asyncio.get_running_loop().create_task(
                self._run_shadow(self.shadow.take(), call, frame)
            )
            self.pending.add(task)
            task.add_done_callback(self.pending.discard)
        return scores, decisions, enriched

    async def _run_shadow(self, slot: _Slot, call: _Call, frame: pl.DataFrame) -> None:
        try:
            await self._score_shadow(slot, call, frame)
        finally:
            slot.release()

    async def _score_shadow(self, slot: _Slot, call: _Call, frame: pl.DataFrame) -> None:
        model = slot.model
        try:
            given = set(frame.columns)
            missing = [c for c in model.schema if c not in given and c not in model.optional]
            if missing:
                raise DataInputError(f"the request lacks the shadow model's fields {missing}")
            enriched = await _enrich(model, frame)
            scores = np.asarray(await slot.batcher.submit(enriched), dtype=np.float64)
        except Exception as exc:
            self.metrics.shadow.labels(outcome="failed").inc()
            logger.warning("shadow %s:%s failed: %s", model.name, model.version, exc)
            return
        self.metrics.shadow.labels(outcome="scored").inc(len(scores))
        if self.log is not None:
            decisions = scores >= model.threshold
            _log(self.log, call, model, frame, enriched, scores, decisions, shadow=True)

    async def predict(self, call: _Call) -> Response:
        slot = self._serving(call)
        model = slot.model
        frame = parse_records(await self._json_body(call.request), model.schema, model.optional)
        scores, decisions, enriched = await self._predict(call, slot, frame)
        body: dict[str, Any] = {
            "model": model.name,
            "version": model.version,
            "request_id": call.request_id,
            "predictions": [
                {"score": float(score), "decision": bool(decision)}
                for score, decision in zip(scores, decisions, strict=True)
            ],
        }
        if _flag(call.request, "explain"):
            body["features"] = enriched.select(model.inputs or enriched.columns).to_dicts()
        return _answer_json(body)

    async def v2_infer(self, call: _Call) -> Response:
        slot = self._serving(call)
        model = slot.model
        self._check_model(call.request, model)
        binary = call.request.headers.get("inference-header-content-length")
        if binary is None:
            body = await self._json_body(call.request)
        else:  # the binary tensor extension, Triton clients' default
            body = decode_binary_infer(await self._body(call.request), binary)
        frame, meta = parse_v2_infer(body, model.schema, model.optional)
        unknown = [name for name in meta["outputs"] if name not in OUTPUTS]
        if unknown:
            known = ", ".join(OUTPUTS)
            raise ProtocolError(
                [f"unknown output '{name}' (known outputs: {known})" for name in unknown],
                status=400,
            )
        scores, decisions, _ = await self._predict(call, slot, frame)
        arrays = {"score": scores, "decision": decisions}
        wanted = meta["outputs"] or list(OUTPUTS)
        request_id = call.request_id if meta["id"] is None else meta["id"]
        return _answer_json(
            format_v2_infer(
                model.name, model.version, request_id, {name: arrays[name] for name in wanted}
            )
        )

    def _check_model(self, request: Request, model: ServedModel) -> None:
        name = request.path_params["name"]
        version = request.path_params.get("version", model.version)
        if name != model.name:
            raise HTTPException(404, f"unknown model '{name}' (this server serves '{model.name}')")
        if version != model.version:
            raise HTTPException(
                404,
                f"unknown version '{version}' of model '{name}' "
                f"(this server serves version '{model.version}')",
            )

    async def invocations(self, call: _Call) -> Response:
        slot = self._serving(call)
        model = slot.model
        content_type = call.request.headers.get("content-type", "application/json")
        body = await self._body(call.request)
        frame = parse_invocations(body, content_type, model.schema, model.optional)
        scores, _, _ = await self._predict(call, slot, frame)
        return _answer_json(format_invocations(scores))

    async def v2_server(self, call: _Call) -> Response:
        return _json(v2_server_metadata(__version__))

    async def v2_model(self, call: _Call) -> Response:
        model = self.model
        self._check_model(call.request, model)
        return _json(v2_metadata(model.name, [model.version], model.schema, OUTPUTS))

    def _ready(self) -> bool:
        return self.primary is not None and not self.primary.model.problems()

    async def v2_model_ready(self, call: _Call) -> Response:
        model = self.model
        self._check_model(call.request, model)
        ready = self._ready()
        return _json({"name": model.name, "ready": ready}, 200 if ready else 503)

    async def v2_ready(self, call: _Call) -> Response:
        ready = self._ready()
        return _json({"ready": ready}, 200 if ready else 503)

    async def health(self, call: _Call) -> Response:
        return _json({"status": "alive"})

    async def ready(self, call: _Call) -> Response:
        ready = self.primary is not None
        body: dict[str, Any] = {"ready": ready}
        problems = [] if self.primary is None else self.primary.model.problems()
        if problems:
            ready = False
            body = {"ready": False, "problems": problems}
        if ready:
            model = self.model
            body["model"] = {"name": model.name, "version": model.version}
            if self.shadow is not None:
                body["shadow"] = {
                    "name": self.shadow.model.name,
                    "version": self.shadow.model.version,
                }
        return _json(body, 200 if ready else 503)

    async def prometheus(self, call: _Call) -> Response:
        text, content_type = self.metrics.render()
        return Response(text, headers={"Content-Type": content_type})

    async def openapi(self, call: _Call) -> Response:
        model = self.model
        schema = records_json_schema(model.schema, model.optional)
        return _json(openapi_document(model.name, model.version, schema))

    async def docs(self, call: _Call) -> Response:
        model = self.model
        schema = records_json_schema(model.schema, model.optional)
        base = str(call.request.base_url).rstrip("/")
        return HTMLResponse(docs_page(model.name, model.version, schema, base))


async def _enrich(model: ServedModel, frame: pl.DataFrame) -> pl.DataFrame:
    """The request rows plus the features the server computes; small requests inline
    (a lookup costs less than a thread hop), larger ones in a thread."""
    if model.features is None:
        return frame
    try:
        if frame.height <= INLINE_ROWS:
            return model.features(frame)
        return await asyncio.to_thread(model.features, frame)
    except DataInputError as exc:
        raise ProtocolError([str(exc)], status=422) from exc
    except StoreError as exc:
        raise HTTPException(503, f"features unavailable: {exc}") from exc


def _log(
    log: PredictionLog,
    call: _Call,
    model: ServedModel,
    frame: pl.DataFrame,
    enriched: pl.DataFrame,
    scores: np.ndarray[Any, Any],
    decisions: np.ndarray[Any, Any],
    *,
    shadow: bool = False,
) -> None:
    """Append a request's predictions: a few rows as records, many as one table."""
    if frame.height <= INLINE_ROWS:
        log.append_many(_records(call, model, frame, enriched, scores, decisions, shadow=shadow))
    else:
        log.append_table(_table(call, model, frame, enriched, scores, decisions, shadow))


def _table(
    call: _Call,
    model: ServedModel,
    frame: pl.DataFrame,
    enriched: pl.DataFrame,
    scores: np.ndarray[Any, Any],
    decisions: np.ndarray[Any, Any],
    shadow: bool,
) -> pa.Table:
    """The log rows of a request, built column by column (JSON encoded by polars)."""
    given = set(frame.columns)
    computed = [c for c in enriched.columns if c not in given]
    keys = [k for k in model.keys if k in given]
    latency_ms = (time.perf_counter() - call.started) * 1000
    columns = [
        pl.struct(frame.columns).struct.json_encode().alias("inputs_json"),
        (pl.struct(computed).struct.json_encode() if computed else pl.lit("{}")).alias(
            "features_json"
        ),
        (
            pl.concat_str([pl.col(k).cast(pl.String) for k in keys], separator="|")
            if keys
            else pl.lit(None, dtype=pl.String)
        ).alias("entity_key"),
    ]
    encoded = enriched.select(columns)
    return pa.table(
        {
            "request_id": pa.array([call.request_id] * frame.height, pa.string()),
            "ts": pa.array([datetime.now(UTC)] * frame.height, pa.timestamp("us", tz="UTC")),
            "model": pa.array([model.name] * frame.height, pa.string()),
            "model_version": pa.array([model.version] * frame.height, pa.string()),
            "entity_key": encoded["entity_key"].to_arrow(),
            "shadow": pa.array([shadow] * frame.height, pa.bool_()),
            "score": pa.array(scores, pa.float64()),
            "decision": pa.array(decisions.astype(np.int64), pa.int64()),
            "latency_ms": pa.array([latency_ms] * frame.height, pa.float64()),
            "inputs_json": encoded["inputs_json"].to_arrow(),
            "features_json": encoded["features_json"].to_arrow(),
        }
    )


def _records(
    call: _Call,
    model: ServedModel,
    frame: pl.DataFrame,
    enriched: pl.DataFrame,
    scores: np.ndarray[Any, Any],
    decisions: np.ndarray[Any, Any],
    *,
    shadow: bool = False,
) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    latency_ms = (time.perf_counter() - call.started) * 1000
    inputs = frame.to_dicts()
    given = set(frame.columns)
    computed = [c for c in enriched.columns if c not in given]
    if computed:
        features = [{c: row[c] for c in computed} for row in enriched.to_dicts()]
    else:
        features = [{}] * frame.height
    keys = [k for k in model.keys if k in given]
    return [
        {
            "request_id": call.request_id,
            "ts": now,
            "model": model.name,
            "model_version": model.version,
            "entity_key": _entity_key(row, keys),
            "shadow": shadow,
            **_encoded(row, values),
            "score": float(score),
            "decision": bool(decision),
            "latency_ms": latency_ms,
        }
        for row, values, score, decision in zip(inputs, features, scores, decisions, strict=True)
    ]


def _encoded(inputs: dict[str, Any], features: dict[str, Any]) -> dict[str, Any]:
    """A record's inputs and features, as JSON now when orjson is there (a microsecond or
    two, spread over the requests), else as dicts the log encodes when it flushes."""
    if _orjson is None:
        return {"inputs": inputs, "features": features}
    return {
        "inputs_json": _orjson.dumps(inputs, default=_json_default).decode(),
        "features_json": _orjson.dumps(features, default=_json_default).decode(),
    }


async def _unrouted(request: Request, exc: HTTPException) -> Response:
    """No route (404) or not this method (405): JSON like every other error."""
    if exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    else:
        message = f"no endpoint {request.url.path}; see /docs or /openapi.json"
    return _json({"error": message}, exc.status_code, exc.headers)


def _flag(request: Request, name: str) -> bool:
    """A boolean query parameter: true/1 or false/0 (default false); anything else is a 400."""
    given = request.query_params.get(name, "false").lower()
    if given not in ("true", "1", "false", "0"):
        raise ProtocolError([f"{name}: expected true or false, got {given!r}"], status=400)
    return given in ("true", "1")


def _entity_key(row: Mapping[str, Any], keys: list[str]) -> str | None:
    if not keys:
        return None
    return "|".join(str(row[k]) for k in keys)


def _identity(model: ServedModel) -> tuple[str, str]:
    return model.name, model.version


def _limit_threads(threads: int) -> None:
    """Cap the native thread pools (OpenMP, BLAS) used from the scoring thread."""
    try:
        threadpoolctl = importlib.import_module("threadpoolctl")
    except ImportError:  # scikit-learn depends on it; a model without it has no pools
        return
    threadpoolctl.threadpool_limits(threads)


def _request_id(request: Request) -> str:
    """The client's ``X-Request-ID`` when it is a sane token, else a new uuid4 hex."""
    sent = request.headers.get("x-request-id", "")
    if 0 < len(sent) <= 128 and sent.isprintable():
        return sent
    return uuid.uuid4().hex


def _json(content: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    body = json.dumps(content, default=_json_default, allow_nan=False, separators=(",", ":"))
    return Response(body, status, headers=headers, media_type="application/json")


def _answer_json(content: Any) -> Response:
    """A 200 answer of scores: orjson when installed (a 1,000-row answer in a tenth of the
    time); the scores were checked finite, as JSON has no NaN."""
    if _orjson is None:
        return _json(content)
    body = _orjson.dumps(content, default=_json_default, option=_orjson.OPT_SERIALIZE_NUMPY)
    return Response(body, 200, media_type="application/json")


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
