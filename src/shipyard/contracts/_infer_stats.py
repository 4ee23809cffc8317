"""What ``infer`` measures about each column, in one Polars query.

Text columns (CSV delivers every column as text) are measured once per logical
type they might hold: how many values fail to read as a whole number, a number,
true/false, a date or a timestamp (with the readers the validator uses, so the
contract accepts exactly what was counted here), and the range of what did read.
The type is chosen afterwards from those counts, so the data is read once.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from shipyard.contracts._types import typed_column

PARSE_SHARE = 0.999  # a text column takes a type when this share of its values reads as it
VALUES_LIMIT = 20  # at most this many distinct values make a column categorical ...
VALUES_SHARE = 0.05  # ... and at most this share of its non-null values
TEXT_CANDIDATES = ("integer", "number", "boolean", "date", "timestamp")
UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
_PADDED = r"^[+-]?0[0-9]"  # "007" is an id or a code, not the number 7
PEEK_ROWS = 1000  # types and patterns worth verifying are guessed from this many first rows
PEEK_TOLERANCE = 0.01  # a type is verified on all rows if <= 1% of those first values fail
SHAPE_MAX = 40  # longer shapes are prose, not codes


@dataclass
class ColumnStats:
    """What was seen in one column, read as the logical type chosen for it."""

    name: str
    dtype: pl.DataType
    rows: int
    non_null: int
    logical: str | None
    failed: int = 0  # non-null values that do not read as ``logical`` (text columns)
    distinct: int | None = None
    minimum: Any = None
    maximum: Any = None
    values: list[Any] = field(default_factory=list)  # the distinct values, when few
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None  # a regular expression every value matches
    pattern_kind: str | None = None  # what that says about the values: "is a UUID"

    @property
    def nulls(self) -> int:
        """How many rows have no value."""
        return self.rows - self.non_null


def measure(frame: pl.LazyFrame, schema: pl.Schema) -> tuple[int, list[ColumnStats]]:
    """The number of rows and the statistics of every column, from one query."""
    peek = _peek(frame.head(PEEK_ROWS).collect(), schema)
    exprs: list[pl.Expr] = [pl.len().alias("rows")]
    for index, (name, dtype) in enumerate(schema.items()):
        found = _column_exprs(name, dtype, peek.get(name, _Candidates()))
        exprs += [e.alias(f"{index}|{key}") for key, e in found.items()]
    row = frame.select(exprs).collect(engine="streaming").row(0, named=True)
    rows = int(row["rows"])
    stats = []
    for index, (name, dtype) in enumerate(schema.items()):
        prefix = f"{index}|"
        measured = {k.removeprefix(prefix): v for k, v in row.items() if k.startswith(prefix)}
        stats.append(_read(name, dtype, rows, measured, peek.get(name, _Candidates())))
    return rows, stats


@dataclass
class _Candidates:
    """What the first rows suggest a text column might be, for the full pass to verify."""

    types: tuple[str, ...] = TEXT_CANDIDATES
    patterns: list[tuple[str, str]] = field(default_factory=list)  # (pattern, what it is)


def _peek(head: pl.DataFrame, schema: pl.Schema) -> dict[str, _Candidates]:
    """Candidate types and patterns of the text columns, from the first rows: parsing every
    value as five types and shaping it costs more than the rest of the query together."""
    found = {}
    for name, dtype in schema.items():
        if native_type(dtype) != "string" or dtype == pl.Null:
            continue
        sample = head.select(pl.col(name).cast(pl.String)).drop_nulls()
        if sample.height == 0:
            continue
        types = TEXT_CANDIDATES if dtype == pl.String else ()
        found[name] = _Candidates(
            tuple(t for t in types if _sample_failures(sample, name, t) <= PEEK_TOLERANCE),
            _sample_patterns(sample[name]),
        )
    return found


def _sample_failures(sample: pl.DataFrame, name: str, logical: str) -> float:
    failed = typed_column(name, pl.String(), logical, None).failed
    assert failed is not None  # text is read by parsing, which can fail
    return float(sample.select(failed.mean()).item())


def _sample_patterns(values: pl.Series) -> list[tuple[str, str]]:
    patterns = [
        (p, kind)
        for p, kind in ((UUID, "is a UUID"), (EMAIL, "is an e-mail address"))
        if values.str.contains(p).all()
    ]
    fine = values.str.replace_all("[0-9]", "9").str.replace_all("[A-Z]+", "A")
    fine = fine.str.replace_all("[a-z]+", "a").unique()
    coarse = fine.str.replace_all("9+", "9").unique()
    lengths = values.str.len_chars().unique()
    if fine.len() == 1 and fine[0] in ("A", "a") and lengths.len() == 1:
        letters = "[A-Z]" if fine[0] == "A" else "[a-z]"
        patterns.append((f"^{letters}{{{lengths[0]}}}$", f"is {lengths[0]} letters"))
    for shapes, fixed in ((fine, True), (coarse, False)):
        if shapes.len() == 1 and "9" in shapes[0] and len(shapes[0]) <= SHAPE_MAX:
            pattern = shape_pattern(shapes[0], fixed)
            if pattern is not None:
                patterns.append((pattern, "has one shape"))
    return patterns


def _column_exprs(name: str, dtype: pl.DataType, candidates: _Candidates) -> dict[str, pl.Expr]:
    col = pl.col(name)
    exprs = {"non_null": col.is_not_null().sum()}
    logical = native_type(dtype)
    if logical == "string":
        exprs |= _string_exprs(col.cast(pl.String), candidates)
    if dtype == pl.String:
        exprs["padded"] = col.str.strip_chars().str.contains(_PADDED).sum()
        for candidate in candidates.types:
            exprs |= _typed_exprs(name, dtype, candidate)
    elif logical in ("integer", "number", "date", "timestamp"):
        exprs |= _typed_exprs(name, dtype, logical)
    return exprs


def _typed_exprs(name: str, dtype: pl.DataType, logical: str) -> dict[str, pl.Expr]:
    typed = typed_column(name, dtype, logical, None)
    value = typed.value
    exprs = {f"{logical}|min": value.min(), f"{logical}|max": value.max()}
    if typed.failed is not None:
        exprs[f"{logical}|failed"] = typed.failed.sum()
    if logical == "integer":
        exprs[f"{logical}|distinct"] = value.drop_nulls().n_unique()
        exprs[f"{logical}|values"] = value.drop_nulls().unique().head(3).implode()
    return exprs


def _string_exprs(text: pl.Expr, candidates: _Candidates) -> dict[str, pl.Expr]:
    exprs = {
        "string|distinct": text.drop_nulls().n_unique(),
        "string|values": text.drop_nulls().unique().head(VALUES_LIMIT + 1).implode(),
        "string|min_length": text.str.len_chars().min(),
        "string|max_length": text.str.len_chars().max(),
    }
    for index, (pattern, _) in enumerate(candidates.patterns):
        exprs[f"string|pattern{index}"] = text.str.contains(pattern).sum()
    return exprs


def native_type(dtype: pl.DataType) -> str | None:
    """The logical type a column stored as ``dtype`` holds (text is refined later)."""
    if dtype in (pl.String, pl.Categorical, pl.Null) or isinstance(dtype, pl.Enum):
        return "string"
    if dtype == pl.Boolean:
        return "boolean"
    if dtype.is_integer():
        return "integer"
    if dtype.is_numeric():
        return "number"
    if dtype == pl.Date:
        return "date"
    if dtype == pl.Time:
        return "time"
    if isinstance(dtype, pl.Datetime):
        return "timestamp"
    if isinstance(dtype, pl.Struct):
        return "object"
    if isinstance(dtype, (pl.List, pl.Array)):
        return "array"
    return None


def _read(
    name: str, dtype: pl.DataType, rows: int, measured: dict[str, Any], candidates: _Candidates
) -> ColumnStats:
    non_null = int(measured["non_null"])
    logical = native_type(dtype)
    if dtype == pl.String and non_null:
        logical = _text_type(measured, non_null, candidates.types)
    stats = ColumnStats(name, dtype, rows, non_null, logical)
    if logical is None or logical not in {"string", *TEXT_CANDIDATES}:
        return stats
    stats.failed = int(measured.get(f"{logical}|failed") or 0)
    stats.minimum = _finite(measured.get(f"{logical}|min"))
    stats.maximum = _finite(measured.get(f"{logical}|max"))
    stats.distinct = measured.get(f"{logical}|distinct")
    stats.values = sorted(v for v in measured.get(f"{logical}|values") or [] if v is not None)
    if logical == "string" and non_null:
        stats.min_length = measured["string|min_length"]
        stats.max_length = measured["string|max_length"]
        matched = [
            c
            for i, c in enumerate(candidates.patterns)
            if measured[f"string|pattern{i}"] == non_null
        ]
        stats.pattern, stats.pattern_kind = matched[0] if matched else (None, None)
    return stats


def _text_type(measured: dict[str, Any], non_null: int, candidates: tuple[str, ...]) -> str:
    padded = int(measured["padded"])
    for candidate in candidates:
        failed = int(measured[f"{candidate}|failed"])
        if candidate in ("integer", "number"):
            failed += padded
        if non_null - failed >= PARSE_SHARE * non_null:
            return candidate
    return "string"


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def failed_examples(frame: pl.LazyFrame, stats: ColumnStats, limit: int = 3) -> list[str]:
    """A few of the values of a text column that do not read as its chosen type."""
    typed = typed_column(stats.name, stats.dtype, stats.logical, None)
    if typed.failed is None:
        return []
    found = frame.select(pl.col(stats.name).filter(typed.failed).unique().head(limit))
    return sorted(str(v) for v in found.collect().to_series())


_SHAPE_PARTS = {"A": "[A-Z]+", "a": "[a-z]+", ".": r"\.", "+": r"\+", **{c: c for c in "_-:/@# "}}


def shape_pattern(shape: str, fixed_digits: bool) -> str | None:
    """A regular expression for values of one shape ('a_99999999', 'A'), or None when the
    shape has characters we would rather not put in a pattern."""
    parts = []
    for run in re.finditer(r"9+|.", shape, re.DOTALL):
        piece = run.group()
        if piece[0] == "9":
            parts.append(rf"\d{{{len(piece)}}}" if fixed_digits else r"\d+")
        elif piece in _SHAPE_PARTS:
            parts.append(_SHAPE_PARTS[piece])
        else:
            return None
    return "^" + "".join(parts) + "$"
