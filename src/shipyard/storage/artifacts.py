"""The artifact store: immutable objects addressed by the SHA-256 of their bytes.

A materializer writes a value to a *staged* local file; ``commit`` hashes it and
moves it under ``objects/<aa>/<rest-of-digest>``. The move is a rename on the
same file system, so a process killed mid-write leaves at most a stray staged
file, never a partial object under a real address. Identical bytes land at the
same address and are stored once. Reading checks the bytes against their
address, so a corrupted or truncated object is reported, never loaded.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from shipyard.errors import ArtifactCorruptedError, ArtifactNotFoundError, StoreError, missing_extra

_CHUNK = 8 * 1024 * 1024
_STALE_STAGING_SECONDS = 24 * 3600


@dataclass(frozen=True)
class StoredObject:
    """Where committed bytes live: their digest, size and URI."""

    digest: str
    size: int
    uri: str


@runtime_checkable
class ArtifactStore(Protocol):
    """Content-addressed object storage. ``shipyard.testing.check_artifact_store`` checks one."""

    url: str

    def staging_path(self) -> Path:
        """A fresh local path that a materializer may write one file to."""

    def commit(self, staged: Path, *, hashed: tuple[str, int] | None = None) -> StoredObject:
        """Store the staged file under its digest and remove it. ``hashed`` is the digest
        and size when they were computed while the file was written (see ``HashingWriter``),
        which saves reading the file back."""

    def local_path(self, digest: str, *, verify: bool = True) -> Path:
        """A local file with the object's bytes, checked against ``digest`` unless
        ``verify`` is False (then call ``verify`` yourself, e.g. while parsing the file)."""

    def verify(self, digest: str) -> None:
        """Raise ``ArtifactCorruptedError`` if the stored bytes do not hash to ``digest``."""

    def exists(self, digest: str) -> bool:
        """Whether an object with this digest is stored."""


def sha256_file(path: Path) -> tuple[str, int]:
    """The hex SHA-256 and size of a file, read in large chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb", buffering=0) as handle:
        buffer = bytearray(_CHUNK)
        view = memoryview(buffer)
        while read := handle.readinto(buffer):
            digest.update(view[:read])
            size += read
    return digest.hexdigest(), size


class HashingWriter:
    """A binary file that hashes what is written to it, on the way to disk.

    A materializer that can write to a stream lets the store learn the digest
    without reading the file back; SHA-256 releases the GIL, so hashing overlaps
    with the writer's own encoding threads.
    """

    def __init__(self, path: Path) -> None:
        self._file = open(path, "wb", buffering=0)  # noqa: SIM115 - closed by close()
        self._sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data)
        self._sha.update(view)
        self.size += view.nbytes
        written = self._file.write(view)
        while written is not None and written < view.nbytes:  # unbuffered writes may be short
            written += self._file.write(view[written:]) or 0
        return view.nbytes

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    @property
    def hashed(self) -> tuple[str, int]:
        """The hex SHA-256 and size of everything written."""
        return self._sha.hexdigest(), self.size

    def __enter__(self) -> HashingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_digest(digest: str) -> str:
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ArtifactNotFoundError(
            f"{digest!r} is not an artifact digest: expected 64 lowercase hex characters."
        )
    return digest


