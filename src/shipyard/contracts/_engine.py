"""Compiling a contract's dataset into Polars expressions.

Every check becomes an expression over the batch: row checks a boolean that is
true where a row breaks the check, batch checks an aggregate compared with a
threshold. The validation runs them all in one query (see ``validation``).
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

from shipyard.contracts._parse import unit_seconds
from shipyard.contracts._types import Typed, describe, literal, typed_column

if TYPE_CHECKING:
    from shipyard.contracts.contract import Property, QualityRule, SchemaObject, Sla

ROW = "_shipyard_row"
REASONS = "_shipyard_reasons"


@dataclass
class RowCheck:
    """A check each row passes or breaks; broken error checks quarantine the row."""

    id: str
    column: str | None
    severity: str
    description: str
    violated: pl.Expr
    shown: pl.Expr  # what an example row shows: the offending value(s)
    # For "a later row repeats an earlier key" checks: the key, so that a streaming
    # validation can find repeated rows in a pass over the keys alone.
    keys: list[pl.Expr] | None = None
    skip_null_keys: bool = True


@dataclass
class BatchCheck:
    """A check on the whole batch: an aggregate compared with a threshold."""

    id: str
    column: str | None
    severity: str
    description: str
    aggregate: pl.Expr | None
    judge: Callable[[Any, int], tuple[bool, Any]]  # (aggregate, rows) -> (passed, measured)
    query: str | None = None  # SQL rules run in DuckDB instead of an aggregate
    expectation: str = ""


@dataclass
class SchemaIssue:
    """Something wrong with the batch's columns as a whole."""

    id: str
    column: str | None
    severity: str
    message: str


@dataclass
class Plan:
    """Everything ``validate`` runs for one batch."""

    typed: list[pl.Expr]
    raw_columns: list[str]
    row_checks: list[RowCheck] = field(default_factory=list)
    batch_checks: list[BatchCheck] = field(default_factory=list)
    schema_issues: list[SchemaIssue] = field(default_factory=list)
    new_columns: list[str] = field(default_factory=list)

    @property
    def blocked(self) -> bool:
        """A schema error: rows cannot be checked one by one, the batch fails whole."""
        return any(i.severity == "error" for i in self.schema_issues)


def compile_plan(obj: SchemaObject, schema: pl.Schema, sla: list[Sla], now: float) -> Plan:
    """The checks of dataset ``obj`` for a batch whose columns are ``schema``."""
    plan = Plan(typed=[], raw_columns=list(schema))
    _columns(obj, schema, plan)
    typed: dict[str, Typed] = {}
    for prop in obj.properties:
        if prop.name in schema:
            typed[prop.name] = _property_checks(prop, schema[prop.name], plan)
        else:
            typed[prop.name] = Typed(pl.lit(None).cast(_null_type(prop)))
    plan.typed = [t.value.alias(name) for name, t in typed.items()]
    plan.typed += [pl.col(c) for c in plan.new_columns]
    values = {name: t.value for name, t in typed.items()}
    _keys(obj, values, plan)
    for rule in obj.quality:
        _dataset_rule(rule, values, plan)
    for item in sla:
        _sla(item, obj, values, plan, now)
    return plan


def _null_type(prop: Property) -> Any:
    from shipyard.contracts._types import _target

    target = _target(prop.logical_type or "string")
    return pl.String if target == pl.Null else target


def _columns(obj: SchemaObject, schema: pl.Schema, plan: Plan) -> None:
    declared = [p.name for p in obj.properties]
    missing = [p for p in obj.properties if p.name not in schema]
    extra = [c for c in schema if c not in declared]
    plan.new_columns = extra
    for prop in missing:
        hint = _renamed_hint(prop.name, extra)
        if prop.required or prop.primary_key:
            plan.schema_issues.append(
                SchemaIssue(
                    f"{prop.name}.missing",
                    prop.name,
                    "error",
                    f"column `{prop.name}` is required but missing from the batch{hint}",
                )
            )
        else:
            plan.schema_issues.append(
                SchemaIssue(
                    f"{prop.name}.missing",
                    prop.name,
                    "warning",
                    f"optional column `{prop.name}` is missing; it is read as empty{hint}",
                )
            )
    if extra:
        listed = ", ".join(f"`{c}`" for c in extra)
        if obj.allow_extra_columns:
            plan.schema_issues.append(
                SchemaIssue(
                    "schema.new_columns",
                    None,
                    "warning",
                    f"new columns not in the contract: {listed} (schema drift from upstream; "
                    "they are kept, unchecked)",
                )
            )
        else:
            plan.schema_issues.append(
                SchemaIssue(
                    "schema.new_columns",
                    None,
                    "error",
                    f"columns not in the contract: {listed}; this dataset allows no other columns. "
                    "Add them to the contract, or set shipyard.allowExtraColumns: true",
                )
            )


