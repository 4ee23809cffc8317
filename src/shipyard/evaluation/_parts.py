"""The parts of :class:`~shipyard.evaluation.objectives.Objectives`: decision values,
thresholds, slices and fairness limits, each checked when it is built."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from shipyard.errors import EvaluationError, ObjectivesError
from shipyard.evaluation import _schema as schema
from shipyard.evaluation._expr import evaluate, parse_predicate, parse_value

TASKS = ("binary", "multiclass", "regression")
METRICS = (
    "roc_auc",
    "average_precision",
    "log_loss",
    "brier",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "selection_rate",
    "tpr",
    "fpr",
    "tnr",
    "value_per_1000",
    "latency_ms_p50",
    "latency_ms_p99",
)
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "fpr", "latency_ms_p50", "latency_ms_p99"})
FAIRNESS_METRICS = ("selection_rate", "tpr", "fpr", "precision", "accuracy")
OUTCOMES = ("true_positive", "false_positive", "false_negative", "true_negative")
DIRECTIONS = ("higher", "lower")
CHANGES = ("absolute", "relative")


@dataclass(frozen=True)
class DecisionValues:
    """The business value of each decision of a binary classifier (costs are negative).

    Each is a number, or an expression over the evaluation data's columns such as
    ``"-(amount + 15)"`` (column names, numbers, ``+ - * /`` and parentheses).
    """

    true_positive: float | str = 0.0
    false_positive: float | str = 0.0
    false_negative: float | str = 0.0
    true_negative: float | str = 0.0

    def __post_init__(self) -> None:
        for outcome in OUTCOMES:
            value = getattr(self, outcome)
            if isinstance(value, str):
                schema.within(outcome, parse_value, value)
            else:
                number = schema.number(
                    value, outcome, 'a number or an expression like "-(amount + 15)"'
                )
                object.__setattr__(self, outcome, number)

    def values_for(self, frame: pl.DataFrame) -> dict[str, np.ndarray]:
        """The value of each outcome for every row of ``frame``, as float64 arrays.

        Raises:
            EvaluationError: an expression reads a missing column (the message lists the
                columns present), or gives null or non-finite values.
        """
        result: dict[str, np.ndarray] = {}
        for outcome in OUTCOMES:
            spec = getattr(self, outcome)
            if not isinstance(spec, str):
                result[outcome] = np.full(frame.height, spec, dtype=np.float64)
                continue
            label = f"values.{outcome}"
            series = evaluate(parse_value(spec), frame, label).cast(pl.Float64, strict=False)
            array = series.to_numpy()
            bad = int(np.count_nonzero(~np.isfinite(array)))
            if bad:
                raise EvaluationError(
                    f"{label} = {spec!r} is null, NaN or infinite in {bad} of {frame.height} "
                    "rows of the evaluation data. Fill the columns it reads, or change it."
                )
            result[outcome] = array
        return result


@dataclass(frozen=True)
class Threshold:
    """A bound on one metric of the candidate model, overall or on one slice.

    A *value* threshold (``lower`` and/or ``upper``) passes when
    ``lower <= candidate <= upper``; both ends are inclusive. ``lower=0.6`` passes
    0.6 and fails 0.59.

    A *change* threshold compares the candidate with the baseline (production)
    model. ``change="absolute"`` measures ``candidate - baseline``;
    ``change="relative"`` measures ``(candidate - baseline) / abs(baseline)``,
    which is ``candidate / baseline - 1`` for a positive baseline and keeps
    "better" positive for a negative one (a cost going from -100 to -90 is +0.1).
    With ``direction="higher"`` (higher is better) it passes when
    ``change >= limit``; with ``"lower"`` when ``change <= limit``. ``direction``
    defaults to the metric's own (lower for log_loss, brier, fpr, latency_*).
    ``limit`` (None means 0: no worse than the baseline) is the tolerance:

    * recall, absolute, limit -0.01: baseline 0.80 → candidate 0.79 passes, 0.789 fails.
    * log_loss, relative, limit 0.05: baseline 0.20 → candidate 0.21 passes, 0.2101 fails.
    * value_per_1000, relative, limit -0.02: baseline -500 → candidate -510 passes.

    A relative change against a baseline of 0 is undefined and fails. Values
    equal within float rounding (relative 1e-9) count as equal, so they pass.
    """

    metric: str
    lower: float | None = None
    upper: float | None = None
    change: str | None = None
    direction: str | None = None
    limit: float | None = None
    slice: str | None = None

    def __post_init__(self) -> None:
        schema.choice(self.metric, METRICS, "metric")
        for name in ("lower", "upper", "limit"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, schema.number(getattr(self, name), name, "a number"))
        if self.change is not None:
            self._check_change()
        elif self.lower is None and self.upper is None:
            raise ObjectivesError(
                f"the threshold on {self.metric} bounds nothing. Give lower and/or upper "
                '(a value bound), or change = "absolute" or "relative" (a bound on the '
                "change against the baseline)."
            )
        elif self.direction is not None or self.limit is not None:
            raise ObjectivesError(
                f"the threshold on {self.metric} has lower/upper, so direction and limit do "
                'not apply; they belong to a change threshold (change = "absolute" or '
                '"relative"). Remove them, or make a second threshold for the change.'
            )
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise ObjectivesError(
                f"the threshold on {self.metric} has lower = {self.lower:g} above upper = "
                f"{self.upper:g}, so nothing passes. Swap them or fix one."
            )
        if self.slice is not None and not isinstance(self.slice, str):
            raise ObjectivesError(f"slice must be a slice's name, got {self.slice!r}.")

    def _check_change(self) -> None:
        schema.choice(self.change, CHANGES, "change")
        if self.direction is not None:
            schema.choice(self.direction, DIRECTIONS, "direction")
        if self.lower is not None or self.upper is not None:
            raise ObjectivesError(
                f"the threshold on {self.metric} has both a value bound (lower/upper) and "
                f"change = {self.change!r}. Split it in two thresholds: one with lower/upper, "
                "one with change and limit."
            )

    @property
    def kind(self) -> str:
        """``"change"`` for a bound on the change against the baseline, else ``"value"``."""
        return "value" if self.change is None else "change"

    @property
    def tolerance(self) -> float:
        """The limit of a change threshold (0 when not given)."""
        return 0.0 if self.limit is None else self.limit

    @property
    def higher_is_better(self) -> bool:
        """Whether a higher metric is better: ``direction``, or the metric's default."""
        if self.direction is not None:
            return self.direction == "higher"
        return self.metric not in LOWER_IS_BETTER


