"""The per-method drift computations of :func:`shipyard.monitoring.drift.detect_drift`.

KS, chi-squared, Z, Wasserstein, Jensen-Shannon and PSI on one column's reference and window
(exact counts or the profile's quantile sketch), and Evidently's choice of the default method.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from shipyard.monitoring import stats
from shipyard.monitoring.profile import (
    QUANTILE_LEVELS,
    SAMPLE_MAX_ROWS,
    ColumnProfile,
    bin_counts,
    slice_means,
)

_F64 = npt.NDArray[np.float64]
#: Current values a numeric column may have and still be counted category by category.
_CURRENT_CATEGORIES_MAX = 1000


@dataclass
class _Current:
    """One column of the window, cleaned: sorted numeric values, category counts or both."""

    rows: int
    values: _F64 | None = None
    frequencies: dict[str, int] | None = None


def _current_frequencies(column: ColumnProfile, cur: _Current) -> dict[str, int] | None:
    """Category counts of the window (numeric columns: only if few values on both sides)."""
    return cur.frequencies if column.frequencies is not None else None


def _aligned(ref: Mapping[str, int], cur: Mapping[str, int]) -> tuple[list[str], _F64, _F64]:
    keys = list(ref) + sorted(k for k in cur if k not in ref)
    return (
        keys,
        np.array([ref.get(k, 0) for k in keys], dtype=np.float64),
        np.array([cur.get(k, 0) for k in keys], dtype=np.float64),
    )


def _psi_from_counts(ref: _F64, cur: _F64) -> float:
    ref_share = ref / ref.sum()
    cur_share = cur / cur.sum()
    ref_share = np.where(ref_share == 0, stats.PSI_EPSILON, ref_share)
    cur_share = np.where(cur_share == 0, stats.PSI_EPSILON, cur_share)
    return float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))


def _z_test(keys: list[str], ref: _F64, cur: _F64, numeric: bool) -> tuple[float, float]:
    """Evidently's Z test: the first category (sorted by value) against the others."""
    if numeric:
        first = min(range(len(keys)), key=lambda i: float(keys[i]))
    else:
        first = min(range(len(keys)), key=lambda i: keys[i])
    ref_n, cur_n = float(ref.sum()), float(cur.sum())
    p_value = stats.z_two_proportions(ref[first], ref_n, cur[first], cur_n)
    return float(cur[first] / cur_n - ref[first] / ref_n), p_value


def _sketch_wasserstein(column: ColumnProfile, values: _F64) -> float:
    reference = np.asarray(column.means, dtype=np.float64)
    current = slice_means(values)
    distance = float(np.mean(np.abs(reference - current)))
    return distance / max(float(column.std or 0.0), stats.WASSERSTEIN_MIN_STD)


def _sketch_ks(column: ColumnProfile, values: _F64) -> tuple[float, float]:
    """KS of the window against the sketch's CDF (interpolated); asymptotic p-value."""
    levels = np.asarray(QUANTILE_LEVELS, dtype=np.float64)
    quantiles = np.asarray(column.quantiles, dtype=np.float64)
    points = np.unique(values)
    ref_cdf = np.interp(points, quantiles, levels, left=0.0, right=1.0)
    cur_right = np.searchsorted(values, points, side="right") / values.size
    cur_left = np.searchsorted(values, points, side="left") / values.size
    d = float(max(np.max(np.abs(ref_cdf - cur_right)), np.max(np.abs(ref_cdf - cur_left))))
    en = column.count * values.size / (column.count + values.size)
    return d, stats._ks_asymptotic_sf(d, en)


def _numeric_test(method: str, column: ColumnProfile, values: _F64) -> tuple[float, float | None]:
    if method == "ks":
        if column.sample is not None:
            return stats.ks_2samp(column.sample, values)
        return _sketch_ks(column, values)
    if column.sample is not None:
        return stats.wasserstein_normed(column.sample, values), None
    return _sketch_wasserstein(column, values), None


def _counts(column: ColumnProfile, cur: _Current) -> tuple[list[str] | None, _F64, _F64]:
    """Aligned reference and window counts: categories, or the PSI bins of a numeric column."""
    frequencies = _current_frequencies(column, cur)
    if column.frequencies is not None and frequencies is not None:
        keys, ref, counts = _aligned(column.frequencies, frequencies)
        return keys, ref, counts
    assert cur.values is not None  # a categorical column always has frequencies
    edges = np.asarray(column.psi_edges, dtype=np.float64)
    ref = np.asarray(column.psi_counts, dtype=np.float64)
    return None, ref, bin_counts(edges, cur.values).astype(np.float64)


def _distinct(column: ColumnProfile, cur: _Current) -> int:
    """Distinct values in the reference and the window together (Evidently's ``n_values``)."""
    frequencies = _current_frequencies(column, cur)
    if column.frequencies is None or frequencies is None:
        return max(column.distinct, _CURRENT_CATEGORIES_MAX + 1)
    return len(set(column.frequencies) | set(frequencies))


def default_method(column: ColumnProfile, distinct: int) -> str:
    """Evidently's default test for a column with ``distinct`` values on both sides together."""
    small = column.count <= SAMPLE_MAX_ROWS
    if column.kind == "numeric" and distinct > 5:
        return "ks" if small else "wasserstein"
    if small:
        return "z" if distinct <= 2 else "chisquare"
    return "jensenshannon"


def _is_drift(method: str, value: float, threshold: float) -> bool:
    if method == "ks":
        return value <= threshold
    if method in ("chisquare", "z"):
        return value < threshold
    return value >= threshold
