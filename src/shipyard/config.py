"""``shipyard.toml``: find it, read it, check it, and let ``SHIPYARD_*`` override it.

A project is the folder that holds ``shipyard.toml``; it is found by walking up
from the working directory, as git finds ``.git``. Every setting
``[section] key`` can be overridden by the variable ``SHIPYARD_SECTION_KEY``
(``SHIPYARD_STORES_METADATA``, ``SHIPYARD_EXECUTOR_MAX_WORKERS``);
``SHIPYARD_PROJECT_DIR`` names the project folder outright.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.errors import ConfigError, ProjectNotFoundError

CONFIG_FILE = "shipyard.toml"
STATE_DIR = ".shipyard"
ENV_PREFIX = "SHIPYARD_"
_NOT_SETTINGS = {"SHIPYARD_PROJECT_DIR", "SHIPYARD_LOG_LEVEL"}


@dataclass(frozen=True)
class _Key:
    kind: type
    default: Any
    help: str
    required: bool = False


_SCHEMA: dict[str, dict[str, _Key]] = {
    "project": {
        "name": _Key(str, None, "the project's name", required=True),
        "owner": _Key(str, "", "the team that owns the service"),
        "contacts": _Key(list, [], "how to reach the owners, e.g. e-mail or chat channel"),
        "description": _Key(str, "", "what the service is for"),
        "pipelines": _Key(list, ["pipelines"], "modules (relative to the project) to import"),
    },
    "stores": {
        "metadata": _Key(str, f"sqlite:///{STATE_DIR}/metadata.db", "SQLAlchemy URL"),
        "artifacts": _Key(str, f"{STATE_DIR}/artifacts", "folder or fsspec URL"),
        "online": _Key(str, f"sqlite:///{STATE_DIR}/online.db", "online feature store URL"),
    },
    "features": {
        "definitions": _Key(
            list, ["features"], "modules (relative to the project) that define feature views"
        ),
        "partition_rows": _Key(
            int, 1_000_000, "most rows per Parquet partition of feature history (and ~32 MB)"
        ),
    },
    "executor": {
        "kind": _Key(str, "local", "'local'"),
        "max_workers": _Key(int, 4, "steps run at once by the local executor"),
    },
    "runs": {
        "seed": _Key(int, None, "random seed for every run; a fresh one is drawn if unset"),
    },
}

# Tables whose content a higher layer checks (it knows their shape): kept as read.
_FREE_FORM = {
    "objectives": "the business objectives, checked by shipyard.evaluation",
    "monitoring": "what production monitoring watches, checked by shipyard.monitoring",
}
_TABLES = (*_SCHEMA, *_FREE_FORM)

_EXECUTORS = ("local",)


@dataclass(frozen=True)
class ProjectSettings:
    """The ``[project]`` table: who owns what."""

    name: str
    owner: str = ""
    contacts: tuple[str, ...] = ()
    description: str = ""
    pipelines: tuple[str, ...] = ("pipelines",)


@dataclass(frozen=True)
class Settings:
    """A project's validated settings, with paths resolved against its folder."""

    root: Path
    project: ProjectSettings
    metadata_url: str
    artifacts_url: str
    executor: str = "local"
    max_workers: int = 4
    seed: int | None = None
    online_url: str = f"sqlite:///{STATE_DIR}/online.db"
    feature_modules: tuple[str, ...] = ("features",)
    features_configured: bool = False
    partition_rows: int = 1_000_000
    objectives: dict[str, Any] = field(default_factory=dict)
    monitoring: dict[str, Any] = field(default_factory=dict)
    source: Path | None = field(default=None, compare=False)

    @property
    def state_dir(self) -> Path:
        """The folder for local state (``.shipyard/``)."""
        return self.root / STATE_DIR


def find_project_root(start: Path | None = None) -> Path:
    """Return the nearest folder at or above ``start`` that holds ``shipyard.toml``."""
    if env := os.environ.get("SHIPYARD_PROJECT_DIR"):
        root = Path(env).expanduser().resolve()
        if not (root / CONFIG_FILE).is_file():
            raise ProjectNotFoundError(
                f"SHIPYARD_PROJECT_DIR is {env!r}, but there is no {CONFIG_FILE} in it. "
                f"Point it at a project folder, or create one with `shipyard init {env}`."
            )
        return root
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    raise ProjectNotFoundError(
        f"No {CONFIG_FILE} in {here} or any folder above it. "
        "Run `shipyard init` to create a project here, or cd into one."
    )


