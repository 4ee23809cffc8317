"""Conformance kits for shipyard's extension points, and in-memory implementations.

A new backend is correct when its kit passes, the way scikit-learn's
``check_estimator`` vouches for an estimator::

    from shipyard.testing import check_artifact_store, check_online_store
    check_artifact_store(MyS3Store(...))
    check_online_store(lambda: MyRedisStore(...))
"""

from __future__ import annotations

import hashlib
import math
import tempfile
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from shipyard.errors import ArtifactCorruptedError, ArtifactNotFoundError, OnlineStoreError
from shipyard.storage.artifacts import ArtifactStore, StoredObject, sha256_file
from shipyard.storage.online import (
    OnlineRow,
    OnlineStore,
    OnlineViewState,
    check_view_name,
    row_problem,
    unknown_view,
)


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


class InMemoryOnlineStore:
    """An online store in dicts (for tests and ``memory://``; nothing persists)."""

    def __init__(self) -> None:
        self.url = "memory://"
        self._lock = threading.Lock()
        self._views: dict[str, OnlineViewState] = {}
        self._rows: dict[str, dict[str, tuple[int, int, tuple[object, ...]]]] = {}

    def state(self, view: str) -> OnlineViewState | None:
        check_view_name(view)
        with self._lock:
            found = self._views.get(view)
            return None if found is None else replace(found, rows=len(self._rows[view]))

    def version(self, view: str) -> str | None:
        with self._lock:
            found = self._views.get(view)
            return None if found is None else found.version

    def views(self) -> dict[str, OnlineViewState]:
        with self._lock:
            return {name: replace(s, rows=len(self._rows[name])) for name, s in self._views.items()}

    def reset(self, view: str, version: str, features: Sequence[str]) -> None:
        check_view_name(view)
        with self._lock:
            self._views[view] = OnlineViewState(version, tuple(features), None, 0)
            self._rows[view] = {}

    def write(self, view: str, rows: Sequence[OnlineRow], watermark_us: int) -> int:
        check_view_name(view)
        with self._lock:
            if view not in self._views:
                raise unknown_view(view, self.url)
            width = len(self._views[view].features)
            for row in rows:  # check everything first: a failed write writes nothing
                if problem := row_problem(view, row, width):
                    raise problem
            table = self._rows[view]
            for key, event_us, created_us, values in rows:
                old = table.get(key)
                if old is None or (event_us, created_us) >= old[:2]:
                    table[key] = (event_us, created_us, tuple(_stored(v) for v in values))
            old_mark = self._views[view].watermark_us
            mark = watermark_us if old_mark is None else max(old_mark, watermark_us)
            self._views[view] = replace(self._views[view], watermark_us=mark)
        return len(rows)

    def read(self, view: str, keys: Sequence[str]) -> list[tuple[int, tuple[object, ...]] | None]:
        check_view_name(view)
        with self._lock:
            if view not in self._views:
                raise unknown_view(view, self.url)
            table = self._rows[view]
            found = [table.get(key) for key in keys]
        return [None if row is None else (row[0], row[2]) for row in found]

    def drop(self, view: str) -> None:
        check_view_name(view)
        with self._lock:
            self._views.pop(view, None)
            self._rows.pop(view, None)

    def close(self) -> None:
        """Nothing to release."""


def _stored(value: object) -> object:
    """NaN reads back as None, as in SQLite."""
    return None if isinstance(value, float) and math.isnan(value) else value


def check_online_store(make_store: Callable[[], OnlineStore]) -> None:
    """Check the behaviour every online store must have; raises AssertionError if not.

    Uses one store from ``make_store`` and view names of its own, so a persistent
    backend holding older data passes too; the store is closed at the end.
    Persistence across reopening is for each backend's own tests.
    """
    store = make_store()
    assert isinstance(store, OnlineStore), "does not implement the OnlineStore protocol"
    prefix = f"kit_{uuid.uuid4().hex[:8]}"
    try:
        for check in _ONLINE_CHECKS:
            check(store, prefix)
    finally:
        store.close()


