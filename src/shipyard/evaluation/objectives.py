"""Business objectives as code: what a model must achieve before it may serve.

Written in Python, or in ``shipyard.toml``::

    [objectives]
    task = "binary"
    latency_ms_p99 = 50

    [objectives.values]          # business value of each decision; costs are negative
    true_positive = 100
    false_positive = -15
    false_negative = "-(amount + 15)"   # an expression over the evaluation data's columns

    [[objectives.thresholds]]
    metric = "recall"
    lower = 0.6

    [[objectives.thresholds]]
    metric = "value_per_1000"
    change = "relative"
    limit = -0.02

    [[objectives.slices]]
    name = "large"
    where = "amount >= 1000"

    [objectives.fairness]
    sensitive = ["country"]
    [[objectives.fairness.limits]]
    metric = "selection_rate"
    max_difference = 0.1

The exact pass rule of each kind of check is in :class:`Threshold`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from shipyard.config import Settings
from shipyard.errors import EvaluationError, ObjectivesError
from shipyard.evaluation import _schema as schema
from shipyard.evaluation._parts import (
    CHANGES,
    DIRECTIONS,
    FAIRNESS_METRICS,
    LOWER_IS_BETTER,
    METRICS,
    OUTCOMES,
    TASKS,
    DecisionValues,
    Fairness,
    FairnessLimit,
    Slice,
    Threshold,
)

if TYPE_CHECKING:
    from shipyard.core.project import Project

__all__ = [
    "CHANGES",
    "DIRECTIONS",
    "FAIRNESS_METRICS",
    "LOWER_IS_BETTER",
    "METRICS",
    "OUTCOMES",
    "TASKS",
    "DecisionValues",
    "Fairness",
    "FairnessLimit",
    "Objectives",
    "Slice",
    "Threshold",
]


@dataclass(frozen=True)
class Objectives:
    """What a model must achieve before it may serve: the ``[objectives]`` table.

    Args:
        task: "binary", "multiclass" or "regression" (only binary is evaluated so far).
        values: the business value of each decision, for ``value_per_1000``.
        thresholds: bounds on metrics, each overall or on one of ``slices``.
        slices: named subsets of the evaluation data.
        fairness: sensitive features and the limits on the gaps between their groups.
        latency_ms_p99: the budget for one single-row prediction, in milliseconds.
    """

    task: str = "binary"
    values: DecisionValues | None = None
    thresholds: Sequence[Threshold] = ()
    slices: Sequence[Slice] = ()
    fairness: Fairness | None = None
    latency_ms_p99: float | None = None

    def __post_init__(self) -> None:
        schema.choice(self.task, TASKS, "task")
        object.__setattr__(
            self, "thresholds", schema.items(self.thresholds, Threshold, "thresholds")
        )
        object.__setattr__(self, "slices", schema.items(self.slices, Slice, "slices"))
        for name, kind in (("values", DecisionValues), ("fairness", Fairness)):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), kind):
                raise ObjectivesError(
                    f"{name} must be {kind.__name__}(...), got {getattr(self, name)!r}."
                )
        if self.latency_ms_p99 is not None:
            budget = schema.number(self.latency_ms_p99, "latency_ms_p99", "a positive number")
            if budget <= 0:
                raise ObjectivesError(f"latency_ms_p99 must be above 0 ms, got {budget:g}.")
            object.__setattr__(self, "latency_ms_p99", budget)
        self._check_references()

    def _check_references(self) -> None:
        names = [s.name for s in self.slices]
        if twice := sorted({n for n in names if names.count(n) > 1}):
            raise ObjectivesError(f"slice names must be unique; declared twice: {twice}.")
        for number, threshold in enumerate(self.thresholds, start=1):
            which = f"threshold #{number} ({threshold.metric})"
            if threshold.slice is not None and threshold.slice not in names:
                raise ObjectivesError(
                    f"{which} is on slice {threshold.slice!r}, which is not declared. Declared "
                    f"slices: {', '.join(names) or 'none'}. Declare it in [[objectives.slices]]."
                )
            if threshold.slice is not None and threshold.metric.startswith("latency_"):
                raise ObjectivesError(
                    f"{which}: latency is measured on single-row predictions, not per slice. "
                    "Remove its slice."
                )
            if threshold.metric == "value_per_1000" and self.values is None:
                raise ObjectivesError(
                    f"{which}: value_per_1000 prices decisions with [objectives.values], which "
                    "is not given. Add true_positive, false_positive, false_negative and "
                    "true_negative values."
                )

    def values_for(self, frame: pl.DataFrame) -> dict[str, np.ndarray]:
        """The value of each outcome for every row of ``frame`` (see DecisionValues).

        Raises:
            EvaluationError: no ``values`` are declared, or they cannot be computed.
        """
        if self.values is None:
            raise EvaluationError(
                "the objectives declare no decision values, so business value cannot be "
                "computed. Add [objectives.values] with true_positive, false_positive, "
                "false_negative and true_negative (numbers or expressions)."
            )
        return self.values.values_for(frame)

    def slice_masks(self, frame: pl.DataFrame) -> dict[str, np.ndarray]:
        """The rows of every slice of ``frame``, by slice name (see :meth:`Slice.masks`)."""
        masks: dict[str, np.ndarray] = {}
        for part in self.slices:
            masks.update(part.masks(frame))
        return masks

    @classmethod
    def from_table(
        cls, raw: Mapping[str, Any], source: str = "shipyard.toml", *, text: str | None = None
    ) -> Objectives:
        """Read the ``[objectives]`` table as ``tomllib`` returns it.

        Args:
            raw: the table's content.
            source: the file it came from, for messages.
            text: the file's text, to give line numbers in messages.

        Raises:
            ObjectivesError: naming the place in the file, what is wrong and the fix.
        """

        def at(header: str, index: int | None = None) -> str:
            return schema.locate(source, text, header, index)

        top = schema.table(raw, cls, at("objectives"))
        arrays = {"thresholds": Threshold, "slices": Slice}
        for key, kind in arrays.items():
            if key in top:
                entries = schema.array(top[key], f"{at('objectives')} {key}")
                header = f"objectives.{key}"
                top[key] = [schema.build(kind, e, at(header, i)) for i, e in enumerate(entries)]
        if "values" in top:
            top["values"] = schema.build(DecisionValues, top["values"], at("objectives.values"))
        if "fairness" in top:
            where = at("objectives.fairness")
            fairness = schema.table(top["fairness"], Fairness, where)
            limits = schema.array(fairness.get("limits", []), f"{where} limits")
            fairness["limits"] = [
                schema.build(FairnessLimit, limit, at("objectives.fairness.limits", i))
                for i, limit in enumerate(limits)
            ]
            top["fairness"] = schema.build(Fairness, fairness, where)
        return schema.build(cls, top, at("objectives"))

    @classmethod
    def from_project(cls, project: Project | Settings) -> Objectives:
        """The objectives in a project's ``shipyard.toml`` (a Project or its Settings)."""
        settings = project if isinstance(project, Settings) else project.settings
        source = settings.source or Path("shipyard.toml")
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError:
            text = None
        return cls.from_table(settings.objectives, str(source), text=text)

    def to_dict(self) -> dict[str, Any]:
        """The ``[objectives]`` table; :meth:`from_table` reads it back to an equal value."""
        result: dict[str, Any] = schema.plain(self)
        return result