def _renamed_hint(name: str, extra: list[str]) -> str:
    close = difflib.get_close_matches(name, extra, n=1, cutoff=0.5)
    close += [c for c in extra if name in c or c in name][:1]
    return f" (the batch has `{close[0]}`: was it renamed?)" if close else ""


def _property_checks(prop: Property, dtype: pl.DataType, plan: Plan) -> Typed:
    name = prop.name
    typed = typed_column(name, dtype, prop.logical_type, prop.options.get("format"))
    if typed.problem is not None:
        plan.schema_issues.append(
            SchemaIssue(f"{name}.type", name, prop.severity, f"column `{name}` {typed.problem}")
        )
        return Typed(pl.lit(None).cast(_null_type(prop)))
    raw = pl.col(name)
    value = typed.value
    failed = typed.failed if typed.failed is not None else pl.lit(False)

    def add(
        check: str,
        description: str,
        violated: pl.Expr,
        severity: str | None = None,
        keys: list[pl.Expr] | None = None,
    ) -> None:
        plan.row_checks.append(
            RowCheck(
                f"{name}.{check}",
                name,
                severity or prop.severity,
                description,
                violated.fill_null(False),
                raw,
                keys=keys,
            )
        )

    if typed.failed is not None:
        add("type", f"`{name}` should be {describe(prop.logical_type or '')}", failed)
    if prop.required or prop.primary_key:
        add("required", f"`{name}` is required", value.is_null() & ~failed)
    for check, description, violated in _option_checks(prop, value):
        add(check, description, violated)
    for rule in prop.quality:
        _property_rule(rule, prop, value, plan, add)
    return Typed(value)


def _option_checks(prop: Property, value: pl.Expr) -> list[tuple[str, str, pl.Expr]]:
    options, logical, name = prop.options, prop.logical_type, prop.name
    checks = []
    bounds = (
        ("minimum", ">=", value.__lt__),
        ("exclusiveMinimum", ">", value.__le__),
        ("maximum", "<=", value.__gt__),
        ("exclusiveMaximum", "<", value.__ge__),
    )
    for key, sign, breaks in bounds:
        if key in options:
            bound = literal(options[key], logical)
            checks.append((key, f"`{name}` must be {sign} {options[key]}", breaks(pl.lit(bound))))
    text = value.cast(pl.String)
    if "pattern" in options:
        pattern = str(options["pattern"])
        checks.append(
            (
                "pattern",
                f"`{name}` must match /{pattern}/",
                value.is_not_null() & ~text.str.contains(pattern),
            )
        )
    if "minLength" in options:
        checks.append(
            (
                "minLength",
                f"`{name}` must have at least {options['minLength']} characters",
                text.str.len_chars() < options["minLength"],
            )
        )
    if "maxLength" in options:
        checks.append(
            (
                "maxLength",
                f"`{name}` must have at most {options['maxLength']} characters",
                text.str.len_chars() > options["maxLength"],
            )
        )
    return checks


