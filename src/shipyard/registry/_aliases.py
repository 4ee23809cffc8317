"""How an alias may change: promotion, removal and rollback, decided inside the write.

Each ``*_change`` function returns the decision that the metadata store's
``change_alias`` calls with the alias's current version while it holds the write
transaction, so that the decision and the write see the same state.
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Callable
from typing import Any

from shipyard.errors import PromotionRefusedError

Row = dict[str, Any]
History = Callable[[], list[Row]]
Change = tuple[str, int | None] | None

ALIAS_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


class AliasUnset(Exception):
    """Raised inside a decision when the alias points nowhere; the caller explains."""


def check_alias_name(alias: str) -> None:
    """Refuse an alias name that is not lowercase letters, digits, ``_`` and ``-``."""
    if not ALIAS_PATTERN.match(alias):
        raise PromotionRefusedError(
            f"{alias!r} is not a valid alias name. An alias starts with a lowercase letter, "
            "followed by at most 62 lowercase letters, digits, '_' or '-' "
            "(e.g. 'production', 'staging', 'shadow-eu')."
        )


def actor_name(actor: str | None) -> str:
    """The given actor, else ``SHIPYARD_ACTOR``, else the login name of this process."""
    if actor:
        return actor
    if os.environ.get("SHIPYARD_ACTOR"):
        return os.environ["SHIPYARD_ACTOR"]
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (a bare container): still record the change
        return "unknown"


UNKNOWN = -1  # a gate record that does not say what it was compared with


def promotion(
    version: int, judged_against: int | None = UNKNOWN
) -> Callable[[int | None, History], Change]:
    """Point the alias at ``version``; nothing changes if it already points there.

    ``judged_against`` is the version the approving gate compared the candidate with
    (None: no baseline). If the alias has moved since, the gate is stale: refused, in
    the same transaction that would have moved the alias.
    """

    def decide(current: int | None, _history: History) -> Change:
        if current == version:
            return None
        if judged_against != UNKNOWN and current != judged_against:
            then = "no model" if judged_against is None else f"version {judged_against}"
            raise PromotionRefusedError(
                f"The gate of version {version} compared it with {then}, but the alias now "
                f"points at version {current}. Evaluate it again against the current model "
                "(shipyard evaluate), or force with a reason."
            )
        return ("set" if current is None else "moved", version)

    return decide


def removal(current: int | None, _history: History) -> Change:
    """Unset the alias."""
    if current is None:
        raise AliasUnset
    return ("removed", None)


def rollback(ref: str) -> Callable[[int | None, History], Change]:
    """Point the alias ``ref`` (``name@alias``) back where it was before its latest change."""

    def decide(current: int | None, history: History) -> Change:
        if current is None:
            raise AliasUnset
        events = history()
        target = rollback_target(events)
        if target is None:
            later = ", and every later move has been rolled back" if len(events) > 1 else ""
            raise PromotionRefusedError(
                f"{ref} has nothing to roll back to: it points at version {current}, where "
                f"it was first set{later}. Promote another version instead, or remove the alias."
            )
        return ("rollback", target)

    return decide


def rollback_target(events: list[Row]) -> int | None:
    """The version a rollback returns to, given the alias's events oldest first.

    Rollbacks walk back: each rollback undoes the newest ``set``/``moved`` event that no
    rollback has undone yet, returning to that event's ``previous_version``. After
    promotions to 1, 2, 3 the first rollback returns to 2, the second to 1, and a third
    finds nothing (1 was set when the alias pointed nowhere). A promotion after a
    rollback is undone first. None when nothing is left to undo.
    """
    undone = 0
    for event in reversed(events):
        if event["action"] == "rollback":
            undone += 1
        elif event["action"] == "removed":
            return None
        elif undone:
            undone -= 1
        else:
            previous = event["previous_version"]
            return None if previous is None else int(previous)
    return None
