"""Model names and references (``name``, ``name:3``, ``name@alias``), and the errors
that say what exists when a reference finds nothing."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from shipyard.errors import ModelNotFoundError, RegistryError

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

Selector = int | str | None
"""A version number, an alias name, or None for the latest version."""


def check_model_name(name: str) -> None:
    """Refuse a model name that a reference could not name unambiguously."""
    if not NAME_PATTERN.match(name):
        raise RegistryError(
            f"{name!r} is not a valid model name. A model name starts with a letter or "
            "digit, followed by at most 127 letters, digits, '.', '_' or '-' "
            "(e.g. 'fraud-detector')."
        )


def parse_ref(ref: str) -> tuple[str, Selector]:
    """Split ``name@alias``, ``name:3`` or ``name`` into the name and what it selects."""
    if "@" in ref:
        name, _, alias = ref.partition("@")
        return name, alias
    if ":" in ref:
        name, _, number = ref.rpartition(":")
        if not number.isdigit():
            raise ModelNotFoundError(
                f"{ref!r} names no version: after ':' comes a version number, e.g. "
                f"'{name}:1'. Use '{name}@ALIAS' for an alias, or '{name}' for the latest."
            )
        return name, int(number)
    return ref, None


def unknown_model(name: str, known: Sequence[str]) -> ModelNotFoundError:
    """No model ``name``: list the registered ones."""
    if not known:
        return ModelNotFoundError(
            f"No model named {name!r} is registered; no model is registered yet. "
            "Register one with Registry(project).register(name, artifact_id=...)."
        )
    return ModelNotFoundError(
        f"No model named {name!r} is registered. Registered models: {', '.join(known)}."
    )


def unknown_version(
    name: str, version: int, latest: int, aliases: Mapping[str, int]
) -> ModelNotFoundError:
    """Model ``name`` has no ``version``: say which versions and aliases it has."""
    return ModelNotFoundError(
        f"Model {name!r} has no version {version}. {_contents(name, latest, aliases)}"
    )


def unknown_alias(
    name: str, alias: str, latest: int, aliases: Mapping[str, int]
) -> ModelNotFoundError:
    """Model ``name`` has no alias ``alias``: say which versions and aliases it has."""
    return ModelNotFoundError(
        f"Model {name!r} has no alias {alias!r}. {_contents(name, latest, aliases)}"
    )


def _contents(name: str, latest: int, aliases: Mapping[str, int]) -> str:
    versions = "version 1" if latest == 1 else f"versions 1 to {latest}"
    if aliases:
        pointing = ", ".join(f"{alias} -> {v}" for alias, v in sorted(aliases.items()))
        return f"It has {versions} and the aliases {pointing}."
    return f"It has {versions} and no aliases; promote one with Registry.promote({name!r}, ...)."
