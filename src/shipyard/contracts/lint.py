"""``shipyard contract lint``: is this contract valid ODCS, and what will shipyard enforce?"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shipyard.contracts.contract import Contract
from shipyard.errors import ContractError


def lint_contract(path: str | Path) -> dict[str, Any]:
    """Parse the contract (errors name the element), check it against the official ODCS
    model when that package is installed, and list what a reviewer should look at."""
    import yaml

    contract = Contract.load(path)
    notes = _official_model(yaml.safe_load(Path(path).read_text(encoding="utf-8")))
    notes += _review_notes(contract)
    return {
        "contract": contract.id,
        "version": contract.version,
        "checks": _count(contract),
        "notes": notes,
    }


def _official_model(data: Any) -> list[str]:
    try:
        from open_data_contract_standard.model import OpenDataContractStandard
    except ImportError:
        return ["the official ODCS model was not checked: pip install open-data-contract-standard"]
    try:
        OpenDataContractStandard.model_validate(data)
    except Exception as exc:  # pydantic's ValidationError, with every failing field
        raise ContractError(f"The contract is not valid against the ODCS v3 model: {exc}") from None
    return []


def _review_notes(contract: Contract) -> list[str]:
    notes = []
    if "team" not in contract.extra:
        notes.append("no team: say who owns the data, so that consumers know whom to call")
    if contract.status not in ("active", "proposed", "draft", "deprecated", "retired"):
        notes.append(f"status {contract.status!r} is not one ODCS names")
    for obj in contract.schema:
        untyped = [p.name for p in obj.properties if p.logical_type is None]
        if untyped:
            notes.append(f"{obj.name}: no logicalType on {', '.join(untyped)}: not type-checked")
        if not any(p.required or p.primary_key for p in obj.properties):
            notes.append(f"{obj.name}: no property is required")
    return notes


def _count(contract: Contract) -> int:
    total = len(contract.sla)
    for obj in contract.schema:
        total += len([q for q in obj.quality if q.type != "text"])
        total += 1 if obj.max_quarantine_share is not None else 0
        for prop in obj.properties:
            total += sum(
                (
                    prop.logical_type is not None,
                    prop.required or prop.primary_key,
                    prop.unique or prop.primary_key,
                )
            )
            total += len(prop.options) - ("format" in prop.options)
            total += len([q for q in prop.quality if q.type != "text"])
    return total