def _check_names(store: OnlineStore, prefix: str) -> None:
    for bad in ("", "1view", "with-dash", "a" * 64, 'x"; DROP TABLE y; --', "vüe"):
        _raises(f"state({bad!r})", store.state, bad)
        _raises(f"reset({bad!r})", store.reset, bad, "v1", ["x"])
        _raises(f"write({bad!r})", store.write, bad, [], 0)
        _raises(f"read({bad!r})", store.read, bad, ["k"])
        _raises(f"drop({bad!r})", store.drop, bad)
    longest = (prefix + "_" + "x" * 63)[:63]
    store.reset(longest, "v1", ["x"])
    assert store.state(longest) is not None, "a 63-character view name was not kept"
    store.drop(longest)
    lower, upper = f"{prefix}_case", f"{prefix}_CASE"
    store.reset(lower, "lower", ["x"])
    store.reset(upper, "upper", ["x"])
    store.write(lower, [("k", 1, 1, ("lower",))], 1)
    assert store.read(upper, ["k"]) == [None], "views differing only in case share rows"
    assert store.state(upper) == OnlineViewState("upper", ("x",), None, 0)
    assert store.state(lower) == OnlineViewState("lower", ("x",), 1, 1)
    store.drop(lower)
    store.drop(upper)


def _check_lifecycle(store: OnlineStore, prefix: str) -> None:
    view = f"{prefix}_life"
    assert store.state(view) is None, "state() of a view never reset is not None"
    assert store.version(view) is None, "version() of a view never reset is not None"
    _raises("write() to a view never reset", store.write, view, [], 0, mentions=view)
    _raises("read() from a view never reset", store.read, view, ["k"], mentions=view)
    store.reset(view, "v1", ["a", "b"])
    expected = OnlineViewState("v1", ("a", "b"), None, 0)
    assert store.state(view) == expected, f"after reset: {store.state(view)} != {expected}"
    assert store.views().get(view) == expected, "views() does not show a reset view"
    assert store.version(view) == "v1", f"version() after reset: {store.version(view)!r}"
    store.drop(view)
    assert store.state(view) is None, "state() of a dropped view is not None"
    assert view not in store.views(), "views() still shows a dropped view"
    _raises("read() from a dropped view", store.read, view, ["k"], mentions=view)
    store.drop(view)


def _check_round_trip(store: OnlineStore, prefix: str) -> None:
    view = f"{prefix}_types"
    store.reset(view, "v1", ["value"])
    values = [0, 1, -(2**63), 2**63 - 1, 1.0, -0.5, math.inf, "", "naïve ✓ '\"", b"", b"\0\xff"]
    rows = [(f"k{index}", 10, 1, (value,)) for index, value in enumerate([*values, None])]
    assert store.write(view, rows, 10) == len(rows), "write() did not return len(rows)"
    got = store.read(view, [row[0] for row in rows])
    for (key, *_), value, found in zip(rows, [*values, None], got, strict=True):
        assert found == (10, (value,)), f"{key}: wrote {value!r}, read back {found!r}"
        assert type(found[1][0]) is type(value), f"{value!r} came back as {found[1][0]!r}"
    store.write(view, [("nan", 10, 1, (math.nan,))], 10)
    assert store.read(view, ["nan"]) == [(10, (None,))], "a NaN does not read back as None"
    wide = f"{prefix}_wide"
    store.reset(wide, "v1", ["i", "f", "s", "b", "n"])
    store.write(wide, [("ü'\"key", 7, 8, (3, 2.5, "s", b"b", None))], 7)
    assert store.read(wide, ["ü'\"key"]) == [(7, (3, 2.5, "s", b"b", None))]
    store.drop(view)
    store.drop(wide)


def _check_read_order(store: OnlineStore, prefix: str) -> None:
    view = f"{prefix}_order"
    store.reset(view, "v1", ["x"])
    store.write(view, [(f"k{n}", n, 0, (n * 10,)) for n in range(1200)], 1200)
    assert store.read(view, []) == [], "read() of no keys is not []"
    keys = ["k7", "missing", "k3", "k7"]
    assert store.read(view, keys) == [(7, (70,)), None, (3, (30,)), (7, (70,))], "read order"
    many = [key for n in reversed(range(1200)) for key in (f"k{n}", f"none{n % 3}")]
    expected = [(n, (n * 10,)) if n >= 0 else None for m in reversed(range(1200)) for n in (m, -1)]
    assert store.read(view, many) == expected, "read() of 2400 keys lost order or rows"
    state = _state_of(store, view)
    assert state.rows == 1200, f"1200 keys written, state says {state}"
    store.drop(view)


