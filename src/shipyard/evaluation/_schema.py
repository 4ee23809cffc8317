"""The shape checks behind objectives: field types, unknown keys, and where in the file.

Messages from the dataclasses say what is wrong; :func:`build` puts the place in
``shipyard.toml`` in front (``shipyard.toml:12: [[objectives.thresholds]] #2: ...``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import fields, is_dataclass
from typing import Any, TypeVar

from shipyard.errors import ObjectivesError

T = TypeVar("T")
_HEADER = re.compile(r"^\s*\[\[?\s*([^\]\s]+)\s*\]\]?")


def number(value: object, name: str, expected: str) -> float:
    """``value`` as a finite float, or an error saying that ``name`` must be ``expected``."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise ObjectivesError(
        f"{name} must be {expected}, got {value!r} (a {type(value).__name__}). "
        f"Change it to {expected}."
    )


def choice(value: object, choices: Sequence[str], name: str) -> str:
    """``value`` if it is one of ``choices``, else an error listing them."""
    if isinstance(value, str) and value in choices:
        return value
    raise ObjectivesError(
        f"unknown {name} {value!r}. Known: {', '.join(choices)}. Use one of those."
    )


def strings(values: object, name: str) -> tuple[str, ...]:
    """``values`` as a tuple of non-empty strings."""
    if isinstance(values, list | tuple) and all(isinstance(v, str) and v for v in values):
        return tuple(values)
    raise ObjectivesError(
        f'{name} must be a list of column names, e.g. ["country"], got {values!r}.'
    )


def items(values: object, kind: type[T], name: str) -> tuple[T, ...]:
    """``values`` as a tuple of ``kind`` instances."""
    if isinstance(values, list | tuple):
        for value in values:
            if not isinstance(value, kind):
                raise ObjectivesError(
                    f"{name} must hold {kind.__name__}(...) objects, got {value!r}. "
                    f"Build each with {kind.__name__}(...)."
                )
        return tuple(values)
    raise ObjectivesError(f"{name} must be a list of {kind.__name__}(...), got {values!r}.")


def within(label: str, parse: Callable[[str], object], text: str) -> None:
    """Run ``parse(text)``, naming ``label`` in front of its error."""
    try:
        parse(text)
    except ObjectivesError as exc:
        raise ObjectivesError(f"{label}: {exc}") from None


def locate(source: str, text: str | None, header: str, index: int | None = None) -> str:
    """``"file:line: [header]"``, or ``[[header]] #n`` for the n-th of an array of tables.

    A table that is only implied by its sub-tables is found at the first of them.
    """
    label = f"[{header}]" if index is None else f"[[{header}]] #{index + 1}"
    seen = 0
    implied = None
    for line_number, line in enumerate((text or "").splitlines(), start=1):
        match = _HEADER.match(line)
        if match and match.group(1) == header:
            if index is None or seen == index:
                return f"{source}:{line_number}: {label}"
            seen += 1
        elif match and implied is None and match.group(1).startswith(f"{header}."):
            implied = line_number
    if index is None and implied is not None:
        return f"{source}:{implied}: {label}"
    return f"{source}: {label}"


def table(value: object, kind: type[Any], where: str) -> dict[str, Any]:
    """``value`` if it is a table whose keys are fields of ``kind``."""
    if not isinstance(value, Mapping):
        raise ObjectivesError(f"{where} must be a table, got {value!r} (a {type(value).__name__}).")
    known = [f.name for f in fields(kind)]
    for key in value:
        if key not in known:
            raise ObjectivesError(
                f"{where}: unknown key {key!r}. Known keys: {', '.join(known)}. "
                "Remove it or fix its spelling."
            )
    return dict(value)


def array(value: object, where: str) -> list[Any]:
    """``value`` if it is an array (of tables, checked one by one by the caller)."""
    if isinstance(value, list):
        return value
    raise ObjectivesError(f"{where} must be an array of tables, got {value!r}.")


def build(kind: type[T], value: object, where: str) -> T:
    """``kind(**value)``, with unknown keys refused and ``where`` in front of any error."""
    checked = table(value, kind, where)
    try:
        return kind(**checked)
    except ObjectivesError as exc:
        raise ObjectivesError(f"{where}: {exc}") from None


def plain(value: Any) -> Any:
    """A dataclass as nested dicts and lists, leaving out unset (None or empty) fields."""
    if is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: plain(field)
            for f in fields(value)
            if (field := getattr(value, f.name)) is not None and field != ()
        }
    if isinstance(value, Iterable) and not isinstance(value, str):
        return [plain(v) for v in value]
    return value
