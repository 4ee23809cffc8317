"""The metadata schema and its forward-only migrations.

The schema version lives in the ``meta`` table. Each migration is a function
that brings the store from version N-1 to N; a store written by an older
shipyard is migrated when it is opened, and one written by a newer shipyard is
refused rather than damaged. Migrations use SQLAlchemy Core only, so they run
the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

metadata = sa.MetaData()

meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)


def _runs_table(target: sa.MetaData, *, resumable: bool = True) -> sa.Table:
    resume = [sa.Column("resumed_from", sa.String(32))] if resumable else []
    return sa.Table(
        "runs",
        target,
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("pipeline", sa.String(255), nullable=False, index=True),
        sa.Column("project", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False, index=True),
        sa.Column("ended_at", sa.Float),
        sa.Column("heartbeat_at", sa.Float),
        sa.Column("pid", sa.Integer),
        sa.Column("host", sa.String(255)),
        sa.Column("git_commit", sa.String(64)),
        sa.Column("git_dirty", sa.Boolean),
        sa.Column("git_diff_hash", sa.String(64)),
        sa.Column("environment", sa.Text),
        sa.Column("error", sa.Text),
        *resume,
    )


runs = _runs_table(metadata)

step_runs = sa.Table(
    "step_runs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), nullable=False, index=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("step", sa.String(512), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("cache_key", sa.String(64), index=True),
    sa.Column("code_hash", sa.String(64)),
    sa.Column("params", sa.Text, nullable=False),
    sa.Column("upstream", sa.Text, nullable=False),
    sa.Column("started_at", sa.Float),
    sa.Column("ended_at", sa.Float),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("error", sa.Text),
    sa.Column("traceback", sa.Text),
    sa.Column("cached_from", sa.String(32)),
    sa.UniqueConstraint("run_id", "name", name="uq_step_runs_run_name"),
)

artifacts = sa.Table(
    "artifacts",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False, index=True),
    sa.Column("uri", sa.Text, nullable=False),
    sa.Column("type_name", sa.String(255), nullable=False),
    sa.Column("materializer", sa.String(128), nullable=False),
    sa.Column("materializer_version", sa.String(32), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("preview", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("step_run_id", sa.String(32), sa.ForeignKey("step_runs.id"), index=True),
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), index=True),
    sa.Column("output_name", sa.String(255), nullable=False),
)

lineage = sa.Table(
    "lineage",
    metadata,
    sa.Column("step_run_id", sa.String(32), sa.ForeignKey("step_runs.id"), primary_key=True),
    sa.Column("role", sa.String(8), primary_key=True),
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column(
        "artifact_id", sa.String(32), sa.ForeignKey("artifacts.id"), nullable=False, index=True
    ),
)

params = sa.Table(
    "params",
    metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("step_name", sa.String(255), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

metrics = sa.Table(
    "metrics",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), nullable=False, index=True),
    sa.Column("step_name", sa.String(255), nullable=False),
    sa.Column("key", sa.String(255), nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("step", sa.Integer),
    sa.Column("logged_at", sa.Float, nullable=False),
)

tags = sa.Table(
    "tags",
    metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)


feature_builds = sa.Table(
    "feature_builds",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("view", sa.String(255), nullable=False, index=True),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("manifest", sa.Text, nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False, index=True),
    sa.Column("run_id", sa.String(32)),
)


feature_materializations = sa.Table(
    "feature_materializations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("view", sa.String(255), nullable=False),
    sa.Column("online_url", sa.Text, nullable=False),
    sa.Column("build_id", sa.String(32), nullable=False),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("watermark_us", sa.BigInteger),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index("ix_feature_materializations_view", "view", "created_at"),
)


registered_models = sa.Table(
    "registered_models",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("owner", sa.String(255), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("name", sa.String(128), sa.ForeignKey("registered_models.name"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("artifact_id", sa.String(64), nullable=False, index=True),
    sa.Column("run_id", sa.String(32)),
    sa.Column("step_run_id", sa.String(32)),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("lineage", sa.Text, nullable=False),
    sa.Column("evaluation", sa.Text),
)

_VERSION_KEY = ("model_versions.name", "model_versions.version")

gate_records = sa.Table(
    "gate_records",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("record", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.ForeignKeyConstraint(["name", "version"], _VERSION_KEY),
    sa.Index("ix_gate_records_version", "name", "version"),
)

aliases = sa.Table(
    "aliases",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("alias", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.ForeignKeyConstraint(["name", "version"], _VERSION_KEY),
)

alias_events = sa.Table(
    "alias_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), sa.ForeignKey("registered_models.name"), nullable=False),
    sa.Column("alias", sa.String(64), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("version", sa.Integer),
    sa.Column("previous_version", sa.Integer),
    sa.Column("actor", sa.String(255), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("gate_id", sa.String(32)),
    sa.Column("forced", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index("ix_alias_events_alias", "name", "alias", "id"),
)


def _v1_initial(conn: sa.Connection) -> None:
    """Runs, step runs, artifacts, lineage, params and metrics."""
    legacy = sa.MetaData()
    _runs_table(legacy, resumable=False)
    for table in (meta, step_runs, artifacts, lineage, params, metrics):
        table.to_metadata(legacy)
    legacy.create_all(conn)


def _v2_tags_and_resume(conn: sa.Connection) -> None:
    """Run tags, and which run a resumed run continues."""
    tags.create(conn)
    conn.execute(sa.text("ALTER TABLE runs ADD COLUMN resumed_from VARCHAR(32)"))


def _v3_feature_builds(conn: sa.Connection) -> None:
    """The offline store's index (which partitions hold each feature view's history) and
    which build each online store was last materialized from."""
    feature_builds.create(conn)
    feature_materializations.create(conn)


def _v4_registry(conn: sa.Connection) -> None:
    """The model registry: models, versions, gate records, aliases and the alias audit log."""
    for table in (registered_models, model_versions, gate_records, aliases, alias_events):
        table.create(conn)


MIGRATIONS: list[Callable[[sa.Connection], None]] = [
    _v1_initial,
    _v2_tags_and_resume,
    _v3_feature_builds,
    _v4_registry,
]
SCHEMA_VERSION = len(MIGRATIONS)
