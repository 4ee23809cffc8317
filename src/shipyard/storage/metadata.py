"""The metadata store: runs, step runs, artifacts, lineage, params, metrics, tags,
the feature store's index and the model registry.

SQLAlchemy Core over any database it speaks; SQLite by default. On SQLite the
store turns on WAL (readers never wait for writers), a busy timeout, and takes
the write lock at the start of every write transaction (``BEGIN IMMEDIATE``) so
that two processes never deadlock upgrading a read lock, then retries a write
that still meets a lock. Eight concurrent runs on one file do not fail.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from shipyard.errors import RunNotFoundError, StoreError, StoreVersionError
from shipyard.storage import _schema as s
from shipyard.storage._feature_index import FeatureIndexQueries
from shipyard.storage._registry_sql import RegistryQueries
from shipyard.storage._rows import Row, T

_LOCK_MARKERS = ("database is locked", "database table is locked", "busy")
_WRITE_ATTEMPTS = 12


class MetadataStore(FeatureIndexQueries, RegistryQueries):
    """Runs and their artifacts, lineage, params and metrics, in one SQL database.

    Args:
        url: a SQLAlchemy URL, e.g. ``sqlite:////abs/path/metadata.db`` or
            ``postgresql+psycopg://user@host/db``.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine = _create_engine(url)
        self._writer = self._engine.execution_options(sqlite_begin="IMMEDIATE")
        self._migrate()

    # -- transactions -------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        try:
            with self._engine.connect() as conn:
                yield conn
        except sa.exc.SQLAlchemyError as exc:
            raise _store_error(exc, self.url) from exc

    def _write(self, work: Callable[[sa.Connection], T]) -> T:
        """Run ``work`` in one write transaction, retrying when the database is locked."""
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                with self._writer.begin() as conn:
                    return work(conn)
            except sa.exc.OperationalError as exc:
                if not _is_lock_error(exc) or attempt == _WRITE_ATTEMPTS - 1:
                    raise _store_error(exc, self.url) from exc
                time.sleep(min(0.05 * 2**attempt, 2.0) * (0.5 + random.random()))
            except sa.exc.SQLAlchemyError as exc:
                raise _store_error(exc, self.url) from exc
        raise AssertionError("unreachable: the loop returns or raises")

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    # -- schema ---------------------------------------------------------------

    def _migrate(self) -> None:
        if self.schema_version == s.SCHEMA_VERSION:
            return  # the common case: a read, no write lock taken

        def work(conn: sa.Connection) -> None:
            version = _schema_version(conn)  # again, under the write lock
            if version > s.SCHEMA_VERSION:
                raise StoreVersionError(
                    f"The metadata store at {self.url} has schema version {version}, "
                    f"but this shipyard only knows up to {s.SCHEMA_VERSION}. "
                    "Upgrade shipyard (pip install -U shipyard) to use it."
                )
            for number in range(version + 1, s.SCHEMA_VERSION + 1):
                s.MIGRATIONS[number - 1](conn)
                _set_schema_version(conn, number)

        self._write(work)

    @property
    def schema_version(self) -> int:
        """The schema version this store is at."""
        with self._read() as conn:
            return _schema_version(conn)

    # -- runs -------------------------------------------------------------------

    def create_run(self, row: Row) -> None:
        """Insert a new run (``row`` holds the ``runs`` columns)."""
        self._write(lambda conn: conn.execute(s.runs.insert().values(**_encode(row))))

    def update_run(self, run_id: str, **values: Any) -> None:
        """Set columns of one run."""
        stmt = s.runs.update().where(s.runs.c.id == run_id).values(**_encode(values))
        self._write(lambda conn: conn.execute(stmt))

    def get_run(self, run_id: str) -> Row:
        """One run by id or unique id prefix."""
        with self._read() as conn:
            query = sa.select(s.runs).where(s.runs.c.id.startswith(run_id, autoescape=True))
            found = conn.execute(query.limit(2)).mappings().all()
        if len(found) != 1:
            what = "No run" if not found else "More than one run"
            raise RunNotFoundError(
                f"{what} matches {run_id!r}. List runs with `shipyard runs list` "
                "and pass a full id or a longer prefix."
            )
        return _decode(dict(found[0]))

    def list_runs(
        self, *, pipeline: str | None = None, status: str | None = None, limit: int = 50
    ) -> list[Row]:
        """Runs, newest first."""
        query = sa.select(s.runs).order_by(s.runs.c.started_at.desc()).limit(limit)
        if pipeline:
            query = query.where(s.runs.c.pipeline == pipeline)
        if status:
            query = query.where(s.runs.c.status == status)
        with self._read() as conn:
            return [_decode(dict(r)) for r in conn.execute(query).mappings()]

    def running_runs(self) -> list[Row]:
        """Runs that are recorded as running (some may have crashed)."""
        return self.list_runs(status="running", limit=10_000)

    def mark_crashed(self, run_id: str, reason: str) -> bool:
        """Mark a run and its unfinished step runs crashed; False if it was not running."""

        def work(conn: sa.Connection) -> bool:
            now = time.time()
            done = conn.execute(
                s.runs.update()
                .where(s.runs.c.id == run_id, s.runs.c.status == "running")
                .values(status="crashed", ended_at=now, error=reason)
            )
            conn.execute(
                s.step_runs.update()
                .where(s.step_runs.c.run_id == run_id)
                .where(s.step_runs.c.status.in_(("running", "pending")))
                .values(status="crashed", ended_at=now, error=reason)
            )
            return done.rowcount == 1

        return self._write(work)

    # -- step runs --------------------------------------------------------------

    def create_step_runs(self, rows: Sequence[Row]) -> None:
        """Insert the step runs of a run (usually all at once, as pending)."""
        if rows:
            encoded = [_encode(r) for r in rows]
            self._write(lambda conn: conn.execute(s.step_runs.insert(), encoded))

    def update_step_run(self, step_run_id: str, **values: Any) -> None:
        """Set columns of one step run."""
        stmt = s.step_runs.update().where(s.step_runs.c.id == step_run_id)
        self._write(lambda conn: conn.execute(stmt.values(**_encode(values))))

    def finish_step_run(
        self,
        step_run_id: str,
        values: Row,
        *,
        artifacts: Sequence[Row] = (),
        lineage: Sequence[Row] = (),
        metrics: Sequence[Row] = (),
        params: Sequence[Row] = (),
    ) -> None:
        """Record a step run's end, its artifacts, lineage, metrics and params atomically."""

        def work(conn: sa.Connection) -> None:
            stmt = s.step_runs.update().where(s.step_runs.c.id == step_run_id)
            conn.execute(stmt.values(**_encode(values)))
            for table, rows in (
                (s.artifacts, artifacts),
                (s.lineage, lineage),
                (s.metrics, metrics),
            ):
                if rows:
                    conn.execute(table.insert(), [_encode(r) for r in rows])
            _upsert_params(conn, params)

        self._write(work)

    def step_runs(self, run_id: str) -> list[Row]:
        """The step runs of one run, in the order they were created."""
        query = (
            sa.select(s.step_runs)
            .where(s.step_runs.c.run_id == run_id)
            .order_by(s.step_runs.c.started_at.is_(None), s.step_runs.c.started_at)
        )
        with self._read() as conn:
            return [_decode(dict(r)) for r in conn.execute(query).mappings()]

    def find_cached(self, cache_key: str, *, run_id: str | None = None) -> Row | None:
        """The newest finished step run with this cache key (optionally within one run)."""
        query = (
            sa.select(s.step_runs)
            .where(s.step_runs.c.cache_key == cache_key)
            .where(s.step_runs.c.status.in_(("completed", "cached")))
            .order_by(s.step_runs.c.ended_at.desc())
            .limit(1)
        )
        if run_id is not None:
            query = query.where(s.step_runs.c.run_id == run_id)
        with self._read() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else _decode(dict(row))

    def finished_step_runs(self, step: str, *, limit: int = 100) -> list[Row]:
        """The newest completed or cached runs of the step at ``module:qualname``."""
        query = (
            sa.select(s.step_runs)
            .where(s.step_runs.c.step == step)
            .where(s.step_runs.c.status.in_(("completed", "cached")))
            .order_by(s.step_runs.c.ended_at.desc())
            .limit(limit)
        )
        with self._read() as conn:
            return [_decode(dict(r)) for r in conn.execute(query).mappings()]

    # -- artifacts and lineage -----------------------------------------------------

    def get_artifact(self, artifact_id: str) -> Row:
        """One artifact by id or unique id prefix."""
        query = sa.select(s.artifacts).where(
            s.artifacts.c.id.startswith(artifact_id, autoescape=True)
        )
        with self._read() as conn:
            found = conn.execute(query.limit(2)).mappings().all()
        if len(found) != 1:
            from shipyard.errors import ArtifactNotFoundError

            what = "No artifact" if not found else "More than one artifact"
            raise ArtifactNotFoundError(
                f"{what} matches {artifact_id!r}. See a run's artifacts with "
                "`shipyard runs show RUN` and pass a full id or a longer prefix."
            )
        return _decode(dict(found[0]))

    def edges(self, step_run_ids: Sequence[str]) -> list[Row]:
        """Lineage edges (inputs and outputs) of the given step runs."""
        if not step_run_ids:
            return []
        query = sa.select(s.lineage).where(s.lineage.c.step_run_id.in_(list(step_run_ids)))
        with self._read() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def edges_of_artifact(self, artifact_id: str) -> list[Row]:
        """Every lineage edge that names this artifact."""
        query = sa.select(s.lineage).where(s.lineage.c.artifact_id == artifact_id)
        with self._read() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def get_step_run(self, step_run_id: str) -> Row:
        """One step run by id."""
        query = sa.select(s.step_runs).where(s.step_runs.c.id == step_run_id)
        with self._read() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            raise RunNotFoundError(f"No step run has id {step_run_id!r}.")
        return _decode(dict(row))

    def artifacts_by_ids(self, artifact_ids: Sequence[str]) -> dict[str, Row]:
        """Artifacts by id, for the ids that exist."""
        if not artifact_ids:
            return {}
        query = sa.select(s.artifacts).where(s.artifacts.c.id.in_(list(artifact_ids)))
        with self._read() as conn:
            return {r["id"]: _decode(dict(r)) for r in conn.execute(query).mappings()}

    def all_artifacts(self) -> list[Row]:
        """Every artifact record (for integrity checks)."""
        with self._read() as conn:
            return [_decode(dict(r)) for r in conn.execute(sa.select(s.artifacts)).mappings()]

    # -- params, metrics, tags ---------------------------------------------------------

    def params(self, run_id: str) -> list[Row]:
        """Every param logged in a run (run-level ones have step_name '')."""
        query = sa.select(s.params).where(s.params.c.run_id == run_id)
        with self._read() as conn:
            return [_decode(dict(r)) for r in conn.execute(query).mappings()]

    def metrics(self, run_ids: Sequence[str]) -> list[Row]:
        """Every metric logged in the given runs, in logging order."""
        query = (
            sa.select(s.metrics)
            .where(s.metrics.c.run_id.in_(list(run_ids)))
            .order_by(s.metrics.c.id)
        )
        with self._read() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Set tags on a run, replacing values of existing keys."""

        def work(conn: sa.Connection) -> None:
            keys = list(tags)
            conn.execute(s.tags.delete().where(s.tags.c.run_id == run_id, s.tags.c.key.in_(keys)))
            rows = [{"run_id": run_id, "key": k, "value": str(v)} for k, v in tags.items()]
            if rows:
                conn.execute(s.tags.insert(), rows)

        self._write(work)

    def tags(self, run_id: str) -> dict[str, str]:
        """The tags of a run."""
        query = sa.select(s.tags.c.key, s.tags.c.value).where(s.tags.c.run_id == run_id)
        with self._read() as conn:
            return {row[0]: row[1] for row in conn.execute(query)}


_JSON_COLUMNS = ("params", "upstream", "environment", "preview", "value")


def _encode(row: Mapping[str, Any]) -> Row:
    return {
        k: json.dumps(v, sort_keys=True, default=str) if k in _JSON_COLUMNS else v
        for k, v in row.items()
    }


def _decode(row: Row) -> Row:
    for key in _JSON_COLUMNS:
        if isinstance(row.get(key), str):
            row[key] = json.loads(row[key])
    return row


def _upsert_params(conn: sa.Connection, rows: Sequence[Row]) -> None:
    for row in rows:
        keys = (s.params.c.run_id == row["run_id"], s.params.c.step_name == row["step_name"])
        conn.execute(s.params.delete().where(*keys, s.params.c.key == row["key"]))
        conn.execute(s.params.insert().values(**_encode(row)))


def _schema_version(conn: sa.Connection) -> int:
    if not sa.inspect(conn).has_table("meta"):
        return 0
    value = conn.execute(sa.select(s.meta.c.value).where(s.meta.c.key == "schema_version")).scalar()
    return int(value) if value is not None else 0


def _set_schema_version(conn: sa.Connection, version: int) -> None:
    conn.execute(s.meta.delete().where(s.meta.c.key == "schema_version"))
    conn.execute(s.meta.insert().values(key="schema_version", value=str(version)))


def _is_lock_error(exc: sa.exc.OperationalError) -> bool:
    text = str(exc.orig).lower()
    return any(marker in text for marker in _LOCK_MARKERS)


def _store_error(exc: Exception, url: str) -> StoreError:
    where = sa.engine.make_url(url).render_as_string(hide_password=True)
    detail = str(getattr(exc, "orig", None) or exc)
    hint = "Check that the database is reachable and writable"
    if "readonly" in detail.lower() or "read-only" in detail.lower():
        hint = "The store is read-only: make its folder and file writable"
    if "unable to open" in detail.lower():
        hint = "The store's folder is missing or not accessible: check the path and permissions"
    return StoreError(f"Metadata store {where} failed: {detail}. {hint}.")


def _create_engine(url: str) -> sa.Engine:
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise StoreError(
            f"{url!r} is not a database URL. Expected e.g. sqlite:///path/metadata.db "
            "or postgresql+psycopg://user@host/db."
        ) from exc
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True)
    _ensure_folder(parsed.database)
    engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _ensure_folder(database: str | None) -> None:
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    folder = Path(database).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"Cannot create the metadata store's folder {folder}: {exc.strerror}. "
            "Make it writable, or point [stores] metadata at a writable place."
        ) from exc


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN, so that writes can take the lock up front.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    try:
        for pragma in (
            "PRAGMA busy_timeout = 30000",
            "PRAGMA journal_mode = WAL",
            "PRAGMA synchronous = NORMAL",
            "PRAGMA foreign_keys = ON",
        ):
            _retry_locked(cursor.execute, pragma)
    finally:
        cursor.close()


def _sqlite_on_begin(conn: sa.Connection) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def _retry_locked(action: Callable[[str], Any], statement: str) -> None:
    """Switching to WAL needs a moment alone with the file; retry while others hold it."""
    import sqlite3

    for attempt in range(_WRITE_ATTEMPTS):
        try:
            action(statement)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == _WRITE_ATTEMPTS - 1:
                raise
            time.sleep(0.02 * 2**attempt)
