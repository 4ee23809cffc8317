"""Contract health in production: the logged requests checked against the data contract.

A request carries only the fields the model needs, so the contract is narrowed to the
columns the log holds: their row rules (types, ranges, valid values, nulls) are checked;
dataset-wide rules (volume, freshness, SQL checks) describe upstream's deliveries, not
requests, and are left out. Values never seen in the reference (new categories) are listed
by the drift check, and repeated here for the columns the contract knows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from shipyard.errors import ContractError, MonitoringError

REASONS = "_shipyard_reasons"


class ContractHealth:
    """Checks windows of logged requests against one contract (loaded once)."""

    def __init__(self, path: Path) -> None:
        from shipyard.contracts import Contract

        try:
            self.contract = Contract.load(path)
        except (ContractError, OSError) as exc:
            raise MonitoringError(
                f"[monitoring] contract names {path}, which cannot be read: {exc}. Fix the "
                "path (relative to the project folder) or remove the key."
            ) from exc
        self.path = path

    def check(
        self, frame: pl.DataFrame, new_categories: Mapping[str, Sequence[str]]
    ) -> dict[str, Any]:
        """The share of requests breaking each row rule of the contract, and overall."""
        if frame.height == 0:
            return {
                "checked": 0,
                "violations": 0,
                "violation_share": None,
                "rules": [],
                "new_categories": {},
            }
        narrowed, checked = self._narrowed(frame.columns)
        result = narrowed.validate(frame.select(checked))
        reasons = result.quarantined[REASONS] if result.quarantined is not None else pl.Series([])
        rules = [
            {
                "rule": rule.id,
                "column": rule.column,
                "failed": rule.failed_rows,
                "share": rule.failed_rows / frame.height,
                "severity": rule.severity,
                "message": rule.message,
            }
            for rule in result.report.results
            if rule.kind == "row" and rule.failed_rows
        ]
        violations = int(reasons.list.len().gt(0).sum()) if len(reasons) else 0
        known = set(checked)
        return {
            "checked": frame.height,
            "violations": violations,
            "violation_share": violations / frame.height,
            "rules": rules,
            "new_categories": {c: list(v) for c, v in new_categories.items() if c in known and v},
        }

    def _narrowed(self, columns: Sequence[str]) -> tuple[Any, list[str]]:
        dataset = self.contract.dataset()
        present = set(columns)
        properties = [p for p in dataset.properties if p.name in present]
        narrowed_dataset = dataclasses.replace(
            dataset, properties=properties, quality=[], max_quarantine_share=None
        )
        narrowed = dataclasses.replace(self.contract, schema=[narrowed_dataset], sla=[])
        return narrowed, [p.name for p in properties]
