"""Ingestion as a pipeline step: validate each delivery, keep what passed, explain the rest.

    from shipyard.contracts.ingest import ingest

    @pipeline
    def training(files: list[str] = ["data/transactions_2026-01-*.parquet"]):
        data = ingest(files, "contracts/transactions.yaml")
        return train(featurize(data))

Each file is one delivery (one batch): it is checked against the contract on
its own, so one broken delivery does not stop the others. The step's output is
the accepted rows of every passing batch, read as their contract types. It also
saves two artifacts, kept even when the step fails: ``quarantine`` (every
rejected row as delivered, with its reasons, the contract version and the file
it came from) and ``report`` (the validation report of every batch).

With ``fail_on_batch_error`` (the default) the step fails, and with it the run,
when any batch fails a batch-level error rule; the artifacts are kept all the
same, to be inspected and released later (``shipyard contract release``).
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

import polars as pl

from shipyard.contracts.contract import Contract
from shipyard.contracts.validation import ValidationResult, validate
from shipyard.core.context import get_context
from shipyard.core.step import step
from shipyard.errors import ContractViolation, DataInputError

CONTRACT_VERSION = "_shipyard_contract_version"
SOURCE = "_shipyard_source"


@step(cache=False)
def ingest(
    sources: list[str] | str,
    contract: str,
    dataset: str | None = None,
    fail_on_batch_error: bool = True,
) -> pl.DataFrame:
    """Validate every delivery in ``sources`` (paths or globs, relative to the project)
    against ``contract``; return the accepted rows."""
    context = get_context()
    agreed = Contract.load(context.project_root / contract)
    results = [
        (path, validate(agreed, str(path), dataset=dataset))
        for path in _deliveries(context.project_root, sources)
    ]
    report = summarize(agreed, results)
    context.save("report", report)
    context.save("quarantine", _quarantine(agreed, results))
    for key in ("rows_in", "rows_accepted", "rows_quarantined", "batches_failed"):
        context.log_metric(key, report[key])
    if report["batches_failed"] and fail_on_batch_error:
        raise ContractViolation(_failure(report), report)
    accepted = [r.accepted for _, r in results if r.report.batch_passed and r.accepted is not None]
    if not accepted:
        raise ContractViolation(_failure(report) or "No delivery passed the contract.", report)
    return pl.concat(accepted, how="diagonal_relaxed")


def _deliveries(root: Path, sources: list[str] | str) -> list[Path]:
    patterns = [sources] if isinstance(sources, str) else list(sources)
    found: list[Path] = []
    for pattern in patterns:
        full = str(root / pattern)
        matched = sorted(glob.glob(full)) if any(c in pattern for c in "*?[") else [full]
        found += [Path(m) for m in matched if Path(m).exists()]
    if not found:
        raise DataInputError(
            f"No delivery found for {patterns} under {root}. Check the paths, or wait for upstream."
        )
    return found


def summarize(contract: Contract, results: list[tuple[Path, ValidationResult]]) -> dict[str, Any]:
    """One JSON-able report over all the batches of one ingestion."""
    batches = [{"source": str(path), **r.report.to_dict()} for path, r in results]
    return {
        "contract_id": contract.id,
        "contract_version": contract.version,
        "batches": batches,
        "batches_failed": sum(not b["batch_passed"] for b in batches),
        "rows_in": sum(b["rows_in"] for b in batches),
        "rows_accepted": sum(b["rows_accepted"] for b in batches),
        "rows_quarantined": sum(b["rows_quarantined"] for b in batches),
    }


def _quarantine(contract: Contract, results: list[tuple[Path, ValidationResult]]) -> pl.DataFrame:
    frames = [
        r.quarantined.with_columns(
            pl.lit(contract.version).alias(CONTRACT_VERSION), pl.lit(str(path)).alias(SOURCE)
        )
        for path, r in results
        if r.quarantined is not None and r.quarantined.height
    ]
    if not frames:
        return pl.DataFrame(schema={CONTRACT_VERSION: pl.String, SOURCE: pl.String})
    return pl.concat(frames, how="diagonal_relaxed")


def _failure(report: dict[str, Any]) -> str:
    lines = []
    for batch in report["batches"]:
        if batch["batch_passed"]:
            continue
        errors = [
            r["message"]
            for r in batch["results"]
            if not r["passed"] and r["severity"] == "error" and r["kind"] != "row"
        ]
        lines.append(f"{batch['source']}: " + "; ".join(errors))
    if not lines:
        return ""
    return (
        f"{len(lines)} of {len(report['batches'])} deliveries failed contract "
        f"{report['contract_id']} v{report['contract_version']}: "
        + " | ".join(lines)
        + ". Their rows are in the step's quarantine artifact; fix upstream, then "
        "`shipyard contract release`."
    )
