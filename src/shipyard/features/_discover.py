"""Find a project's feature definitions in the modules ``[features] definitions`` names."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
    # the default module is optional: a project without features has none
    optional = not project.settings.features_configured
    return project.import_module(name, setting="[features] definitions", optional=optional)
