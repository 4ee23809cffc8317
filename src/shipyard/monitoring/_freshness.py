"""How old the online store's features are: the SLO ``feature_freshness`` reads this."""

from __future__ import annotations

import datetime as dt
from typing import Any

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def online_freshness(project: Any, at: dt.datetime) -> dict[str, dt.timedelta]:
    """Per materialized view, how far its watermark (the newest event time written) lies
    behind ``at``. Views never materialized are left out; no feature store, no entries."""
    from shipyard.errors import ShipyardError
    from shipyard.features import FeatureStore

    try:
        store = FeatureStore.from_project(project)
    except ShipyardError:  # a project without feature definitions has nothing to be fresh
        return {}
    ages = {}
    for name, state in store.online.views().items():
        if state.watermark_us is not None:
            newest = EPOCH + dt.timedelta(microseconds=state.watermark_us)
            ages[name] = max(at - newest, dt.timedelta(0))
    return ages
