"""The model registry's tables in the metadata store: models, versions, gate records,
aliases and their audit log."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from shipyard.errors import StoreError
from shipyard.storage import _schema as s
from shipyard.storage._rows import WRITE_ATTEMPTS, Queries, Row, T

AliasDecision = Callable[[int | None, Callable[[], list[Row]]], tuple[str, int | None] | None]


class RegistryQueries(Queries):
    """Registered models, versions, gate records, aliases and alias events."""

    def add_model_version(self, model: Row, version: Row) -> Row:
        """Register ``model`` if it is new and add ``version`` under the next version number.

        The number is allocated inside the write transaction, so two concurrent calls
        never get the same one. Returns the ``model_versions`` row as written.
        """

        def work(conn: sa.Connection) -> Row:
            known = sa.select(s.registered_models.c.name).where(
                s.registered_models.c.name == model["name"]
            )
            if conn.execute(known).first() is None:
                conn.execute(s.registered_models.insert().values(**model))
            latest = sa.select(sa.func.max(s.model_versions.c.version)).where(
                s.model_versions.c.name == model["name"]
            )
            row = {**version, "name": model["name"], "version": (conn.scalar(latest) or 0) + 1}
            conn.execute(s.model_versions.insert().values(**_encode_registry(row)))
            return row

        return self._write_unique(work)

    def registered_models(self) -> list[Row]:
        """Every registered model by name, each with its ``latest_version``."""
        versions = s.model_versions
        latest = (
            sa.select(versions.c.name, sa.func.max(versions.c.version).label("latest_version"))
            .group_by(versions.c.name)
            .subquery()
        )
        stmt = (
            sa.select(s.registered_models, latest.c.latest_version)
            .join(latest, latest.c.name == s.registered_models.c.name, isouter=True)
            .order_by(s.registered_models.c.name)
        )
        with self._read() as conn:
            return [dict(r) for r in conn.execute(stmt).mappings()]

    def model_versions(self, name: str, version: int | None = None) -> list[Row]:
        """The versions of model ``name`` (or just ``version``), oldest first."""
        table = s.model_versions
        stmt = sa.select(table).where(table.c.name == name).order_by(table.c.version)
        if version is not None:
            stmt = stmt.where(table.c.version == version)
        with self._read() as conn:
            return [_decode_registry(dict(r)) for r in conn.execute(stmt).mappings()]

    def model_aliases(self, name: str | None = None) -> list[Row]:
        """The aliases of model ``name`` (default: of every model), by model and alias."""
        table = s.aliases
        stmt = sa.select(table).order_by(table.c.name, table.c.alias)
        if name is not None:
            stmt = stmt.where(table.c.name == name)
        with self._read() as conn:
            return [dict(r) for r in conn.execute(stmt).mappings()]

    def add_gate_record(self, row: Row) -> str:
        """Record a gate decision about one model version; returns its id."""

        def work(conn: sa.Connection) -> str:
            done = conn.execute(s.gate_records.insert().values(**_encode_registry(row)))
            return str(_new_id(done))

        return self._write(work)

    def gate_records(self, name: str, version: int | None = None) -> list[Row]:
        """The gate records of model ``name`` (or of one version), newest first."""
        table = s.gate_records
        stmt = sa.select(table).where(table.c.name == name).order_by(table.c.id.desc())
        if version is not None:
            stmt = stmt.where(table.c.version == version)
        with self._read() as conn:
            return [_gate_row(dict(r)) for r in conn.execute(stmt).mappings()]

    def change_alias(self, name: str, alias: str, decide: AliasDecision, event: Row) -> Row:
        """Move, set or remove an alias and record the event, in one write transaction.

        ``decide(current, history)`` gets the version the alias points at (None if
        unset) and a function returning its events, oldest first; it returns
        ``(action, version)`` (``version`` None removes the alias), returns None to
        change nothing, or raises to refuse. Concurrent changes of one alias are
        serialized, so the recorded ``previous_version`` is always the version the
        change replaced. Returns the event written, or the alias's latest event when
        nothing changed.
        """

        def work(conn: sa.Connection) -> Row:
            key = (s.aliases.c.name == name, s.aliases.c.alias == alias)
            locked = sa.select(s.aliases.c.version).where(*key).with_for_update()
            current = conn.scalar(locked)
            change = decide(current, lambda: _alias_events(conn, name, alias))
            if change is None:
                return _alias_events(conn, name, alias)[-1]
            action, version = change
            conn.execute(s.aliases.delete().where(*key))
            if version is not None:
                conn.execute(s.aliases.insert().values(name=name, alias=alias, version=version))
            row = {**event, "name": name, "alias": alias, "action": action}
            row |= {"version": version, "previous_version": current}
            done = conn.execute(s.alias_events.insert().values(**row))
            return {**row, "id": _new_id(done)}

        return self._write_unique(work)

    def alias_events(self, name: str, alias: str | None = None) -> list[Row]:
        """The alias events of model ``name`` (or of one alias), oldest first."""
        with self._read() as conn:
            return _alias_events(conn, name, alias)

    def _write_unique(self, work: Callable[[sa.Connection], T]) -> T:
        """``_write``, run again when a concurrent writer inserted the same key first.

        SQLite's write lock already serializes writers; PostgreSQL does not lock a row
        that does not exist yet, so there the loser of such a race retries.
        """
        for attempt in range(WRITE_ATTEMPTS):
            try:
                return self._write(work)
            except StoreError as exc:
                conflict = isinstance(exc.__cause__, sa.exc.IntegrityError)
                if not conflict or attempt == WRITE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable: the loop returns or raises")


_REGISTRY_JSON = ("lineage", "evaluation", "record")


def _encode_registry(row: Row) -> Row:
    return {
        k: json.dumps(v, sort_keys=True, default=_json_default)
        if k in _REGISTRY_JSON and v is not None
        else v
        for k, v in row.items()
    }


def _decode_registry(row: Row) -> Row:
    for key in _REGISTRY_JSON:
        if isinstance(row.get(key), str):
            row[key] = json.loads(row[key])
    return row


def _json_default(value: Any) -> Any:
    if getattr(value, "shape", None) == () and hasattr(value, "item"):
        return value.item()  # a NumPy scalar: the Python number it holds
    return str(value)


def _new_id(done: sa.CursorResult[Any]) -> int:
    key = done.inserted_primary_key
    assert key is not None, "an INSERT always reports the key it generated"
    return int(key[0])


def _gate_row(row: Row) -> Row:
    return _decode_registry({**row, "id": str(row["id"]), "passed": bool(row["passed"])})


def _alias_events(conn: sa.Connection, name: str, alias: str | None) -> list[Row]:
    table = s.alias_events
    stmt = sa.select(table).where(table.c.name == name).order_by(table.c.id)
    if alias is not None:
        stmt = stmt.where(table.c.alias == alias)
    return [{**r, "forced": bool(r["forced"])} for r in conn.execute(stmt).mappings()]
