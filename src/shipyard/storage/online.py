"""The online store: the latest feature values per entity key, for serving.

``shipyard.features`` does the typing and key encoding; a store only sees view
names, entity keys as ``str``, times as ``int`` microseconds since the epoch
(UTC), and values that are ``int`` (64-bit), ``float``, ``str``, ``bytes`` or
``None``. A NaN reads back as ``None``, as SQLite stores it.

A write is an upsert where the newer ``(event_us, created_us)`` wins, so writing a
chunk twice, or chunks in any order, ends in the same state; the view's
watermark moves forward in the same transaction as its rows.
``shipyard.testing.check_online_store`` checks a backend.

``SQLiteOnlineStore`` is the default: one table per view, WAL, and a reading
connection apart from the writing one, so serving never waits for materialization.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from shipyard.errors import ConfigError, OnlineStoreError


@dataclass(frozen=True)
class OnlineViewState:
    """What the online store holds for one feature view.

    Attributes:
        version: the view definition version it was materialized with.
        features: the feature names, in the order of every row's values.
        watermark_us: every row with an event time at or before it has been written.
        rows: the number of entity keys stored.
    """

    version: str
    features: tuple[str, ...]
    watermark_us: int | None
    rows: int


#: ``(entity_key, event_us, created_us, values in the view's feature order)``.
OnlineRow = tuple[str, int, int, tuple[object, ...]]


@runtime_checkable
class OnlineStore(Protocol):
    """Latest feature values by (view, entity key). ``check_online_store`` checks one."""

    url: str

    def state(self, view: str) -> OnlineViewState | None:
        """The view's version, features, watermark and row count; None if never reset."""

    def views(self) -> dict[str, OnlineViewState]:
        """The state of every view, by name."""

    def version(self, view: str) -> str | None:
        """The version the view was materialized with, cheaply (None if never reset)."""

    def reset(self, view: str, version: str, features: Sequence[str]) -> None:
        """Atomically (re)create the view empty, without a watermark."""

    def write(self, view: str, rows: Sequence[OnlineRow], watermark_us: int) -> int:
        """Upsert rows (newer ``(event_us, created_us)`` wins, ties replace) and move
        the watermark forward, all or nothing. Returns ``len(rows)``."""

    def read(self, view: str, keys: Sequence[str]) -> list[tuple[int, tuple[object, ...]] | None]:
        """``(event_us, values)`` per key in input order, None for unknown keys."""

    def drop(self, view: str) -> None:
        """Remove the view and its rows (nothing happens if it does not exist)."""

    def close(self) -> None:
        """Release connections; the store reopens on next use."""


_VIEW_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def check_view_name(view: object) -> str:
    """Return ``view`` if it is a valid view name, else raise ``OnlineStoreError``."""
    if isinstance(view, str) and _VIEW_NAME.fullmatch(view):
        return view
    raise OnlineStoreError(
        f"A feature view name must be a letter or '_' followed by at most 62 letters, "
        f"digits or '_' (got {view!r}). Rename the feature view."
    )


def unknown_view(view: str, url: str) -> OnlineStoreError:
    """The error for a view that was never materialized into the store at ``url``."""
    return OnlineStoreError(
        f"The online store {url} has no feature view {view!r}. "
        f"Run `shipyard features materialize {view}` first; that creates it."
    )


def row_problem(view: str, row: OnlineRow, width: int) -> OnlineStoreError | None:
    """The error for a row that cannot be stored in a view of ``width`` features, if any."""
    key, _, _, values = row
    if len(values) != width:
        return OnlineStoreError(
            f"A row for entity key {key!r} of feature view {view!r} has {len(values)} values, "
            f"but the view has {width} features. Nothing was written; pass one value per "
            "feature, in the order of the view's features."
        )
    bad = [value for value in values if not _storable(value)]
    if isinstance(key, str) and not bad:
        return None
    culprit = bad[0] if bad else key
    return OnlineStoreError(
        "Entity keys must be str and feature values int (64-bit), float, str, bytes or None; "
        f"the row for entity key {key!r} of feature view {view!r} holds {culprit!r} of type "
        f"{type(culprit).__name__}. Nothing was written; convert it in the feature view."
    )


def open_online_store(url: str, root: Path) -> OnlineStore:
    """The online store for a URL: ``sqlite:///path`` (relative to ``root``, or
    ``sqlite:////absolute/path``) or ``memory://`` (nothing persists).

    Raises:
        ConfigError: for any other URL, or for Redis, which comes in a later release.
    """
    scheme = url.partition("://")[0].lower()
    path = url.removeprefix("sqlite:///")
    if scheme == "sqlite" and path != url and path not in ("", ":memory:"):
        from shipyard.storage._sqlite_online import SQLiteOnlineStore

        return SQLiteOnlineStore(root / path)
    if url == "memory://":
        from shipyard.testing import InMemoryOnlineStore

        return InMemoryOnlineStore()
    if scheme in ("redis", "rediss"):
        raise ConfigError(
            "A Redis online store is not available in this release of shipyard. "
            "Use sqlite:///.shipyard/online.db (the default) for now."
        )
    shown = re.sub(r"//[^/@]*@", "//***@", url)  # never echo a password
    raise ConfigError(
        f"The online store URL {shown!r} is not supported. Expected sqlite:///path/to/file.db "
        "(relative to the project folder), sqlite:////absolute/path.db, or memory://."
    )


def _storable(value: object) -> bool:
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    return value is None or isinstance(value, float | str | bytes)


if TYPE_CHECKING:  # for type checkers; at run time __getattr__ imports it on first use
    from shipyard.storage._sqlite_online import SQLiteOnlineStore  # noqa: F401


def __getattr__(name: str) -> Any:
    if name == "SQLiteOnlineStore":  # defined apart; imported here on first use
        from shipyard.storage._sqlite_online import SQLiteOnlineStore

        return SQLiteOnlineStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
