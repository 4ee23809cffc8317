"""A data contract: the agreement with an upstream data owner, in ODCS v3.

The file format is the Open Data Contract Standard (bitol-io), so that the
upstream team reads and tests the same file with its own tools. shipyard's own
settings live in ``customProperties`` under names starting with ``shipyard.``:

- on a schema object: ``shipyard.allowExtraColumns`` (default true) and
  ``shipyard.maxQuarantineShare`` (0..1, the largest share of rows that may be
  quarantined before the whole batch fails);
- on a property: ``shipyard.severity`` (``error`` or ``warning``) for the checks
  that come from the schema (type, required, logicalTypeOptions);
- at the top: ``shipyard.skip``, a list of element paths that shipyard should
  not enforce (e.g. ``schema.payments.properties.address.properties``).

Every element that shipyard would have to enforce but cannot is an error that
names the element, unless it is listed in ``shipyard.skip``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.contracts._parse import ContractParser
from shipyard.errors import ContractError

API_VERSION = "v3.1.0"
LOGICAL_TYPES = (
    "string",
    "date",
    "timestamp",
    "time",
    "number",
    "integer",
    "object",
    "array",
    "boolean",
)
OPERATORS = (
    "mustBe",
    "mustNotBe",
    "mustBeGreaterThan",
    "mustBeGreaterOrEqualTo",
    "mustBeLessThan",
    "mustBeLessOrEqualTo",
    "mustBeBetween",
    "mustNotBeBetween",
)
METRICS = ("nullValues", "missingValues", "invalidValues", "duplicateValues", "rowCount")
SEVERITIES = ("error", "warning")
OPTION_KEYS = (
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "pattern",
    "format",
    "minLength",
    "maxLength",
)


@dataclass
class QualityRule:
    """One ODCS quality rule: a metric (or SQL query) compared with one operator."""

    metric: str | None = None
    operator: str | None = None
    threshold: Any = None
    unit: str = "rows"
    arguments: dict[str, Any] = field(default_factory=dict)
    type: str = "library"
    query: str | None = None
    severity: str = "error"
    name: str | None = None
    description: str | None = None
    column: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def zero_tolerance(self) -> bool:
        """True when the rule passes only if no row breaks it (so breaking rows are
        quarantined one by one instead of counted against a tolerance)."""
        t = self.threshold
        return (
            (self.operator == "mustBe" and t == 0)
            or (
                self.operator == "mustBeLessThan"
                and isinstance(t, (int, float))
                and 0 < t <= 1
                and self.unit == "rows"
            )
            or (self.operator == "mustBeLessThan" and t == 0)
            or (self.operator == "mustBeLessOrEqualTo" and t == 0)
            or (self.operator == "mustBeBetween" and list(t or []) == [0, 0])
        )


@dataclass
class Property:
    """One column of a dataset and what the contract says about it."""

    name: str
    logical_type: str | None = None
    physical_type: str | None = None
    required: bool = False
    unique: bool = False
    primary_key: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    quality: list[QualityRule] = field(default_factory=list)
    severity: str = "error"
    description: str | None = None
    classification: str | None = None
    examples: list[Any] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class SchemaObject:
    """One dataset (table) of the contract."""

    name: str
    properties: list[Property] = field(default_factory=list)
    quality: list[QualityRule] = field(default_factory=list)
    allow_extra_columns: bool = True
    max_quarantine_share: float | None = None
    description: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def property(self, name: str) -> Property:
        """The property called ``name``."""
        for prop in self.properties:
            if prop.name == name:
                return prop
        known = ", ".join(p.name for p in self.properties)
        raise ContractError(f"Dataset {self.name!r} has no property {name!r}. Known: {known}.")


@dataclass
class Sla:
    """A service-level property: freshness/latency or frequency on a timestamp element."""

    property: str
    value: float
    unit: str
    element: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Contract:
    """A data contract (ODCS v3). Load one with ``Contract.load(path)``.

    ``contract.validate(data)`` checks a batch against it and splits the rows
    into accepted and quarantined ones, with a report.
    """

    id: str
    version: str
    status: str
    schema: list[SchemaObject]
    name: str | None = None
    domain: str | None = None
    api_version: str = API_VERSION
    sla: list[Sla] = field(default_factory=list)
    skip: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    source: str | None = field(default=None, compare=False)

    # -- reading and writing ---------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path) -> Contract:
        """Read a contract from an ODCS YAML file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ContractError(f"No contract file at {path}.") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ContractError(f"Cannot read the contract {path}: {exc}.") from exc
        return cls.from_yaml(text, source=str(path))

    @classmethod
    def from_yaml(cls, text: str, *, source: str = "<string>") -> Contract:
        """Parse an ODCS YAML document."""
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ContractError(
                f"{source} is not valid YAML: {exc}. Fix the syntax at the line shown."
            ) from None
        return cls.from_dict(data, source=source)

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "<dict>") -> Contract:
        """Build from a parsed ODCS document, checking every element shipyard enforces."""
        return ContractParser(source).contract(data, cls)

    def to_dict(self) -> dict[str, Any]:
        """The contract as an ODCS v3 document."""
        from shipyard.contracts._serialize import contract_to_dict

        return contract_to_dict(self)

    def to_yaml(self) -> str:
        """The contract as ODCS v3 YAML."""
        import yaml

        return str(yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True))

    def save(self, path: str | Path) -> Path:
        """Write the contract as ODCS YAML."""
        target = Path(path)
        target.write_text(self.to_yaml(), encoding="utf-8")
        return target

    # -- using it ----------------------------------------------------------------------

    def dataset(self, name: str | None = None) -> SchemaObject:
        """The schema object called ``name`` (or the only one)."""
        if name is None:
            if len(self.schema) != 1:
                names = ", ".join(s.name for s in self.schema)
                raise ContractError(
                    f"Contract {self.id!r} has {len(self.schema)} datasets ({names}); "
                    "say which one to use."
                )
            return self.schema[0]
        for obj in self.schema:
            if obj.name == name:
                return obj
        names = ", ".join(s.name for s in self.schema)
        raise ContractError(f"Contract {self.id!r} has no dataset {name!r}. Datasets: {names}.")

    def validate(self, data: Any, *, dataset: str | None = None, **options: Any) -> Any:
        """Check ``data`` (a frame, an Arrow table, or Parquet/CSV/JSON-lines paths).

        Returns a ``ValidationResult`` with ``report``, ``accepted`` and ``quarantined``.
        See ``shipyard.contracts.validate`` for the options.
        """
        from shipyard.contracts.validation import validate

        return validate(self, data, dataset=dataset, **options)
