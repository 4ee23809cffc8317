"""Checking a batch against a contract: one pass, a report, and nothing lost.

The contract's checks are compiled to Polars expressions and run in one query.
Rows that break an error check are quarantined with every reason; the others
are accepted, read as their contract types. Batch checks (row counts,
tolerances, duplicates, SQL, freshness, the share of quarantined rows) pass or
fail the whole batch: a failed batch accepts nothing and quarantines every row.
For files, the query streams: accepted and quarantined rows go straight to
Parquet, so a batch larger than memory is fine.
"""

from __future__ import annotations

import dataclasses
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from shipyard.contracts._engine import REASONS, ROW, Plan, RowCheck, compile_plan, now_seconds
from shipyard.contracts._inputs import as_lazy
from shipyard.contracts.report import RuleResult, ValidationReport, explain
from shipyard.errors import DataInputError

if TYPE_CHECKING:
    from shipyard.contracts.contract import Contract, SchemaObject


@dataclass
class ValidationResult:
    """The report, and the batch split into accepted and quarantined rows.

    In memory, ``accepted`` and ``quarantined`` are DataFrames. When output paths
    were given they are ``None`` and the rows are in ``accepted_path`` and
    ``quarantine_path`` (Parquet). Quarantined rows keep the columns as delivered,
    plus ``_shipyard_row`` (their position in the batch, 1 for the first data row) and
    ``_shipyard_reasons`` (the id of every check the row broke).
    """

    report: ValidationReport
    accepted: pl.DataFrame | None = None
    quarantined: pl.DataFrame | None = None
    accepted_path: Path | None = None
    quarantine_path: Path | None = None

    @property
    def passed(self) -> bool:
        """The batch passed and no row was quarantined."""
        return self.report.passed


def validate(
    contract: Contract,
    data: Any,
    *,
    dataset: str | None = None,
    accepted_path: str | Path | None = None,
    quarantine_path: str | Path | None = None,
    examples: int = 5,
    now: float | None = None,
    profile_rows: int = 0,
) -> ValidationResult:
    """Check ``data`` against ``contract`` and split its rows.

    Args:
        contract: the contract.
        data: a Polars DataFrame or LazyFrame, a pandas DataFrame, an Arrow table, or a
            path, glob or list of paths to Parquet, CSV or JSON-lines files.
        dataset: which of the contract's datasets (needed if it has several).
        accepted_path / quarantine_path: write the split to these Parquet files instead of
            returning DataFrames (the query then streams; memory stays bounded).
        examples: how many example rows to keep per failed check.
        now: the time freshness is measured against (default: now).
        profile_rows: how many rows the report's distribution plots look at (0, the default:
            no plots; ``shipyard contract check --report`` asks for 100,000).
    """
    started = time.time()
    obj = contract.dataset(dataset)
    frame, source, text_columns = as_lazy(data)
    schema = frame.collect_schema()
    _check_reserved(schema)
    plan = compile_plan(obj, schema, contract.sla, now if now is not None else now_seconds())
    streaming = accepted_path is not None and quarantine_path is not None
    run = _Run(frame, plan, examples, streaming)
    try:
        outputs = run.execute(accepted_path, quarantine_path)
    except pl.exceptions.PolarsError as exc:
        raise DataInputError(
            f"Cannot read {source} while validating it: {exc}. Check that every file is "
            "complete and in the format its extension says."
        ) from None
    rows_in = int(run.aggregates["__rows"])
    results = run.results(text_columns, rows_in, obj)
    quarantined = int(run.aggregates["__quarantined"])
    batch_passed = not any(r.blocking for r in results if r.kind != "row")
    share = obj.max_quarantine_share
    if share is not None and not plan.blocked:  # a schema error already failed the batch
        results.append(_share_result(share, quarantined, rows_in))
        batch_passed = batch_passed and results[-1].passed
    if not batch_passed and rows_in - quarantined > 0:
        outputs = run.reject_all(results, accepted_path, quarantine_path)
        quarantined = rows_in
    report = ValidationReport(
        contract_id=contract.id,
        contract_version=contract.version,
        dataset=obj.name,
        source=source,
        rows_in=rows_in,
        rows_accepted=rows_in - quarantined,
        rows_quarantined=quarantined,
        batch_passed=batch_passed,
        results=results,
        new_columns=plan.new_columns,
        checked_at=started,
        seconds=time.time() - started,
        profiles=_profiles(frame, plan, profile_rows),
    )
    return ValidationResult(report, *outputs)


