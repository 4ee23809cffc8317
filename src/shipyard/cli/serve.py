"""``shipyard serve MODEL``: the prediction API of a registered model or an export folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from shipyard.cli._console import err_console


def serve(
    model: Annotated[
        str,
        typer.Argument(
            help="name@alias (follows the alias: a promotion is served within --reload "
            "seconds), name:3, name (the latest version), or an export folder."
        ),
    ],
    host: Annotated[
        str, typer.Option(help="Interface to bind. Anything but loopback needs a token.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Server processes.")] = 1,
    token_env: Annotated[
        str,
        typer.Option(
            help="The environment variable holding the bearer token clients must send "
            "(a token on the command line would show in `ps`)."
        ),
    ] = "SHIPYARD_API_TOKEN",  # noqa: S107 (a variable name, not a secret)
    log: Annotated[bool, typer.Option("--log/--no-log", help="Keep the prediction log.")] = True,
    log_dir: Annotated[
        Path | None,
        typer.Option(help="Where the prediction log goes [default: .shipyard/predictions/NAME]."),
    ] = None,
    flush: Annotated[
        float,
        typer.Option(
            min=0.05, help="Seconds between prediction log flushes: the most a crash loses."
        ),
    ] = 1.0,
    max_batch_rows: Annotated[
        int, typer.Option(min=1, help="Rows above which requests stop joining a batch.")
    ] = 256,
    max_wait_ms: Annotated[
        float, typer.Option(min=0, help="Longest a request waits to share a batch.")
    ] = 2.0,
    timeout: Annotated[
        float, typer.Option(min=0.001, help="Seconds before a request is answered 503.")
    ] = 5.0,
    max_body_bytes: Annotated[
        int, typer.Option(min=1, help="Larger request bodies are answered 413.")
    ] = 1_048_576,
    reload: Annotated[
        float,
        typer.Option(help="Seconds between checks of a name@alias reference (0: never)."),
    ] = 2.0,
    shadow: Annotated[
        bool,
        typer.Option(
            "--shadow/--no-shadow",
            help="Also score the model's 'shadow' alias on every request; logged, never answered.",
        ),
    ] = True,
    threads: Annotated[
        int, typer.Option(min=1, help="Native threads the model may use per batch.")
    ] = 1,
    drain: Annotated[
        float, typer.Option(min=0, help="Seconds a shutdown waits for requests in flight.")
    ] = 30.0,
) -> None:
    """Serve a model over HTTP: shipyard's JSON, Open Inference Protocol v2, MLflow.

    Endpoints: POST /predict, /v2/models/NAME/infer, /invocations; GET /health, /ready,
    /metrics, /openapi.json, /docs. SIGTERM or Ctrl-C drains the requests in flight and
    flushes the prediction log before exiting.
    """
    from shipyard.core.project import Project
    from shipyard.errors import ProjectNotFoundError
    from shipyard.serving.server import ServeOptions, check_exposure, serve

    token = os.environ.get(token_env) or None
    check_exposure(host, token)
    try:
        project = str(Project.discover().root)
    except ProjectNotFoundError:
        project = None  # an export folder is served without one
    options = ServeOptions(
        ref=model,
        project=project,
        host=host,
        port=port,
        workers=workers,
        log=log,
        log_dir=None if log_dir is None else str(log_dir),
        max_batch_rows=max_batch_rows,
        max_wait_ms=max_wait_ms,
        timeout_s=timeout,
        max_body_bytes=max_body_bytes,
        reload_s=reload,
        shadow=shadow,
        threads=threads,
        drain_s=drain,
        flush_s=flush,
    )
    where = f"http://{host}:{port}"
    auth = f"token from ${token_env}" if token else "no token (loopback only)"
    err_console.print(
        f"Serving [bold]{escape(model)}[/] on {where} ({workers} worker(s), {auth}). "
        f"Docs: {where}/docs  Metrics: {where}/metrics  Ctrl-C drains and stops."
    )
    serve(options, token)
