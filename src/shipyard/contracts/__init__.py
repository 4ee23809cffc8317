"""Data contracts: the agreement with an upstream data owner, enforced at ingestion.

from shipyard.contracts import Contract
contract = Contract.load("contracts/transactions.yaml")
result = contract.validate(batch)        # report, accepted rows, quarantined rows
"""

from __future__ import annotations

from shipyard.contracts.contract import Contract, Property, QualityRule, SchemaObject, Sla
from shipyard.contracts.report import RuleResult, ValidationReport
from shipyard.contracts.validation import ValidationResult, validate

__all__ = [
    "Contract",
    "Property",
    "QualityRule",
    "RuleResult",
    "SchemaObject",
    "Sla",
    "ValidationReport",
    "ValidationResult",
    "validate",
]
