"""shipyard: one project folder for an ML team that owns its service end to end.

The public API. Everything else is private and may change::

    from shipyard import step, pipeline, get_context

    @step
    def load(n: int) -> int:
        return n

    @pipeline
    def train(n: int = 3):
        load(n)

    run = train(n=5)          # a Run: id, status, step runs, outputs, metrics
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard._utils.lazy import lazy_attributes
from shipyard.core.context import StepContext, get_context
from shipyard.core.pipeline import Pipeline, pipeline
from shipyard.core.step import Step, step
from shipyard.errors import ShipyardError

__version__ = "0.1.0"

__all__ = [
    "Artifact",
    "Contract",
    "Entity",
    "FeatureStore",
    "FeatureView",
    "Materializer",
    "Objectives",
    "Pipeline",
    "Project",
    "Registry",
    "RequestFeatures",
    "Run",
    "ShipyardError",
    "Step",
    "StepContext",
    "StepRun",
    "__version__",
    "get_context",
    "pipeline",
    "register_materializer",
    "step",
    "trust_types",
]

_LAZY = {
    "Artifact": "shipyard.core.run",
    "Contract": "shipyard.contracts.contract",
    "Entity": "shipyard.features.entity",
    "FeatureStore": "shipyard.features.store",
    "FeatureView": "shipyard.features.view",
    "RequestFeatures": "shipyard.features.view",
    "Run": "shipyard.core.run",
    "StepRun": "shipyard.core.run",
    "Project": "shipyard.core.project",
    "Materializer": "shipyard.core.materializers",
    "Objectives": "shipyard.evaluation.objectives",
    "Registry": "shipyard.registry.registry",
    "register_materializer": "shipyard.core.materializers",
    "trust_types": "shipyard.core.materializers",
}

if TYPE_CHECKING:
    from shipyard.contracts.contract import Contract
    from shipyard.core.materializers import Materializer, register_materializer, trust_types
    from shipyard.core.project import Project
    from shipyard.core.run import Artifact, Run, StepRun
    from shipyard.evaluation.objectives import Objectives
    from shipyard.features.entity import Entity
    from shipyard.features.store import FeatureStore
    from shipyard.features.view import FeatureView, RequestFeatures
    from shipyard.registry.registry import Registry


__getattr__ = lazy_attributes(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted(__all__)
