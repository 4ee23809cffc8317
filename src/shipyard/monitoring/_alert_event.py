"""What happened to one alert rule at one evaluation: shared by the episodes and notifiers."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

Status = Literal["fired", "firing", "resolved", "unknown"]
DELIVERED = frozenset({"fired", "resolved"})


@dataclass(frozen=True)
class AlertEvent:
    """What happened to one rule at one evaluation.

    ``status`` is ``"fired"`` (a new episode starts), ``"firing"`` (it goes on; not delivered
    again), ``"resolved"`` (the episode ends) or ``"unknown"`` (the rule's signal has no value;
    a firing episode stays open). ``since`` is when the episode fired.
    """

    rule: str
    severity: str
    status: Status
    value: float | bool | None
    at: datetime
    episode: str
    message: str
    retrain: bool = False
    when: str = ""
    since: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """The event as plain JSON values (times in ISO 8601, NaN as null)."""
        return {
            "alert": self.rule,
            "severity": self.severity,
            "status": self.status,
            "when": self.when,
            "value": _json_value(self.value),
            "at": self.at.isoformat(),
            "since": self.since.isoformat() if self.since else None,
            "episode": self.episode,
            "message": self.message,
            "retrain": self.retrain,
        }


def _json_value(value: float | bool | None) -> float | bool | None:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
