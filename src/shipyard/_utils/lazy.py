"""Packages that export names lazily: the module of a name is imported on first use."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(
    package: str, table: Mapping[str, str], namespace: dict[str, Any]
) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``name`` from ``table[name]`` on first use and
    keeps it in ``namespace`` (the package's ``globals()``), so later lookups cost nothing.

    Usage, in a package's ``__init__.py``::

        _LAZY = {"Registry": "shipyard.registry.registry"}
        __getattr__ = lazy_attributes(__name__, _LAZY, globals())
    """

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return __getattr__
