"""The artifact stores: content addressing, integrity, and failure on bad disks."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from shipyard.errors import ArtifactCorruptedError, ArtifactNotFoundError
from shipyard.storage.artifacts import (
    FsspecArtifactStore,
    LocalArtifactStore,
    copy_object,
    open_artifact_store,
)
from shipyard.testing import InMemoryArtifactStore, check_artifact_store
from tests.helpers import without_write_permission


def commit_bytes(store: LocalArtifactStore, data: bytes) -> str:
    staged = store.staging_path()
    staged.write_bytes(data)
    return store.commit(staged).digest


@pytest.mark.parametrize("kind", ["local", "fsspec-memory", "fsspec-file", "in-memory"])
def test_every_store_passes_the_conformance_kit(tmp_path: Path, kind: str) -> None:
    stores = {
        "local": lambda: LocalArtifactStore(tmp_path / "store"),
        "fsspec-memory": lambda: FsspecArtifactStore(
            f"memory://bucket-{tmp_path.name}", tmp_path / "cache"
        ),
        "fsspec-file": lambda: FsspecArtifactStore(
            f"file://{tmp_path / 'remote'}", tmp_path / "cache"
        ),
        "in-memory": InMemoryArtifactStore,
    }
    check_artifact_store(stores[kind]())


def test_identical_bytes_are_stored_once(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    first = commit_bytes(store, b"same")
    second = commit_bytes(store, b"same")
    assert first == second
    assert len(list((tmp_path / "objects").rglob("*"))) == 2  # one folder, one file


def test_a_corrupted_object_is_detected_on_load(tmp_path: Path) -> None:
    digest = commit_bytes(LocalArtifactStore(tmp_path), b"the original bytes")
    store = LocalArtifactStore(tmp_path)  # a new process: nothing verified yet
    path = store.object_path(digest)
    path.chmod(0o644)
    path.write_bytes(b"the tampered bytes")

    with pytest.raises(ArtifactCorruptedError, match="corrupted: its bytes hash to") as caught:
        store.local_path(digest)
    assert "re-run the step" in str(caught.value)


def test_a_corruption_after_an_earlier_read_is_still_detected(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    digest = commit_bytes(store, b"abc" * 1000)
    store.local_path(digest)
    path = store.object_path(digest)
    path.chmod(0o644)
    time.sleep(0.01)
    path.write_bytes(b"xyz" * 1000)  # same size, new mtime
    with pytest.raises(ArtifactCorruptedError):
        store.local_path(digest)


def test_a_deleted_object_says_how_to_recover(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    digest = commit_bytes(store, b"gone soon")
    store.object_path(digest).unlink()
    with pytest.raises(ArtifactNotFoundError, match="deleted outside shipyard"):
        store.local_path(digest)


@pytest.mark.parametrize("digest", ["../../etc/passwd", "a" * 63, "A" * 64, "../" + "a" * 61])
def test_digests_cannot_name_paths_outside_the_store(tmp_path: Path, digest: str) -> None:
    with pytest.raises(ArtifactNotFoundError, match="not an artifact digest"):
        LocalArtifactStore(tmp_path).local_path(digest)


def test_stored_objects_are_read_only_and_exports_are_writable(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    digest = commit_bytes(store, b"payload")
    assert store.object_path(digest).stat().st_mode & 0o222 == 0
    exported = copy_object(store, digest, tmp_path / "out" / "x.bin")
    assert exported.read_bytes() == b"payload"
    assert exported.stat().st_mode & 0o200


def test_two_writers_of_the_same_artifact_at_once_both_succeed(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    payload = os.urandom(4_000_000)
    digests: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def write() -> None:
        try:
            start.wait()
            digests.append(commit_bytes(LocalArtifactStore(tmp_path), payload))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(set(digests)) == 1
    assert store.local_path(digests[0]).read_bytes() == payload
    assert list((tmp_path / "staging").iterdir()) == []


def test_stale_staged_files_of_killed_writers_are_removed(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    old, fresh = store.staging_path(), store.staging_path()
    old.write_bytes(b"half written")
    fresh.write_bytes(b"being written now")
    os.utime(old, (time.time() - 2 * 86400,) * 2)

    assert store.remove_stale_staging() == 1
    assert not old.exists() and fresh.exists()


def test_a_read_only_artifact_store_gives_a_clear_error(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    root.chmod(0o555)
    code = (
        "from shipyard.storage.artifacts import LocalArtifactStore\n"
        "from shipyard.errors import StoreError\n"
        f"store = LocalArtifactStore({str(root)!r})\n"
        "try:\n"
        "    store.staging_path()\n"
        "except StoreError as exc:\n"
        "    print(exc)\n"
    )
    try:
        done = subprocess.run(
            [*without_write_permission(), sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    finally:
        root.chmod(0o755)
    assert "Cannot write to the artifact store" in done.stdout
    assert "Permission denied" in done.stdout
    assert "Make the folder writable" in done.stdout


def test_an_fsspec_url_needs_the_extra_only_when_used(tmp_path: Path) -> None:
    store = open_artifact_store(str(tmp_path / "plain"), tmp_path / "cache")
    assert isinstance(store, LocalArtifactStore)
    remote = open_artifact_store("memory://somewhere", tmp_path / "cache")
    assert isinstance(remote, FsspecArtifactStore)


def test_a_corrupted_remote_object_is_detected(tmp_path: Path) -> None:
    store = FsspecArtifactStore(f"file://{tmp_path / 'remote'}", tmp_path / "cache")
    digest = commit_bytes(store, b"remote bytes")  # type: ignore[arg-type]
    remote = tmp_path / "remote" / "objects" / digest[:2] / digest[2:]
    remote.write_bytes(b"bit rot")
    fresh = FsspecArtifactStore(f"file://{tmp_path / 'remote'}", tmp_path / "cache2")
    with pytest.raises(ArtifactCorruptedError):
        fresh.local_path(digest)
