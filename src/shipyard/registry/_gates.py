"""Which gate record lets a version be promoted, and why a promotion is refused."""

from __future__ import annotations

from typing import Any

from shipyard.errors import PromotionRefusedError

Row = dict[str, Any]


def approving_gate(
    records: list[Row], name: str, version: int, gate_id: str | None, *, force: bool, reason: str
) -> str | None:
    """The id of the gate record a promotion of ``name:version`` relies on.

    Args:
        records: the gate records of model ``name``, every version, newest first.
        name: the model.
        version: the version being promoted.
        gate_id: the record the caller names; None means the version's newest one.
        force: promote even without a passing record (needs ``reason``).
        reason: why the caller promotes.

    Raises:
        PromotionRefusedError: ``force`` without a reason; ``gate_id`` not a record of
            that version; or, without ``force``, no record or a record that failed.
    """
    ref = f"{name}:{version}"
    if force and not reason.strip():
        raise PromotionRefusedError(
            f"Promoting {ref} with force=True skips its gate, so a reason is required: "
            "pass reason='...' saying why (it is kept in the audit log)."
        )
    gate = _chosen(records, name, version, gate_id)
    if force:
        return None if gate is None else str(gate["id"])
    if gate is None:
        raise PromotionRefusedError(
            f"{ref} has no gate record, so it cannot be promoted. Evaluate it and record "
            "the gate with Registry.record_gate(...), or pass force=True with a reason."
        )
    if not gate["passed"]:
        which = "The gate record" if gate_id else "The newest gate record"
        raise PromotionRefusedError(
            f"{which} of {ref} (id {gate['id']}) failed, so it cannot be promoted. Record a "
            "passing gate, or pass force=True with a reason to override it."
        )
    return str(gate["id"])


def _chosen(records: list[Row], name: str, version: int, gate_id: str | None) -> Row | None:
    ref = f"{name}:{version}"
    mine = [r for r in records if r["version"] == version]
    if gate_id is None:
        return mine[0] if mine else None
    found = next((r for r in records if r["id"] == str(gate_id)), None)
    if found is None or found["version"] != version:
        about = "" if found is None else f" (it is about {name}:{found['version']})"
        ids = ", ".join(r["id"] for r in mine) or "none"
        raise PromotionRefusedError(
            f"Gate record {gate_id!r} is not a record of {ref}{about}. "
            f"The gate records of {ref}: {ids}."
        )
    return found


def judged_against(records: list[Row], gate_id: str | None, name: str, alias: str) -> int | None:
    """The version of ``name`` the gate ``gate_id`` compared with, when it says so and was
    judged against ``alias``; None for no baseline; ``UNKNOWN`` when it does not say."""
    from shipyard.registry._aliases import UNKNOWN

    record = next((r["record"] for r in records if str(r["id"]) == gate_id), None)
    if not isinstance(record, dict) or "baseline" not in record:
        return UNKNOWN
    against = str(record.get("against", alias)).rpartition("@")[
        2
    ]  # "fraud@production" or "production"
    if against != alias:
        return UNKNOWN
    baseline = record["baseline"]
    if baseline is None:
        return None
    version = record.get("baseline_version")
    if isinstance(version, int):
        return version
    model, _, number = str(baseline).partition(":")
    return int(number) if model == name and number.isdigit() else UNKNOWN
