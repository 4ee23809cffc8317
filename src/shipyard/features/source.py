"""Where a feature view reads its data: Parquet files, a contract-validated dataset,
a stored table artifact, or a frame in memory."""

from __future__ import annotations

import glob
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import DataInputError, FeatureDefinitionError

if TYPE_CHECKING:
    import polars as pl

    from shipyard.core.project import Project

INGEST_STEP = "shipyard.contracts.ingest:ingest"


@dataclass(frozen=True)
class Source:
    """A feature view's input data. Build one with a classmethod::

        Source.parquet("data/transactions_*.parquet")
        Source.contract("contracts/transactions.yaml")   # accepted rows of the latest ingestion
        Source.artifact("3f2a9c")                        # a stored table, by artifact id
        Source.frame(df, name="transactions")            # in memory (tests, notebooks)

    ``name`` (by default the file or contract stem) is how ``sources=`` overrides
    find it: ``store.training_frame(..., sources={"transactions": frame})``.
    """

    kind: str
    location: str
    name: str
    _frame: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def parquet(cls, path: str, *, name: str | None = None) -> Source:
        """Parquet file(s): a path or glob, relative to the project folder."""
        return cls("parquet", str(path), name or _stem(path))

    @classmethod
    def contract(cls, contract: str, *, name: str | None = None) -> Source:
        """The accepted rows of the newest ``ingest`` under this contract (path as given to it)."""
        return cls("contract", str(contract), name or _stem(contract))

    @classmethod
    def artifact(cls, artifact_id: str, *, name: str | None = None) -> Source:
        """A table artifact stored by a run, by id or unique id prefix."""
        return cls("artifact", artifact_id, name or f"artifact_{artifact_id[:8]}")

    @classmethod
    def frame(cls, frame: pl.DataFrame | pl.LazyFrame, *, name: str) -> Source:
        """A Polars frame held in memory."""
        return cls("frame", name, name, frame)

    def recipe(self) -> dict[str, str]:
        """What identifies the source in a view's definition (not its data)."""
        return {"kind": self.kind, "location": self.location, "name": self.name}

    def resolve(self, project: Project | None) -> Resolved:
        """The data as it is now: a lazy scan and a fingerprint of its content."""
        if self.kind == "frame":
            return _frame(self._frame)
        if project is None:
            raise FeatureDefinitionError(
                f"Source {self.name!r} ({self.kind} {self.location!r}) needs a project to be "
                "read from; give FeatureStore(project=...) or run inside a project folder."
            )
        if self.kind == "parquet":
            return _parquet(project.root, self.location)
        if self.kind == "contract":
            return _ingested(project, self.location)
        return _artifact(project, self.location)


@dataclass(frozen=True)
class Resolved:
    """A source's current data: how to scan it and what it is (for the build cache)."""

    scan: pl.LazyFrame
    fingerprint: str
    description: str


def _stem(path: str) -> str:
    stem = Path(path.replace("*", "")).stem.strip("_-.") or "source"
    return stem.split(".")[0]


def _frame(frame: Any) -> Resolved:
    import polars as pl

    if not isinstance(frame, pl.DataFrame | pl.LazyFrame):
        raise FeatureDefinitionError(
            f"Source.frame needs a Polars DataFrame or LazyFrame, got {type(frame).__name__}."
        )
    data = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
    digest = hashlib.sha256(str(data.schema).encode())
    digest.update(str(data.height).encode())
    if data.height:
        digest.update(data.hash_rows(seed=0).to_numpy().tobytes())
    return Resolved(data.lazy(), digest.hexdigest(), "a frame in memory")


def _parquet(root: Path, location: str) -> Resolved:
    import polars as pl

    pattern = str(root / location)
    files = sorted(glob.glob(pattern)) if any(c in location for c in "*?[") else [pattern]
    files = [f for f in files if Path(f).is_file()]
    if not files:
        raise DataInputError(
            f"The feature source {location!r} matches no file under {root}. Check the path "
            "(relative to the project folder), or produce the data first."
        )
    digest = hashlib.sha256()
    for name in files:  # like make: a file that changed has a new size or time
        stat = Path(name).stat()
        digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return Resolved(pl.scan_parquet(files), digest.hexdigest(), f"{len(files)} Parquet file(s)")


def _ingested(project: Project, contract: str) -> Resolved:
    wanted = str(Path(contract))
    for row in project.metadata.finished_step_runs(INGEST_STEP):
        given = row["params"].get("contract")
        if isinstance(given, str) and str(Path(given)) == wanted:
            return _step_output(project, row, f"ingestion under {contract}")
    raise DataInputError(
        f"No finished ingestion under the contract {contract!r} in {project.root}. Run the "
        "pipeline that ingests it (shipyard run ...) first, or give the data with sources=."
    )


def _step_output(project: Project, step_run: dict[str, Any], what: str) -> Resolved:
    edges = project.metadata.edges([step_run["id"]])
    outputs = [e["artifact_id"] for e in edges if e["role"] == "output" and e["name"] == "output"]
    if not outputs:
        raise DataInputError(f"The {what} (step run {step_run['id'][:8]}) stored no output.")
    return _artifact(project, outputs[0], what=f"{what}, run {step_run['run_id'][:8]}")


def _artifact(project: Project, artifact_id: str, *, what: str | None = None) -> Resolved:
    import polars as pl

    row = project.metadata.get_artifact(artifact_id)
    if not row["materializer"].endswith(".parquet"):
        raise DataInputError(
            f"Artifact {artifact_id} holds a {row['type_name']} ({row['materializer']}), not a "
            "table; a feature source must be a DataFrame artifact."
        )
    path = project.artifacts.local_path(row["digest"])
    description = what or f"artifact {row['id'][:8]}"
    return Resolved(pl.scan_parquet(path), row["digest"], description)
