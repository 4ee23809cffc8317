"""What a running step can ask about itself: ``shipyard.get_context()``."""

from __future__ import annotations

import logging
import math
import time
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from shipyard.errors import ShipyardError

_current: ContextVar[StepContext | None] = ContextVar("shipyard_step_context", default=None)


class StepContext:
    """The run and step a step is running in, and where it logs metrics and params.

    ``project_root`` is the project folder: resolve the project's relative paths
    against it, since a run may be started from any working directory.

    Metrics and params are buffered and written with the step's result in one
    transaction, so logging thousands of them costs microseconds each.
    """

    def __init__(
        self, *, run_id: str, step_name: str, step_run_id: str, seed: int, project_root: Path
    ) -> None:
        self.run_id = run_id
        self.project_root = project_root
        self.step_name = step_name
        self.step_run_id = step_run_id
        self.seed = seed
        self.logger = logging.getLogger(f"shipyard.step.{step_name}")
        self.metrics: list[dict[str, Any]] = []
        self.params: dict[str, Any] = {}
        self.saved: list[dict[str, Any]] = []
        self._saver: Any = None
        self._reserved: set[str] = set()

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        """Record a metric value, optionally at a training step (epoch, iteration)."""
        if not isinstance(name, str) or not name:
            raise ShipyardError(f"A metric name must be a non-empty string, got {name!r}.")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ShipyardError(
                f"Metric {name!r} must be a number, got {value!r} ({type(value).__name__})."
            ) from None
        if math.isnan(number):
            self.logger.warning("metric %s is NaN", name)
        self.metrics.append(
            {
                "run_id": self.run_id,
                "step_name": self.step_name,
                "key": name,
                "value": number,
                "step": step,
                "logged_at": time.time(),
            }
        )

    def save(self, name: str, value: Any, *, materializer: str | None = None) -> str:
        """Store ``value`` as an extra artifact of this step run, right now.

        Unlike a return value, it is kept even if the step then fails: a validation
        step saves its report and quarantined rows, then raises. Returns the artifact id.
        """
        if self._saver is None:
            raise ShipyardError("save() needs a running step with an artifact store.")
        taken = {record["output_name"] for record in self.saved} | self._reserved
        if not isinstance(name, str) or not name or name in taken:
            raise ShipyardError(
                f"An artifact name must be a non-empty string not used yet by this step (its "
                f"outputs are {sorted(self._reserved)}), got {name!r}."
            )
        record: dict[str, Any] = self._saver(name, value, materializer)
        self.saved.append(record)
        return str(record["id"])

    def log_param(self, name: str, value: Any) -> None:
        """Record a parameter the step chose (JSON-able; later values replace earlier ones)."""
        if not isinstance(name, str) or not name:
            raise ShipyardError(f"A param name must be a non-empty string, got {name!r}.")
        self.params[name] = value


def get_context() -> StepContext:
    """The context of the step that is running now.

    Raises:
        ShipyardError: when called outside a running step.
    """
    context = _current.get()
    if context is None:
        raise ShipyardError(
            "get_context() was called outside a running step. Call it inside a function "
            "decorated with @step while a pipeline runs it."
        )
    return context


def _enter(context: StepContext) -> Any:
    return _current.set(context)


def _leave(token: Any) -> None:
    _current.reset(token)
