"""The registry's records as users see them: models, versions and alias events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model: its artifact, the run that made it, its lineage.

    Attributes:
        name: the registered model's name.
        version: 1, 2, 3... in the order the versions were registered.
        artifact_id: the model artifact in the project's artifact store.
        run_id: the run that produced the artifact (None if unknown).
        step_run_id: the step run that produced the artifact (None if unknown).
        created_at: when the version was registered (seconds since the epoch).
        description: free text given when registering.
        lineage: what the version was made from, as the caller recorded it (contract and
            feature view versions, git commit, parameters...).
        evaluation: the evaluation results recorded with the version, if any.
        aliases: the aliases that point at this version now, sorted.
    """

    name: str
    version: int
    artifact_id: str
    run_id: str | None
    step_run_id: str | None
    created_at: float
    description: str
    lineage: Mapping[str, Any]
    evaluation: Mapping[str, Any] | None
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        """The reference that names exactly this version, e.g. ``fraud:3``."""
        return f"{self.name}:{self.version}"

    @classmethod
    def from_row(cls, row: Mapping[str, Any], aliases: tuple[str, ...] = ()) -> ModelVersion:
        """Build from a ``model_versions`` row of the metadata store."""
        fields = {k: row[k] for k in cls.__dataclass_fields__ if k != "aliases"}
        return cls(**fields, aliases=aliases)


@dataclass(frozen=True)
class RegisteredModel:
    """A registered model name, with its latest version and where its aliases point.

    Attributes:
        name: the model's name.
        description: free text about the model.
        owner: the project owner when the model was first registered.
        created_at: when its first version was registered.
        latest_version: its highest version number.
        aliases: alias name to version number, sorted by alias.
    """

    name: str
    description: str
    owner: str
    created_at: float
    latest_version: int
    aliases: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class AliasEvent:
    """One change of an alias, as the audit log keeps it.

    Attributes:
        id: increases with every event, so it orders the log.
        name: the model.
        alias: the alias that changed.
        action: ``"set"`` (it pointed nowhere before), ``"moved"``, ``"removed"`` or
            ``"rollback"``.
        version: the version the alias points at afterwards (None once removed).
        previous_version: the version it pointed at before (None if it was unset).
        actor: who made the change.
        reason: why, in the actor's words.
        gate_id: the gate record the promotion relied on (or that was overridden).
        forced: whether the promotion was made with ``force=True``, skipping the gate.
        created_at: when (seconds since the epoch).
    """

    id: int
    name: str
    alias: str
    action: str
    version: int | None
    previous_version: int | None
    actor: str
    reason: str
    gate_id: str | None
    forced: bool
    created_at: float

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> AliasEvent:
        """Build from an ``alias_events`` row of the metadata store."""
        return cls(**{k: row[k] for k in cls.__dataclass_fields__})
