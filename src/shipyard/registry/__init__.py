"""The model registry: versions, aliases with an audit log, model cards, export.

from shipyard.registry import Registry, model_card, export_model, verify_export
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard._utils.lazy import lazy_attributes

__all__ = ["Registry", "export_model", "load_export", "model_card", "verify_export"]

_LAZY = {
    "Registry": "shipyard.registry.registry",
    "export_model": "shipyard.registry.export",
    "load_export": "shipyard.registry.export",
    "model_card": "shipyard.registry.card",
    "verify_export": "shipyard.registry.export",
}

if TYPE_CHECKING:
    from shipyard.registry.card import model_card
    from shipyard.registry.export import export_model, load_export, verify_export
    from shipyard.registry.registry import Registry


__getattr__ = lazy_attributes(__name__, _LAZY, globals())
