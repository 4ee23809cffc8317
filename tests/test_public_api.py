"""The public API is what ``shipyard.__all__`` says, and importing it stays cheap."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import shipyard

EXPECTED = {
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
}


def test_all_lists_exactly_the_public_names() -> None:
    assert set(shipyard.__all__) == EXPECTED
    public = {name for name in dir(shipyard) if not name.startswith("_")} | {"__version__"}
    assert public == EXPECTED
    for name in shipyard.__all__:
        assert getattr(shipyard, name) is not None


def test_an_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        shipyard.nope  # type: ignore[attr-defined]  # noqa: B018


HEAVY = ["sqlalchemy", "polars", "numpy", "pyarrow", "pandas", "sklearn", "fsspec", "typer", "rich"]


def test_import_shipyard_loads_no_heavy_dependency() -> None:
    code = (
        f"import sys, json, shipyard\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == []


def test_import_shipyard_takes_well_under_the_budget() -> None:
    # -X importtime reports microseconds spent in the import itself, which is robust to a
    # busy machine in a way that wall-clock timing is not. The budget is 100 ms.
    samples = []
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import shipyard"],
            capture_output=True,
            text=True,
            check=True,
        )
        line = next(x for x in done.stderr.splitlines() if x.rstrip().endswith("| shipyard"))
        samples.append(int(line.split("|")[1]))
    assert min(samples) < 100_000, samples