def _profiles(frame: pl.LazyFrame, plan: Plan, rows: int) -> dict[str, dict[str, Any]]:
    """Distributions of the first rows, read as the contract's types, for the report's plots.

    Measured after the timing of the validation itself: plots are for people, not the gate.
    """
    if rows <= 0:
        return {}
    from shipyard.contracts._profile import profile

    if plan.blocked:
        return profile(frame, plan.raw_columns, sample_rows=rows)
    head = frame.head(rows).select(plan.typed)
    return profile(head, [e.meta.output_name() for e in plan.typed], sample_rows=rows)


def _check_reserved(schema: pl.Schema) -> None:
    for name in (ROW, REASONS):
        if name in schema:
            raise DataInputError(
                f"The data has a column named {name!r}, which shipyard uses for quarantined "
                "rows. Rename or drop it before validating (it is shipyard's own output)."
            )


class _Run:
    """The query for one batch, and what it measured.

    Every row check is evaluated once, into a flag column; the split, the counts, the
    reasons and the examples all read those flags instead of evaluating checks again.
    """

    def __init__(self, frame: pl.LazyFrame, plan: Plan, examples: int, streaming: bool) -> None:
        self.plan = plan
        self.examples = examples
        self.source = frame
        self.frame = frame.with_row_index(ROW, offset=1)  # row 1 is the first data row
        # Rows whose key may repeat (all occurrences): known without row numbers.
        self.suspects: list[pl.Expr] = []
        if streaming:
            answered = [_by_row_set(self.frame, c) for c in plan.row_checks]
            plan.row_checks = [check for check, _ in answered]
            self.suspects = [suspect for _, suspect in answered if suspect is not None]
        self.flags = [f"__v{i}" for i in range(len(plan.row_checks))]
        errors = [
            pl.col(f)
            for f, c in zip(self.flags, plan.row_checks, strict=True)
            if c.severity == "error"
        ]
        if plan.blocked:
            self.bad = pl.lit(True)
        elif errors:
            self.bad = pl.any_horizontal(errors)
        else:
            self.bad = pl.lit(False)
        self.aggregates: dict[str, Any] = {}
        self.example_rows: list[pl.DataFrame] = []

    def _flagged(self) -> pl.LazyFrame:
        checks = [
            c.violated.alias(f) for f, c in zip(self.flags, self.plan.row_checks, strict=True)
        ]
        return self.frame.with_columns(*checks).with_columns(self.bad.alias("__bad"))

    def _reasons(self, extra: list[str]) -> pl.Expr:
        reasons: list[pl.Expr] = [
            pl.when(pl.col(f)).then(pl.lit(c.id))
            for f, c in zip(self.flags, self.plan.row_checks, strict=True)
            if c.severity == "error" and not self.plan.blocked
        ]
        reasons += [pl.lit(r) for r in extra]
        if not reasons:
            return pl.lit([], dtype=pl.List(pl.String)).alias(REASONS)
        return pl.concat_list(reasons).list.drop_nulls().alias(REASONS)

    def _queries(self, flagged: pl.LazyFrame) -> tuple[pl.LazyFrame, pl.LazyFrame, pl.LazyFrame]:
        blocked = [i.id for i in self.plan.schema_issues if i.severity == "error"]
        bad = pl.col("__bad")
        accepted = flagged.filter(~bad).select(self.plan.typed)
        quarantined = flagged.filter(bad).select(
            ROW, *self.plan.raw_columns, self._reasons(blocked)
        )
        aggregates = [pl.len().alias("__rows"), bad.sum().alias("__quarantined")]
        aggregates += [pl.col(f).sum().alias(f) for f in self.flags]
        aggregates += [
            c.aggregate.alias(f"__batch{i}")
            for i, c in enumerate(self.plan.batch_checks)
            if c.aggregate is not None
        ]
        return accepted, quarantined, flagged.select(aggregates)

    def _samples(self, flagged: pl.LazyFrame, only: list[bool]) -> list[pl.LazyFrame]:
        empty = flagged.head(0).select(ROW, pl.lit(None).alias("value"))
        return [
            flagged.filter(pl.col(f)).select(ROW, c.shown.alias("value")).head(self.examples)
            if wanted
            else empty
            for f, c, wanted in zip(self.flags, self.plan.row_checks, only, strict=True)
        ]

    def execute(self, accepted_path: Any, quarantine_path: Any) -> tuple[Any, ...]:
        if accepted_path is not None and quarantine_path is not None:
            # Streaming: a pass per output; the big accepted one needs no row numbers.
            flagged = self._flagged()
            _, quarantined, measures = self._queries(flagged)
            samples = self._samples(flagged, [True] * len(self.flags))
            targets = [Path(accepted_path), Path(quarantine_path)]
            results = _sink_whole(
                [self._accepted_stream(flagged), quarantined], targets, [measures, *samples]
            )
            self._keep(results)
            return None, None, *targets
        # In memory: evaluate the checks once, then split and count from the flags.
        flagged = self._flagged().collect().lazy()
        accepted, quarantined, measures = self._queries(flagged)
        frames = pl.collect_all([accepted, quarantined, measures])
        counts = frames[2].row(0, named=True)
        failing = [bool(counts[f]) for f in self.flags]
        self._keep([frames[2], *pl.collect_all(self._samples(flagged, failing))])
        return frames[0], frames[1], None, None

    def _accepted_stream(self, flagged: pl.LazyFrame) -> pl.LazyFrame:
        """The accepted rows, computed without row numbers where possible.

        Row numbers double the memory of a large streaming write in Polars, and only the
        "repeats an earlier key" checks need them. So the rows of keys that may repeat are
        set aside, the rest stream out with checks that need no row numbers, and the set-
        aside rows (few) are judged with their row numbers and appended. In this mode the
        accepted first occurrences of repeated keys come after the other accepted rows.
        """
        plain = [
            c.violated for c in self.plan.row_checks if c.severity == "error" and not _uses_row(c)
        ]
        if self.plan.blocked:
            return flagged.filter(pl.lit(False)).select(self.plan.typed)
        if not self.suspects:
            return self.source.filter(~pl.any_horizontal([pl.lit(False), *plain])).select(
                self.plan.typed
            )
        suspect = pl.any_horizontal(self.suspects)
        bulk = self.source.filter(~suspect & ~pl.any_horizontal([pl.lit(False), *plain]))
        few = flagged.filter(suspect & ~pl.col("__bad")).drop(ROW).collect()
        return pl.concat([bulk.select(self.plan.typed), few.lazy().select(self.plan.typed)])

    def _keep(self, results: list[pl.DataFrame]) -> None:
        self.aggregates = results[0].row(0, named=True)
        self.example_rows = results[1:]

    def reject_all(
        self, results: list[RuleResult], accepted_path: Any, quarantine_path: Any
    ) -> tuple[Any, ...]:
        """A failed batch: nothing is accepted, every row is quarantined with the reasons."""
        batch = [r.id for r in results if r.blocking and r.kind != "row"]
        flagged = self._flagged()
        accepted = flagged.filter(pl.lit(False)).select(self.plan.typed)
        everything = flagged.select(
            ROW,
            *self.plan.raw_columns,
            pl.concat_list([self._reasons([]), pl.lit(batch, dtype=pl.List(pl.String))]).alias(
                REASONS
            ),
        )
        if accepted_path is not None and quarantine_path is not None:
            targets = [Path(accepted_path), Path(quarantine_path)]
            _sink_whole([accepted, everything], targets, [])
            return None, None, *targets
        frames = pl.collect_all([accepted, everything])
        return frames[0], frames[1], None, None

    def results(self, text_columns: set[str], rows: int, obj: SchemaObject) -> list[RuleResult]:
        found = [
            RuleResult(
                i.id, i.column, "schema", i.severity, i.message, passed=False, message=i.message
            )
            for i in self.plan.schema_issues
        ]
        for index, check in enumerate(self.plan.row_checks):
            failed = int(self.aggregates[self.flags[index]] or 0)
            sample = self.example_rows[index]
            result = RuleResult(
                check.id,
                check.column,
                "row",
                check.severity,
                check.description,
                passed=failed == 0,
                failed_rows=failed,
                examples=[
                    {"row": r[ROW], "value": _plain(r["value"])}
                    for r in sample.iter_rows(named=True)
                ],
            )
            result.message = explain(result, check.column in text_columns)
            found.append(result)
        for index, batch in enumerate(self.plan.batch_checks):
            if batch.query is not None and self.plan.blocked:
                found.append(
                    RuleResult(
                        batch.id,
                        batch.column,
                        "batch",
                        batch.severity,
                        batch.description,
                        passed=False,
                        message=f"{batch.description}: not run, because the batch's "
                        "columns do not match the contract (see the schema errors)",
                    )
                )
                continue
            if batch.query is not None:
                measured = _run_sql(batch.query, self.frame.select(self.plan.typed), obj.name)
            else:
                measured = self.aggregates.get(f"__batch{index}")
            passed, shown = batch.judge(measured, rows)
            message = f"{batch.description}: measured {shown}, {batch.expectation}"
            found.append(
                RuleResult(
                    batch.id,
                    batch.column,
                    "batch",
                    batch.severity,
                    batch.description,
                    passed=passed,
                    measured=shown,
                    expectation=batch.expectation,
                    message=message,
                )
            )
        return found


