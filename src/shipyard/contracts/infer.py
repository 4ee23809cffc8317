"""Drafting a data contract from data: the first version for people to review.

    from shipyard.contracts.infer import infer_contract
    contract, text = infer_contract("deliveries/2026-01-*.parquet", name="transactions")

Every rule describes what was seen, never what upstream promises, so the YAML
carries a comment on each column saying where its rules came from. The
thresholds, chosen to keep a draft from rejecting ordinary new data:

- a text column takes a type (whole number, number, true/false, date,
  timestamp, tried in that order) when >= 99.9% of its values read as it;
  zero-padded numbers ("007") stay text. If a few values do not read, the
  column's checks are warnings, so the data accepts itself;
- required: no null seen; unique: every value different (text and whole
  numbers only: equal timestamps or amounts are not mistakes); primary key: the
  first unique, never-null column with an id-like name or an id-like shape;
- numeric range: what was seen widened by 10% of its span on each side,
  rounded outward to a round number; never below 0 if no negative was seen;
- allowed values: text with <= 20 distinct values that are <= 5% of the values;
  a whole-number column holding exactly 0 and 1 is a flag;
- pattern: when every value is a UUID, an e-mail address, or has one shape with
  digits in it (``^[a-z]+_\\d{8}$``) or is a fixed-width run of letters
  (``^[A-Z]{3}$``); min/maxLength for fixed-width values of <= 32 characters;
- row count: between half and twice the rows seen, as a warning.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import textwrap
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from shipyard.contracts._infer_stats import (
    PARSE_SHARE,
    VALUES_LIMIT,
    VALUES_SHARE,
    ColumnStats,
    failed_examples,
    measure,
)
from shipyard.contracts._inputs import as_lazy
from shipyard.contracts._types import describe
from shipyard.contracts.contract import Contract, Property, QualityRule, SchemaObject
from shipyard.errors import DataInputError

__all__ = ["infer_contract", "infer_yaml"]

RANGE_MARGIN = 0.10  # ranges are widened by this share of the seen span, on each side
ROW_COUNT_BAND = (0.5, 2.0)  # a delivery may have between half and twice the rows seen
FIXED_LENGTH_MAX = 32  # fixed-width values up to this long get minLength/maxLength
PATTERN_MIN_VALUES = 10  # fewer values than this say too little about their shape
_ID_NAME = re.compile(r"(^|[_\-\s])(id|uuid|guid|key)$", re.IGNORECASE)
_ID_NAME_CAMEL = re.compile(r"[a-z0-9](Id|ID|Key|Uuid)$")


@dataclass
class _Notes:
    """Review comments for the YAML: at the top, per column, above the dataset rules."""

    header: list[str] = field(default_factory=list)
    columns: dict[str, list[str]] = field(default_factory=dict)
    rules: list[str] = field(default_factory=list)


def infer_contract(
    data: Any,
    *,
    name: str = "dataset",
    contract_id: str | None = None,
    sample_rows: int | None = None,
) -> tuple[Contract, str]:
    """Draft a contract from ``data`` and return it with its YAML, review comments included.

    Args:
        data: a Polars or pandas DataFrame, a LazyFrame, an Arrow table, or Parquet, CSV or
            JSON-lines paths (globs allowed). Files are read in one streaming pass.
        name: the dataset's name (and the contract's, unless ``contract_id`` is given).
        contract_id: the contract's id (default: ``name``).
        sample_rows: infer from the first this many rows only (the row count still counts
            every row). The draft may then reject values that only appear later.

    Raises:
        DataInputError: the data cannot be read, or has no rows or no columns.
    """
    frame, source, _ = as_lazy(data)
    schema = frame.collect_schema()
    if not schema:
        raise DataInputError(f"{source} has no columns: there is nothing to infer a contract from.")
    sampled = frame.head(sample_rows) if sample_rows is not None else frame
    rows, columns = measure(sampled, schema)
    if rows == 0:
        raise DataInputError(
            f"{source} has no rows: there is nothing to infer a contract from. Pass a delivery "
            "with data in it."
        )
    total = rows if sample_rows is None else int(frame.select(pl.len()).collect().item())
    notes = _Notes(header=_header(source, rows, total))
    properties = [_property(stats, frame, notes) for stats in columns]
    _choose_primary_key(properties, columns, notes)
    obj = SchemaObject(name=name, properties=properties, quality=[_row_count(total, notes)])
    contract = Contract(
        id=contract_id or name, version="0.1.0", status="draft", schema=[obj], name=name
    )
    return contract, render(contract, notes)


def infer_yaml(
    data: Any,
    *,
    name: str = "dataset",
    contract_id: str | None = None,
    sample_rows: int | None = None,
) -> str:
    """The ODCS YAML of ``infer_contract(data, ...)``, with its review comments."""
    return infer_contract(data, name=name, contract_id=contract_id, sample_rows=sample_rows)[1]


def _header(source: str, rows: int, total: int) -> list[str]:
    seen = f"{rows} rows" if rows == total else f"the first {rows} of {total} rows"
    return [
        f"Inferred by shipyard from {seen} of {source} on {dt.date.today().isoformat()}; "
        "review every rule.",
        "Each rule describes the data seen, not what upstream promises: loosen or tighten it "
        "with the data owner, then set status to active.",
    ]


# -- one column ------------------------------------------------------------------------------


def _property(stats: ColumnStats, frame: pl.LazyFrame, notes: _Notes) -> Property:
    said = notes.columns.setdefault(stats.name, [])
    prop = Property(name=stats.name, logical_type=stats.logical)
    if stats.non_null == 0:
        said.append(
            f"no value seen: all {stats.rows} rows are null. Typed as string and not "
            "required; set the real type."
        )
        prop.logical_type = "string"
        return prop
    if stats.logical is None:
        said.append(
            f"stored as {stats.dtype}, which no ODCS logical type describes: no type "
            "or rule is set."
        )
    said.extend(_type_notes(stats, frame, prop))
    said.append(_nulls(stats, prop))
    prop.unique = (
        stats.logical in ("string", "integer")
        and stats.non_null >= 2
        and stats.distinct == stats.non_null
    )
    if prop.unique:
        said.append(f"all {stats.non_null} values differ: unique.")
    if stats.logical in ("integer", "number"):
        said.append(_numbers(stats, prop))
    elif stats.logical in ("date", "timestamp"):
        said.append(
            f"seen from {_show(stats.minimum)} to {_show(stats.maximum)}; no range is "
            "set, so later data passes."
        )
    elif stats.logical == "string":
        said.extend(_text(stats, prop))
    return prop


def _type_notes(stats: ColumnStats, frame: pl.LazyFrame, prop: Property) -> list[str]:
    if stats.dtype != pl.String or stats.logical == "string":
        return []
    what = describe(stats.logical or "")
    if stats.failed == 0:
        return [f"text, and every value reads as {what}."]
    prop.severity = "warning"
    examples = ", ".join(repr(v) for v in failed_examples(frame, stats))
    share = 100 * stats.failed / stats.non_null
    return [
        f"text; {stats.failed} of {stats.non_null} values ({share:.2g}%) do not read as "
        f"{what} (e.g. {examples}), so {stats.logical} was chosen (>= {PARSE_SHARE:.1%} "
        "read) and this column's checks are warnings: fix those values or the type."
    ]


def _nulls(stats: ColumnStats, prop: Property) -> str:
    if stats.nulls == 0:
        prop.required = True
        return f"never null in {stats.rows} rows: required."
    share = 100 * stats.nulls / stats.rows
    return f"{stats.nulls} of {stats.rows} values are null ({share:.2g}%): not required."


def _numbers(stats: ColumnStats, prop: Property) -> str:
    integer = stats.logical == "integer"
    if integer and stats.distinct == 2 and stats.values == [0, 1]:
        prop.quality.append(_allowed(stats.name, [0, 1]))
        return "only 0 and 1 seen: a flag, so those are the allowed values."
    low, high = _number(stats.minimum), _number(stats.maximum)
    if low is None or high is None:
        return "no finite range seen (NaN or infinite values): no range is set."
    lowest, highest = widen(low, high, integer=integer)
    prop.options = {"minimum": lowest, "maximum": highest}
    floor = " (kept >= 0: no negative value was seen)" if low >= 0 else ""
    return (
        f"seen {_show(low)} to {_show(high)}; range widened by {RANGE_MARGIN:.0%} of that "
        f"span on each side and rounded outward to {_show(lowest)}..{_show(highest)}{floor}."
    )


def _text(stats: ColumnStats, prop: Property) -> list[str]:
    distinct = stats.distinct or 0
    if distinct <= VALUES_LIMIT and distinct <= VALUES_SHARE * stats.non_null:
        prop.quality.append(_allowed(stats.name, list(stats.values)))
        return [
            f"{distinct} distinct values seen: allowed values below are only those seen; "
            "add any others upstream may send."
        ]
    said = []
    pattern, kind = _pattern(stats)
    if pattern is not None:
        prop.options["pattern"] = pattern
        said.append(f"every value {kind}: pattern {pattern}.")
    length = stats.max_length
    if length is not None and stats.min_length == length <= FIXED_LENGTH_MAX:
        prop.options |= {"minLength": length, "maxLength": length}
        said.append(f"every value has {length} characters: minLength and maxLength {length}.")
    return said


def _pattern(stats: ColumnStats) -> tuple[str | None, str]:
    if stats.non_null < PATTERN_MIN_VALUES or stats.pattern is None:
        return None, ""
    return stats.pattern, stats.pattern_kind or "matches"


def _allowed(column: str, values: list[Any]) -> QualityRule:
    return QualityRule(
        metric="invalidValues",
        operator="mustBe",
        threshold=0,
        arguments={"validValues": values},
        column=column,
    )


# -- the dataset -----------------------------------------------------------------------------


def _choose_primary_key(
    properties: list[Property], columns: list[ColumnStats], notes: _Notes
) -> None:
    """Mark at most one column as the primary key: unique, never null, and id-like."""
    candidates = [
        (p, s) for p, s in zip(properties, columns, strict=True) if p.unique and p.required
    ]
    by_name = [(p, s) for p, s in candidates if _id_like_name(p.name)]
    by_shape = [(p, s) for p, s in candidates if s.logical == "string" and "pattern" in p.options]
    for chosen, reason in ((by_name, "an id-like name"), (by_shape, "values shaped like ids")):
        if chosen:
            prop = chosen[0][0]
            prop.primary_key = True
            notes.columns[prop.name].append(
                f"never null, unique, with {reason}: the primary key. Check with the data owner."
            )
            return


def _id_like_name(name: str) -> bool:
    return bool(_ID_NAME.search(name) or _ID_NAME_CAMEL.search(name))


def _row_count(rows: int, notes: _Notes) -> QualityRule:
    low, high = math.floor(rows * ROW_COUNT_BAND[0]), math.ceil(rows * ROW_COUNT_BAND[1])
    notes.rules.append(
        f"{rows} rows seen: a delivery of fewer than {low} or more than {high} "
        "rows is reported (a warning, not an error)."
    )
    return QualityRule(
        metric="rowCount", operator="mustBeBetween", threshold=[low, high], severity="warning"
    )


# -- numbers ---------------------------------------------------------------------------------


def widen(low: float, high: float, *, integer: bool) -> tuple[int | float, int | float]:
    """``[low, high]`` widened by ``RANGE_MARGIN`` of its span on each side, rounded outward
    to a round step; never below 0 when ``low`` is not negative."""
    span = (high - low) or abs(high) or 1.0
    margin = RANGE_MARGIN * span
    step = 10.0 ** math.floor(math.log10(margin))
    if integer:
        step = max(step, 1.0)
    lowest = math.floor((low - margin) / step) * step
    highest = math.ceil((high + margin) / step) * step
    if low >= 0:
        lowest = max(lowest, 0.0)
    return _tidy(lowest, step), _tidy(highest, step)


def _tidy(value: float, step: float) -> int | float:
    rounded = round(value, max(0, -math.floor(math.log10(step))))
    return int(rounded) if float(rounded).is_integer() else rounded


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _show(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, (dt.date, str)):
        return str(value) if not isinstance(value, dt.date) else value.isoformat()
    return f"{value:g}" if isinstance(value, float) else str(value)


# -- YAML with comments ----------------------------------------------------------------------


def render(contract: Contract, notes: _Notes) -> str:
    """The contract's ODCS YAML with the review comments above what they explain."""
    doc = contract.to_dict()
    (obj,) = doc.pop("schema")
    properties = obj.pop("properties")
    quality = obj.pop("quality", [])
    parts = [
        _comment(notes.header, ""),
        _dump(doc, ""),
        "schema:\n",
        _dump([obj], ""),
        "  properties:\n",
    ]
    for prop in properties:
        parts += [_comment(notes.columns.get(prop["name"], []), "  "), _dump([prop], "  ")]
    if quality:
        parts += ["  quality:\n", _comment(notes.rules, "  "), _dump(quality, "  ")]
    return "".join(parts)


def _comment(lines: list[str], indent: str) -> str:
    """One comment per note, wrapped at 100 characters, continuation lines indented."""
    out = []
    for line in lines:
        wrapped = textwrap.wrap(
            line,
            98 - len(indent),
            subsequent_indent="  ",
            break_long_words=False,
            break_on_hyphens=False,
        )
        out += [f"{indent}# {w}\n" for w in wrapped]
    return "".join(out)


def _dump(value: Any, indent: str) -> str:
    import yaml

    text = str(yaml.safe_dump(value, sort_keys=False, allow_unicode=True, width=1000))
    return "".join(f"{indent}{line}\n" for line in text.splitlines())
