"""An entity: what features describe (a customer, a merchant), named by its join keys."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from shipyard.errors import FeatureDefinitionError

if TYPE_CHECKING:
    import polars as pl

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
KEY_SEPARATOR = "\x1f"  # between the parts of a composite key in the online store


def check_name(kind: str, name: object) -> str:
    """``name`` if it is a valid identifier for an entity, view or feature group."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise FeatureDefinitionError(
            f"A {kind} name must be a letter or underscore followed by letters, digits or "
            f"underscores (at most 63), got {name!r}. Rename it, e.g. 'customer_stats'."
        )
    return name


class Entity:
    """What features are about, and the columns that identify one of it.

    Args:
        name: the entity's name, e.g. ``"customer"``.
        join_keys: the key column(s) identifying one entity, as names, or as a mapping
            from name to Polars dtype (the dtype then checks and converts keys given at
            lookup time: ``{"customer_id": pl.Int64}``).
        description: what the entity is, for people.

    Example::

        customer = Entity("customer", join_keys={"customer_id": pl.String})
    """

    def __init__(
        self,
        name: str,
        join_keys: str | Sequence[str] | Mapping[str, Any],
        *,
        description: str = "",
    ) -> None:
        self.name = check_name("entity", name)
        self.dtypes: dict[str, pl.DataType | None] = _keys(name, join_keys)
        self.join_keys: tuple[str, ...] = tuple(self.dtypes)
        self.description = description

    def __repr__(self) -> str:
        return f"Entity({self.name!r}, join_keys={list(self.join_keys)!r})"

    def recipe(self) -> dict[str, Any]:
        """What identifies this entity's definition, for version hashes."""
        return {
            "name": self.name,
            "keys": {
                key: str(dtype) if dtype is not None else None for key, dtype in self.dtypes.items()
            },
        }


def _keys(entity: str, join_keys: str | Sequence[str] | Mapping[str, Any]) -> dict[str, Any]:
    import polars as pl

    if isinstance(join_keys, str):
        found: dict[str, Any] = {join_keys: None}
    elif isinstance(join_keys, Mapping):
        found = dict(join_keys)
    else:
        found = dict.fromkeys(join_keys)
    if not found or not all(isinstance(k, str) and k for k in found):
        raise FeatureDefinitionError(
            f"Entity {entity!r} needs at least one join key column name, got {join_keys!r}. "
            "Give e.g. join_keys='customer_id'."
        )
    for key, dtype in found.items():
        if dtype is not None and not _is_dtype(dtype, pl):
            raise FeatureDefinitionError(
                f"Entity {entity!r}: the dtype of join key {key!r} must be a Polars dtype such "
                f"as pl.Int64 or pl.String, got {dtype!r}."
            )
        if dtype is not None:
            found[key] = dtype() if isinstance(dtype, type) else dtype
    return found


def _is_dtype(value: Any, pl: Any) -> bool:
    return isinstance(value, pl.DataType) or (
        isinstance(value, type) and issubclass(value, pl.DataType)
    )