def _sink_whole(
    frames: list[pl.LazyFrame], targets: list[Path], measures: list[pl.LazyFrame]
) -> list[pl.DataFrame]:
    """Stream ``frames`` into ``targets``, then compute ``measures``; each target appears
    whole (written under a temporary name, then renamed) or not at all.

    One pass per output, not one shared pass: Polars' streaming engine buffers a shared
    source for every branch, which doubled peak memory; separate passes keep it bounded.
    """
    staged = [t.with_name(f".{t.name}.{uuid.uuid4().hex}.partial") for t in targets]
    try:
        for frame, path in zip(frames, staged, strict=True):
            frame.sink_parquet(path)
        results = pl.collect_all(measures, engine="streaming") if measures else []
        for source, target in zip(staged, targets, strict=True):
            os.replace(source, target)
    finally:
        for source in staged:
            source.unlink(missing_ok=True)
    return results


def _uses_row(check: RowCheck) -> bool:
    """Whether the check was rewritten to ask for row numbers (a repeated-key check)."""
    return ROW in check.violated.meta.root_names()


def _by_row_set(frame: pl.LazyFrame, check: RowCheck) -> tuple[RowCheck, pl.Expr | None]:
    """A "repeats an earlier key" check, answered by the rows found in a pass over the keys.

    Finding repeats needs every key at once, which would pull the whole batch into memory
    in a streaming query. Instead one pass hashes the keys (8 bytes a row), a second reads
    the few rows whose hash repeats and compares their keys exactly; the check then asks
    whether a row is one of those.
    """
    if check.keys is None:
        return check, None
    key = check.keys[0] if len(check.keys) == 1 else pl.struct(check.keys)
    digest = key.hash(seed=20261129)
    present = key.is_not_null() if check.skip_null_keys else pl.lit(True)
    # Stream the 8-byte hashes out first: the keys themselves never sit in memory at once.
    # Sorting finds repeats in a third of the memory a hash-based is_duplicated needs.
    hashed = frame.select(pl.when(present).then(digest).alias("__h"))
    hashes = hashed.collect(engine="streaming")["__h"]
    if hashes.null_count():
        hashes = hashes.drop_nulls()
    hashes.sort(in_place=True)
    # Neighbours in sorted order, compared through zero-copy slices: no second copy.
    same = hashes.slice(1) == hashes.slice(0, max(hashes.len() - 1, 0))
    suspects = hashes.slice(1).filter(same).unique()
    del hashes, same
    rows: list[int] = []
    if suspects.len():
        same_hash = frame.filter(digest.is_in(suspects.implode()))
        exact = same_hash.select(ROW, key.alias("__k")).collect().sort(ROW)
        if check.skip_null_keys:
            exact = exact.filter(pl.col("__k").is_not_null())
        rows = exact.filter(~pl.col("__k").is_first_distinct())[ROW].to_list()
    suspect = present & digest.is_in(suspects.implode())
    return dataclasses.replace(check, violated=pl.col(ROW).is_in(rows), keys=None), suspect