class LocalArtifactStore:
    """Objects in a folder on this machine (the default, ``.shipyard/artifacts``)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.url = str(self.root)
        self._objects = self.root / "objects"
        self._staging = self.root / "staging"
        self._verified: dict[str, tuple[int, int]] = {}

    def staging_path(self) -> Path:
        try:
            self._staging.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _unwritable(self._staging, exc) from exc
        return self._staging / uuid.uuid4().hex

    def commit(self, staged: Path, *, hashed: tuple[str, int] | None = None) -> StoredObject:
        digest, size = hashed or sha256_file(staged)
        final = self.object_path(digest)
        try:
            if final.exists() and final.stat().st_size == size:
                staged.unlink()  # identical bytes are already stored
            else:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged, final)
                final.chmod(0o444)
        except OSError as exc:
            staged.unlink(missing_ok=True)
            raise _unwritable(final.parent, exc) from exc
        stat = final.stat()
        self._verified[digest] = (stat.st_size, stat.st_mtime_ns)
        return StoredObject(digest, size, str(final))

    def object_path(self, digest: str) -> Path:
        """Where the object with this digest lives (whether or not it exists)."""
        digest = _check_digest(digest)
        return self._objects / digest[:2] / digest[2:]

    def local_path(self, digest: str, *, verify: bool = True) -> Path:
        path = self.object_path(digest)
        if verify:
            self.verify(digest)
        elif not path.is_file():
            raise self._missing(digest)
        return path

    def _missing(self, digest: str) -> ArtifactNotFoundError:
        set_aside = sorted((self.root / "corrupted").glob(f"{digest}.*"))
        if set_aside:
            return ArtifactNotFoundError(
                f"The object {digest[:12]}… was found corrupted and moved to {set_aside[-1]}. "
                "Re-run the step that made it (`shipyard run ... --no-cache`) to store it again."
            )
        return ArtifactNotFoundError(
            f"The object {digest[:12]}… is missing from {self.root}: it was deleted "
            "outside shipyard. Re-run the step that made it (`shipyard run ... --no-cache`)."
        )

    def verify(self, digest: str) -> None:
        path = self.object_path(digest)
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise self._missing(digest) from None
        if self._verified.get(digest) != (stat.st_size, stat.st_mtime_ns):
            actual, _ = sha256_file(path)
            if actual != digest:
                kept = self._set_aside(path, digest)
                raise ArtifactCorruptedError(
                    f"The object {digest[:12]}… is corrupted: its bytes hash to {actual[:12]}…. "
                    f"It was moved to {kept} for inspection; re-run the step that made it "
                    "(`shipyard run ... --no-cache`) to store it again."
                )
            self._verified[digest] = (stat.st_size, stat.st_mtime_ns)

    def _set_aside(self, path: Path, digest: str) -> Path:
        """Move a corrupted object out of the way, so the next identical write restores it."""
        kept = self.root / "corrupted" / f"{digest}.{time.time_ns()}"
        try:
            kept.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, kept)
        except OSError:
            return path  # a read-only store: leave it where it is
        return kept

    def exists(self, digest: str) -> bool:
        return self.object_path(digest).is_file()

    def remove_stale_staging(self, older_than: float = _STALE_STAGING_SECONDS) -> int:
        """Delete staged files left by killed processes; returns how many were removed."""
        if not self._staging.is_dir():
            return 0
        cutoff = time.time() - older_than
        removed = 0
        for path in self._staging.iterdir():
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed


class FsspecArtifactStore:
    """Objects behind any fsspec URL (``s3://bucket/prefix``, ``memory://``, ...).

    Objects are staged and hashed locally, uploaded under their digest (object
    stores make an upload visible whole or not at all), and cached locally by
    digest when read.
    """

    def __init__(self, url: str, cache_dir: Path) -> None:
        try:
            import fsspec
        except ImportError:
            raise missing_extra("fsspec", "fsspec", f"The artifact store {url!r}") from None
        self.url = url.rstrip("/")
        self._fs, self._base = fsspec.core.url_to_fs(self.url)
        self._cache = LocalArtifactStore(cache_dir)

    def _remote(self, digest: str) -> str:
        digest = _check_digest(digest)
        return f"{self._base}/objects/{digest[:2]}/{digest[2:]}"

    def staging_path(self) -> Path:
        return self._cache.staging_path()

    def commit(self, staged: Path, *, hashed: tuple[str, int] | None = None) -> StoredObject:
        digest, size = hashed or sha256_file(staged)
        remote = self._remote(digest)
        try:
            if not self._fs.exists(remote):
                self._upload(staged, remote)
        except Exception as exc:
            raise StoreError(
                f"Uploading an artifact to {self.url} failed: {exc}. "
                "Check the URL, the credentials and the network."
            ) from exc
        self._cache.commit(staged, hashed=(digest, size))
        return StoredObject(digest, size, f"{self.url}/objects/{digest[:2]}/{digest[2:]}")

    def _upload(self, staged: Path, remote: str) -> None:
        if _OBJECT_STORES & set(_protocols(self._fs)):
            self._fs.put_file(str(staged), remote)  # object stores show an upload whole or not
            return
        # Elsewhere (a file system, SFTP) upload under a temporary name, then rename.
        parent = remote.rsplit("/", 1)[0]
        self._fs.makedirs(parent, exist_ok=True)
        temporary = f"{parent}/.{uuid.uuid4().hex}.partial"
        self._fs.put_file(str(staged), temporary)
        self._fs.mv(temporary, remote)

    def local_path(self, digest: str, *, verify: bool = True) -> Path:
        self._download(digest)
        return self._cache.local_path(digest, verify=verify)

    def verify(self, digest: str) -> None:
        self._download(digest)
        self._cache.verify(digest)

    def _download(self, digest: str) -> None:
        if not self._cache.exists(digest):
            staged = self._cache.staging_path()
            try:
                self._fs.get_file(self._remote(digest), str(staged))
            except FileNotFoundError:
                raise ArtifactNotFoundError(
                    f"The object {digest[:12]}… is missing from {self.url}."
                ) from None
            stored = self._cache.commit(staged)
            if stored.digest != digest:
                self._cache.object_path(stored.digest).unlink()
                raise ArtifactCorruptedError(
                    f"The object {digest[:12]}… in {self.url} is corrupted: its bytes hash "
                    f"to {stored.digest[:12]}…. Re-run the step that made it."
                )

    def exists(self, digest: str) -> bool:
        return bool(self._fs.exists(self._remote(digest)))


_OBJECT_STORES = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "memory"}


def _protocols(fs: object) -> tuple[str, ...]:
    protocol = getattr(fs, "protocol", ())
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def open_artifact_store(url: str, cache_dir: Path) -> ArtifactStore:
    """The artifact store for a folder path or an fsspec URL."""
    if "://" in url and not url.startswith("file://"):
        return FsspecArtifactStore(url, cache_dir)
    return LocalArtifactStore(Path(url.removeprefix("file://")))


def copy_object(store: ArtifactStore, digest: str, destination: Path) -> Path:
    """Copy a stored object to ``destination`` (a writable copy, checked on the way)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(store.local_path(digest), destination)
    return destination


def _unwritable(path: Path, exc: OSError) -> StoreError:
    return StoreError(
        f"Cannot write to the artifact store at {path}: {exc.strerror or exc}. "
        "Make the folder writable, or point [stores] artifacts elsewhere."
    )
