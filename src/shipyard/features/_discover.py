"""Find a project's feature definitions in the modules ``[features] definitions`` names."""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

from shipyard.errors import ConfigError
from shipyard.features.entity import Entity
from shipyard.features.view import FeatureView, RequestFeatures

if TYPE_CHECKING:
    from shipyard.core.project import Project


def definitions_of(project: Project) -> list[Entity | FeatureView | RequestFeatures]:
    """Every Entity, FeatureView and RequestFeatures defined at module level, in order."""
    found: dict[int, Any] = {}
    for name in project.settings.feature_modules:
        module = _import(project, name)
        if module is None:
            continue
        for value in vars(module).values():
            if isinstance(value, Entity | FeatureView | RequestFeatures):
                found.setdefault(id(value), value)
    return list(found.values())


def _import(project: Project, name: str) -> Any:
    root = str(project.root)
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if not (exc.name and name.startswith(exc.name)):
            raise
        if not project.settings.features_configured:
            return None  # the default module is optional: a project without features
        raise ConfigError(
            f"{project.settings.source}: [features] definitions names {name!r}, but there is "
            f"no module {exc.name!r} in {project.root}. Create it or fix the name."
        ) from None
