"""Starlette or FastAPI for the prediction API: the framework's cost per request, measured.

The issue asks to measure and choose. Both run in one process, driven straight through
ASGI (no sockets, no load generator sharing the 2 cores), the same request each time:

* ``starlette``: a Starlette route reading the JSON body and checking it with shipyard's
  own codec (``parse_records``: every field's type, finiteness, unknown and missing
  fields, one message per problem), answering JSON; what ``shipyard serve`` runs.
* ``fastapi``: a FastAPI route whose body is a pydantic model of the same 20 fields
  (finite floats, extra fields forbidden), answering a dict FastAPI serialises.
* ``fastapi+frame``: the same, then the validated rows made into the polars frame the
  model scores (what shipyard's codec returns directly).
* ``starlette-bare``: a Starlette route that ignores the body: the floor.

Each figure: median of ``--repeats`` rounds of ``--calls`` requests, per request.

Usage (FastAPI is not a shipyard dependency: it gets its own venv, built once)::

    python3 -m venv benchmarks/.venvs/fastapi
    benchmarks/.venvs/fastapi/bin/pip install fastapi polars numpy pyarrow
    PYTHONPATH=src benchmarks/.venvs/fastapi/bin/python benchmarks/framework_overhead.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import time
from collections.abc import Callable
from typing import Annotated, Any

import polars as pl

FIELDS = [f"f{i}" for i in range(20)]
SCHEMA = {name: pl.Float64() for name in FIELDS}


def starlette_app(check: bool) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from shipyard.serving.protocols import parse_records

    async def predict(request: Request) -> Response:
        body = await request.body()
        rows = 1
        if check:
            rows = parse_records(json.loads(body), SCHEMA).height
        answer = {"predictions": [{"score": 0.5, "decision": False}] * rows}
        return Response(json.dumps(answer), media_type="application/json")

    return Starlette(routes=[Route("/predict", predict, methods=["POST"])])


def fastapi_app(frame: bool = False) -> Any:
    from fastapi import Body, FastAPI
    from pydantic import BaseModel, ConfigDict, Field, create_model

    finite = Annotated[float, Field(allow_inf_nan=False)]
    fields: dict[str, Any] = dict.fromkeys(FIELDS, (finite, ...))
    row = create_model(
        "Row", __base__=BaseModel, __config__=None, **fields
    )  # the contract's fields, all required
    row.model_config = ConfigDict(extra="forbid")
    row.model_rebuild(force=True)
    app = FastAPI()

    async def predict(rows: Any) -> dict[str, Any]:
        records = rows if isinstance(rows, list) else [rows]
        count = len(records)
        if frame:  # what the model needs: the same polars frame shipyard's codec builds
            count = pl.from_dicts([r.model_dump() for r in records], schema=SCHEMA).height
        return {"predictions": [{"score": 0.5, "decision": False}] * count}

    # the model is made at run time, so its annotation is given as an object, not a string
    predict.__annotations__ = {"rows": Annotated[row | list[row], Body()], "return": dict}
    app.post("/predict")(predict)
    return app


async def drive(app: Any, body: bytes, calls: int) -> list[float]:
    """Per-request seconds of ``calls`` POST /predict straight through ASGI."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/predict",
        "raw_path": b"/predict",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    times = []
    for _ in range(calls):
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any], sent: list[dict[str, Any]] = sent) -> None:
            sent.append(message)

        started = time.perf_counter()
        await app(scope, receive, send)
        times.append(time.perf_counter() - started)
        status = sent[0]["status"]
        if status != 200:
            raise RuntimeError(f"answered {status}: {sent[1].get('body', b'')[:300]!r}")
    return times


def measure(app: Any, body: bytes, calls: int, repeats: int) -> dict[str, Any]:
    rounds = []
    for _ in range(repeats):
        asyncio.run(drive(app, body, max(calls // 10, 1)))  # warm up
        rounds.append(statistics.median(asyncio.run(drive(app, body, calls))))
    return {"median_us": statistics.median(rounds) * 1e6, "rounds_us": [r * 1e6 for r in rounds]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    one = json.dumps({name: 0.5 + i for i, name in enumerate(FIELDS)}).encode()
    many = json.dumps([{name: 0.5 + i for i, name in enumerate(FIELDS)}] * 1000).encode()
    apps: dict[str, Callable[[], Any]] = {
        "starlette-bare": lambda: starlette_app(check=False),
        "starlette": lambda: starlette_app(check=True),
        "fastapi": fastapi_app,
        "fastapi+frame": lambda: fastapi_app(frame=True),
    }
    results: dict[str, Any] = {}
    for name, make in apps.items():
        app = make()
        results[name] = {
            "one_row": measure(app, one, args.calls, args.repeats),
            "rows_1000": measure(app, many, max(args.calls // 40, 10), args.repeats),
        }
    import fastapi
    import pydantic
    import starlette

    versions = {
        "fastapi": fastapi.__version__,
        "starlette": starlette.__version__,
        "pydantic": pydantic.__version__,
        "python": platform.python_version(),
    }
    print(json.dumps({"results": results, "versions": versions}, indent=2))
    for name, found in results.items():
        print(
            f"{name:15s} one row {found['one_row']['median_us']:8.1f} us   "
            f"1,000 rows {found['rows_1000']['median_us'] / 1000:8.2f} ms"
        )


if __name__ == "__main__":
    main()
