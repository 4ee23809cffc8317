"""The model registry: named models, numbered versions, gated aliases, an audit log.

A version is registered from a model artifact of the project's artifact store.
An alias (``production``, ``staging``...) points at one version of a model; it
moves only by :meth:`Registry.promote` (which needs a passing gate record, or
``force`` with a reason), :meth:`Registry.rollback` and :meth:`Registry.remove_alias`,
and every move is kept in the audit log. Each alias change reads the alias and
writes it with its log entry in one transaction of the metadata store, so
concurrent promotions, from threads or processes, never lose an update.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from shipyard.errors import ModelNotFoundError
from shipyard.registry import _aliases, _gates, _lookup
from shipyard.registry._lineage import input_schema, run_lineage
from shipyard.registry._records import AliasEvent, ModelVersion, RegisteredModel

if TYPE_CHECKING:
    from shipyard.core.project import Project
    from shipyard.storage._registry_sql import AliasDecision
    from shipyard.storage.metadata import MetadataStore

__all__ = ["AliasEvent", "ModelVersion", "RegisteredModel", "Registry"]

Row = dict[str, Any]


class Registry:
    """The models of one project, stored in its metadata store.

    Args:
        project: the project whose stores hold the registry and the model artifacts.
    """

    def __init__(self, project: Project) -> None:
        self.project = project

    @property
    def _store(self) -> MetadataStore:
        return self.project.metadata

    # -- versions -------------------------------------------------------------------

    def register(
        self,
        name: str,
        *,
        artifact_id: str,
        run_id: str | None = None,
        step_run_id: str | None = None,
        lineage: Mapping[str, Any] | None = None,
        evaluation: Mapping[str, Any] | None = None,
        description: str = "",
    ) -> ModelVersion:
        """Register a new version of model ``name`` (creating the model on first use).

        Versions are numbered 1, 2, 3... per model; the number is allocated in the
        same transaction that writes the version, so concurrent calls never share one.

        Args:
            name: the model's name: a letter or digit, then letters, digits, ``.``,
                ``_`` or ``-``.
            artifact_id: the model artifact (a full id or a unique prefix).
            run_id: the run that trained it (default: the run that produced the artifact).
            step_run_id: the step run that produced it (default: the artifact's).
            lineage: what it was made from (contract and feature view versions, git
                commit, parameters...), kept as JSON.
            evaluation: its evaluation results, kept as JSON.
            description: free text about this version.

        Returns:
            The new version.

        Raises:
            ValueError: ``name`` is not a valid model name.
            ArtifactNotFoundError: no artifact (or more than one) matches ``artifact_id``.
        """
        _lookup.check_model_name(name)
        artifact = self._store.get_artifact(artifact_id)
        now = time.time()
        owner = self.project.settings.project.owner
        model = {"name": name, "description": "", "owner": owner, "created_at": now}
        version = {
            "artifact_id": artifact["id"],
            "run_id": run_id if run_id is not None else artifact["run_id"],
            "step_run_id": step_run_id if step_run_id is not None else artifact["step_run_id"],
            "created_at": now,
            "description": description,
            "lineage": dict(lineage or {}),
            "evaluation": None if evaluation is None else dict(evaluation),
        }
        row = self._store.add_model_version(model, version)
        return ModelVersion.from_row(self._store.model_versions(name, row["version"])[0])

    def register_run(
        self,
        name: str,
        run: Any,
        *,
        step: str,
        output: str = "output",
        features: Sequence[str] | None = None,
        lineage: Mapping[str, Any] | None = None,
        description: str = "",
    ) -> ModelVersion:
        """Register the model a run's ``step`` stored as ``output``, with the run's lineage
        (contracts checked, feature view versions, params, seed, git commit), plus the
        model's input ``features`` and any ``lineage`` the caller adds.

        With ``features``, the types those columns had in the step's input table are kept
        as ``input_schema``: a server derives its request contract from them.
        """
        if step not in run.step_runs or output not in run.step_runs[step].outputs:
            steps = {s: sorted(r.outputs) for s, r in run.step_runs.items()}
            raise ModelNotFoundError(
                f"Run {run.id[:8]} has no output {output!r} of a step {step!r}; its steps and "
                f"outputs are {steps}. Name the step that returns the model."
            )
        artifact = run.step_runs[step].outputs[output]
        found = {**run_lineage(run)}
        if features is not None:
            found["features"] = list(features)
            schema = input_schema(run.step_runs[step], features)
            if schema is not None:
                found["input_schema"] = schema
        found.update(lineage or {})
        return self.register(
            name, artifact_id=artifact.id, run_id=run.id, lineage=found, description=description
        )

    def models(self) -> list[RegisteredModel]:
        """Every registered model, by name, with its latest version and its aliases."""
        aliases: dict[str, dict[str, int]] = {}
        for row in self._store.model_aliases():
            aliases.setdefault(row["name"], {})[row["alias"]] = row["version"]
        return [
            RegisteredModel(**row, aliases=aliases.get(row["name"], {}))
            for row in self._store.registered_models()
        ]

    def versions(self, name: str) -> list[ModelVersion]:
        """The versions of model ``name``, oldest first, each with its aliases.

        Raises:
            ModelNotFoundError: no model of that name; the message lists the models.
        """
        pointing = _by_version(self._aliases(name))
        rows = self._versions(name)
        return [ModelVersion.from_row(r, pointing.get(r["version"], ())) for r in rows]

    def get(self, ref: str) -> ModelVersion:
        """The version a reference names: ``name@alias``, ``name:3`` or ``name`` (latest).

        Raises:
            ModelNotFoundError: no such model, version or alias; the message lists the
                registered models, or the versions and aliases of the model.
        """
        name, selector = _lookup.parse_ref(ref)
        aliases = self._aliases(name)  # first: any version an alias names is then in rows
        rows = self._versions(name)
        if selector is None:
            number = len(rows)
        elif isinstance(selector, int):
            number = selector
            if not 1 <= number <= len(rows):
                raise _lookup.unknown_version(name, number, len(rows), aliases)
        elif selector in aliases:
            number = aliases[selector]
        else:
            raise _lookup.unknown_alias(name, selector, len(rows), aliases)
        pointing = _by_version(aliases).get(number, ())
        return ModelVersion.from_row(rows[number - 1], pointing)

    def load(self, ref: str) -> Any:
        """The model object of the version ``ref`` names, read from the artifact store."""
        from shipyard.core.run import Artifact

        row = self._store.get_artifact(self.get(ref).artifact_id)
        return Artifact.from_row(row, self.project).load()

    # -- gates ----------------------------------------------------------------------

    def record_gate(
        self, name: str, version: int, record: Mapping[str, Any], *, passed: bool
    ) -> str:
        """Keep a gate decision about ``name:version``; returns the gate record's id.

        Args:
            name: the model.
            version: the version the gate judged.
            record: the decision with its reasons (metrics, baselines...), kept as JSON.
            passed: whether the version may replace the one behind an alias.

        Raises:
            ModelNotFoundError: no such model or version.
        """
        self._version(name, version)
        row = {"name": name, "version": version, "passed": passed, "record": dict(record)}
        return self._store.add_gate_record({**row, "created_at": time.time()})

    def gates(self, name: str, version: int) -> list[dict[str, Any]]:
        """The gate records of ``name:version``, newest first.

        Each is a dict of ``id``, ``name``, ``version``, ``passed``, ``record`` and
        ``created_at``.
        """
        self._version(name, version)
        return self._store.gate_records(name, version)

    def evaluation(self, version: ModelVersion) -> dict[str, Any] | None:
        """The version's evaluation: the one registered with it, else the one the newest
        gate record carries (``shipyard evaluate`` records it there), else None."""
        if version.evaluation is not None:
            return dict(version.evaluation)
        for gate in self._store.gate_records(version.name, version.version):
            found = gate["record"].get("evaluation") if isinstance(gate["record"], dict) else None
            if isinstance(found, dict):
                return found
        return None

    # -- aliases --------------------------------------------------------------------

    def promote(
        self,
        name: str,
        version: int,
        alias: str = "production",
        *,
        actor: str | None = None,
        reason: str = "",
        gate_id: str | None = None,
        force: bool = False,
    ) -> AliasEvent:
        """Point ``name@alias`` at ``version``, if a gate record lets it.

        The version needs a passing gate record: the one ``gate_id`` names (a record of
        this version), or else its newest one. ``force=True`` skips that check but
        needs a ``reason``; the event records it as forced. Promoting to the version
        the alias already points at changes nothing and returns the alias's latest event.

        Args:
            name: the model.
            version: the version to point the alias at.
            alias: the alias: a lowercase letter, then up to 62 of ``a-z0-9_-``.
            actor: who promotes (default: ``SHIPYARD_ACTOR``, else the login name).
            reason: why; required with ``force``.
            gate_id: the gate record the promotion relies on.
            force: promote without a passing gate record.

        Returns:
            The event recorded in the audit log.

        Raises:
            PromotionRefusedError: the gate check failed, ``force`` came without a
                reason, ``gate_id`` belongs to another version, or the alias name is invalid.
            ModelNotFoundError: no such model or version.
        """
        _aliases.check_alias_name(alias)
        self._version(name, version)
        records = self._store.gate_records(name)
        gate = _gates.approving_gate(records, name, version, gate_id, force=force, reason=reason)
        event = _event(actor, reason, gate_id=gate, forced=force)
        judged = _aliases.UNKNOWN if force else _gates.judged_against(records, gate, name, alias)
        return self._change(name, alias, _aliases.promotion(version, judged), event)

    def remove_alias(
        self, name: str, alias: str, *, actor: str | None = None, reason: str = ""
    ) -> AliasEvent:
        """Unset ``name@alias``; the event keeps the version it pointed at.

        Raises:
            ModelNotFoundError: no such model, or the alias points nowhere.
        """
        self._versions(name)
        return self._change(name, alias, _aliases.removal, _event(actor, reason))

    def rollback(
        self, name: str, alias: str = "production", *, actor: str | None = None, reason: str = ""
    ) -> AliasEvent:
        """Point ``name@alias`` back at the version it held before its latest promotion.

        Rollbacks walk back through the alias's promotions: each one undoes the newest
        promotion (``set`` or ``moved`` event) that no rollback has undone yet. After
        promotions to 1, 2 and 3, a rollback returns to 2, a second one to 1; a third is
        refused, since 1 was set when the alias pointed nowhere. A rollback needs no
        gate: it returns to a version that held the alias.

        Returns:
            The ``rollback`` event recorded in the audit log.

        Raises:
            ModelNotFoundError: no such model, or the alias points nowhere.
            PromotionRefusedError: every promotion of the alias has been rolled back.
        """
        self._versions(name)
        decide = _aliases.rollback(f"{name}@{alias}")
        return self._change(name, alias, decide, _event(actor, reason))

    def history(self, name: str, alias: str | None = None) -> list[AliasEvent]:
        """The audit log of model ``name``'s aliases (or of one alias), oldest first.

        Raises:
            ModelNotFoundError: no model of that name.
        """
        self._versions(name)
        return [AliasEvent.from_row(r) for r in self._store.alias_events(name, alias)]

    # -- helpers --------------------------------------------------------------------

    def _change(self, name: str, alias: str, decide: AliasDecision, event: Row) -> AliasEvent:
        try:
            row = self._store.change_alias(name, alias, decide, event)
        except _aliases.AliasUnset:
            latest = len(self._versions(name))
            raise _lookup.unknown_alias(name, alias, latest, self._aliases(name)) from None
        return AliasEvent.from_row(row)

    def _versions(self, name: str) -> list[Row]:
        rows = self._store.model_versions(name)
        if not rows:
            known = [m["name"] for m in self._store.registered_models()]
            raise _lookup.unknown_model(name, known)
        return rows

    def _version(self, name: str, version: int) -> Row:
        # Versions are 1..n: numbers are allocated in order and versions are never deleted.
        rows = self._versions(name)
        if not 1 <= version <= len(rows):
            raise _lookup.unknown_version(name, version, len(rows), self._aliases(name))
        return rows[version - 1]

    def aliases(self, name: str) -> dict[str, int]:
        """Where the aliases of model ``name`` point now: alias to version (one query)."""
        return self._aliases(name)

    def _aliases(self, name: str) -> dict[str, int]:
        return {r["alias"]: r["version"] for r in self._store.model_aliases(name)}


def _by_version(aliases: Mapping[str, int]) -> dict[int, tuple[str, ...]]:
    found: dict[int, list[str]] = {}
    for alias, version in sorted(aliases.items()):
        found.setdefault(version, []).append(alias)
    return {version: tuple(names) for version, names in found.items()}


def _event(
    actor: str | None, reason: str, *, gate_id: str | None = None, forced: bool = False
) -> Row:
    return {
        "actor": _aliases.actor_name(actor),
        "reason": reason,
        "gate_id": gate_id,
        "forced": forced,
        "created_at": time.time(),
    }