def _check_newer_wins(store: OnlineStore, prefix: str) -> None:
    view = f"{prefix}_newer"
    store.reset(view, "v1", ["x"])
    steps = [  # (event_us, created_us, value) written in turn, then what read() must give
        (10, 5, "first", (10, ("first",))),
        (9, 99, "older event", (10, ("first",))),
        (10, 4, "older created", (10, ("first",))),
        (10, 6, "newer created", (10, ("newer created",))),
        (10, 6, "same pair", (10, ("same pair",))),
        (11, 0, "newer event", (11, ("newer event",))),
    ]
    for event_us, created_us, value, expected in steps:
        store.write(view, [("k", event_us, created_us, (value,))], 0)
        got = store.read(view, ["k"])[0]
        assert got == expected, f"after writing {value!r}: read {got}, expected {expected}"
    burst = [("d", 5, 1, ("a",)), ("d", 7, 1, ("newest",)), ("d", 6, 1, ("b",))]
    store.write(view, burst, 0)
    assert store.read(view, ["d"]) == [(7, ("newest",))], "a key repeated in one write"
    store.drop(view)


def _check_idempotent(store: OnlineStore, prefix: str) -> None:
    first = [(f"k{n}", n % 4, n, (f"first{n}",)) for n in range(20)]
    second = [(f"k{n}", n % 5, n, (f"second{n}",)) for n in range(10, 30)]
    views = {f"{prefix}_fwd": [first, second], f"{prefix}_rev": [second, first, first, second]}
    for view, chunks in views.items():
        store.reset(view, "v1", ["x"])
        for chunk in chunks:
            store.write(view, chunk, 100 if chunk is first else 50)
    keys = [f"k{n}" for n in range(30)]
    forward, backward = (store.read(view, keys) for view in views)
    assert forward == backward, "chunks written twice or in another order gave another state"
    states = [store.state(view) for view in views]
    assert states[0] == states[1] == OnlineViewState("v1", ("x",), 100, 30), f"states {states}"
    for view in views:
        store.drop(view)


def _check_watermark(store: OnlineStore, prefix: str) -> None:
    view = f"{prefix}_mark"
    store.reset(view, "v1", ["x"])
    for rows, mark, expected in [([], 100, 100), ([("k", 1, 1, (1,))], 50, 100), ([], 200, 200)]:
        assert store.write(view, rows, mark) == len(rows), "write() did not return len(rows)"
        state = _state_of(store, view)
        assert state.watermark_us == expected, (
            f"after a write with watermark {mark}: {state}, expected watermark {expected}"
        )
    store.reset(view, "v2", ["p", "q"])
    assert store.state(view) == OnlineViewState("v2", ("p", "q"), None, 0), "reset kept data"
    assert store.read(view, ["k"]) == [None], "reset kept a row"
    store.write(view, [("k", 1, 1, (1, 2))], 1)
    assert store.read(view, ["k"]) == [(1, (1, 2))], "write after a reset to new features"
    store.drop(view)


def _check_all_or_nothing(store: OnlineStore, prefix: str) -> None:
    view = f"{prefix}_atomic"
    store.reset(view, "v1", ["x", "y"])
    store.write(view, [("kept", 1, 1, (1, 2))], 10)
    before = store.state(view)
    good = ("new", 2, 2, (3, 4))
    for bad in [("bad", 2, 2, (1,)), ("bad", 2, 2, (1, 2, 3)), ("bad", 2, 2, (object(), 1))]:
        _raises(f"a write with the row {bad}", store.write, view, [good, bad], 99, mentions="bad")
    _raises(
        "a write of an int beyond 64 bits", store.write, view, [good, ("big", 2, 2, (2**63, 1))], 99
    )
    _raises("a write with an int entity key", store.write, view, [good, (7, 2, 2, (1, 2))], 99)
    assert store.state(view) == before, f"a failed write changed the state: {store.state(view)}"
    assert store.read(view, ["new", "kept"]) == [None, (1, (1, 2))], "a failed write wrote rows"
    store.drop(view)


_ONLINE_CHECKS: list[Callable[[OnlineStore, str], None]] = [
    _check_names,
    _check_lifecycle,
    _check_round_trip,
    _check_read_order,
    _check_newer_wins,
    _check_idempotent,
    _check_watermark,
    _check_all_or_nothing,
]


def _raises(what: str, call: Callable[..., object], *args: object, mentions: str = "") -> None:
    try:
        call(*args)
    except OnlineStoreError as exc:
        message = str(exc)
    else:
        raise AssertionError(f"{what} did not raise OnlineStoreError")
    assert mentions in message, f"{what}: the message {message!r} does not name {mentions!r}"


def _state_of(store: OnlineStore, view: str) -> OnlineViewState:
    state = store.state(view)
    assert state is not None, f"state() of the reset view {view!r} is None"
    return state
