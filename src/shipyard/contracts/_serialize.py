"""Writing a ``Contract`` back as an ODCS v3 document."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipyard.contracts.contract import Contract, Property, QualityRule, SchemaObject


def contract_to_dict(contract: Contract) -> dict[str, Any]:
    """The ODCS document for ``contract`` (keys in the order the standard lists them)."""
    extra = dict(contract.extra)
    custom = dict(extra.pop("customProperties", {}))
    if contract.skip:
        custom["shipyard.skip"] = list(contract.skip)
    doc: dict[str, Any] = {
        "apiVersion": contract.api_version,
        "kind": "DataContract",
        "id": contract.id,
        "version": contract.version,
        "status": contract.status,
    }
    for key in ("name", "domain"):
        if getattr(contract, key) is not None:
            doc[key] = getattr(contract, key)
    doc.update(extra)
    doc["schema"] = [_object(obj) for obj in contract.schema]
    if contract.sla:
        doc["slaProperties"] = [
            {
                "property": s.property,
                "value": _number(s.value),
                "unit": s.unit,
                **({"element": s.element} if s.element else {}),
                **s.extra,
            }
            for s in contract.sla
        ]
    if custom:
        doc["customProperties"] = _custom(custom)
    return doc


def _object(obj: SchemaObject) -> dict[str, Any]:
    extra = dict(obj.extra)
    custom = dict(extra.pop("customProperties", {}))
    if not obj.allow_extra_columns:
        custom["shipyard.allowExtraColumns"] = False
    if obj.max_quarantine_share is not None:
        custom["shipyard.maxQuarantineShare"] = obj.max_quarantine_share
    out: dict[str, Any] = {"name": obj.name, **extra}
    if obj.description is not None:
        out["description"] = obj.description
    out["properties"] = [_property(p) for p in obj.properties]
    if obj.quality:
        out["quality"] = [_rule(q) for q in obj.quality]
    if custom:
        out["customProperties"] = _custom(custom)
    return out


def _property(prop: Property) -> dict[str, Any]:
    extra = dict(prop.extra)
    custom = dict(extra.pop("customProperties", {}))
    if prop.severity != "error":
        custom["shipyard.severity"] = prop.severity
    out: dict[str, Any] = {"name": prop.name}
    for key, value in (
        ("logicalType", prop.logical_type),
        ("physicalType", prop.physical_type),
        ("description", prop.description),
        ("classification", prop.classification),
    ):
        if value is not None:
            out[key] = value
    for key, flag in (
        ("required", prop.required),
        ("unique", prop.unique),
        ("primaryKey", prop.primary_key),
    ):
        if flag:
            out[key] = True
    if prop.options:
        out["logicalTypeOptions"] = dict(prop.options)
    if prop.examples:
        out["examples"] = list(prop.examples)
    out.update(extra)
    if prop.quality:
        out["quality"] = [_rule(q) for q in prop.quality]
    if custom:
        out["customProperties"] = _custom(custom)
    return out


def _rule(rule: QualityRule) -> dict[str, Any]:
    if rule.type == "text":
        return {"type": "text", **({"description": rule.description} if rule.description else {})}
    out: dict[str, Any] = {}
    if rule.name:
        out["name"] = rule.name
    if rule.description:
        out["description"] = rule.description
    if rule.type == "sql":
        out["type"] = "sql"
        out["query"] = rule.query
    else:
        out["metric"] = rule.metric
    if rule.arguments:
        out["arguments"] = dict(rule.arguments)
    assert rule.operator is not None
    out[rule.operator] = rule.threshold
    if rule.unit != "rows":
        out["unit"] = rule.unit
    if rule.severity != "error":
        out["severity"] = rule.severity
    out.update(rule.extra)
    return out


def _custom(values: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"property": key, "value": value} for key, value in values.items()]


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value