def _share_result(share: float, quarantined: int, rows: int) -> RuleResult:
    measured = quarantined / rows if rows else 0.0
    passed = measured <= share
    message = (
        f"at most {share:.2%} of rows may be quarantined: {quarantined} of {rows} "
        f"({measured:.2%}) were"
    )
    return RuleResult(
        "maxQuarantineShare",
        None,
        "batch",
        "error",
        message,
        passed=passed,
        measured=round(measured, 6),
        expectation=f"<= {share}",
        message=message,
    )


def _run_sql(query: str, frame: pl.LazyFrame, table: str) -> Any:
    """Run an SQL rule in DuckDB against the batch (its columns read as their contract types);
    the query names the batch ``{object}`` or by the dataset's name."""
    from shipyard.errors import ContractError

    try:
        import duckdb
    except ImportError:
        from shipyard.errors import missing_extra

        raise missing_extra("duckdb", "duckdb", "An SQL quality rule") from None
    batch = frame.collect()
    sql = query.replace("${object}", "batch").replace("{object}", "batch")
    sql = sql.replace(f'"{table}"', "batch")
    connection = duckdb.connect()
    try:
        connection.register("batch", batch.to_arrow())
        connection.register(table, batch.to_arrow())
        row = connection.execute(sql).fetchone()
    except duckdb.Error as exc:
        raise ContractError(
            f"The SQL rule `{query}` failed in DuckDB: {exc}. Refer to the batch as {{object}} "
            f"or {table!r}, and return one number."
        ) from None
    finally:
        connection.close()
    return None if row is None else row[0]


def _plain(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return str(value)
