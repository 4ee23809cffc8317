"""Conformance kits for shipyard's extension points, and in-memory implementations.

A new backend is correct when its kit passes, the way scikit-learn's
``check_estimator`` vouches for an estimator::

    from shipyard.testing import check_artifact_store
    check_artifact_store(MyS3Store(...))
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
import uuid
from pathlib import Path

from shipyard.errors import ArtifactCorruptedError, ArtifactNotFoundError
from shipyard.storage.artifacts import ArtifactStore, StoredObject, sha256_file


class InMemoryArtifactStore:
    """An artifact store that keeps objects in a dict (for tests; nothing persists)."""

    def __init__(self) -> None:
        self.url = f"memory-{uuid.uuid4().hex[:8]}"
        self.objects: dict[str, bytes] = {}
        self._scratch = Path(tempfile.mkdtemp(prefix="shipyard-memory-"))
        self._lock = threading.Lock()

    def staging_path(self) -> Path:
        return self._scratch / uuid.uuid4().hex

    def commit(self, staged: Path, *, hashed: tuple[str, int] | None = None) -> StoredObject:
        data = staged.read_bytes()
        staged.unlink()
        digest = hashlib.sha256(data).hexdigest()
        with self._lock:
            self.objects.setdefault(digest, data)
        return StoredObject(digest, len(data), f"{self.url}/{digest}")

    def local_path(self, digest: str, *, verify: bool = True) -> Path:
        if verify:
            self.verify(digest)
        data = self.objects.get(digest)
        if data is None:
            raise ArtifactNotFoundError(f"The object {digest[:12]}… is not in {self.url}.")
        path = self._scratch / f"read-{digest}"
        if not path.exists():
            path.write_bytes(data)
        return path

    def verify(self, digest: str) -> None:
        data = self.objects.get(digest)
        if data is None:
            raise ArtifactNotFoundError(f"The object {digest[:12]}… is not in {self.url}.")
        if hashlib.sha256(data).hexdigest() != digest:
            raise ArtifactCorruptedError(f"The object {digest[:12]}… in {self.url} is corrupted.")

    def exists(self, digest: str) -> bool:
        return digest in self.objects


def check_artifact_store(store: ArtifactStore) -> None:
    """Check the behaviour every artifact store must have; raises AssertionError if not.

    Commits are content-addressed and idempotent, staged files are consumed, reads
    return the exact bytes, and unknown digests raise ``ArtifactNotFoundError``.
    """
    assert isinstance(store, ArtifactStore), "does not implement the ArtifactStore protocol"
    payload = uuid.uuid4().bytes * 1000
    first = _commit_bytes(store, payload)
    expected = hashlib.sha256(payload).hexdigest()
    assert first.digest == expected, f"digest {first.digest} is not the SHA-256 of the bytes"
    assert first.size == len(payload), f"size {first.size} != {len(payload)}"
    assert store.exists(expected), "a committed object does not exist"
    second = _commit_bytes(store, payload)
    assert second.digest == first.digest, "the same bytes got another address"
    path = store.local_path(expected)
    assert path.read_bytes() == payload, "reading back gave other bytes"
    store.verify(expected)
    assert store.local_path(expected, verify=False).read_bytes() == payload
    assert sha256_file(path) == (expected, len(payload))
    empty = _commit_bytes(store, b"")
    assert store.local_path(empty.digest).read_bytes() == b""
    missing = hashlib.sha256(b"never stored " + uuid.uuid4().bytes).hexdigest()
    assert not store.exists(missing), "exists() is true for an object never stored"
    raised = False
    try:
        store.local_path(missing)
    except ArtifactNotFoundError:
        raised = True
    assert raised, "reading a missing object did not raise ArtifactNotFoundError"


def _commit_bytes(store: ArtifactStore, data: bytes) -> StoredObject:
    staged = store.staging_path()
    staged.write_bytes(data)
    stored = store.commit(staged)
    assert not staged.exists(), "commit() left the staged file behind"
    return stored
