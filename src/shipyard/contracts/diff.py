"""Breaking-change detection between two versions of a data contract.

    from shipyard.contracts import Contract
    from shipyard.contracts.diff import diff_contracts
    diff = diff_contracts(Contract.load("v1.yaml"), Contract.load("v2.yaml"))
    print(diff.summary())                  # exit 1 in CI when diff.is_breaking

Every change is classified for the consumer, the team that reads data under the
contract:

- **breaking**: a batch that passed the old contract may fail the new one, or data
  the consumer relied on may disappear or change meaning: a removed or renamed
  dataset or property; a type that does not widen; a property newly required,
  unique or primaryKey; a tighter range, length, pattern or a changed format; a
  removed allowed value; a tighter tolerance; a new error rule or a warning turned
  error; a stricter SLA; ``shipyard.allowExtraColumns`` true→false; a lower
  ``shipyard.maxQuarantineShare``. A tightening of a check that only warns is
  compatible: it cannot fail a batch.
- **compatible**: the reverse loosenings, an added optional property or dataset,
  a new warning rule, a removed rule.
- **info**: descriptions, names, team, support, status, version, and advice when a
  breaking change comes without a major version bump.

Decisions: integer→number and date→timestamp widen (the engine reads every
integer as a number and every date as a timestamp); anything→string is breaking,
because the engine reads ``string`` only from text columns and consumers would
get text where they parsed numbers or dates. Removing ``format`` is breaking: text
is then parsed as ISO, so values in the old format fail. A removed property
followed by an added one of the same type is reported as a likely rename
(still breaking).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.contracts._diff_rules import (
    Change,
    Kind,
    bound_kind,
    event,
    option_changes,
    rule_changes,
    severity_change,
    soften,
    verb,
)
from shipyard.contracts._parse import unit_seconds

if TYPE_CHECKING:
    from shipyard.contracts.contract import Contract, Property, SchemaObject, Sla

__all__ = ["Change", "ContractDiff", "diff_contracts"]

# Type changes under which every value the engine read before still reads (see ``_types``).
_WIDENINGS = {("integer", "number"), ("date", "timestamp")}
_RENAME_SIMILARITY = 0.6  # name similarity that picks one of several same-typed candidates


@dataclass
class ContractDiff:
    """The changes from one version of a contract to the next, classified."""

    contract: str
    old_version: str
    new_version: str
    changes: list[Change] = field(default_factory=list)

    @property
    def breaking(self) -> list[Change]:
        """Changes after which a batch that passed may fail, or data may disappear."""
        return self._of("breaking")

    @property
    def compatible(self) -> list[Change]:
        """Changes every consumer and every passing batch can live with."""
        return self._of("compatible")

    @property
    def info(self) -> list[Change]:
        """Descriptive changes and version advice."""
        return self._of("info")

    @property
    def is_breaking(self) -> bool:
        """True when at least one change breaks consumers."""
        return any(c.kind == "breaking" for c in self.changes)

    def _of(self, kind: Kind) -> list[Change]:
        return [c for c in self.changes if c.kind == kind]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready document: the versions, counts per kind, and every change."""
        return {
            "contract": self.contract,
            "old_version": self.old_version,
            "new_version": self.new_version,
            "breaking": self.is_breaking,
            "counts": {k: len(self._of(k)) for k in ("breaking", "compatible", "info")},
            "changes": [c.to_dict() for c in self.changes],
        }

    def summary(self) -> str:
        """The changes as text, breaking ones first, one per line."""
        head = f"{self.contract} {self.old_version} → {self.new_version}: "
        if not self.changes:
            return head + "no changes"
        counts = ", ".join(f"{len(self._of(k))} {k}" for k in ("breaking", "compatible", "info"))
        lines = [head + counts]
        for kind in ("breaking", "compatible", "info"):
            changes = self._of(kind)
            if changes:
                lines.append(f"{kind.upper()}:")
                lines += [
                    f"  {c.path}: {c.what} ({_show(c.old)} → {_show(c.new)}); {c.reason}"
                    for c in changes
                ]
        return "\n".join(lines)


def _show(value: Any) -> str:
    return "-" if value is None else repr(value) if isinstance(value, str) else str(value)


def diff_contracts(old: Contract, new: Contract) -> ContractDiff:
    """Compare two versions of a contract and classify every change for the consumer."""
    changes = _described("", _top(old), _top(new))
    changes += _datasets(old.schema, new.schema)
    changes += _slas(old.sla, new.sla)
    changes += _version_advice(old.version, new.version, changes)
    return ContractDiff(new.id, old.version, new.version, changes)


