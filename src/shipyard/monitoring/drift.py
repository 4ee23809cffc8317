"""Drift of a window of traffic against a reference profile, column by column.

:func:`detect_drift` picks each column's test as Evidently 0.7 does by default (its legacy
stattests registry, ``_get_default_stattest``), so users comparing with Evidently see the
same verdicts. ``n`` is the number of reference values of the column (nulls, NaN and inf
dropped first, as Evidently does) and ``distinct`` the number of distinct values in the
reference and the window together:

==================  =======================================  ==================================
column              ``n <= 1000``                            ``n > 1000``
==================  =======================================  ==================================
numeric             ``distinct > 5``: KS, drift if p <= 0.05  ``distinct > 5``: normed
                    ``distinct <= 5``: chi-squared (Z test    Wasserstein >= 0.1;
                    if ``distinct <= 2``), drift if p < 0.05  else Jensen-Shannon >= 0.1
categorical         chi-squared (Z if ``distinct <= 2``),    Jensen-Shannon >= 0.1
                    drift if p < 0.05
==================  =======================================  ==================================

The comparisons at the threshold are Evidently's: KS ``p <= t``; chi-squared and Z ``p < t``;
Wasserstein, Jensen-Shannon and PSI ``value >= t``. Every method and threshold can be set per
column (:class:`DriftRule`). PSI (reference deciles as bins, as :func:`stats.psi`; categories
for categorical columns) is reported next to the chosen test unless switched off.

With more than 1000 reference values the numeric tests use the profile's quantile sketch:
Wasserstein is the mean absolute difference of the two quantile functions' means over the
sketch's 2000 slices (exact where the two do not cross inside a slice; within about 0.002
of the exact value on realistic data, heavy tails included), and a KS asked for by a rule
compares the window with the sketch's CDF (statistic within 1/2000, asymptotic p-value).
Categories and numeric columns with few values use exact counts. A chi-squared, Z or
Jensen-Shannon test asked for on a numeric column with many values uses the PSI bins as
categories.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from shipyard.errors import MonitoringError
from shipyard.monitoring import stats
from shipyard.monitoring._drift_tests import (
    _CURRENT_CATEGORIES_MAX,
    _counts,
    _Current,
    _distinct,
    _is_drift,
    _numeric_test,
    _psi_from_counts,
    _z_test,
    default_method,
)
from shipyard.monitoring.profile import (
    ColumnProfile,
    ReferenceProfile,
    clean_numeric,
    sorted_frequencies,
    sorted_values,
)

__all__ = [
    "DEFAULT_THRESHOLDS",
    "METHODS",
    "ColumnDrift",
    "DriftResult",
    "DriftRule",
    "DriftSettings",
    "detect_drift",
]

_F64 = npt.NDArray[np.float64]
#: Threshold of each method when no rule sets one (Evidently's defaults).
DEFAULT_THRESHOLDS: dict[str, float] = {
    "ks": 0.05,
    "chisquare": 0.05,
    "z": 0.05,
    "wasserstein": 0.1,
    "jensenshannon": 0.1,
    "psi": 0.1,
}
METHODS = tuple(DEFAULT_THRESHOLDS)
_NUMERIC_ONLY = ("ks", "wasserstein")


@dataclass(frozen=True)
class DriftRule:
    """How to test one column: ``method`` (None = Evidently's default) and ``threshold``."""

    method: str | None = None
    threshold: float | None = None

    def __post_init__(self) -> None:
        if self.method is not None and self.method not in METHODS:
            raise MonitoringError(
                f"drift method must be one of {', '.join(METHODS)} (or unset for the "
                f"default), got {self.method!r}"
            )
        if self.threshold is not None and not (
            math.isfinite(self.threshold) and self.threshold >= 0
        ):
            raise MonitoringError(
                f"drift threshold must be a finite number >= 0, got {self.threshold!r}"
            )


@dataclass(frozen=True)
class DriftSettings:
    """Dataset-level drift settings.

    Attributes:
        share: The dataset drifts when the share of drifted columns (or the weighted share,
            with ``weights``) is at least this (Evidently: 0.5).
        rules: Per-column method and threshold.
        weights: Important features and their weights; when given, the dataset's verdict
            uses the weighted share of drifted columns among the weighted tested ones.
        psi: Also report PSI next to each column's test.
    """

    share: float = 0.5
    rules: Mapping[str, DriftRule] = field(default_factory=dict)
    weights: Mapping[str, float] = field(default_factory=dict)
    psi: bool = True

    def __post_init__(self) -> None:
        if not (math.isfinite(self.share) and 0.0 < self.share <= 1.0):
            raise MonitoringError(f"drift share must be in (0, 1], got {self.share!r}")
        for name, weight in self.weights.items():
            if not (math.isfinite(weight) and weight >= 0):
                raise MonitoringError(
                    f"weight of column {name!r} must be a finite number >= 0, got {weight!r}"
                )


@dataclass(frozen=True)
class ColumnDrift:
    """One column's verdict.

    ``statistic`` is what the method computes (KS D, chi-squared, the Z test's share
    difference current - reference of the first category, or the distance); ``p_value`` is
    None for distances. A column that was not tested (``tested`` False) says why in ``note``
    and is left out of the dataset's share.
    """

    column: str
    kind: str
    method: str | None
    statistic: float | None
    p_value: float | None
    threshold: float | None
    drifted: bool
    psi: float | None
    reference_rows: int
    current_rows: int
    current_nulls: int
    new_categories: tuple[str, ...] = ()
    note: str = ""
    tested: bool = True


@dataclass(frozen=True)
class DriftResult:
    """Every column's verdict and the dataset's.

    Attributes:
        columns: Verdicts by column, in the profile's order.
        share: Drifted columns / tested columns (0.0 when none was tested).
        drifted: The dataset's verdict (see :class:`DriftSettings`).
        weighted_share: Weighted share when weights were given (None otherwise, or when no
            weighted column was tested).
    """

    columns: dict[str, ColumnDrift]
    share: float
    drifted: bool
    weighted_share: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data; a non-finite statistic (chi-squared, new category) is None."""
        columns = {}
        for name, column in self.columns.items():
            row = asdict(column)
            row["new_categories"] = list(column.new_categories)
            for key in ("statistic", "p_value", "psi"):
                if row[key] is not None and not math.isfinite(row[key]):
                    row[key] = None
            columns[name] = row
        return {
            "share": self.share,
            "drifted": self.drifted,
            "weighted_share": self.weighted_share,
            "columns": columns,
        }


# --------------------------------------------------------------------------- the window


def _note_for_dtype(column: ColumnProfile, dtype: pl.DataType) -> str:
    if column.kind == "numeric" and not dtype.is_numeric():
        return f"expected a numeric column (as in the reference), got {dtype}; not tested"
    categories = (pl.String, pl.Categorical, pl.Enum, pl.Boolean)
    if column.kind == "categorical" and not (dtype.is_numeric() or isinstance(dtype, categories)):
        return f"expected categories (as in the reference), got {dtype}; not tested"
    return ""


def _read_window(
    profile: ReferenceProfile, current: pl.DataFrame
) -> tuple[dict[str, _Current], dict[str, str]]:
    """Clean and summarise the window's columns in one pass; notes for the untestable ones."""
    schema = current.schema
    notes: dict[str, str] = {}
    numeric: list[str] = []
    cats: list[str] = []
    for name, column in profile.columns.items():
        if name not in schema:
            notes[name] = "missing from the current data; not tested"
        elif note := _note_for_dtype(column, schema[name]):
            notes[name] = note
        else:
            (numeric if column.kind == "numeric" else cats).append(name)
    clean = current.lazy().select(
        [clean_numeric(n) for n in numeric] + [pl.col(n).cast(pl.String) for n in cats]
    )
    counted = [clean.select(pl.col(n)).drop_nulls().group_by(n).len() for n in cats]
    frame, *counts = pl.collect_all([clean, *counted])
    window: dict[str, _Current] = {}
    for n in numeric:
        values = sorted_values(frame[n])
        frequencies = _few_values(values) if profile.columns[n].frequencies is not None else None
        window[n] = _Current(rows=current.height, values=values, frequencies=frequencies)
    for n, table in zip(cats, counts, strict=True):
        freq = dict(zip(table[n].to_list(), table["len"].to_list(), strict=True))
        window[n] = _Current(rows=current.height, frequencies=freq)
    return window, notes


def _few_values(values: _F64) -> dict[str, int] | None:
    """Counts per value of a sorted numeric window, unless it has too many distinct values."""
    distinct = int(np.count_nonzero(np.diff(values))) + 1 if values.size else 0
    return sorted_frequencies(values) if distinct <= _CURRENT_CATEGORIES_MAX else None


# --------------------------------------------------------------------------- verdicts


def _untested(column: ColumnProfile, rows: int, nulls: int, note: str) -> ColumnDrift:
    return ColumnDrift(
        column=column.name,
        kind=column.kind,
        method=None,
        statistic=None,
        p_value=None,
        threshold=None,
        drifted=False,
        psi=None,
        reference_rows=column.count,
        current_rows=rows - nulls,
        current_nulls=nulls,
        note=note,
        tested=False,
    )


def _test_column(
    column: ColumnProfile, cur: _Current, rule: DriftRule, with_psi: bool
) -> ColumnDrift:
    """Run the column's test (and PSI) on a window that has values on both sides."""
    count = cur.values.size if cur.values is not None else sum((cur.frequencies or {}).values())
    method = rule.method or default_method(column, _distinct(column, cur))
    threshold = DEFAULT_THRESHOLDS[method] if rule.threshold is None else rule.threshold
    p_value: float | None = None
    keys: list[str] | None = None
    if method in _NUMERIC_ONLY:
        assert cur.values is not None
        statistic, p_value = _numeric_test(method, column, cur.values)
    else:
        keys, ref, counts = _counts(column, cur)
        if method == "chisquare":
            statistic, p_value = stats.chi_squared(ref, counts)
        elif method == "z":
            statistic, p_value = _z_test(keys or [], ref, counts, column.kind == "numeric")
        elif method == "jensenshannon":
            statistic = stats.jensen_shannon(ref, counts)
        else:
            statistic = _psi_from_counts(ref, counts)
    psi_value = statistic if method == "psi" else None
    if with_psi and psi_value is None:
        psi_value = _psi_from_counts(*_counts(column, cur)[1:])
    reference_keys = column.frequencies or {}
    new = tuple(k for k in (keys or []) if k not in reference_keys)
    return ColumnDrift(
        column=column.name,
        kind=column.kind,
        method=method,
        statistic=statistic,
        p_value=p_value,
        threshold=threshold,
        drifted=_is_drift(method, statistic if p_value is None else p_value, threshold),
        psi=psi_value,
        reference_rows=column.count,
        current_rows=count,
        current_nulls=cur.rows - count,
        new_categories=new if keys is not None else (),
    )


def _check_settings(profile: ReferenceProfile, settings: DriftSettings) -> None:
    known = list(profile.columns)
    for what, names in (("rule", settings.rules), ("weight", settings.weights)):
        for name in names:
            if name not in profile.columns:
                raise MonitoringError(
                    f"drift {what} given for column {name!r}, which the reference profile "
                    f"does not have (profiled columns: {known}); fix the name or rebuild "
                    "the profile with that column"
                )
    for name, rule in settings.rules.items():
        kind = profile.columns[name].kind
        if rule.method in _NUMERIC_ONLY and kind != "numeric":
            raise MonitoringError(
                f"drift method {rule.method!r} needs a numeric column, but {name!r} is "
                f"{kind}: use chisquare, z, jensenshannon or psi"
            )


def _dataset_verdict(
    columns: Mapping[str, ColumnDrift], settings: DriftSettings
) -> tuple[float, bool, float | None]:
    tested = [c for c in columns.values() if c.tested]
    share = sum(c.drifted for c in tested) / len(tested) if tested else 0.0
    if not settings.weights:
        return share, bool(tested) and share >= settings.share, None
    total = sum(settings.weights.get(c.column, 0.0) for c in tested)
    if total <= 0:
        return share, False, None
    drifted = sum(settings.weights.get(c.column, 0.0) for c in tested if c.drifted)
    weighted = drifted / total
    return share, weighted >= settings.share, weighted


def detect_drift(
    reference: ReferenceProfile,
    current: pl.DataFrame,
    settings: DriftSettings | None = None,
) -> DriftResult:
    """Compare a window of traffic with the reference profile, column by column.

    Args:
        reference: The profile built from the training data (:func:`build_profile`).
        current: The window; columns it lacks are reported as not tested, extra columns
            are ignored.
        settings: Share, per-column rules and weights (default: Evidently's defaults).

    Returns:
        Every profiled column's verdict and the dataset's.

    Raises:
        MonitoringError: A rule or weight names a column the profile does not have, or asks
            for a numeric-only method on a categorical column.
    """
    settings = settings or DriftSettings()
    _check_settings(reference, settings)
    window, notes = _read_window(reference, current)
    columns: dict[str, ColumnDrift] = {}
    for name, column in reference.columns.items():
        cur = window.get(name)
        if cur is None:
            columns[name] = _untested(column, current.height, current.height, notes[name])
            continue
        size = cur.values.size if cur.values is not None else sum((cur.frequencies or {}).values())
        if column.count == 0 or size == 0:
            note = "no values in the reference" if column.count == 0 else "no values in the window"
            columns[name] = _untested(column, cur.rows, cur.rows - size, note + "; not tested")
            continue
        rule = settings.rules.get(name, DriftRule())
        columns[name] = _test_column(column, cur, rule, settings.psi)
    share, drifted, weighted = _dataset_verdict(columns, settings)
    return DriftResult(columns=columns, share=share, drifted=drifted, weighted_share=weighted)
