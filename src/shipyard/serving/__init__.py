"""Serving the team owns: the prediction API, its protocols, batching and the prediction log.

from shipyard.serving import MicroBatcher, PredictionLog, read_log, join_labels
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard._utils.lazy import lazy_attributes

__all__ = ["MicroBatcher", "PredictionLog", "join_labels", "read_log"]

_LAZY = {
    "MicroBatcher": "shipyard.serving.batching",
    "PredictionLog": "shipyard.serving.log",
    "join_labels": "shipyard.serving.log",
    "read_log": "shipyard.serving.log",
}

if TYPE_CHECKING:
    from shipyard.serving.batching import MicroBatcher
    from shipyard.serving.log import PredictionLog, join_labels, read_log

__getattr__ = lazy_attributes(__name__, _LAZY, globals())
