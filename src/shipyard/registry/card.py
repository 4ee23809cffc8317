"""Model cards: what a registered version is, who owns it, how good it is, where it came from.

A card only shows what was recorded: the project's ``[project]`` table, the version's
description, lineage and evaluation, its newest gate record, and the run that trained it.
Anything missing reads "not stated", "not recorded" or "not evaluated"; nothing is guessed.

The lineage keys a card reads (all optional; :meth:`Registry.register` keeps them as given):

========================  ==================================================================
``contracts``             data contracts the training data met: ``{id: version}`` (or a list)
``training_window``       the rows' time span: ``{"start": ..., "end": ...}`` or a string
``feature_views``         feature views used: ``{name: version}``
``features``              the model's input columns, in order
``objectives``            the objectives it was judged against (``Objectives.to_dict()``)
``limits``                known limits of the model, in words
``git_commit``            the code's commit, when the training run is not in this project
========================  ==================================================================

The evaluation is ``Evaluation.to_dict()`` (``objectives`` may be added to it too).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from shipyard.errors import ArtifactNotFoundError, RunNotFoundError
from shipyard.registry import _card_render as render
from shipyard.registry import _card_sections as sections

if TYPE_CHECKING:
    from shipyard.registry.registry import ModelVersion, Registry

__all__ = ["ModelCard", "model_card"]


@dataclass(frozen=True)
class ModelCard:
    """The facts of one model version's card, as plain JSON-able values.

    Attributes:
        name: the registered model.
        version: its version number.
        aliases: the aliases that point at it now.
        created_at: when it was registered (seconds since the epoch).
        description: the version's description ("" if none was given).
        project: the ``[project]`` table: ``name``, ``owner``, ``contacts``, ``description``.
        lineage: the version's lineage as registered.
        evaluation: its evaluation (``Evaluation.to_dict()``), or None.
        gate: its newest gate record (``id``, ``passed``, ``record``, ``created_at``), or None.
        run: the training run (``id``, ``pipeline``, ``params``, ``seed``, ``git_commit``,
            ``git_dirty``, ``status``), None if not recorded, or ``{"id": ..., "missing": True}``
            when the id is recorded but the run is not in this project.
        step_run: the step run that produced the model (``id``, ``name``), or None.
        artifact: the model artifact (``id``, ``digest``, ``type_name``, ``size``).
    """

    name: str
    version: int
    aliases: tuple[str, ...]
    created_at: float
    description: str
    project: Mapping[str, Any]
    lineage: Mapping[str, Any]
    evaluation: Mapping[str, Any] | None
    gate: Mapping[str, Any] | None
    run: Mapping[str, Any] | None
    step_run: Mapping[str, Any] | None
    artifact: Mapping[str, Any]

    @property
    def ref(self) -> str:
        """The reference of the version, e.g. ``fraud:3``."""
        return f"{self.name}:{self.version}"

    @property
    def title(self) -> str:
        """The card's heading."""
        return f"Model card: {self.ref}"

    def markdown(self) -> str:
        """The card as Markdown (CommonMark with GitHub tables); recorded text is escaped."""
        return render.markdown(self.title, sections.build(self))

    def html(self) -> str:
        """The card as one self-contained HTML page (inline CSS, no script); all escaped."""
        return render.html(self.title, sections.build(self))

    def to_dict(self) -> dict[str, Any]:
        """Every fact of the card as plain JSON-able values."""
        found: dict[str, Any] = json.loads(json.dumps(asdict(self), default=str))
        return found


def model_card(registry: Registry, ref: str) -> ModelCard:
    """The card of the version ``ref`` names (``name@alias``, ``name:3`` or ``name``).

    Raises:
        ModelNotFoundError: no such model, version or alias.
    """
    version = registry.get(ref)
    settings = registry.project.settings.project
    gates = registry.gates(version.name, version.version)
    run, step_run = _run(registry, version)
    return ModelCard(
        name=version.name,
        version=version.version,
        aliases=version.aliases,
        created_at=version.created_at,
        description=version.description,
        project={
            "name": settings.name,
            "owner": settings.owner,
            "contacts": list(settings.contacts),
            "description": settings.description,
        },
        lineage=dict(version.lineage),
        evaluation=registry.evaluation(version),
        gate=gates[0] if gates else None,
        run=run,
        step_run=step_run,
        artifact=_artifact(registry, version.artifact_id),
    )


def _run(
    registry: Registry, version: ModelVersion
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    from shipyard.core.run import Run

    step_run = None if version.step_run_id is None else {"id": version.step_run_id, "name": None}
    if version.run_id is None:
        return None, step_run
    try:
        run = Run.load(registry.project, version.run_id)
    except RunNotFoundError:
        return {"id": version.run_id, "missing": True}, step_run
    for found in run.step_runs.values():
        if step_run is not None and found.id == step_run["id"]:
            step_run["name"] = found.name
    facts = {
        "id": run.id,
        "pipeline": run.pipeline,
        "status": run.status,
        "params": run.params,
        "seed": run.seed,
        "git_commit": run.git_commit,
        "git_dirty": run.git_dirty,
    }
    return facts, step_run


def _artifact(registry: Registry, artifact_id: str) -> dict[str, Any]:
    try:
        row = registry.project.metadata.get_artifact(artifact_id)
    except ArtifactNotFoundError:
        return {"id": artifact_id, "digest": None, "type_name": None, "size": None}
    return {key: row[key] for key in ("id", "digest", "type_name", "size")}
