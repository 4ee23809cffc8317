"""The online stores: the conformance kit, and what only SQLite can show (a file that
outlives the process, rollback, concurrent readers, hostile names)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from shipyard.errors import ConfigError, OnlineStoreError, StoreError
from shipyard.storage.online import (
    OnlineRow,
    OnlineStore,
    OnlineViewState,
    SQLiteOnlineStore,
    open_online_store,
)
from shipyard.testing import InMemoryOnlineStore, check_online_store


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "online.db"


@pytest.fixture
def store(db: Path) -> Iterator[SQLiteOnlineStore]:
    opened = SQLiteOnlineStore(db)
    yield opened
    opened.close()


@pytest.mark.parametrize("kind", ["sqlite", "in-memory"])
def test_every_online_store_passes_the_conformance_kit(db: Path, kind: str) -> None:
    makers: dict[str, Callable[[], OnlineStore]] = {
        "sqlite": lambda: SQLiteOnlineStore(db),
        "in-memory": InMemoryOnlineStore,
    }
    check_online_store(makers[kind])


def test_the_kit_runs_twice_on_one_sqlite_file(db: Path) -> None:
    check_online_store(lambda: SQLiteOnlineStore(db))
    check_online_store(lambda: SQLiteOnlineStore(db))
    with SQLiteStore(db) as store:
        assert store.views() == {}


def test_the_kit_catches_a_store_where_older_rows_win(db: Path) -> None:
    class OldestWins(InMemoryOnlineStore):
        def write(self, view: str, rows: Sequence[OnlineRow], watermark_us: int) -> int:
            return super().write(view, [(k, -e, -c, v) for k, e, c, v in rows], watermark_us)

    with pytest.raises(AssertionError):
        check_online_store(OldestWins)


def test_the_file_and_its_folders_are_created_on_first_use_only(db: Path) -> None:
    store = SQLiteOnlineStore(db)
    assert not db.parent.exists()
    assert store.url == f"sqlite:///{db}"
    assert store.views() == {}
    assert db.exists()
    store.close()


def test_rows_and_watermark_survive_reopening(db: Path) -> None:
    first = SQLiteOnlineStore(db)
    first.reset("users", "v3", ["age", "score"])
    first.write("users", [("u1", 10, 11, (42, 0.5)), ("u2", 20, 21, (None, 1.0))], 25)
    first.close()

    with SQLiteStore(db) as second:
        assert second.state("users") == OnlineViewState("v3", ("age", "score"), 25, 2)
        assert second.read("users", ["u2", "u1"]) == [(20, (None, 1.0)), (10, (42, 0.5))]


def test_a_store_is_usable_again_after_close(store: SQLiteOnlineStore) -> None:
    store.reset("v", "1", ["x"])
    store.close()
    store.write("v", [("k", 1, 1, ("x",))], 1)
    assert store.read("v", ["k"]) == [(1, ("x",))]


def test_a_write_that_fails_midway_leaves_rows_and_watermark_untouched(
    store: SQLiteOnlineStore,
) -> None:
    store.reset("v", "1", ["x"])
    store.write("v", [("a", 1, 1, ("old",))], 100)
    rows: list[OnlineRow] = [(f"k{n}", 5, 5, (n,)) for n in range(1000)]
    rows[500] = ("zz-bad", 5, 5, (object(),))  # written last: rows are applied in key order

    with pytest.raises(OnlineStoreError) as caught:
        store.write("v", [("a", 9, 9, ("new",)), *rows], 999)

    message = str(caught.value)
    assert message.startswith(
        "Entity keys must be str and feature values int (64-bit), float, str, bytes or None; "
        "the row for entity key 'zz-bad' of feature view 'v' holds <object object at "
    )
    assert message.endswith("of type object. Nothing was written; convert it in the feature view.")
    assert isinstance(caught.value.__cause__, sqlite3.Error)
    assert store.state("v") == OnlineViewState("1", ("x",), 100, 1)
    assert store.read("v", ["a", "k0", "k999"]) == [(1, ("old",)), None, None]
    store.close()
    with SQLiteStore(store.path) as fresh:  # what another process sees
        assert fresh.state("v") == OnlineViewState("1", ("x",), 100, 1)


def test_a_write_stopped_by_the_callers_own_exception_is_rolled_back(
    store: SQLiteOnlineStore,
) -> None:
    class Exploding(tuple[object, ...]):
        def __iter__(self) -> Iterator[object]:
            raise KeyboardInterrupt

    store.reset("v", "1", ["x"])
    store.write("v", [("a", 1, 1, ("old",))], 100)
    rows: list[OnlineRow] = [(f"k{n}", 5, 5, (n,)) for n in range(1000)]
    rows.append(("zz", 5, 5, Exploding((1,))))

    with pytest.raises(KeyboardInterrupt):
        store.write("v", [("a", 9, 9, ("new",)), *rows], 999)

    assert store.state("v") == OnlineViewState("1", ("x",), 100, 1)
    assert store.read("v", ["a", "k0"]) == [(1, ("old",)), None]
    store.write("v", [("a", 9, 9, ("new",))], 200)  # the store still works
    assert store.read("v", ["a"]) == [(9, ("new",))]


def test_readers_see_whole_rows_and_whole_writes_while_a_writer_writes(
    store: SQLiteOnlineStore,
) -> None:
    store.reset("v", "1", ["a", "b", "c"])
    keys = [f"k{n}" for n in range(1200)]  # more than one IN (...) chunk per read
    store.write("v", [(key, 0, 0, (0, 0, 0)) for key in keys], 0)
    start, done = threading.Barrier(5), threading.Event()
    problems: list[object] = []

    def write() -> None:
        start.wait()
        for round_ in range(1, 21):
            store.write("v", [(key, round_, 0, (round_,) * 3) for key in keys], round_)
        done.set()

    def read() -> None:
        start.wait()
        try:
            while not done.is_set():
                for found in (store.read("v", keys), store.read("v", ["k1199"])):
                    rounds = {row[0] for row in found if row is not None}
                    if len(rounds) != 1 or any(
                        row is None or row[1] != (row[0],) * 3 for row in found
                    ):
                        problems.append(found)
        except BaseException as exc:  # collected and asserted below
            problems.append(exc)

    threads = [threading.Thread(target=write)] + [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert problems == []
    assert store.read("v", ["k0", "k1199"]) == [(20, (20, 20, 20))] * 2
    assert store.state("v") == OnlineViewState("1", ("a", "b", "c"), 20, 1200)


def test_keys_and_feature_names_that_look_like_sql_are_only_data(
    store: SQLiteOnlineStore,
) -> None:
    features = ['x"; DROP TABLE y; --', "with space", "'quoted'", "ünï", ""]
    store.reset("v", "1", features)
    keys = ["it's", 'say "hi"', "🚢 ünï", "'); DROP TABLE _shipyard_views; --", ""]
    store.write("v", [(key, 1, 1, (key, 1, 2.0, b"\0", None)) for key in keys], 1)

    assert store.read("v", keys) == [(1, (key, 1, 2.0, b"\0", None)) for key in keys]
    assert store.state("v") == OnlineViewState("1", tuple(features), 1, 5)


def test_unknown_views_and_bad_names_say_what_to_do(store: SQLiteOnlineStore) -> None:
    unknown = r"has no feature view 'sales'\. Run `shipyard features materialize sales` first"
    with pytest.raises(OnlineStoreError, match=unknown):
        store.read("sales", ["k"])
    with pytest.raises(OnlineStoreError, match=unknown):
        store.write("sales", [], 0)
    with pytest.raises(OnlineStoreError, match=r"a letter or '_' followed by at most 62"):
        store.reset("sales-2024", "1", ["x"])
    store.reset("sales", "1", ["x", "y"])
    with pytest.raises(OnlineStoreError, match=r"has 1 values, but the view has 2 features"):
        store.write("sales", [("k", 1, 1, (1,))], 1)


def test_an_unwritable_folder_gives_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    store = SQLiteOnlineStore(blocker / "online.db")
    with pytest.raises(StoreError, match=r"Cannot open the online store at .*Make its folder") as e:
        store.views()
    assert "point [stores] online in shipyard.toml elsewhere" in str(e.value)


def test_a_file_that_is_not_a_database_is_reported_as_such(db: Path) -> None:
    db.parent.mkdir(parents=True)
    db.write_bytes(b"this is no SQLite file" * 100)
    store = SQLiteOnlineStore(db)
    with pytest.raises(
        OnlineStoreError, match="Could not open the online store sqlite:///"
    ) as caught:
        store.state("v")
    assert "file is not a database" in str(caught.value)
    assert "not corrupted" in str(caught.value)
    store.close()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///.shipyard/online.db", "proj/.shipyard/online.db"),
        ("sqlite:///online.db", "proj/online.db"),
    ],
)
def test_a_relative_sqlite_url_is_under_the_project(
    tmp_path: Path, url: str, expected: str
) -> None:
    store = open_online_store(url, tmp_path / "proj")
    assert isinstance(store, SQLiteOnlineStore)
    assert store.path == tmp_path / expected
    assert store.url == f"sqlite:///{tmp_path / expected}"


def test_an_absolute_sqlite_url_and_memory(tmp_path: Path) -> None:
    store = open_online_store(f"sqlite:///{tmp_path}/abs.db", Path("/elsewhere"))
    assert isinstance(store, SQLiteOnlineStore)
    assert store.path == tmp_path / "abs.db"
    memory = open_online_store("memory://", tmp_path)
    assert isinstance(memory, InMemoryOnlineStore)
    assert isinstance(memory, OnlineStore)


@pytest.mark.parametrize("url", ["redis://localhost:6379/0", "rediss://:secret@host:6380"])
def test_redis_is_announced_for_a_later_release(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError, match="Redis online store is not available") as caught:
        open_online_store(url, tmp_path)
    assert "secret" not in str(caught.value)
    assert "sqlite:///.shipyard/online.db" in str(caught.value)


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///", "sqlite:///:memory:", "postgresql://u:pw@h/db", "online.db"]
)
def test_other_urls_list_the_accepted_schemes(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError, match="is not supported. Expected sqlite:///") as caught:
        open_online_store(url, tmp_path)
    assert "pw" not in str(caught.value)
    assert "memory://" in str(caught.value)


class SQLiteStore:
    """A SQLiteOnlineStore closed at the end of a ``with`` block."""

    def __init__(self, path: Path) -> None:
        self.store = SQLiteOnlineStore(path)

    def __enter__(self) -> SQLiteOnlineStore:
        return self.store

    def __exit__(self, *exc: object) -> None:
        self.store.close()