def _breaking_rows(rule: QualityRule, value: pl.Expr) -> tuple[str, pl.Expr]:
    """For a property rule: a description and which rows break it."""
    column = rule.column
    if rule.metric == "nullValues":
        return f"`{column}` must not be null", value.is_null()
    if rule.metric == "missingValues":
        missing = [v for v in rule.arguments.get("missingValues", [None, ""]) if v is not None]
        return (
            f"`{column}` must not be missing (null or one of {missing})",
            value.is_null() | value.cast(pl.String).is_in([str(m) for m in missing]),
        )
    if rule.metric == "invalidValues":
        if "validValues" in rule.arguments:
            valid = rule.arguments["validValues"]
            return (f"`{column}` must be one of {valid}", value.is_not_null() & ~value.is_in(valid))
        pattern = str(rule.arguments["pattern"])
        return (
            f"`{column}` must match /{pattern}/",
            value.is_not_null() & ~value.cast(pl.String).str.contains(pattern),
        )
    # duplicateValues on a property
    return f"`{column}` must be unique", value.is_not_null() & ~value.is_first_distinct()


def _property_rule(
    rule: QualityRule, prop: Property, value: pl.Expr, plan: Plan, add: Callable[..., None]
) -> None:
    if rule.type == "text":
        return
    if rule.type == "sql":
        plan.batch_checks.append(_sql_check(rule, f"{prop.name}.sql"))
        return
    description, violated = _breaking_rows(rule, value)
    if rule.zero_tolerance:
        keys = [value] if rule.metric == "duplicateValues" else None
        add(str(rule.metric), description, violated, rule.severity, keys)
        return
    plan.batch_checks.append(
        _counted(rule, f"{prop.name}.{rule.metric}", description, violated.fill_null(False).sum())
    )


def _keys(obj: SchemaObject, values: dict[str, pl.Expr], plan: Plan) -> None:
    keys = [p for p in obj.properties if p.primary_key]
    unique = [p for p in obj.properties if p.unique] + (keys if len(keys) == 1 else [])
    singles = list({p.name: p for p in unique}.values())
    for prop in singles:
        if prop.name in plan.raw_columns:
            value = values[prop.name]
            plan.row_checks.append(
                RowCheck(
                    f"{prop.name}.unique",
                    prop.name,
                    prop.severity,
                    f"`{prop.name}` must be unique (a later row repeats an earlier value)",
                    (value.is_not_null() & ~value.is_first_distinct()).fill_null(False),
                    pl.col(prop.name),
                    keys=[value],
                )
            )
    if len(keys) > 1 and all(k.name in plan.raw_columns for k in keys):
        names = [k.name for k in keys]
        struct = pl.struct([values[n] for n in names])
        plan.row_checks.append(
            RowCheck(
                "primaryKey",
                None,
                "error",
                f"({', '.join(names)}) must be unique together",
                ~struct.is_first_distinct(),
                pl.struct([pl.col(n) for n in names]),
                keys=[values[n] for n in names],
                skip_null_keys=False,
            )
        )


def _dataset_rule(rule: QualityRule, values: dict[str, pl.Expr], plan: Plan) -> None:
    if rule.type == "text":
        return
    if rule.type == "sql":
        plan.batch_checks.append(_sql_check(rule, rule.name or "sql"))
        return
    if rule.metric == "rowCount":
        plan.batch_checks.append(_counted(rule, "rowCount", "the number of rows", pl.len()))
        return
    names = list(rule.arguments["properties"])
    struct = pl.struct([values[n] for n in names])
    label = f"({', '.join(names)}) must be unique together"
    duplicated = ~struct.is_first_distinct()
    if rule.zero_tolerance:
        plan.row_checks.append(
            RowCheck(
                f"duplicateValues({','.join(names)})",
                None,
                rule.severity,
                label,
                duplicated,
                pl.struct([pl.col(n) for n in names]),
                keys=[values[n] for n in names],
                skip_null_keys=False,
            )
        )
        return
    plan.batch_checks.append(
        _counted(rule, f"duplicateValues({','.join(names)})", label, duplicated.sum())
    )


def _counted(rule: QualityRule, check_id: str, description: str, count: pl.Expr) -> BatchCheck:
    def judge(measured: Any, rows: int) -> tuple[bool, Any]:
        value = int(measured or 0)
        if rule.unit == "percent":
            share = 100.0 * value / rows if rows else 0.0
            return compare(rule.operator or "", share, rule.threshold), round(share, 4)
        return compare(rule.operator or "", value, rule.threshold), value

    what = "rows" if rule.metric == "rowCount" else "rows breaking it"
    return BatchCheck(
        check_id,
        rule.column,
        rule.severity,
        description,
        count,
        judge,
        expectation=f"{what} {expectation(rule)}",
    )