@dataclass(frozen=True)
class Slice:
    """A subset of the evaluation data: rows matching ``where``, or one per value of ``by``.

    ``where`` compares columns with literals (``"amount >= 1000 and channel == 'web'"``).
    A ``by`` slice named ``by_country`` makes one slice per country, named
    ``"by_country=FR"``, ``"by_country=US"``... (``=null`` for missing values).
    """

    name: str
    where: str | None = None
    by: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not re.fullmatch(r"[^=\s]+", self.name):
            raise ObjectivesError(
                f"a slice's name must be a word without spaces or '=', got {self.name!r}."
            )
        if (self.where is None) == (self.by is None):
            raise ObjectivesError(
                f"slice {self.name!r} needs exactly one of where (a condition, e.g. "
                '"amount >= 1000") or by (a column: one slice per value).'
            )
        if self.where is not None:
            schema.within(f"slice {self.name!r} where", parse_predicate, self.where)
        elif not isinstance(self.by, str) or not self.by:
            raise ObjectivesError(
                f"slice {self.name!r}: by must be a column name, got {self.by!r}."
            )

    def masks(self, frame: pl.DataFrame) -> dict[str, np.ndarray]:
        """The rows of each slice: boolean arrays of ``frame``'s length, by slice name.

        Raises:
            EvaluationError: a column the slice reads is missing from ``frame``.
        """
        if self.where is not None:
            series = evaluate(parse_predicate(self.where), frame, f"slice {self.name!r}")
            if series.dtype != pl.Boolean:
                raise EvaluationError(
                    f"slice {self.name!r}: where = {self.where!r} gives {series.dtype} values, "
                    'not true/false. Compare the column with a value, e.g. "amount >= 1000".'
                )
            return {self.name: series.fill_null(False).to_numpy()}
        column = str(self.by)
        if column not in frame.columns:
            raise EvaluationError(
                f"slice {self.name!r} is by column {column!r}, which the evaluation data does "
                f"not have. Columns present: {', '.join(frame.columns)}."
            )
        values = frame.get_column(column)
        masks: dict[str, np.ndarray] = {}
        for value in values.unique().sort(nulls_last=True).to_list():
            mask = values.is_null() if value is None else (values == value).fill_null(False)
            masks[f"{self.name}={'null' if value is None else value}"] = mask.to_numpy()
        return masks


@dataclass(frozen=True)
class FairnessLimit:
    """A bound on how much a metric may differ between groups of a sensitive feature.

    Passes when the largest minus the smallest group value is ``<= max_difference``
    and the smallest divided by the largest is ``>= min_ratio`` (each if given).
    """

    metric: str
    max_difference: float | None = None
    min_ratio: float | None = None

    def __post_init__(self) -> None:
        schema.choice(self.metric, FAIRNESS_METRICS, "fairness metric")
        if self.max_difference is None and self.min_ratio is None:
            raise ObjectivesError(
                f"the fairness limit on {self.metric} bounds nothing. Give max_difference "
                "(e.g. 0.1) and/or min_ratio (e.g. 0.8)."
            )
        bounds = (("max_difference", math.inf, "a number >= 0"), ("min_ratio", 1.0, "from 0 to 1"))
        for name, high, expected in bounds:
            value = getattr(self, name)
            if value is not None:
                number = schema.number(value, name, expected)
                if not 0 <= number <= high:
                    raise ObjectivesError(f"{name} must be {expected}, got {number:g}.")
                object.__setattr__(self, name, number)


@dataclass(frozen=True)
class Fairness:
    """The sensitive features to compare groups of, and the limits on their gaps."""

    sensitive: Sequence[str] = ()
    limits: Sequence[FairnessLimit] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "sensitive", schema.strings(self.sensitive, "sensitive"))
        object.__setattr__(self, "limits", schema.items(self.limits, FairnessLimit, "limits"))
        if self.limits and not self.sensitive:
            raise ObjectivesError(
                "fairness limits need sensitive features to compare groups of. Add "
                'sensitive = ["column", ...].'
            )
