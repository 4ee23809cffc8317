"""The cache key of a step run.

Two step runs share a key, and the second may reuse the first's outputs, only
if all of these are equal: the step's code closure (its code and the project
code it reaches), its parameters, the content of its inputs and how they were
stored, the materializers its outputs will use, and the versions of the
third-party packages its code reaches.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from shipyard.core import materializers
from shipyard.core._closure import closure_of
from shipyard.core.executor import ArtifactRef
from shipyard.core.step import Step

#: Bump when the recipe below changes, so old keys never match new ones.
CACHE_FORMAT = 1


def cache_key(step: Step, params: Mapping[str, Any], inputs: Mapping[str, ArtifactRef]) -> str:
    """The hex SHA-256 that identifies a step run's result."""
    closure = closure_of(step.fn)
    recipe = {
        "format": CACHE_FORMAT,
        "code": closure.digest,
        "packages": closure.packages,
        "params": params,
        "inputs": {
            name: [ref.digest, ref.materializer, _version(ref.materializer)]
            for name, ref in sorted(inputs.items())
        },
        "outputs": _output_materializers(step),
    }
    text = json.dumps(recipe, sort_keys=True, default=repr, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def code_hash(step: Step) -> str:
    """The hash of the step's code closure alone."""
    return closure_of(step.fn).digest


def function_hash(fn: Any) -> str:
    """The hash of any function's code closure (what a feature view's version covers)."""
    return closure_of(fn).digest


def _version(materializer_name: str) -> str:
    return materializers.by_name(materializer_name).version


def _output_materializers(step: Step) -> dict[str, list[str]]:
    chosen: dict[str, list[str]] = {}
    for spec in step.outputs:
        explicit = step.materializer_for(spec.name)
        if explicit is not None:
            found: materializers.Materializer | None = materializers.by_name(explicit)
        elif isinstance(spec.annotation, type):
            found = materializers.for_type(spec.annotation)
        else:
            found = None
        chosen[spec.name] = [found.name, found.version] if found else ["by-value", "-"]
    return chosen
