"""What checking one batch against a contract found, for people and for machines."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RuleResult:
    """One check's outcome: how many rows broke it, or what the batch measured."""

    id: str
    column: str | None
    kind: str  # "schema" | "row" | "batch"
    severity: str  # "error" | "warning"
    description: str
    passed: bool
    failed_rows: int = 0
    measured: Any = None
    expectation: str = ""
    examples: list[dict[str, Any]] = field(default_factory=list)  # {"row": n, "value": v}
    message: str = ""

    @property
    def blocking(self) -> bool:
        """Whether this result fails rows or the batch (an error that did not pass)."""
        return not self.passed and self.severity == "error"


@dataclass
class ValidationReport:
    """Every check of one batch, the row counts, and the verdict."""

    contract_id: str
    contract_version: str
    dataset: str
    source: str
    rows_in: int
    rows_accepted: int
    rows_quarantined: int
    batch_passed: bool
    results: list[RuleResult]
    new_columns: list[str] = field(default_factory=list)
    checked_at: float = 0.0
    seconds: float = 0.0
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def counts_add_up(self) -> bool:
        """Nothing lost: every row is either accepted or quarantined."""
        return self.rows_in == self.rows_accepted + self.rows_quarantined

    @property
    def passed(self) -> bool:
        """The batch passed and no row was quarantined."""
        return self.batch_passed and self.rows_quarantined == 0

    @property
    def errors(self) -> list[RuleResult]:
        """Failed error-severity checks."""
        return [r for r in self.results if r.blocking]

    @property
    def warnings(self) -> list[RuleResult]:
        """Failed warning-severity checks."""
        return [r for r in self.results if not r.passed and r.severity == "warning"]

    def headline(self) -> str:
        """One line: the verdict and the counts."""
        verdict = "passed" if self.batch_passed else "FAILED"
        return (
            f"{self.dataset} ({self.contract_id} v{self.contract_version}): batch {verdict}; "
            f"{self.rows_in} rows in = {self.rows_accepted} accepted + "
            f"{self.rows_quarantined} quarantined"
        )

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-able data."""
        data = asdict(self)
        data["counts_add_up"] = self.counts_add_up
        data["passed"] = self.passed
        return data

    def to_json(self, indent: int | None = 2) -> str:
        """The report as JSON."""
        return json.dumps(self.to_dict(), indent=indent, default=str)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValidationReport:
        """Read back a report written by ``to_dict``."""
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["results"] = [RuleResult(**r) for r in data["results"]]
        return cls(**fields)

    def to_html(self) -> str:
        """A self-contained HTML page with the results, examples and distributions."""
        from shipyard.contracts._html import report_html

        return str(report_html(self, self.profiles))

    def write_html(self, path: str | Path) -> Path:
        """Write ``to_html()`` to ``path``."""
        target = Path(path)
        target.write_text(self.to_html(), encoding="utf-8")
        return target


def explain(result: RuleResult, raw_is_text: bool) -> str:
    """The sentence a person reads for one failed check."""
    if result.kind == "schema" or result.kind == "batch":
        return result.message or result.description
    first = result.examples[0] if result.examples else None
    where = ""
    if first is not None:
        where = f" (first: {first['value']!r} in row {first['row']})"
    noun = "value" if result.failed_rows == 1 else "values"
    if result.id.endswith(".type"):
        kind = "text" if raw_is_text else "of another type"
        return (
            f"column `{result.column}` {result.description.split(' ', 1)[1]}, but "
            f"{result.failed_rows} {noun} {'is' if result.failed_rows == 1 else 'are'} "
            f"{kind}{where}"
        )
    rows = "row breaks" if result.failed_rows == 1 else "rows break"
    return f"{result.description}: {result.failed_rows} {rows} it{where}"
