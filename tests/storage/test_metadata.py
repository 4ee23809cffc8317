"""The metadata store: migrations, refusing newer stores, and concurrent writers."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from shipyard.core.project import Project
from shipyard.errors import RunNotFoundError, StoreError, StoreVersionError
from shipyard.storage import _schema
from shipyard.storage.metadata import MetadataStore
from tests.helpers import CLI, without_write_permission


def _old_store(path: Path) -> str:
    """A store as the first release wrote it: schema version 1, with one run in it."""
    url = f"sqlite:///{path}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        _schema.MIGRATIONS[0](conn)
        conn.execute(sa.text("INSERT INTO meta (key, value) VALUES ('schema_version', '1')"))
        conn.execute(
            sa.text(
                "INSERT INTO runs (id, pipeline, project, status, params, seed, started_at) "
                "VALUES ('a' || hex(randomblob(15)), 'train', 'p', 'completed', '{\"n\": 1}', "
                "7, 1700000000.0)"
            )
        )
    engine.dispose()
    return url


def test_a_store_written_by_an_older_release_is_migrated_and_keeps_its_data(
    tmp_path: Path,
) -> None:
    url = _old_store(tmp_path / "old.db")
    store = MetadataStore(url)

    assert store.schema_version == _schema.SCHEMA_VERSION == 4
    [run] = store.list_runs()
    assert (run["pipeline"], run["params"], run["seed"], run["resumed_from"]) == (
        "train",
        {"n": 1},
        7,
        None,
    )
    store.set_tags(run["id"], {"team": "fraud"})  # a table that version 2 added
    assert store.tags(run["id"]) == {"team": "fraud"}
    assert store.latest_feature_builds() == {}  # a table that version 3 added


def test_a_version_3_store_gains_the_registry_and_keeps_its_feature_index(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'v3.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for migration in _schema.MIGRATIONS[:3]:
            migration(conn)
        conn.execute(sa.text("INSERT INTO meta (key, value) VALUES ('schema_version', '3')"))
        conn.execute(
            sa.text(
                "INSERT INTO feature_builds (id, view, version, fingerprint, manifest, rows, "
                "created_at) VALUES ('b1', 'spend', 'v1', 'f', '[]', 5, 1.0)"
            )
        )
    engine.dispose()

    store = MetadataStore(url)

    assert store.schema_version == 4
    assert store.find_feature_build("spend", "v1", "f")["rows"] == 5
    model = {"name": "fraud", "description": "", "owner": "o", "created_at": 2.0}
    version = {"artifact_id": "a", "created_at": 2.0, "description": "", "lineage": {}}
    assert store.add_model_version(model, version)["version"] == 1
    assert [m["latest_version"] for m in store.registered_models()] == [1]
    store.close()


def test_opening_a_migrated_store_again_changes_nothing(tmp_path: Path) -> None:
    url = _old_store(tmp_path / "old.db")
    MetadataStore(url).close()
    store = MetadataStore(url)
    assert store.schema_version == 4
    assert len(store.list_runs()) == 1


def test_a_store_from_a_newer_release_is_refused_untouched(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    MetadataStore(url).close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE meta SET value = '99' WHERE key = 'schema_version'"))
    engine.dispose()

    with pytest.raises(StoreVersionError, match="schema version 99.*Upgrade shipyard"):
        MetadataStore(url)


def test_a_url_that_is_not_a_database_is_explained() -> None:
    with pytest.raises(StoreError, match="is not a database URL"):
        MetadataStore("not a url")


def test_unknown_and_ambiguous_run_ids_are_explained(project: Project) -> None:
    store = project.metadata
    with pytest.raises(RunNotFoundError, match="No run matches 'nope'.*shipyard runs list"):
        store.get_run("nope")
    for run_id in ("ab" + "0" * 30, "ab" + "1" * 30):
        store.create_run(
            {
                "id": run_id,
                "pipeline": "p",
                "project": "x",
                "status": "completed",
                "params": {},
                "seed": 1,
                "started_at": time.time(),
            }
        )
    with pytest.raises(RunNotFoundError, match="More than one run matches 'ab'"):
        store.get_run("ab")


def test_like_wildcards_in_an_id_prefix_match_nothing(project: Project) -> None:
    project.metadata.create_run(
        {
            "id": "c" * 32,
            "pipeline": "p",
            "project": "x",
            "status": "completed",
            "params": {},
            "seed": 1,
            "started_at": time.time(),
        }
    )
    with pytest.raises(RunNotFoundError):
        project.metadata.get_run("%")


def test_concurrent_writers_in_threads_never_see_a_lock_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    stores = [MetadataStore(url) for _ in range(8)]
    errors: list[BaseException] = []

    def write(store: MetadataStore, worker: int) -> None:
        try:
            for i in range(40):
                run_id = f"{worker:02d}{i:030d}"
                store.create_run(
                    {
                        "id": run_id,
                        "pipeline": "p",
                        "project": "x",
                        "status": "running",
                        "params": {},
                        "seed": i,
                        "started_at": time.time(),
                    }
                )
                store.update_run(run_id, status="completed", ended_at=time.time())
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(s, n)) for n, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(stores[0].list_runs(status="completed", limit=1000)) == 320


PIPELINES = """
from shipyard import get_context, pipeline, step


