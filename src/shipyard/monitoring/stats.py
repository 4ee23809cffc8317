"""Drift statistics in pure NumPy, checked against SciPy in the tests (never imported here).

The tests and thresholds follow Evidently's defaults (``../shared/design/PEERS.md``):

- :func:`ks_2samp`: two-sample Kolmogorov-Smirnov statistic and p-value, as
  ``scipy.stats.ks_2samp(reference, current)`` (``method="auto"``). The statistic is always
  SciPy's. The p-value is SciPy's exact one while both samples have at most 10,000 values
  (same rules: ``n1 == n2`` closed form, otherwise Hodges' inside method with Viehmann's
  ``1 - p`` recursion, computed here column by column in log space; agrees to about 1e-9
  relative). Beyond 10,000 values (or when the exact sum rounds above 1) SciPy switches to
  ``kstwo.sf(d, round(en))`` with ``en = n1*n2/(n1+n2)``; that is reproduced exactly where it
  has a closed form (``round(en) * d <= 1`` or ``>= round(en) - 1``) and elsewhere
  approximated by the Kolmogorov limiting distribution ``kstwobign.sf(sqrt(en) * d)``, within
  about ``0.3 / sqrt(en)`` absolute of SciPy (under 0.01 once ``en >= 1000``).
- :func:`chi_squared`: Pearson chi-squared of the current counts against the reference
  proportions, as ``scipy.stats.chisquare(cur, f_exp=ref / ref.sum() * cur.sum())``.
- :func:`z_two_proportions`: pooled two-proportion Z-test, two-sided p-value.
- :func:`wasserstein_normed`: ``scipy.stats.wasserstein_distance`` divided by the reference's
  population standard deviation, floored at 0.001 as Evidently does.
- :func:`jensen_shannon`: ``scipy.spatial.distance.jensenshannon`` (natural log by default).
- :func:`psi`: population stability index on quantile bins of the reference.

Common rules for sample arguments: values are converted to float64, NaN values are dropped
before the test, and an argument left empty (empty, or all NaN) raises ``ValueError``. Count
arguments must be finite and non-negative, aligned category by category, and not all zero.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "PSI_EPSILON",
    "WASSERSTEIN_MIN_STD",
    "chi_squared",
    "jensen_shannon",
    "ks_2samp",
    "psi",
    "wasserstein_normed",
    "z_two_proportions",
]

_F64 = npt.NDArray[np.float64]

#: Share given to an empty PSI bin (on either side) so the log ratio stays finite.
PSI_EPSILON = 1e-4
#: Floor of the reference standard deviation in :func:`wasserstein_normed` (Evidently's).
WASSERSTEIN_MIN_STD = 1e-3
#: Up to this many values in both samples, the KS p-value is exact (SciPy's ``MAX_AUTO_N``).
KS_MAX_EXACT_N = 10_000


def _sample(values: Any, name: str) -> _F64:
    """A 1-D float64 copy of ``values`` with NaN dropped; ValueError if nothing is left."""
    array = np.asarray(values, dtype=np.float64).ravel()
    array = array[~np.isnan(array)]
    if array.size == 0:
        raise ValueError(f"{name} has no non-null values: a drift test needs at least one value")
    return array


def _counts(values: Any, name: str) -> _F64:
    array = np.asarray(values, dtype=np.float64).ravel()
    if array.size == 0:
        raise ValueError(f"{name} is empty: a drift test needs at least one category")
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ValueError(f"{name} must hold finite, non-negative counts")
    if array.sum() == 0:
        raise ValueError(f"{name} counts are all zero: a drift test needs at least one value")
    return array


def _aligned_counts(ref_counts: Any, cur_counts: Any) -> tuple[_F64, _F64]:
    ref = _counts(ref_counts, "ref_counts")
    cur = _counts(cur_counts, "cur_counts")
    if ref.shape != cur.shape:
        raise ValueError(
            f"ref_counts and cur_counts must be aligned by category: {ref.size} != {cur.size}"
        )
    return ref, cur


# --------------------------------------------------------------------------- KS


def _log_factorials(n: int) -> _F64:
    return np.array([math.lgamma(k + 1.0) for k in range(n + 1)], dtype=np.float64)


def _ks_prob_outside_square(n: int, h: int) -> float:
    """P(D_{n,n} >= h/n), SciPy's ``_compute_prob_outside_square`` (Horner-like form)."""
    p = 0.0
    j = np.arange(h, dtype=np.float64)
    for k in range(n // h, -1, -1):
        p1 = float(np.prod((n - k * h - j) / (n + k * h + j + 1.0)))
        p = p1 * (1.0 - p)
    return 2.0 * p


def _ks_outer_prob_inside(m: int, n: int, g: int, h: int) -> float:
    """P(D_{m,n} >= h/lcm), SciPy's ``_compute_outer_prob_inside_method``, vectorised.

    SciPy walks each lattice column with the scalar recursion
    ``v_j = (i * a_j + j * v_{j-1}) / (i + j)``. With ``w_j = v_j * C(i+j, j)`` it becomes
    ``w_j = w_{j-1} + a_j * C(i+j-1, j)``: a cumulative sum, done here in log space
    (``logaddexp.accumulate``) so nothing overflows or underflows; values are probabilities,
    so rounding above 1 is clipped.
    """
    if m < n:
        m, n = n, m
    mg, ng = m // g, n // g
    lf = _log_factorials(m + n + 1)
    minj, maxj = 0, min(math.ceil(h / mg), n + 1)
    curlen = maxj - minj
    len_a = min(2 * maxj + 2, n + 1)
    a = np.ones(len_a, dtype=np.float64)
    a[minj:maxj] = 0.0
    with np.errstate(divide="ignore"):
        for i in range(1, m + 1):
            lastminj, lastlen = minj, curlen
            minj = min(max((ng * i - h) // mg + 1, 0), n)
            maxj = min(-((-(ng * i + h)) // mg), n + 1)
            if maxj <= minj:
                return 1.0
            length = maxj - minj
            j = np.arange(minj, maxj)
            prev = a[minj - lastminj : minj - lastminj + length]
            terms = np.log(prev) + lf[i + j - 1] - lf[j] - lf[i - 1]
            # The neighbour below the band is outside (1), or the origin's row (0).
            start = -np.inf if minj == 0 else lf[i + minj - 1] - lf[minj - 1] - lf[i]
            cum = np.logaddexp.accumulate(np.concatenate(([start], terms)))[1:]
            a[:length] = np.minimum(np.exp(cum - (lf[i + j] - lf[j] - lf[i])), 1.0)
            curlen = length
            if lastlen > curlen:
                a[length : length + (lastlen - curlen)] = 1.0
    return float(a[maxj - minj - 1])


def _kolmogorov_sf(z: float) -> float:
    """Survival function of the Kolmogorov limiting distribution (SciPy's ``kstwobign``)."""
    if z <= 0.0:
        return 1.0
    if z < 1.0:
        k = np.arange(1, 50, dtype=np.float64)
        cdf = (
            math.sqrt(2.0 * math.pi)
            / z
            * float(np.sum(np.exp(-((2.0 * k - 1.0) ** 2) * math.pi**2 / (8.0 * z * z))))
        )
        return min(max(1.0 - cdf, 0.0), 1.0)
    k = np.arange(1, 101, dtype=np.float64)
    sf = 2.0 * float(np.sum((-1.0) ** (k - 1.0) * np.exp(-2.0 * k * k * z * z)))
    return min(max(sf, 0.0), 1.0)


def _ks_asymptotic_sf(d: float, en: float) -> float:
    """SciPy's asymptotic p-value ``kstwo.sf(d, round(en))``, closed forms where SciPy has them.

    Exact (Ruben-Gambino) for ``n * d <= 1`` and ``n * d >= n - 1``, as in SciPy's
    ``_kolmogn``; elsewhere the Kolmogorov limit ``kstwobign.sf(sqrt(en) * d)``.
    """
    n = max(round(en), 1)
    if d >= 1.0:
        return 0.0
    if d <= 0.0:
        return 1.0
    t = n * d
    if t <= 0.5:
        return 1.0
    if t <= 1.0:
        cdf = math.exp(math.lgamma(n + 1.0) - n * math.log(n) + n * math.log(2.0 * t - 1.0))
        return min(max(1.0 - cdf, 0.0), 1.0)
    if t >= n - 1:
        return min(max(2.0 * (1.0 - d) ** n, 0.0), 1.0)
    return _kolmogorov_sf(math.sqrt(en) * d)


def ks_2samp(reference: Any, current: Any) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov test: ``(statistic, p_value)``, two-sided.

    Equal to ``scipy.stats.ks_2samp(reference, current)`` on the NaN-free values; see the
    module docstring for where the p-value is exact and where it is the asymptotic one.
    Ties are handled as SciPy does (both empirical CDFs evaluated right-continuously at every
    observed value); two identical constant samples give ``(0.0, 1.0)``.
    """
    data1 = np.sort(_sample(reference, "reference"))
    data2 = np.sort(_sample(current, "current"))
    n1, n2 = data1.size, data2.size
    data_all = np.concatenate([data1, data2])
    cdf1 = np.searchsorted(data1, data_all, side="right") / n1
    cdf2 = np.searchsorted(data2, data_all, side="right") / n2
    diffs = cdf1 - cdf2
    d = float(max(min(max(-float(diffs.min()), 0.0), 1.0), float(diffs.max())))

    if max(n1, n2) <= KS_MAX_EXACT_N:
        g = math.gcd(n1, n2)
        lcm = (n1 // g) * n2
        h = round(d * lcm)
        d = h / lcm
        if h == 0:
            return d, 1.0
        same = n1 == n2
        prob = _ks_prob_outside_square(n1, h) if same else _ks_outer_prob_inside(n1, n2, g, h)
        if 0.0 <= prob <= 1.0:
            return d, prob
    return d, _ks_asymptotic_sf(d, n1 * n2 / (n1 + n2))


# --------------------------------------------------------------------------- chi-squared


def _chi2_sf(x: float, dof: int) -> float:
    """Survival function of the chi-squared distribution (regularised upper gamma Q)."""
    if math.isnan(x):
        return math.nan
    if x <= 0.0:
        return 1.0
    if math.isinf(x):
        return 0.0
    a, z = dof / 2.0, x / 2.0
    log_prefix = a * math.log(z) - z - math.lgamma(a)
    if z < a + 1.0:  # series for the lower gamma P, then Q = 1 - P
        term = total = 1.0 / a
        ap = a
        for _ in range(10_000):
            ap += 1.0
            term *= z / ap
            total += term
            if abs(term) < abs(total) * 1e-17:
                break
        return min(max(1.0 - total * math.exp(log_prefix), 0.0), 1.0)
    tiny = 1e-300  # Lentz's continued fraction for Q
    b = z + 1.0 - a
    c = 1.0 / tiny
    dd = 1.0 / b
    frac = dd
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        dd = an * dd + b
        dd = tiny if abs(dd) < tiny else dd
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        dd = 1.0 / dd
        delta = dd * c
        frac *= delta
        if abs(delta - 1.0) < 1e-16:
            break
    return min(max(math.exp(log_prefix) * frac, 0.0), 1.0)


def chi_squared(ref_counts: Any, cur_counts: Any) -> tuple[float, float]:
    """Chi-squared drift test for a categorical column: ``(statistic, p_value)``.

    ``ref_counts[k]`` and ``cur_counts[k]`` count category ``k`` in the reference and current
    data. The expected current counts are the reference proportions times the current total,
    as Evidently does: ``scipy.stats.chisquare(cur, f_exp=ref / ref.sum() * cur.sum())``, with
    ``categories - 1`` degrees of freedom.

    Categories on one side only: a category absent from both sides is dropped (it carries no
    information and would be 0/0). A category seen in the reference only adds its expected
    count to the statistic, as in SciPy. A category seen in the current data only is impossible
    under the reference (expected 0), so the result is ``(inf, 0.0)``, which is also what SciPy
    returns, here without a division-by-zero warning. With a single category left the result is
    ``(0.0, 1.0)``.
    """
    ref, cur = _aligned_counts(ref_counts, cur_counts)
    seen = (ref > 0) | (cur > 0)
    ref, cur = ref[seen], cur[seen]
    if ref.size < 2:
        return 0.0, 1.0
    if np.any((ref == 0) & (cur > 0)):
        return math.inf, 0.0
    expected = ref / ref.sum() * cur.sum()
    statistic = float(np.sum((cur - expected) ** 2 / expected))
    return statistic, _chi2_sf(statistic, ref.size - 1)


# --------------------------------------------------------------------------- Z-test


def z_two_proportions(ref_hits: float, ref_n: float, cur_hits: float, cur_n: float) -> float:
    """Two-sided p-value of the pooled two-proportion Z-test (Evidently's binary-column test).

    ``z = (p_ref - p_cur) / sqrt(P (1 - P) (1/ref_n + 1/cur_n))`` with ``P`` the pooled share;
    the p-value is ``2 * (1 - Phi(|z|))``, computed as ``erfc(|z| / sqrt(2))`` for accuracy in
    the tail. When the pooled share is 0 or 1 (both sides constant and equal) the p-value is
    1.0, as in Evidently. Sizes must be positive and hits within ``[0, n]``.
    """
    for name, hits, n in (("ref", ref_hits, ref_n), ("cur", cur_hits, cur_n)):
        if not n > 0:
            raise ValueError(f"{name}_n must be positive: a drift test needs at least one value")
        if not 0 <= hits <= n:
            raise ValueError(f"{name}_hits must be between 0 and {name}_n, got {hits}")
    p_ref, p_cur = ref_hits / ref_n, cur_hits / cur_n
    pooled = (ref_hits + cur_hits) / (ref_n + cur_n)
    variance = pooled * (1.0 - pooled) * (1.0 / ref_n + 1.0 / cur_n)
    if variance <= 0.0:
        return 1.0
    z = (p_ref - p_cur) / math.sqrt(variance)
    return math.erfc(abs(z) / math.sqrt(2.0))


# --------------------------------------------------------------------------- distances


def wasserstein_normed(reference: Any, current: Any) -> float:
    """First Wasserstein distance divided by the reference's standard deviation.

    Equal to ``scipy.stats.wasserstein_distance(reference, current) / max(np.std(reference),
    0.001)``: a constant reference is divided by the 0.001 floor (Evidently's), so it gives a
    finite value (0.0 when the current data is the same constant), never a crash.
    """
    u = np.sort(_sample(reference, "reference"))
    v = np.sort(_sample(current, "current"))
    all_values = np.sort(np.concatenate([u, v]))
    deltas = np.diff(all_values)
    u_cdf = np.searchsorted(u, all_values[:-1], side="right") / u.size
    v_cdf = np.searchsorted(v, all_values[:-1], side="right") / v.size
    distance = float(np.sum(np.abs(u_cdf - v_cdf) * deltas))
    return distance / max(float(np.std(u)), WASSERSTEIN_MIN_STD)


def jensen_shannon(ref_counts: Any, cur_counts: Any, base: float | None = None) -> float:
    """Jensen-Shannon distance between two category distributions given as aligned counts.

    Equal to ``scipy.spatial.distance.jensenshannon(ref_counts, cur_counts, base)``: both are
    normalised to proportions, the divergence uses the natural log unless ``base`` is given,
    and the distance is the square root of half the summed relative entropies to the midpoint
    (0 for identical distributions; ``sqrt(ln 2)`` for disjoint ones in natural log, 1 in base
    2). Categories on one side only need no special case (``0 * log 0`` counts as 0).
    """
    p, q = _aligned_counts(ref_counts, cur_counts)
    p = p / p.sum()
    q = q / q.sum()
    m = (p + q) / 2.0

    def rel_entr(x: _F64) -> float:
        positive = x > 0
        return float(np.sum(x[positive] * np.log(x[positive] / m[positive])))

    js = rel_entr(p) + rel_entr(q)
    if base is not None:
        js /= math.log(base)
    return math.sqrt(max(js, 0.0) / 2.0)


def psi(reference: Any, current: Any, bins: int = 10) -> float:
    """Population stability index of ``current`` against ``reference``.

    Bins are the reference's quantiles (``np.quantile``, linear interpolation) at
    ``np.linspace(0, 1, bins + 1)``: the inner quantiles, with
    duplicates removed (ties and constant columns give fewer bins), are the edges of
    right-closed bins ``(-inf, e1], (e1, e2], ..., (ek, +inf)``, so every current value,
    even outside the reference's range, falls in a bin. A bin empty on either side gets the
    share :data:`PSI_EPSILON` (1e-4) instead of 0. Then
    ``PSI = sum((cur_share - ref_share) * ln(cur_share / ref_share))``.
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    ref = _sample(reference, "reference")
    cur = _sample(current, "current")
    edges = np.unique(np.quantile(ref, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    n_bins = edges.size + 1
    ref_share = np.bincount(np.searchsorted(edges, ref, side="left"), minlength=n_bins) / ref.size
    cur_share = np.bincount(np.searchsorted(edges, cur, side="left"), minlength=n_bins) / cur.size
    ref_share = np.where(ref_share == 0, PSI_EPSILON, ref_share)
    cur_share = np.where(cur_share == 0, PSI_EPSILON, cur_share)
    return float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))
