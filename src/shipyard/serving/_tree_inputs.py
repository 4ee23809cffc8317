"""How a frame's columns become the features a ``HistGradientBoostingClassifier`` splits on.

A supported model is an optional ``ColumnTransformer`` (``OrdinalEncoder``\\ s and
passthrough) followed by the classifier, which, when it has categorical features, runs its
own ``ColumnTransformer`` (categories re-encoded 0..k-1 with NaN for missing and unknown,
categorical columns first). Both are compiled to one recipe per final feature: the input
column it reads and, for an encoded one, a dict from raw value to final code, the two
encoders composed.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

MISSING = 256
"""A categorical feature's code for NaN, negative and out-of-range values."""

_MAX_CHECK_ROWS = 2048
_ROW_WISE = 4  # up to this many rows, Python tuples beat per-column NumPy conversions


class Delegate(Exception):
    """An input the compiled scorer leaves to scikit-learn (which may reject it)."""


@dataclass(frozen=True)
class _Lookup:
    """One encoded column: raw value -> code. ``None`` codes are values scikit-learn rejects."""

    table: dict[Any, float]
    missing: float | None  # NaN, and null in a numeric column
    unknown: float | None
    strings: bool

    def __call__(self, value: Any) -> Any:
        if self.strings:
            if value is not None and type(value) is not str:
                raise Delegate
            code = self.table.get(value, self.unknown)
        elif value is None or value != value:
            code = self.missing
        elif type(value) in (float, int, bool):
            code = self.table.get(value, self.unknown)
        else:
            raise Delegate
        if code is None:
            raise Delegate
        return code

    def then(self, inner: _Lookup) -> _Lookup | None:
        """This encoder's codes encoded again by ``inner`` (which sees them as floats)."""
        if inner.strings:
            return None
        table = {}
        for key, code in self.table.items():
            again = inner._apply(code)
            if again is None:
                return None
            table[key] = again
        return _Lookup(table, inner._apply(self.missing), inner._apply(self.unknown), self.strings)

    def _apply(self, code: float | None) -> float | None:
        if code is None:
            return None
        return self.missing if code != code else self.table.get(code, self.unknown)

    def indexed(self) -> _Lookup | None:
        """The same lookup giving the index a categorical split reads (0..255, ``MISSING``)."""
        codes = [*self.table.values(), self.missing, self.unknown]
        if any(c is not None and c == c and c >= MISSING for c in codes):
            return None  # scikit-learn's uint8 cast of such a code is undefined
        table: dict[Any, float] = {key: _slot(code) for key, code in self.table.items()}
        missing, unknown = (None if c is None else _slot(c) for c in (self.missing, self.unknown))
        return _Lookup(table, missing, unknown, self.strings)


def _slot(code: float) -> int:
    return MISSING if code != code or code < 0 else int(code)


@dataclass(frozen=True)
class _Column:
    source: int
    lookup: _Lookup | None = None


@dataclass(frozen=True)
class _Coded:
    source: int
    lookup: _Lookup


