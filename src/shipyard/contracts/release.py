"""Releasing quarantined rows once they pass (after the upstream fix, or a contract fix)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import polars as pl

from shipyard.contracts.contract import Contract
from shipyard.contracts.validation import validate
from shipyard.errors import DataInputError

_SHIPYARD_COLUMNS = (
    "_shipyard_row",
    "_shipyard_reasons",
    "_shipyard_contract_version",
    "_shipyard_source",
)


def release_quarantine(
    quarantine: str | Path, contract: str | Path, into: str | Path, *, dataset: str | None = None
) -> dict[str, Any]:
    """Re-check quarantined rows against ``contract``; write those that pass to ``into``.

    ``quarantine`` is a Parquet file or, inside a project, a quarantine artifact id. A file
    keeps only the rows that still fail, rewritten whole or not at all; nothing is lost:
    ``released + remaining == rows_in``.
    """
    rows, source = _load(quarantine)
    original = rows.drop([c for c in _SHIPYARD_COLUMNS if c in rows.columns])
    result = validate(Contract.load(contract), original, dataset=dataset)
    released, remaining = result.accepted, result.quarantined
    if released is None or remaining is None:  # validate() returns frames when no paths are given
        raise AssertionError("validation returned no frames")
    target = Path(into)
    if target.exists():
        raise DataInputError(f"{target} exists; release into a new file so nothing is overwritten.")
    _write_whole(released, target)
    remaining_path = None
    if source is not None:
        _write_whole(remaining, source)
        remaining_path = str(source)
    return {
        "rows_in": rows.height,
        "released": released.height,
        "remaining": remaining.height,
        "into": str(target),
        "remaining_path": remaining_path,
        "report": result.report.to_dict(),
    }


def _load(quarantine: str | Path) -> tuple[pl.DataFrame, Path | None]:
    path = Path(quarantine)
    if path.is_file():
        return pl.read_parquet(path), path
    from shipyard.core.project import Project
    from shipyard.core.run import Artifact

    project = Project.discover()
    row = project.metadata.get_artifact(str(quarantine))
    value = Artifact.from_row(row, project).load()
    if not isinstance(value, pl.DataFrame):
        raise DataInputError(
            f"Artifact {row['id'][:8]} holds a {type(value).__name__}, not quarantined rows."
        )
    return value, None


def _write_whole(frame: pl.DataFrame, target: Path) -> None:
    staged = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
    frame.write_parquet(staged)
    os.replace(staged, target)
