"""Monitoring: compare production traffic with the training reference and watch the model run.

The ``monitoring`` layer of ARCHITECTURE.md, above ``shipyard.serving`` (it reads the
prediction log and replays traffic through a served model). See docs/monitoring.md::

    from shipyard.monitoring import monitor, build_profile, detect_drift, LabelStore

- :func:`monitor`: one pass over a model's log: drift, contract health, performance
  (realised once labels arrive, estimated before), SLOs, alerts and retraining;
- :func:`build_profile` and :func:`detect_drift`: the reference profile and Evidently's
  default drift tests, on any frames;
- :class:`LabelStore`: delayed ground truth; :func:`read_window`: the log as a typed frame;
- :func:`replay`: past traffic through a served model into the log;
- the statistics themselves in :mod:`shipyard.monitoring.stats` (pure NumPy, checked
  against SciPy).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard._utils.lazy import lazy_attributes

__all__ = [
    "AlertBook",
    "AlertRule",
    "DriftResult",
    "DriftRule",
    "DriftSettings",
    "LabelStore",
    "MonitorResult",
    "MonitorSettings",
    "ReferenceProfile",
    "build_profile",
    "detect_drift",
    "estimated",
    "monitor",
    "profile_version",
    "read_window",
    "realised",
    "replay",
]

_LAZY = {
    "AlertBook": "shipyard.monitoring.alerts",
    "AlertRule": "shipyard.monitoring.alerts",
    "DriftResult": "shipyard.monitoring.drift",
    "DriftRule": "shipyard.monitoring.drift",
    "DriftSettings": "shipyard.monitoring.drift",
    "LabelStore": "shipyard.monitoring.labels",
    "MonitorResult": "shipyard.monitoring._monitor",
    "MonitorSettings": "shipyard.monitoring.settings",
    "ReferenceProfile": "shipyard.monitoring.profile",
    "build_profile": "shipyard.monitoring.profile",
    "detect_drift": "shipyard.monitoring.drift",
    "estimated": "shipyard.monitoring.performance",
    "monitor": "shipyard.monitoring._monitor",
    "profile_version": "shipyard.monitoring.reference",
    "read_window": "shipyard.monitoring.window",
    "realised": "shipyard.monitoring.performance",
    "replay": "shipyard.monitoring._replay",
}

if TYPE_CHECKING:
    from shipyard.monitoring._monitor import MonitorResult, monitor
    from shipyard.monitoring._replay import replay
    from shipyard.monitoring.alerts import AlertBook, AlertRule
    from shipyard.monitoring.drift import DriftResult, DriftRule, DriftSettings, detect_drift
    from shipyard.monitoring.labels import LabelStore
    from shipyard.monitoring.performance import estimated, realised
    from shipyard.monitoring.profile import ReferenceProfile, build_profile
    from shipyard.monitoring.reference import profile_version
    from shipyard.monitoring.settings import MonitorSettings
    from shipyard.monitoring.window import read_window

__getattr__ = lazy_attributes(__name__, _LAZY, globals())