@dataclass
class InputLayout:
    """The final features: numeric ones (floats) and categorical ones (split indices)."""

    numeric: list[_Column]
    categorical: list[_Coded]
    numeric_index: dict[int, int]
    categorical_index: dict[int, int]

    def encode(
        self, frame: pl.DataFrame, where: list[int]
    ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """``(floats (rows, numeric), codes (rows, categorical))`` of ``frame``, whose column
        ``where[i]`` is input ``i``; raises :class:`Delegate` for values it does not know.
        """
        if frame.height <= _ROW_WISE:
            return self._by_row(frame.rows(), where)
        return self._by_column(frame, where)

    def _by_row(
        self, data: list[tuple[Any, ...]], where: list[int]
    ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        numeric = [[_number(row[where[c.source]], c.lookup) for c in self.numeric] for row in data]
        categorical = [[c.lookup(row[where[c.source]]) for c in self.categorical] for row in data]
        return (
            np.array(numeric, dtype=np.float64).reshape(len(data), len(self.numeric)),
            np.array(categorical, dtype=np.intp).reshape(len(data), len(self.categorical)),
        )

    def _by_column(
        self, frame: pl.DataFrame, where: list[int]
    ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        numeric = np.empty((frame.height, len(self.numeric)))
        for k, column in enumerate(self.numeric):
            series = frame.to_series(where[column.source])
            if column.lookup is None:
                numeric[:, k] = _floats(series)
            else:
                numeric[:, k] = [column.lookup(value) for value in series.to_list()]
        categorical = np.empty((frame.height, len(self.categorical)), dtype=np.intp)
        for k, coded in enumerate(self.categorical):
            values = frame.to_series(where[coded.source]).to_list()
            categorical[:, k] = [coded.lookup(value) for value in values]
        return numeric, categorical


def _number(value: Any, lookup: _Lookup | None) -> float:
    if lookup is not None:
        return float(lookup(value))
    if value is None:
        return math.nan
    if type(value) not in (float, int, bool):
        raise Delegate
    return float(value)


def _floats(series: pl.Series) -> np.ndarray[Any, Any]:
    dtype = series.dtype
    if dtype == pl.Float64:
        return series.to_numpy()
    if (dtype.is_numeric() and not isinstance(dtype, pl.Decimal)) or dtype == pl.Boolean:
        return series.cast(pl.Float64).to_numpy()
    raise Delegate


def unpack(model: Any, inputs: Any) -> tuple[InputLayout, Any] | None:
    """The layout of a supported model's features and its classifier, else ``None``."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline

    steps = [step for _, step in model.steps] if type(model) is Pipeline else [model]
    classifier = steps[-1]
    if type(classifier) is not HistGradientBoostingClassifier or len(steps) > 2:
        return None
    if not _binary(classifier):
        return None
    names = list(inputs)
    if len(steps) == 2:
        if type(steps[0]) is not ColumnTransformer:
            return None
        columns = _transformed(steps[0], _positions(steps[0], names))
    else:
        columns = [_Column(p) for p in _positions(classifier, names) or []] or None
    if columns is None or len(columns) != classifier.n_features_in_:
        return None
    if classifier._preprocessor is not None:
        columns = _compose(columns, classifier._preprocessor)
    if columns is None:
        return None
    return _layout(columns, classifier._bin_mapper.is_categorical_), classifier


def _binary(classifier: Any) -> bool:
    return (
        hasattr(classifier, "_predictors")
        and classifier.loss == "log_loss"
        and classifier.n_trees_per_iteration_ == 1
        and len(classifier.classes_) == 2
    )


def _positions(step: Any, inputs: list[str]) -> list[int] | None:
    """Where each of the step's fitted input columns is among ``inputs``."""
    fitted = getattr(step, "feature_names_in_", None)
    if fitted is None:
        return list(range(len(inputs))) if step.n_features_in_ == len(inputs) else None
    if not set(fitted) <= set(inputs):
        return None
    return [inputs.index(name) for name in fitted]


def _transformed(transformer: Any, sources: list[int] | None) -> list[_Column] | None:
    """A fitted ``ColumnTransformer``'s output columns, each read from ``sources``."""
    if sources is None:
        return None
    out: list[_Column] = []
    for name, step, _ in transformer.transformers_:
        where = transformer.output_indices_[name]
        if where.stop == where.start:
            continue
        indices = transformer._transformer_to_input_indices[name]
        lookups = _step_lookups(step, len(indices))
        if lookups is None or where.start != len(out) or len(indices) != where.stop - where.start:
            return None
        out += [_Column(sources[i], lookup) for i, lookup in zip(indices, lookups, strict=True)]
    return out


def _step_lookups(step: Any, width: int) -> Sequence[_Lookup | None] | None:
    from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder
    from sklearn.utils.validation import check_array

    if isinstance(step, str):
        return [None] * width if step == "passthrough" else None
    if type(step) is OrdinalEncoder:
        return _encoder_lookups(step)
    if type(step) is FunctionTransformer and step.inverse_func is None:
        func = step.func
        if func is None or (isinstance(func, functools.partial) and func.func is check_array):
            return [None] * width
    return None


def _encoder_lookups(encoder: Any) -> list[_Lookup] | None:
    if getattr(encoder, "_infrequent_enabled", True):
        return None
    dtype = np.dtype(encoder.dtype)
    unknown = (
        _cast(encoder.unknown_value, dtype)
        if encoder.handle_unknown == "use_encoded_value"
        else None
    )
    lookups = []
    for feature, categories in enumerate(encoder.categories_):
        nan_at = encoder._missing_indices.get(feature)
        keys = [c.item() if isinstance(c, np.generic) else c for c in categories]
        kinds = {type(k) is str for k in keys if k is not None and not _is_nan(k)}
        if len(kinds) > 1 or not all(
            isinstance(k, (str, int, float)) for k in keys if k is not None
        ):
            return None
        strings = kinds == {True} or (not kinds and None in keys)
        table = {k: _cast(j, dtype) for j, k in enumerate(keys) if j != nan_at}
        missing = unknown if nan_at is None else _cast(encoder.encoded_missing_value, dtype)
        lookups.append(_Lookup(table, missing, unknown, strings))
    return lookups


def _cast(value: Any, dtype: np.dtype[Any]) -> float:
    with np.errstate(invalid="ignore"):
        return float(np.asarray([value]).astype(dtype)[0])


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _compose(outer: list[_Column], preprocessor: Any) -> list[_Column] | None:
    """The classifier's own encoding of ``outer``'s columns, read from the frame."""
    inner = _transformed(preprocessor, list(range(len(outer))))
    if inner is None:
        return None
    columns = []
    for column in inner:
        source = outer[column.source]
        if column.lookup is None:
            columns.append(source)
        elif source.lookup is None:
            columns.append(_Column(source.source, column.lookup))
        else:
            lookup = source.lookup.then(column.lookup)
            if lookup is None:
                return None
            columns.append(_Column(source.source, lookup))
    return columns


def _layout(columns: list[_Column], is_categorical: Any) -> InputLayout:
    layout = InputLayout([], [], {}, {})
    for feature, column in enumerate(columns):
        if is_categorical[feature]:
            indexed = None if column.lookup is None else column.lookup.indexed()
            if indexed is None:
                continue  # splits on it make the forest unsupported
            layout.categorical_index[feature] = len(layout.categorical)
            layout.categorical.append(_Coded(column.source, indexed))
        else:
            layout.numeric_index[feature] = len(layout.numeric)
            layout.numeric.append(column)
    return layout


def check_frame(layout: InputLayout, thresholds: list[list[float]], inputs: Any) -> pl.DataFrame:
    """Rows at every threshold and either side of it, NaN, nulls, every category, unknown ones."""
    names = list(inputs)
    values: list[list[Any]] = [[] for _ in names]
    strings = [False] * len(names)
    for column, cuts in zip(layout.numeric, thresholds, strict=True):
        if column.lookup is None:
            values[column.source] += _edges(cuts)
    encoded = [(c.source, c.lookup) for c in layout.numeric if c.lookup is not None]
    for source, lookup in encoded + [(c.source, c.lookup) for c in layout.categorical]:
        values[source] += _categories(lookup)
        strings[source] = lookup.strings
    rng = np.random.default_rng(0)
    height = min(max(len(v) for v in [[0.0], *values]), _MAX_CHECK_ROWS)
    series = []
    for name, column_values, is_string in zip(names, values, strings, strict=True):
        pool = column_values or [0.0]
        picked = [pool[i] for i in rng.permutation(max(height, len(pool)))[:height] % len(pool)]
        dtype = pl.String if is_string else pl.Float64
        series.append(pl.Series(name, picked, dtype=dtype, strict=False))
    return pl.DataFrame(series)


def _edges(cuts: list[float]) -> list[float | None]:
    points: list[float | None] = [None, math.nan, math.inf, -math.inf, 0.0]
    for cut in set(cuts):
        points += [cut, math.nextafter(cut, -math.inf), math.nextafter(cut, math.inf)]
    return points


def _categories(lookup: _Lookup) -> list[Any]:
    keys = list(lookup.table)
    if lookup.unknown is not None:
        numbers = [k for k in keys if isinstance(k, (int, float)) and not _is_nan(k)]
        keys += ["\x00unknown"] if lookup.strings else [max(numbers, default=0) + 1.5, -7.0]
    if lookup.strings and (None in lookup.table or lookup.unknown is not None):
        keys.append(None)
    if not lookup.strings and lookup.missing is not None:
        keys += [None, math.nan]
    return keys


__all__ = ["MISSING", "Delegate", "InputLayout", "check_frame", "unpack"]
