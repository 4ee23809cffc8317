"""Reading an ODCS document into a ``Contract``, with errors that name the element."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shipyard.errors import ContractError

if TYPE_CHECKING:
    from shipyard.contracts.contract import Contract, Property, QualityRule, SchemaObject, Sla

# Elements that describe rather than constrain: kept as they are, never enforced.
_DESCRIPTIVE_TOP = {
    "name",
    "domain",
    "tenant",
    "tags",
    "description",
    "team",
    "support",
    "servers",
    "dataProduct",
    "price",
    "roles",
    "authoritativeDefinitions",
    "contractCreatedTs",
    "slaDefaultElement",
    "context",
}
_DESCRIPTIVE_OBJECT = {
    "id",
    "physicalName",
    "physicalType",
    "description",
    "businessName",
    "tags",
    "dataGranularityDescription",
    "authoritativeDefinitions",
    "logicalType",
    "synonyms",
    "deprecated",
    "context",
}
_DESCRIPTIVE_PROPERTY = {
    "id",
    "physicalName",
    "businessName",
    "tags",
    "classification",
    "examples",
    "authoritativeDefinitions",
    "criticalDataElement",
    "encryptedName",
    "partitioned",
    "partitionKeyPosition",
    "primaryKeyPosition",
    "transformSourceObjects",
    "transformLogic",
    "transformDescription",
    "synonyms",
    "deprecated",
    "semanticType",
}
_DESCRIPTIVE_RULE = {
    "id",
    "name",
    "description",
    "dimension",
    "businessImpact",
    "method",
    "schedule",
    "scheduler",
    "tags",
    "authoritativeDefinitions",
    "engine",
    "implementation",
}


class ContractParser:
    """Turns parsed YAML into a ``Contract``; every error names the element's path."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.skip: set[str] = set()

    def fail(self, path: str, message: str) -> ContractError:
        return ContractError(f"{self.source}: {path}: {message}")

    def contract(self, data: Any, cls: type[Contract]) -> Contract:
        from shipyard.contracts.contract import API_VERSION

        if not isinstance(data, dict):
            raise ContractError(
                f"{self.source} is not an ODCS contract: expected a YAML mapping with apiVersion, "
                f"kind, id, version and status, got {type(data).__name__}."
            )
        custom = self.custom(data.get("customProperties"), "customProperties")
        self.skip = set(custom.pop("shipyard.skip", []) or [])
        for key in ("apiVersion", "kind", "id", "version", "status"):
            if data.get(key) in (None, ""):
                raise self.fail(key, "is required by ODCS v3. Add it at the top of the file.")
        if data["kind"] != "DataContract":
            raise self.fail("kind", f"must be 'DataContract', got {data['kind']!r}.")
        if not str(data["apiVersion"]).startswith("v3"):
            raise self.fail(
                "apiVersion",
                f"must be an ODCS v3 version such as {API_VERSION!r}, got {data['apiVersion']!r}.",
            )
        known = {
            "apiVersion",
            "kind",
            "id",
            "version",
            "status",
            "schema",
            "slaProperties",
            "customProperties",
            *_DESCRIPTIVE_TOP,
        }
        self.unsupported(data, known, "")
        schema = data.get("schema") or []
        if not isinstance(schema, list):
            raise self.fail("schema", "must be a list of schema objects.")
        objects = [self.schema_object(o, f"schema[{i}]") for i, o in enumerate(schema)]
        sla = [
            self.sla(s, f"slaProperties[{i}]")
            for i, s in enumerate(data.get("slaProperties") or [])
        ]
        extra = {k: data[k] for k in _DESCRIPTIVE_TOP if k in data}
        if custom:
            extra["customProperties"] = custom
        return cls(
            id=str(data["id"]),
            version=str(data["version"]),
            status=str(data["status"]),
            schema=objects,
            name=data.get("name"),
            domain=data.get("domain"),
            api_version=str(data["apiVersion"]),
            sla=[s for s in sla if s is not None],
            skip=sorted(self.skip),
            extra=extra,
            source=self.source,
        )

    def unsupported(self, data: dict[str, Any], known: set[str], path: str) -> None:
        for key in data:
            where = f"{path}.{key}" if path else key
            if key not in known and where not in self.skip:
                raise self.fail(
                    where,
                    "is not supported by shipyard, so it cannot be enforced. Remove it, or list "
                    f"'{where}' under customProperties 'shipyard.skip' to keep it unenforced.",
                )

    def custom(self, raw: Any, path: str) -> dict[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, list) or not all(isinstance(x, dict) for x in raw):
            raise self.fail(path, "must be a list of {property, value} entries.")
        return {str(x.get("property")): x.get("value") for x in raw}

    def schema_object(self, data: Any, path: str) -> SchemaObject:
        from shipyard.contracts.contract import SchemaObject

        if not isinstance(data, dict) or not data.get("name"):
            raise self.fail(path, "must be a mapping with at least a 'name'.")
        path = f"schema.{data['name']}"
        self.unsupported(
            data,
            {
                "name",
                "properties",
                "quality",
                "customProperties",
                "relationships",
                *_DESCRIPTIVE_OBJECT,
            },
            path,
        )
        if data.get("relationships") and f"{path}.relationships" not in self.skip:
            raise self.fail(
                f"{path}.relationships",
                "relationships between datasets are not "
                "enforced by shipyard; list the path under 'shipyard.skip'.",
            )
        custom = self.custom(data.get("customProperties"), f"{path}.customProperties")
        allow_extra = custom.pop("shipyard.allowExtraColumns", True)
        share = custom.pop("shipyard.maxQuarantineShare", None)
        if not isinstance(allow_extra, bool):
            raise self.fail(
                f"{path}.customProperties",
                f"shipyard.allowExtraColumns must be true or false, got {allow_extra!r}.",
            )
        if share is not None and not (isinstance(share, (int, float)) and 0 <= share <= 1):
            raise self.fail(
                f"{path}.customProperties",
                f"shipyard.maxQuarantineShare must be a number between 0 and 1, got {share!r}.",
            )
        props = [
            self.property(p, f"{path}.properties[{i}]")
            for i, p in enumerate(data.get("properties") or [])
        ]
        names = [p.name for p in props]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise self.fail(f"{path}.properties", f"lists {duplicates} more than once.")
        quality = [
            self.rule(q, f"{path}.quality[{i}]", None)
            for i, q in enumerate(data.get("quality") or [])
        ]
        for rule in quality:
            for column in rule.arguments.get("properties") or []:
                if column not in names:
                    raise self.fail(
                        f"{path}.quality",
                        f"a {rule.metric} rule names the property "
                        f"{column!r}, which the dataset does not have.",
                    )
        extra = {k: data[k] for k in _DESCRIPTIVE_OBJECT if k in data}
        if custom:
            extra["customProperties"] = custom
        return SchemaObject(
            name=str(data["name"]),
            properties=props,
            quality=quality,
            allow_extra_columns=allow_extra,
            max_quarantine_share=share,
            description=data.get("description"),
            extra=extra,
        )

    def property(self, data: Any, path: str) -> Property:
        from shipyard.contracts.contract import LOGICAL_TYPES, SEVERITIES, Property

        if not isinstance(data, dict) or not data.get("name"):
            raise self.fail(path, "must be a mapping with at least a 'name'.")
        name = str(data["name"])
        path = f"{path.rsplit('.properties', 1)[0]}.properties.{name}"
        self.unsupported(
            data,
            {
                "name",
                "logicalType",
                "physicalType",
                "required",
                "unique",
                "primaryKey",
                "logicalTypeOptions",
                "quality",
                "customProperties",
                "description",
                "enum",
                "properties",
                "items",
                "map",
                "relationships",
                *_DESCRIPTIVE_PROPERTY,
            },
            path,
        )
        for nested in ("properties", "items", "map", "relationships"):
            if data.get(nested) is not None and f"{path}.{nested}" not in self.skip:
                raise self.fail(
                    f"{path}.{nested}",
                    "nested structures are not enforced by "
                    f"shipyard; list '{path}.{nested}' under 'shipyard.skip'.",
                )
        logical = data.get("logicalType")
        if logical is not None and logical not in LOGICAL_TYPES:
            raise self.fail(
                f"{path}.logicalType",
                f"must be one of {', '.join(LOGICAL_TYPES)}, got {logical!r}.",
            )
        custom = self.custom(data.get("customProperties"), f"{path}.customProperties")
        severity = custom.pop("shipyard.severity", "error")
        if severity not in SEVERITIES:
            raise self.fail(
                f"{path}.customProperties",
                f"shipyard.severity must be 'error' or 'warning', got {severity!r}.",
            )
        options = self.options(
            data.get("logicalTypeOptions") or {}, f"{path}.logicalTypeOptions", logical
        )
        for flag in ("required", "unique", "primaryKey"):
            if not isinstance(data.get(flag, False), bool):
                raise self.fail(f"{path}.{flag}", f"must be true or false, got {data[flag]!r}.")
        quality = [
            self.rule(q, f"{path}.quality[{i}]", name)
            for i, q in enumerate(data.get("quality") or [])
        ]
        extra = {k: data[k] for k in _DESCRIPTIVE_PROPERTY if k in data}
        if data.get("enum") is not None:
            extra["enum"] = data["enum"]
        if custom:
            extra["customProperties"] = custom
        return Property(
            name=name,
            logical_type=logical,
            physical_type=data.get("physicalType"),
            required=bool(data.get("required", False)),
            unique=bool(data.get("unique", False)),
            primary_key=bool(data.get("primaryKey", False)),
            options=options,
            quality=quality,
            severity=severity,
            description=data.get("description"),
            classification=data.get("classification"),
            examples=list(data.get("examples") or []),
            extra=extra,
        )

    def options(self, raw: Any, path: str, logical: str | None) -> dict[str, Any]:
        from shipyard.contracts.contract import OPTION_KEYS

        if not isinstance(raw, dict):
            raise self.fail(path, "must be a mapping (minimum, maximum, pattern, ...).")
        self.unsupported(raw, set(OPTION_KEYS), path)
        numeric = {"minLength", "maxLength"}
        for key in numeric & raw.keys():
            if not isinstance(raw[key], int) or raw[key] < 0:
                raise self.fail(f"{path}.{key}", f"must be a whole number >= 0, got {raw[key]!r}.")
        if "pattern" in raw:
            import re

            try:
                re.compile(str(raw["pattern"]))
            except re.error as exc:
                raise self.fail(
                    f"{path}.pattern", f"is not a valid regular expression: {exc}."
                ) from None
        if "format" in raw and logical not in ("date", "timestamp", "time"):
            raise self.fail(
                f"{path}.format",
                "is only enforced for date, timestamp and time "
                f"properties (a strftime format); this one is {logical!r}.",
            )
        self.contradictions(raw, path)
        return dict(raw)

    def contradictions(self, raw: dict[str, Any], path: str) -> None:
        pairs = (
            ("minimum", "maximum"),
            ("exclusiveMinimum", "exclusiveMaximum"),
            ("minimum", "exclusiveMaximum"),
            ("exclusiveMinimum", "maximum"),
            ("minLength", "maxLength"),
        )
        for low, high in pairs:
            if low in raw and high in raw:
                try:
                    impossible = raw[low] > raw[high] or (
                        "exclusive" in low + high and raw[low] == raw[high]
                    )
                except TypeError:
                    raise self.fail(
                        path,
                        f"{low} {raw[low]!r} and {high} {raw[high]!r} cannot be "
                        "compared; use numbers, or ISO dates for dates.",
                    ) from None
                if impossible:
                    raise self.fail(
                        path,
                        f"contradicts itself: {low} {raw[low]!r} is above "
                        f"{high} {raw[high]!r}, so no value could pass.",
                    )

    def rule(self, data: Any, path: str, column: str | None) -> QualityRule:
        from shipyard.contracts.contract import METRICS, OPERATORS, SEVERITIES, QualityRule

        if not isinstance(data, dict):
            raise self.fail(path, "must be a mapping.")
        self.unsupported(
            data,
            {
                "metric",
                "rule",
                "type",
                "unit",
                "arguments",
                "severity",
                "query",
                "customProperties",
                *OPERATORS,
                *_DESCRIPTIVE_RULE,
            },
            path,
        )
        kind = data.get("type", "library")
        metric = data.get("metric") or data.get("rule")
        if kind == "text":
            return QualityRule(
                type="text",
                description=data.get("description"),
                column=column,
                severity="warning",
                name=data.get("name"),
            )
        if kind not in ("library", "sql"):
            raise self.fail(
                f"{path}.type",
                f"{kind!r} rules cannot be enforced by shipyard; "
                "use a library metric or type: sql.",
            )
        if kind == "library" and metric not in METRICS:
            raise self.fail(
                f"{path}.metric", f"must be one of {', '.join(METRICS)}, got {metric!r}."
            )
        if kind == "sql" and not data.get("query"):
            raise self.fail(f"{path}.query", "an SQL rule needs a query that returns one number.")
        if metric == "rowCount" and column is not None:
            raise self.fail(f"{path}.metric", "rowCount belongs on the dataset, not a property.")
        operators = [op for op in OPERATORS if op in data]
        if len(operators) != 1:
            raise self.fail(
                path,
                "needs exactly one operator (mustBe, mustBeLessThan, ...), got "
                f"{operators or 'none'}.",
            )
        operator = operators[0]
        threshold = data[operator]
        self.threshold(operator, threshold, f"{path}.{operator}")
        unit = data.get("unit", "rows")
        if unit not in ("rows", "percent"):
            raise self.fail(f"{path}.unit", f"must be 'rows' or 'percent', got {unit!r}.")
        severity = data.get("severity", "error")
        if severity not in SEVERITIES:
            raise self.fail(f"{path}.severity", f"must be 'error' or 'warning', got {severity!r}.")
        arguments = data.get("arguments") or {}
        if not isinstance(arguments, dict):
            raise self.fail(f"{path}.arguments", "must be a mapping.")
        if metric == "invalidValues" and not ({"validValues", "pattern"} & arguments.keys()):
            raise self.fail(f"{path}.arguments", "invalidValues needs validValues or pattern.")
        if metric == "duplicateValues" and column is None and not arguments.get("properties"):
            raise self.fail(
                f"{path}.arguments",
                "a dataset-level duplicateValues rule needs "
                "arguments.properties: the columns that must be unique together.",
            )
        if metric in ("nullValues", "missingValues", "invalidValues") and column is None:
            raise self.fail(f"{path}.metric", f"{metric} belongs on a property.")
        return QualityRule(
            metric=metric,
            operator=operator,
            threshold=threshold,
            unit=unit,
            arguments=arguments,
            type=kind,
            query=data.get("query"),
            severity=severity,
            name=data.get("name"),
            description=data.get("description"),
            column=column,
            extra={
                k: data[k]
                for k in _DESCRIPTIVE_RULE
                if k in data and k not in ("name", "description")
            },
        )

    def threshold(self, operator: str, value: Any, path: str) -> None:
        if operator in ("mustBeBetween", "mustNotBeBetween"):
            ok = (
                isinstance(value, list)
                and len(value) == 2
                and all(isinstance(v, (int, float)) for v in value)
                and value[0] <= value[1]
            )
            if not ok:
                raise self.fail(path, f"must be [low, high] with low <= high, got {value!r}.")
        elif not isinstance(value, (int, float)) or isinstance(value, bool):
            raise self.fail(path, f"must be a number, got {value!r}.")

    def sla(self, data: Any, path: str) -> Sla | None:
        from shipyard.contracts.contract import Sla

        if not isinstance(data, dict) or "property" not in data:
            raise self.fail(path, "must be a mapping with property, value and unit.")
        prop = data["property"]
        if prop not in ("freshness", "latency", "frequency"):
            return None  # retention, availability and others describe, not constrain, a batch
        value, unit = data.get("value"), data.get("unit", "d")
        if not isinstance(value, (int, float)) or value <= 0:
            raise self.fail(f"{path}.value", f"must be a positive number, got {value!r}.")
        if _seconds(unit) is None:
            raise self.fail(
                f"{path}.unit",
                f"must be one of s, m, h, d (or seconds, minutes, hours, days), got {unit!r}.",
            )
        if not data.get("element"):
            raise self.fail(
                f"{path}.element",
                f"{prop} needs the timestamp it applies to, as element: dataset.column.",
            )
        extra = {k: v for k, v in data.items() if k not in ("property", "value", "unit", "element")}
        return Sla(prop, float(value), str(unit), str(data["element"]), extra)


def _seconds(unit: str) -> float | None:
    return {
        "s": 1.0,
        "sec": 1.0,
        "second": 1.0,
        "seconds": 1.0,
        "m": 60.0,
        "min": 60.0,
        "minute": 60.0,
        "minutes": 60.0,
        "h": 3600.0,
        "hour": 3600.0,
        "hours": 3600.0,
        "d": 86400.0,
        "day": 86400.0,
        "days": 86400.0,
    }.get(str(unit).lower())


def unit_seconds(unit: str) -> float:
    """Seconds in one SLA unit (validated at parse time)."""
    seconds = _seconds(unit)
    if seconds is None:
        raise ContractError(f"Unknown time unit {unit!r}.")
    return seconds
