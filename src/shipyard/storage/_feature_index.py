"""The offline feature store's index in the metadata store: builds and materializations."""

from __future__ import annotations

import sqlalchemy as sa

from shipyard.storage import _schema as s
from shipyard.storage._rows import Queries, Row


class FeatureIndexQueries(Queries):
    """Which partitions hold each feature view's history, and what was materialized."""

    def record_feature_build(self, row: Row) -> None:
        """Record one build of a feature view's history (its partitions in ``manifest``)."""
        self._write(lambda conn: conn.execute(s.feature_builds.insert().values(**row)))

    def find_feature_build(self, view: str, version: str, fingerprint: str) -> Row | None:
        """The newest build of ``view`` at ``version`` from sources with ``fingerprint``."""
        table = s.feature_builds
        stmt = (
            sa.select(table)
            .where(table.c.view == view, table.c.version == version)
            .where(table.c.fingerprint == fingerprint)
            .order_by(table.c.created_at.desc())
            .limit(1)
        )
        with self._read() as conn:
            found = conn.execute(stmt).mappings().first()
        return dict(found) if found else None

    def get_feature_build(self, build_id: str) -> Row | None:
        """One build by id."""
        stmt = sa.select(s.feature_builds).where(s.feature_builds.c.id == build_id)
        with self._read() as conn:
            found = conn.execute(stmt).mappings().first()
        return dict(found) if found else None

    def record_materialization(self, row: Row) -> None:
        """Record that ``row["view"]`` in ``row["online_url"]`` now holds ``row["build_id"]``."""
        self._write(lambda conn: conn.execute(s.feature_materializations.insert().values(**row)))

    def last_materialization(self, view: str, online_url: str) -> Row | None:
        """The newest materialization of ``view`` into the online store at ``online_url``."""
        table = s.feature_materializations
        stmt = (
            sa.select(table)
            .where(table.c.view == view, table.c.online_url == online_url)
            .order_by(table.c.created_at.desc(), table.c.id.desc())
            .limit(1)
        )
        with self._read() as conn:
            found = conn.execute(stmt).mappings().first()
        return dict(found) if found else None

    def latest_feature_builds(self) -> dict[str, Row]:
        """The newest build of every feature view, by view name."""
        table = s.feature_builds
        newest = (
            sa.select(table.c.view, sa.func.max(table.c.created_at).label("created_at"))
            .group_by(table.c.view)
            .subquery()
        )
        stmt = sa.select(table).join(
            newest,
            sa.and_(table.c.view == newest.c.view, table.c.created_at == newest.c.created_at),
        )
        with self._read() as conn:
            return {row["view"]: dict(row) for row in conn.execute(stmt).mappings()}