def _sql_check(rule: QualityRule, check_id: str) -> BatchCheck:
    def judge(measured: Any, rows: int) -> tuple[bool, Any]:
        if rule.unit == "percent" and isinstance(measured, (int, float)):
            measured = round(100.0 * measured / rows, 4) if rows else 0.0
        return compare(rule.operator or "", measured, rule.threshold), measured

    return BatchCheck(
        check_id,
        rule.column,
        rule.severity,
        rule.description or f"SQL: {rule.query}",
        None,
        judge,
        query=rule.query,
        expectation=f"result {expectation(rule)}",
    )


def _sla(item: Sla, obj: SchemaObject, values: dict[str, pl.Expr], plan: Plan, now: float) -> None:
    dataset, _, column = (item.element or "").rpartition(".")
    if dataset and dataset != obj.name:
        return
    if column not in values or column not in plan.raw_columns:
        plan.schema_issues.append(
            SchemaIssue(
                f"sla.{item.property}",
                column,
                "error",
                f"the {item.property} SLA is on `{column}`, which the batch does not have",
            )
        )
        return
    limit = item.value * unit_seconds(item.unit)
    when = values[column]
    if item.property in ("freshness", "latency"):
        newest = when.max().dt.epoch("us")

        def fresh(measured: Any, rows: int) -> tuple[bool, Any]:
            if measured is None:
                return False, None
            age = now - measured / 1e6
            return age <= limit, round(age, 1)

        plan.batch_checks.append(
            BatchCheck(
                f"sla.{item.property}",
                column,
                "error",
                f"the newest `{column}` must be at most {item.value:g}{item.unit} old",
                newest,
                fresh,
                expectation=f"age in seconds <= {limit:g}",
            )
        )
        return
    gap = when.sort().diff().max().dt.total_microseconds()

    def frequent(measured: Any, rows: int) -> tuple[bool, Any]:
        seconds = 0.0 if measured is None else measured / 1e6
        return seconds <= limit, round(seconds, 1)

    plan.batch_checks.append(
        BatchCheck(
            "sla.frequency",
            column,
            "error",
            f"`{column}` must have no gap longer than {item.value:g}{item.unit}",
            gap,
            frequent,
            expectation=f"largest gap in seconds <= {limit:g}",
        )
    )


def compare(operator: str, measured: Any, threshold: Any) -> bool:
    """Whether ``measured`` satisfies ``operator threshold`` (ODCS semantics)."""
    if measured is None:
        return False
    if operator == "mustBe":
        return bool(measured == threshold)
    if operator == "mustNotBe":
        return bool(measured != threshold)
    if operator == "mustBeGreaterThan":
        return bool(measured > threshold)
    if operator == "mustBeGreaterOrEqualTo":
        return bool(measured >= threshold)
    if operator == "mustBeLessThan":
        return bool(measured < threshold)
    if operator == "mustBeLessOrEqualTo":
        return bool(measured <= threshold)
    low, high = threshold
    inside = bool(low <= measured <= high)
    return inside if operator == "mustBeBetween" else not inside


def expectation(rule: QualityRule) -> str:
    """``must be < 5 percent``: the rule's operator in words."""
    words = {
        "mustBe": "=",
        "mustNotBe": "!=",
        "mustBeGreaterThan": ">",
        "mustBeGreaterOrEqualTo": ">=",
        "mustBeLessThan": "<",
        "mustBeLessOrEqualTo": "<=",
    }
    unit = " percent" if rule.unit == "percent" else ""
    if rule.operator in ("mustBeBetween", "mustNotBeBetween"):
        low, high = rule.threshold
        neg = "not " if rule.operator == "mustNotBeBetween" else ""
        return f"must {neg}be between {low} and {high}{unit}"
    return f"must be {words.get(rule.operator or '', '?')} {rule.threshold}{unit}"


def now_seconds() -> float:
    """The current time, for freshness checks."""
    return time.time()