def _top(contract: Contract) -> dict[str, Any]:
    return {
        **contract.extra,
        "id": contract.id,
        "apiVersion": contract.api_version,
        "name": contract.name,
        "domain": contract.domain,
        "status": contract.status,
        "version": contract.version,
        "customProperties.shipyard.skip": contract.skip,
    }


def _described(path: str, old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Elements that describe rather than constrain: information, in name order."""
    prefix = f"{path}." if path else ""
    why = "descriptive: nothing is checked against it"
    return [
        Change(
            "info",
            prefix + key,
            f"{key} {verb(old.get(key), new.get(key))}",
            old.get(key),
            new.get(key),
            why,
        )
        for key in sorted(old.keys() | new.keys())
        if old.get(key) != new.get(key)
    ]


# -- datasets ------------------------------------------------------------------------------


def _datasets(old: list[SchemaObject], new: list[SchemaObject]) -> list[Change]:
    olds = {o.name: o for o in old}
    names = {o.name for o in new}
    changes = [
        event("dataset removed", f"schema.{o.name}", o.name, None)
        for o in old
        if o.name not in names
    ]
    for obj in new:
        path = f"schema.{obj.name}"
        if obj.name in olds:
            changes += _dataset(path, olds[obj.name], obj)
        else:
            changes.append(event("dataset added", path, None, obj.name))
    return changes


def _dataset(path: str, a: SchemaObject, b: SchemaObject) -> list[Change]:
    changes = _described(
        path, {**a.extra, "description": a.description}, {**b.extra, "description": b.description}
    )
    custom = f"{path}.customProperties.shipyard"
    if a.allow_extra_columns != b.allow_extra_columns:
        what = "extra columns allowed" if b.allow_extra_columns else "extra columns forbidden"
        where = f"{custom}.allowExtraColumns"
        changes.append(event(what, where, a.allow_extra_columns, b.allow_extra_columns))
    old, new = a.max_quarantine_share, b.max_quarantine_share
    if old != new:
        limits = [None if x is None else (x, False) for x in (old, new)]
        kind, reason = bound_kind("upper", *limits)
        what = f"maxQuarantineShare {verb(old, new)}"
        where = f"{custom}.maxQuarantineShare"
        changes.append(Change(kind, where, what, old, new, f"quarantined share: {reason}"))
    changes += _properties(path, a.properties, b.properties)
    changes += rule_changes(path, a.quality, b.quality)
    return changes


# -- properties ----------------------------------------------------------------------------


def _properties(path: str, old: list[Property], new: list[Property]) -> list[Change]:
    olds = {p.name: p for p in old}
    news = {p.name: p for p in new}
    removed = [p for p in old if p.name not in news]
    added = [p for p in new if p.name not in olds]
    renames = _renames(removed, added)
    changes = []
    for prop in removed:
        where = f"{path}.properties.{prop.name}"
        twin = renames.get(prop.name)
        if twin is None:
            changes.append(event("property removed", where, prop.name, None))
        else:
            changes.append(event("property renamed", where, prop.name, twin.name))
            changes += _property(f"{path}.properties.{twin.name}", prop, twin)
    paired = {p.name for p in renames.values()}
    for prop in new:
        where = f"{path}.properties.{prop.name}"
        if prop.name in olds:
            changes += _property(where, olds[prop.name], prop)
        elif prop.name not in paired:
            changes.append(_added_property(where, prop))
    return changes


def _renames(removed: list[Property], added: list[Property]) -> dict[str, Property]:
    """Pairs each removed property with an added one of the same type: the only one, or
    the one whose name is most alike."""
    pairs: dict[str, Property] = {}
    left = list(added)
    for prop in removed:
        same = [p for p in left if p.logical_type == prop.logical_type]
        if len(same) > 1:
            names = difflib.get_close_matches(
                prop.name, [p.name for p in same], n=1, cutoff=_RENAME_SIMILARITY
            )
            same = [p for p in same if p.name in names]
        if len(same) == 1:
            pairs[prop.name] = same[0]
            left.remove(same[0])
    return pairs


def _added_property(path: str, prop: Property) -> Change:
    required = (prop.required or prop.primary_key) and prop.severity == "error"
    return event("required property added" if required else "property added", path, None, prop.name)


def _property(path: str, a: Property, b: Property) -> list[Change]:
    changes = []
    if a.logical_type != b.logical_type:
        changes.append(_type_change(path, a.logical_type, b.logical_type))
    changes += _flags(path, a, b)
    changes += option_changes(f"{path}.logicalTypeOptions", a.options, b.options)
    changes = soften(changes, b.severity)
    if a.primary_key != b.primary_key:  # not softened: a composite key always fails as error
        kind: Kind = "breaking" if b.primary_key else "compatible"
        what = f"primaryKey {_flag(b.primary_key)}"
        reason = "must be present and unique" if b.primary_key else "no longer has to be unique"
        changes.append(
            Change(kind, f"{path}.primaryKey", what, a.primary_key, b.primary_key, reason)
        )
    if a.severity != b.severity:
        changes.append(
            severity_change(f"{path}.customProperties.shipyard.severity", a.severity, b.severity)
        )
    changes += rule_changes(path, a.quality, b.quality)
    changes += _described(path, _descriptive(a), _descriptive(b))
    return changes


def _descriptive(prop: Property) -> dict[str, Any]:
    return {
        **prop.extra,
        "description": prop.description,
        "physicalType": prop.physical_type,
        "classification": prop.classification,
        "examples": prop.examples,
    }


def _flags(path: str, a: Property, b: Property) -> list[Change]:
    changes = []
    for name, old, new in (("required", a.required, b.required), ("unique", a.unique, b.unique)):
        if old == new:
            continue
        if new:
            # A primary key must be present anyway: `required` on it changes nothing.
            implied = name == "required" and a.primary_key
            kind: Kind = "compatible" if implied else "breaking"
            reason = (
                "already enforced by primaryKey"
                if implied
                else f"batches that break `{name}` now fail"
            )
        else:
            kind, reason = "compatible", f"`{name}` is no longer checked"
        changes.append(Change(kind, f"{path}.{name}", f"{name} {_flag(new)}", old, new, reason))
    return changes


def _flag(on: bool) -> str:
    return "set" if on else "unset"


def _type_change(path: str, old: str | None, new: str | None) -> Change:
    kind: Kind = "breaking"
    if new is None:
        kind, reason = "compatible", "values are no longer checked against a type"
    elif old is None:
        reason = f"values must now read as {new}"
    elif (old, new) in _WIDENINGS:
        kind, reason = "compatible", f"every {old} value also reads as {new}"
    else:
        reason = f"{old} values need not read as {new}, and consumers get another type"
    return Change(kind, f"{path}.logicalType", f"logicalType {verb(old, new)}", old, new, reason)


# -- service levels ------------------------------------------------------------------------


def _slas(old: list[Sla], new: list[Sla]) -> list[Change]:
    """SLAs are matched by property and element; a shorter limit is stricter."""
    olds = {f"slaProperties.{s.property}({s.element})": s for s in old}
    news = {f"slaProperties.{s.property}({s.element})": s for s in new}
    changes = [_sla_pair(path, a, news.get(path)) for path, a in olds.items()]
    changes += [event("SLA added", p, None, _limit(b)) for p, b in news.items() if p not in olds]
    return [c for c in changes if c is not None]


def _sla_pair(path: str, a: Sla, b: Sla | None) -> Change | None:
    if b is None:
        return event("SLA removed", path, _limit(a), None)
    old, new = a.value * unit_seconds(a.unit), b.value * unit_seconds(b.unit)
    if new < old:
        return event("SLA tightened", path, _limit(a), _limit(b))
    if new > old:
        return event("SLA loosened", path, _limit(a), _limit(b))
    if (a.value, a.unit, a.extra) != (b.value, b.unit, b.extra):
        return event("SLA rewritten", path, _limit(a), _limit(b))
    return None


def _limit(sla: Sla | None) -> str | None:
    return None if sla is None else f"{sla.value:g}{sla.unit}"


# -- versions ------------------------------------------------------------------------------


# 1, 1.2, 1.2.3, v1.2.3, 1.2.3-rc.1+build (a pre-release or build only after all three parts)
_SEMVER = re.compile(r"v?(\d+)(?:\.(\d+)(?:\.(\d+)(?:[-+][0-9A-Za-z.+-]+)?)?)?")


def _version_advice(old: str, new: str, changes: list[Change]) -> list[Change]:
    """Semantic versioning: a breaking change needs a new major version (a new minor one
    while the major is 0)."""
    count = sum(c.kind == "breaking" for c in changes)
    a, b = _semver(old), _semver(new)
    if not count or (a and b and (b[0] > a[0] or (a[0] == b[0] == 0 and b[1] > a[1]))):
        return []
    plural = "s" if count > 1 else ""
    if old == new:
        what, advice = "version not bumped", "the version stayed the same"
    elif a is None or b is None:
        what, advice = "version not semantic", f"cannot tell whether {new!r} is a major bump"
    else:
        what, advice = "major version not bumped", f"semantic versioning expects {a[0] + 1}.0.0"
    reason = f"{count} breaking change{plural}, but {advice}"
    return [Change("info", "version", what, old, new, reason)]


def _semver(version: str) -> tuple[int, int, int] | None:
    match = _SEMVER.fullmatch(version)
    if match is None:
        return None
    major, minor, patch = (int(g or 0) for g in match.groups())
    return major, minor, patch
