"""The feature store: entities, feature views, training sets and the online store.

from shipyard.features import Entity, FeatureView, FeatureStore, Source, window_aggregates
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard._utils.lazy import lazy_attributes

__all__ = [
    "Entity",
    "FeatureStore",
    "FeatureView",
    "OnlineFeatures",
    "RequestFeatures",
    "Source",
    "window_aggregates",
]

_LAZY = {
    "Entity": "shipyard.features.entity",
    "FeatureStore": "shipyard.features.store",
    "FeatureView": "shipyard.features.view",
    "OnlineFeatures": "shipyard.features.online",
    "RequestFeatures": "shipyard.features.view",
    "Source": "shipyard.features.source",
    "window_aggregates": "shipyard.features.windows",
}

if TYPE_CHECKING:
    from shipyard.features.entity import Entity
    from shipyard.features.online import OnlineFeatures
    from shipyard.features.source import Source
    from shipyard.features.store import FeatureStore
    from shipyard.features.view import FeatureView, RequestFeatures
    from shipyard.features.windows import window_aggregates


__getattr__ = lazy_attributes(__name__, _LAZY, globals())
