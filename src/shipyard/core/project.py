"""A project: its settings, its stores, and the pipelines it defines."""

from __future__ import annotations

import importlib
import sys
import threading
import types
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.config import Settings, load_settings
from shipyard.errors import ConfigError, PipelineDefinitionError

if TYPE_CHECKING:
    from shipyard.core.pipeline import Pipeline
    from shipyard.storage.artifacts import ArtifactStore
    from shipyard.storage.metadata import MetadataStore

_open: dict[Path, Project] = {}
_open_lock = threading.Lock()


class Project:
    """A project folder's settings, with its stores opened on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._metadata: MetadataStore | None = None
        self._artifacts: ArtifactStore | None = None
        self._lock = threading.Lock()

    @classmethod
    def discover(cls, start: Path | str | None = None) -> Project:
        """The project that holds ``start`` (default: the working directory), cached."""
        settings = load_settings(None if start is None else _find(Path(start)))
        with _open_lock:
            found = _open.get(settings.root)
            if found is None or found.settings != settings:
                found = _open[settings.root] = cls(settings)
        return found

    @property
    def root(self) -> Path:
        """The project folder."""
        return self.settings.root

    @property
    def metadata(self) -> MetadataStore:
        """The metadata store (opened and migrated on first use)."""
        with self._lock:
            if self._metadata is None:
                from shipyard.storage.metadata import MetadataStore

                self._metadata = MetadataStore(self.settings.metadata_url)
            return self._metadata

    @property
    def artifacts(self) -> ArtifactStore:
        """The artifact store."""
        with self._lock:
            if self._artifacts is None:
                from shipyard.storage.artifacts import open_artifact_store

                cache = self.settings.state_dir / "cache"
                store = open_artifact_store(self.settings.artifacts_url, cache)
                cleanup = getattr(store, "remove_stale_staging", None)
                if cleanup is not None:
                    cleanup()  # files left by writers that were killed a day ago or more
                self._artifacts = store
            return self._artifacts

    def pipelines(self) -> dict[str, Pipeline]:
        """Every pipeline defined in the modules that ``[project] pipelines`` names."""
        from shipyard.core.pipeline import Pipeline

        found: dict[str, Pipeline] = {}
        for module_name in self.settings.project.pipelines:
            module = self._import(module_name)
            for value in vars(module).values():
                if isinstance(value, Pipeline):
                    found.setdefault(value.name, value)
        return found

    def pipeline(self, name: str) -> Pipeline:
        """A pipeline by name, or by ``module:attribute``."""
        from shipyard.core.pipeline import Pipeline

        if ":" in name:
            module_name, _, attr = name.partition(":")
            value = getattr(self._import(module_name), attr, None)
            if not isinstance(value, Pipeline):
                raise PipelineDefinitionError(
                    f"{name!r} is not a @pipeline (found {type(value).__name__})."
                )
            return value
        pipelines = self.pipelines()
        if name not in pipelines:
            known = ", ".join(sorted(pipelines)) or "none"
            raise PipelineDefinitionError(
                f"No pipeline named {name!r} in {self.root}. Pipelines found in "
                f"{', '.join(self.settings.project.pipelines)}: {known}."
            )
        return pipelines[name]

    def _import(self, module_name: str) -> object:
        found = self.import_module(module_name, setting="[project] pipelines")
        assert found is not None  # not optional
        return found

    def import_module(
        self, name: str, *, setting: str, optional: bool = False
    ) -> types.ModuleType | None:
        """Import a module of the project (its folder first on ``sys.path``).

        Args:
            name: the module, e.g. ``"fraud.features"``.
            setting: the setting that named it, for the error message.
            optional: return None, rather than raise, when the module does not exist.

        Raises:
            ConfigError: the module does not exist (and is not optional); the message
                names the setting, the module and the fix.
        """
        root = str(self.root)
        if root not in sys.path:
            sys.path.insert(0, root)
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if not (exc.name and name.startswith(exc.name)):
                raise  # the module exists and imports something missing
            if optional:
                return None
            raise ConfigError(
                f"{self.settings.source}: {setting} names {name!r}, but there is no module "
                f"{exc.name!r} in {self.root}. Create {exc.name.replace('.', '/')}.py or fix "
                "the name."
            ) from None


def _find(start: Path) -> Path:
    from shipyard.config import find_project_root

    return find_project_root(start)
