"""Serving the team owns: the prediction API, its protocols, batching, batch scoring and the
prediction log.

from shipyard.serving import load_served, create_app, score_batch, PredictionLog, read_log
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard._utils.lazy import lazy_attributes

__all__ = [
    "BatchSummary",
    "MicroBatcher",
    "PredictionLog",
    "ServedModel",
    "create_app",
    "join_labels",
    "load_served",
    "read_log",
    "score_batch",
]

_LAZY = {
    "BatchSummary": "shipyard.serving.batch",
    "MicroBatcher": "shipyard.serving.batching",
    "PredictionLog": "shipyard.serving.log",
    "ServedModel": "shipyard.serving.model",
    "create_app": "shipyard.serving.app",
    "join_labels": "shipyard.serving.log",
    "load_served": "shipyard.serving.model",
    "read_log": "shipyard.serving.log",
    "score_batch": "shipyard.serving.batch",
}

if TYPE_CHECKING:
    from shipyard.serving.app import create_app
    from shipyard.serving.batch import BatchSummary, score_batch
    from shipyard.serving.batching import MicroBatcher
    from shipyard.serving.log import PredictionLog, join_labels, read_log
    from shipyard.serving.model import ServedModel, load_served

__getattr__ = lazy_attributes(__name__, _LAZY, globals())
