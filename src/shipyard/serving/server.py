"""Run the prediction API under uvicorn: what ``shipyard serve`` does, callable from Python.

:func:`serve` loads the model a reference names (``name@alias``, ``name:3``, an export
folder), its shadow, the prediction log and the alias watcher, and runs uvicorn until
SIGTERM or Ctrl-C. On either signal uvicorn stops accepting connections, answers the
requests already in flight (for up to ``drain_s`` seconds), then the app's lifespan
scores the queued shadow requests, closes the batchers and flushes the prediction log,
so every answered prediction is on disk when the process exits.

With ``workers > 1`` uvicorn starts that many processes; each loads the model itself
(from :func:`app_from_environment`, which reads the options from the environment) and
writes its own segments of the same prediction log.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import ConfigError, ProjectNotFoundError

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from shipyard.core.project import Project
    from shipyard.serving.model import ServedModel

__all__ = ["ServeOptions", "app_from_environment", "build_app", "is_loopback", "serve"]

logger = logging.getLogger(__name__)

OPTIONS_VARIABLE = "SHIPYARD_SERVE_OPTIONS"  # how worker processes get their options
TOKEN_VARIABLE = "SHIPYARD_API_TOKEN"  # noqa: S105 (a variable name; the token never travels in the options)


@dataclass(frozen=True)
class ServeOptions:
    """How to serve a model; ``shipyard serve``'s options.

    Attributes:
        ref: ``name@alias``, ``name:3``, ``name`` or an export folder.
        project: The project folder (None: an export folder served without a project).
        host: The interface to bind; anything but loopback requires a token.
        port: The TCP port.
        workers: Server processes.
        log: Keep a prediction log.
        log_dir: Where (default: ``<state dir>/predictions/<model>``).
        max_batch_rows: Rows above which concurrent requests stop joining a batch.
        max_wait_ms: Longest a request waits for others to share its batch.
        timeout_s: Requests taking longer are answered 503.
        max_body_bytes: Larger bodies are answered 413.
        reload_s: Seconds between checks of the alias (0: never; only for ``name@alias``).
        shadow: Score the ``shadow`` alias on the same requests, when it is set.
        threads: Native threads per batch (OpenMP, BLAS).
        drain_s: Longest a shutdown waits for requests in flight.
        flush_s: The prediction log's flush interval: the most a crash can lose.
    """

    ref: str
    project: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    log: bool = True
    log_dir: str | None = None
    max_batch_rows: int = 256
    max_wait_ms: float = 2.0
    timeout_s: float = 5.0
    max_body_bytes: int = 1_048_576
    reload_s: float = 2.0
    shadow: bool = True
    threads: int = 1
    drain_s: float = 30.0
    flush_s: float = 1.0


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, token: str | None) -> None:
    """Refuse to serve without a token on an interface other machines can reach.

    Raises:
        ConfigError: ``host`` is not loopback and there is no token.
    """
    if token is None and not is_loopback(host):
        raise ConfigError(
            f"refusing to serve on {host} without a token: anyone who can reach it could "
            f"call the model. Set {TOKEN_VARIABLE} (clients then send 'Authorization: "
            "Bearer <token>'), or bind to 127.0.0.1."
        )


def build_app(options: ServeOptions, token: str | None = None) -> Starlette:
    """The ASGI app ``options`` describe: model, shadow, prediction log and watcher."""
    from shipyard.serving.app import create_app
    from shipyard.serving.log import PredictionLog
    from shipyard.serving.model import AliasWatcher, load_served

    project = _project(options)
    model = load_served(options.ref, project)
    name, alias = _alias(options.ref, project)
    shadow = _shadow(project, name) if options.shadow and name is not None else None
    watcher = None
    if project is not None and name is not None and alias is not None and options.reload_s > 0:
        watcher = AliasWatcher(
            project,
            name,
            alias,
            shadow_alias="shadow" if options.shadow else None,
            interval_s=options.reload_s,
            served=(model.version, None if shadow is None else shadow.version),
        )
    log = None
    if options.log:
        log = PredictionLog(
            _log_dir(options, project, model), model=model.name, flush_seconds=options.flush_s
        )
    return create_app(
        model,
        log=log,
        token=token,
        max_body_bytes=options.max_body_bytes,
        timeout_s=options.timeout_s,
        max_batch_rows=options.max_batch_rows,
        max_wait_ms=options.max_wait_ms,
        shadow=shadow,
        watcher=watcher,
        threads=options.threads,
    )


def serve(options: ServeOptions, token: str | None = None) -> None:
    """Serve until SIGTERM or Ctrl-C, then drain, flush the log and return.

    Raises:
        ConfigError: a non-loopback host without a token.
        ModelNotFoundError: no such model, version, alias or export folder.
        ServingError: the model's inputs cannot be served.
    """
    import uvicorn

    check_exposure(options.host, token)
    config: dict[str, Any] = {
        "host": options.host,
        "port": options.port,
        "log_level": "warning",
        "timeout_graceful_shutdown": options.drain_s,
        "access_log": False,
    }
    if options.workers > 1:
        os.environ[OPTIONS_VARIABLE] = json.dumps(asdict(options))
        if token is not None:
            os.environ[TOKEN_VARIABLE] = token
        uvicorn.run(
            "shipyard.serving.server:app_from_environment",
            factory=True,
            workers=options.workers,
            **config,
        )
        return
    uvicorn.run(build_app(options, token), **config)


def app_from_environment() -> Starlette:
    """The app of a worker process: options from ``SHIPYARD_SERVE_OPTIONS``, the token
    from ``SHIPYARD_API_TOKEN``."""
    options = ServeOptions(**json.loads(os.environ[OPTIONS_VARIABLE]))
    return build_app(options, os.environ.get(TOKEN_VARIABLE) or None)


def _project(options: ServeOptions) -> Project | None:
    from shipyard.core.project import Project

    if options.project is not None:
        return Project.discover(options.project)
    if (Path(options.ref) / "model.json").is_file():
        try:
            return Project.discover()
        except ProjectNotFoundError:
            return None  # an export folder needs no project
    return Project.discover()


def _alias(ref: str, project: Project | None) -> tuple[str | None, str | None]:
    """(name, alias) of ``name@alias``; (name, None) of other registry references."""
    if project is None or (Path(ref) / "model.json").is_file():
        return None, None
    name, _, alias = ref.partition("@")
    return name.split(":")[0], alias or None


def _shadow(project: Project | None, name: str) -> ServedModel | None:
    from shipyard.registry.registry import Registry
    from shipyard.serving.model import load_served

    if project is None or "shadow" not in Registry(project).aliases(name):
        return None
    return load_served(f"{name}@shadow", project)


def _log_dir(options: ServeOptions, project: Project | None, model: ServedModel) -> Path:
    if options.log_dir is not None:
        return Path(options.log_dir)
    if project is not None:
        return Path(project.settings.state_dir) / "predictions" / model.name
    return Path.cwd() / ".shipyard" / "predictions" / model.name