def load_settings(root: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Read, validate and resolve the settings of the project at ``root``.

    Args:
        root: the project folder; found by walking up from the working directory if None.
        environ: the environment to read ``SHIPYARD_*`` overrides from (default ``os.environ``).

    Raises:
        ConfigError: naming the file, line and key that is wrong, and the fix.
    """
    root = find_project_root() if root is None else Path(root).resolve()
    path = root / CONFIG_FILE
    raw = _read_toml(path)
    text = path.read_text(encoding="utf-8")
    values = _validate(raw, path, text)
    from_env = _apply_env(values, os.environ if environ is None else environ)

    def origin(section: str, key: str) -> str:
        """Where a value came from, for messages: the variable, or the file and line."""
        if (section, key) in from_env:
            return f"Environment variable {from_env[section, key]}"
        return f"{path}:{_line_of(text, section, key)}: [{section}] {key}"

    return _resolve(root, path, values, origin)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProjectNotFoundError(
            f"{path} does not exist. Create it with `shipyard init {path.parent}`."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read {path}: {exc}. It must be a UTF-8 text file.") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}. Fix the syntax there.") from exc


def _validate(raw: dict[str, Any], path: Path, text: str) -> dict[str, dict[str, Any]]:
    values: dict[str, dict[str, Any]] = {}
    tables = ", ".join(f"[{s}]" for s in _TABLES)
    for section, table in raw.items():
        where = f"{path}:{_line_of(text, section, None)}"
        if section not in _TABLES and not isinstance(table, dict):
            raise ConfigError(
                f"{path}:{_line_of(text, '', section)}: {section!r} is set outside any table. "
                f"Settings belong under one of: {tables}; move it under its table."
            )
        if section not in _TABLES:
            raise ConfigError(
                f"{where}: unknown table [{section}]. Expected one of: {tables}. "
                "Remove it or fix its name."
            )
        if not isinstance(table, dict):
            where = f"{path}:{_line_of(text, '', section)}"
            raise ConfigError(f"{where}: {section!r} must be a table ([{section}]).")
        if section in _FREE_FORM:
            values[section] = table
            continue
        values[section] = {k: _check_key(section, k, v, path, text) for k, v in table.items()}
    for section, keys in _SCHEMA.items():
        for key, spec in keys.items():
            if spec.required and key not in values.get(section, {}):
                raise ConfigError(
                    f"{path}: [{section}] {key} is required ({spec.help}). "
                    f'Add a line `{key} = "..."` under [{section}].'
                )
    return values


def _check_key(section: str, key: str, value: Any, path: Path, text: str) -> Any:
    where = f"{path}:{_line_of(text, section, key)}"
    spec = _SCHEMA[section].get(key)
    if spec is None:
        known = ", ".join(_SCHEMA[section])
        raise ConfigError(
            f"{where}: unknown key {key!r} in [{section}]. Known keys: {known}. "
            "Remove it or fix its spelling."
        )
    return _coerce(value, spec, f"{where}: [{section}] {key}")


def _coerce(value: Any, spec: _Key, label: str) -> Any:
    if spec.kind is list and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    if spec.kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if spec.kind is str and isinstance(value, str):
        return value
    expected = {list: "a list of strings", int: "an integer", str: "a string"}[spec.kind]
    raise ConfigError(
        f"{label} must be {expected} ({spec.help}), got {value!r} "
        f"(a {type(value).__name__}). Change the value to {expected}."
    )


def _apply_env(values: dict[str, dict[str, Any]], environ: Any) -> dict[tuple[str, str], str]:
    """Overlay ``SHIPYARD_*`` variables; returns the variable that set each (section, key)."""
    from_env: dict[tuple[str, str], str] = {}
    for name, text in environ.items():
        if not name.startswith(ENV_PREFIX) or name in _NOT_SETTINGS:
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("_")
        spec = _SCHEMA.get(section, {}).get(key)
        if spec is None:
            continue  # other tools' SHIPYARD_* variables are not ours to judge
        values.setdefault(section, {})[key] = _parse_env(text, spec, name)
        from_env[section, key] = name
    return from_env


def _parse_env(text: str, spec: _Key, name: str) -> Any:
    if spec.kind is int:
        try:
            return int(text)
        except ValueError:
            raise ConfigError(
                f"Environment variable {name} must be an integer ({spec.help}), got {text!r}."
            ) from None
    if spec.kind is list:
        return [part.strip() for part in text.split(",") if part.strip()]
    return text


def _resolve(
    root: Path, path: Path, values: dict[str, dict[str, Any]], origin: Callable[[str, str], str]
) -> Settings:
    def get(section: str, key: str) -> Any:
        return values.get(section, {}).get(key, _SCHEMA[section][key].default)

    executor = get("executor", "kind")
    if executor not in _EXECUTORS:
        raise ConfigError(
            f"{origin('executor', 'kind')} must be one of {', '.join(map(repr, _EXECUTORS))}, "
            f"got {executor!r}. Change it to one of those."
        )
    workers = get("executor", "max_workers")
    if workers < 1:
        raise ConfigError(
            f"{origin('executor', 'max_workers')} must be at least 1, got {workers}. "
            "Change it to the number of steps to run at once."
        )
    project = ProjectSettings(
        name=get("project", "name"),
        owner=get("project", "owner"),
        contacts=tuple(get("project", "contacts")),
        description=get("project", "description"),
        pipelines=tuple(get("project", "pipelines")),
    )
    return Settings(
        root=root,
        project=project,
        metadata_url=resolve_metadata_url(get("stores", "metadata"), root),
        artifacts_url=resolve_artifacts_url(get("stores", "artifacts"), root),
        executor=executor,
        max_workers=workers,
        seed=get("runs", "seed"),
        online_url=resolve_metadata_url(get("stores", "online"), root),
        feature_modules=tuple(get("features", "definitions")),
        features_configured="definitions" in values.get("features", {}),
        objectives=values.get("objectives", {}),
        monitoring=values.get("monitoring", {}),
        partition_rows=_positive(
            get("features", "partition_rows"), origin("features", "partition_rows")
        ),
        source=path,
    )


def _positive(value: int, origin: str) -> int:
    if value < 1:
        raise ConfigError(
            f"{origin} must be at least 1, got {value}. Change it to a positive number."
        )
    return value


def resolve_metadata_url(url: str, root: Path) -> str:
    """Make a relative ``sqlite:///path`` absolute against the project folder."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite://":
        rest = url[len(prefix) :]
        if rest and rest != ":memory:":
            return prefix + str((root / rest).resolve())
    return url


def resolve_artifacts_url(url: str, root: Path) -> str:
    """Make a relative artifact folder absolute; leave ``scheme://`` URLs alone."""
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", url) and not url.startswith("file://"):
        return url
    local = url.removeprefix("file://")
    return str((root / local).resolve())


def _line_of(text: str, section: str, key: str | None) -> int:
    """The 1-based line of ``[section]`` or of ``key`` inside it (1 if not found).

    Section ``""`` holds the keys written before any ``[table]``; a key that is a
    sub-table (``[section.key]``) is found at its header.
    """
    current = ""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        header = re.match(r"^\[\s*([^\]\s]+)\s*\]", stripped)
        if header:
            current = header.group(1)
            if current == (section if key is None else f"{section}.{key}"):
                return number
            continue
        if key is not None and current == section and re.match(rf"^{re.escape(key)}\s*=", stripped):
            return number
    return 1


PROJECT_TEMPLATE = """\
# shipyard project settings. Every key can be overridden by SHIPYARD_<TABLE>_<KEY>,
# e.g. SHIPYARD_STORES_METADATA=postgresql://... or SHIPYARD_EXECUTOR_MAX_WORKERS=8.

[project]
name = "{name}"
owner = "{owner}"
contacts = []
description = ""
# Python modules (relative to this folder) that define the project's pipelines.
pipelines = ["pipelines"]

[stores]
# Run metadata: a SQLAlchemy URL. The default SQLite file needs no server.
metadata = "sqlite:///.shipyard/metadata.db"
# Artifacts: a folder, or an fsspec URL such as s3://bucket/prefix.
artifacts = ".shipyard/artifacts"
# Online feature values for serving: sqlite:///path (no server needed).
online = "sqlite:///.shipyard/online.db"

[features]
# Python modules (relative to this folder) that define entities and feature views.
definitions = ["features"]

[executor]
kind = "local"
max_workers = 4
"""
