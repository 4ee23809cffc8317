"""An exported model's skops file: written with its needed types listed beside it, read back
only when every type it needs is on that list *and* on shipyard's own trusted prefixes.

The list beside the file records what the model needed when it was exported; shipyard's
prefixes (``shipyard.core.materializers.TRUSTED_MODULE_PREFIXES``) are never read from the
export. A file edited to need a new type, or a list edited to drop one, is refused.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from shipyard.core import materializers
from shipyard.errors import MaterializerError, missing_extra

#: Always needed to read the export and score with it, whatever the model holds.
BASE_DISTRIBUTIONS = ("skops", "numpy", "polars")


def save(model: Any, path: Path, trusted_path: Path) -> list[str]:
    """Write ``model`` to ``path`` and the types it needs to ``trusted_path``; return them.

    Raises:
        MaterializerError: the model needs types outside shipyard's trusted prefixes.
    """
    sio = _skops()
    sio.dump(model, path)
    needed = sorted(needed_types(path))
    refused = [name for name in needed if not _trusted_prefix(name)]
    if refused:
        raise MaterializerError(
            f"The model contains types shipyard does not trust: {', '.join(refused)}. If they "
            "are your own, allow their modules with shipyard.trust_types('yourpackage.'), "
            "then export again."
        )
    listing = {"types": needed, "skops": md.version("skops")}
    trusted_path.write_text(json.dumps(listing, indent=2) + "\n", encoding="utf-8")
    return needed


def load(path: Path, trusted_path: Path) -> Any:
    """The model in ``path``, if every type it needs is trusted twice (see the module doc).

    Raises:
        MaterializerError: a needed type is missing from either list (it is named), or
            ``path`` is not a readable skops file, or the list is not valid.
    """
    sio = _skops()
    listed = set(_listed(trusted_path))
    needed = needed_types(path)
    for name in sorted(needed):
        if name not in listed:
            raise MaterializerError(
                f"{path} needs the type {name}, which {trusted_path.name} does not list: the "
                "model file or the list was changed after export. Export the model again."
            )
        if not _trusted_prefix(name):
            raise MaterializerError(
                f"{path} needs the type {name}, which shipyard does not trust. If it is your "
                "own, allow its module with shipyard.trust_types('yourpackage.')."
            )
    try:
        return sio.load(path, trusted=needed)
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, AttributeError) as exc:
        raise _invalid(path, exc) from exc


def needed_types(path: Path) -> list[str]:
    """The types in ``path`` that skops does not trust by default.

    Raises:
        MaterializerError: ``path`` is not a skops file (not a zip, no valid schema).
    """
    sio = _skops()
    try:
        found: list[str] = sio.get_untrusted_types(file=path)
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError) as exc:
        raise _invalid(path, exc) from exc
    return found


def requirements(path: Path) -> dict[str, str]:
    """Installed versions of the distributions the model in ``path`` is made of (by the
    top-level modules its schema names), plus those needed to read and score it."""
    modules = {name.split(".", 1)[0] for name in _schema_modules(path)}
    by_module = md.packages_distributions()
    names = {dist for module in modules for dist in by_module.get(module, ())}
    versions: dict[str, str] = {}
    for name in sorted({*names, *BASE_DISTRIBUTIONS}, key=str.lower):
        try:
            versions[md.metadata(name)["Name"]] = md.version(name)
        except md.PackageNotFoundError:
            continue
    return versions


def _schema_modules(path: Path) -> Iterator[str]:
    try:
        with zipfile.ZipFile(path) as archive:
            schema = json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise _invalid(path, exc) from exc
    yield from _modules(schema)


def _modules(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("__module__"), str):
            yield node["__module__"]
        for value in node.values():
            yield from _modules(value)
    elif isinstance(node, list):
        for value in node:
            yield from _modules(value)


def _listed(trusted_path: Path) -> Sequence[str]:
    try:
        listing = json.loads(trusted_path.read_text(encoding="utf-8"))
        types = listing["types"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MaterializerError(
            f"{trusted_path} is missing or is not a list of types ({exc}); it is written by "
            'export_model as {"types": [...]}. Export the model again.'
        ) from exc
    if not isinstance(types, list) or not all(isinstance(name, str) for name in types):
        raise MaterializerError(f"{trusted_path}: 'types' must be a list of type names.")
    return types


def _trusted_prefix(name: str) -> bool:
    return name.startswith(tuple(materializers.TRUSTED_MODULE_PREFIXES))


def _invalid(path: Path, exc: Exception) -> MaterializerError:
    return MaterializerError(
        f"{path} is not a valid skops model file ({type(exc).__name__}: {exc}). It may be "
        "truncated or replaced; export the model again."
    )


def _skops() -> Any:
    try:
        import skops.io as sio
    except ImportError:
        raise missing_extra("skops", "ml", "Exporting a model") from None
    return sio