@step(cache=False)
def a(n: int) -> int:
    for i in range(200):
        get_context().log_metric("m", i, step=i)
    return n


@step(cache=False)
def b(x: int) -> int:
    return x * 2


@step(cache=False)
def c(x: int, y: int) -> int:
    return x + y


@pipeline
def trivial(n: int = 1):
    x = a(n)
    return c(x, b(x))
"""


@pytest.mark.slow
def test_eight_shipyard_run_processes_on_one_sqlite_store_all_succeed(
    project_dir: Path, cli_env: dict[str, str]
) -> None:
    (project_dir / "pipelines.py").write_text(PIPELINES)
    processes = [
        subprocess.Popen(
            [*CLI, "run", "trivial", "-p", f"n={n}", "--json"],
            cwd=project_dir,
            env=cli_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(8)
    ]
    results = [(p.wait(timeout=180), *p.communicate()) for p in processes]

    for code, stdout, stderr in results:
        assert code == 0, stderr
        assert "locked" not in stderr.lower()
        assert json.loads(stdout)["status"] == "completed"
    store = Project.discover(project_dir).metadata
    runs = store.list_runs(limit=100)
    assert sorted(r["params"]["n"] for r in runs) == list(range(8))
    assert {r["status"] for r in runs} == {"completed"}
    assert len(store.metrics([r["id"] for r in runs])) == 8 * 200


def test_a_read_only_store_stops_a_run_with_a_clear_error_and_changes_nothing(
    project_dir: Path, cli_env: dict[str, str]
) -> None:
    (project_dir / "pipelines.py").write_text(PIPELINES)
    first = subprocess.run(
        [*CLI, "run", "trivial"],
        cwd=project_dir,
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert first.returncode == 0, first.stderr
    state = project_dir / ".shipyard"
    files = sorted(p for p in state.rglob("*") if p.is_file())
    before = {p: p.read_bytes() for p in files}
    for path in [state, *state.rglob("*")]:
        path.chmod(path.stat().st_mode & ~0o222)
    try:
        done = subprocess.run(
            [*without_write_permission(), *CLI, "run", "trivial"],
            cwd=project_dir,
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        for path in [state, *state.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
    assert done.returncode == 2
    assert "read-only" in done.stderr
    assert "make its folder and file writable" in done.stderr
    assert {p: p.read_bytes() for p in files} == before


def test_feature_builds_are_found_by_view_version_and_fingerprint(tmp_path: Path) -> None:
    store = MetadataStore(f"sqlite:///{tmp_path / 'm.db'}")
    row = {"view": "v", "version": "a", "fingerprint": "f", "manifest": "[]", "rows": 3}
    store.record_feature_build({**row, "id": "1", "created_at": 1.0})
    store.record_feature_build({**row, "id": "2", "created_at": 2.0})
    store.record_feature_build({**row, "id": "3", "created_at": 3.0, "version": "b"})

    assert store.find_feature_build("v", "a", "f")["id"] == "2"
    assert store.find_feature_build("v", "a", "other") is None
    assert store.latest_feature_builds()["v"]["id"] == "3"
    store.close()
