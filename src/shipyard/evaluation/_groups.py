"""Metrics by group (Fairlearn's MetricFrame, vectorised): one bincount per grouping."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from shipyard.errors import EvaluationError
from shipyard.evaluation._inputs import _binary, _ratio

NULL_GROUP = "null"
"""The group of rows whose group value is null (None, NaN, NaT)."""
GROUP_METRICS = ("selection_rate", "tpr", "fpr", "precision", "accuracy")
"""The rates ``by_group`` computes per group (besides ``count`` and ``positives``)."""
GroupRow = dict[str, float | None]


@dataclass(frozen=True)
class GroupTable:
    """Metrics per group of one grouping (such as "country"), as ``by_group`` returns them.

    Attributes:
        rows: Group value (as ``str``; nulls as ``"null"``) → ``count``, ``positives`` and
            the ``GROUP_METRICS``, each None where undefined.
    """

    rows: dict[str, GroupRow]

    def difference(self, metric: str) -> float | None:
        """Largest minus smallest value over the groups where ``metric`` is defined.

        Fairlearn's ``MetricFrame.difference(method="between_groups")``; None when no group
        has a value.
        """
        found = self._defined(metric)
        return max(found) - min(found) if found else None

    def ratio(self, metric: str) -> float | None:
        """Smallest over largest value of ``metric`` over the groups where it is defined.

        Fairlearn's ``MetricFrame.ratio(method="between_groups")``; None for 0/0 or when no
        group has a value.
        """
        found = self._defined(metric)
        return _ratio(min(found), max(found)) if found else None

    def to_dict(self) -> dict[str, GroupRow]:
        """A copy of the rows, as plain JSON data."""
        return {group: dict(row) for group, row in self.rows.items()}

    def _defined(self, metric: str) -> list[float]:
        if metric not in (*GROUP_METRICS, "count", "positives"):
            known = ", ".join((*GROUP_METRICS, "count", "positives"))
            raise EvaluationError(f"unknown group metric {metric!r}; expected one of {known}.")
        return [value for row in self.rows.values() if (value := row[metric]) is not None]


def by_group(
    y_true: npt.ArrayLike,
    y_pred: npt.ArrayLike,
    groups: Mapping[str, npt.ArrayLike],
    expected_groups: Mapping[str, Iterable[object]] | None = None,
) -> dict[str, GroupTable]:
    """Decision metrics per group, for each grouping, in one pass per grouping.

    Rows whose group value is null (None, NaN, NaT) form the group ``"null"``; group values
    are keyed by ``str(value)``, integral floats as ints (an int column with nulls arrives as
    floats and keeps its names). A group that has rows but one class gets None where the other
    class is needed (no positives: ``tpr`` None). Unlike ``overall``, one class overall is
    allowed.

    Args:
        y_true: One 0/1 label per row.
        y_pred: One bool (or 0/1) prediction per row.
        groups: Grouping name → one group value per row.
        expected_groups: Grouping name → group values to report even when no row has them
            (count 0, metrics None).

    Returns:
        Grouping name → its ``GroupTable``; groups in sorted order, then ``"null"``, then
        expected groups without rows.
    """
    labels, flagged = _binary(y_true, "y_true"), _binary(y_pred, "y_pred")
    if flagged.size != labels.size:
        raise EvaluationError(
            f"y_true has {labels.size:,} rows but y_pred has {flagged.size:,}; pass exactly "
            "one prediction per label."
        )
    expected = dict(expected_groups or {})
    unknown = sorted(set(expected) - set(groups))
    if unknown:
        raise EvaluationError(
            f"expected_groups names {unknown}, which are not in groups ({sorted(groups)}); "
            "name only groupings you pass."
        )
    cells = labels.astype(np.intp) * 2 + flagged  # 0 tn, 1 fp, 2 fn, 3 tp
    return {
        name: _group_table(name, values, cells, expected.get(name, ()))
        for name, values in groups.items()
    }


def _group_table(
    name: str, values: npt.ArrayLike, cells: np.ndarray, expected: Iterable[object]
) -> GroupTable:
    keys, codes = _factorize(name, values, cells.size)
    counts = np.bincount(codes * 4 + cells, minlength=4 * len(keys)).reshape(-1, 4)
    rows = {key: _group_row(*map(int, counts[i])) for i, key in enumerate(keys)}
    for value in expected:
        rows.setdefault(_name(value), _group_row(0, 0, 0, 0))
    return GroupTable(rows)


def _group_row(tn: int, fp: int, fn: int, tp: int) -> GroupRow:
    count = tn + fp + fn + tp
    return {
        "count": count,
        "positives": tp + fn,
        "selection_rate": _ratio(tp + fp, count),
        "tpr": _ratio(tp, tp + fn),
        "fpr": _ratio(fp, fp + tn),
        "precision": _ratio(tp, tp + fp),
        "accuracy": _ratio(tp + tn, count),
    }


def _factorize(name: str, values: npt.ArrayLike, rows: int) -> tuple[list[str], np.ndarray]:
    """Group keys (sorted values as str, then "null") and each row's index into them."""
    array = np.asarray(values)
    if array.ndim != 1 or array.size != rows:
        raise EvaluationError(
            f"grouping {name!r} has {array.size:,} values but y_true has {rows:,} rows; pass "
            "one group value per row."
        )
    if array.dtype.kind != "O":
        uniques, codes = np.unique(array, return_inverse=True)
        return _merge_keys(uniques.tolist(), codes.ravel())
    # np.unique sorts Python objects one comparison at a time (~1 s per million rows); a dict
    # finds the few distinct values in one pass, and only those are sorted.
    seen: dict[object, int] = {}
    try:
        codes = np.fromiter((seen.setdefault(v, len(seen)) for v in array.tolist()), np.intp)
    except TypeError as exc:
        raise EvaluationError(
            f"grouping {name!r} holds values that cannot be grouped ({exc}); pass strings or "
            "numbers."
        ) from exc
    return _merge_keys(list(seen), codes)


def _merge_keys(found: list[object], codes: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Sort the distinct values, name them, put the nulls last in one group, renumber rows."""
    values = [v for v in found if not _is_null(v)]
    try:
        values.sort()
    except TypeError:  # values of mixed types: order by their names
        values.sort(key=str)
    keys = list(dict.fromkeys(_name(v) for v in values))
    if len(values) < len(found):
        keys.append(NULL_GROUP)
    position = {key: i for i, key in enumerate(keys)}
    renumber = [position[_name(v)] for v in found]
    return keys, np.asarray(renumber, dtype=np.intp)[codes]


def _name(value: object) -> str:
    if _is_null(value):
        return NULL_GROUP
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _is_null(value: object) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN and NaT are the values not equal to themselves
    except TypeError:  # pandas.NA: a comparison with it is neither True nor False
        return True
