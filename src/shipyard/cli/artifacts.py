"""``shipyard artifacts show|export|lineage``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from shipyard.cli._console import console, current_project, print_json, size, when

app = typer.Typer(help="Inspect, export and trace artifacts.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
ArtifactArg = Annotated[str, typer.Argument(help="An artifact id or a unique prefix of one.")]

_EXTENSIONS = {
    "polars.parquet": ".parquet",
    "pandas.parquet": ".parquet",
    "arrow.parquet": ".parquet",
    "numpy.npy": ".npy",
    "json": ".json",
    "skops": ".skops",
    "bytes": ".bin",
    "pickle": ".pkl",
}


@app.command("show")
def show(artifact_id: ArtifactArg, as_json: JsonOption = False) -> None:
    """An artifact's type, materializer, size, address, maker and preview."""
    row = current_project().metadata.get_artifact(artifact_id)
    if as_json:
        print_json(row)
        return
    console.print(
        f"[bold]Artifact {row['id']}[/]  {row['output_name']} of step run "
        f"{(row['step_run_id'] or '-')[:8]} in run {(row['run_id'] or '-')[:8]}"
    )
    console.print(
        f"type {row['type_name']}  materializer {row['materializer']} "
        f"v{row['materializer_version']}  size {size(row['size'])}  "
        f"created {when(row['created_at'])}"
    )
    console.print(f"sha256 {row['digest']}")
    console.print(f"stored at {row['uri']}")
    preview = row["preview"]
    if preview.get("kind") == "table":
        console.print(f"{preview['rows']} rows")
        columns = preview["columns"].items()
        table = Table(*(f"{escape(name)}\n[dim]{dtype}[/]" for name, dtype in columns))
        for values in preview["head"]:
            table.add_row(*(escape(str(v)) for v in values))
        console.print(table)
    else:
        console.print(preview)


@app.command("export")
def export(
    artifact_id: ArtifactArg,
    path: Annotated[Path, typer.Argument(help="File or folder to write the artifact to.")],
) -> None:
    """Copy an artifact's stored file out (e.g. a Parquet file), checked against its hash."""
    from shipyard.storage.artifacts import copy_object

    project = current_project()
    row = project.metadata.get_artifact(artifact_id)
    if path.is_dir():
        extension = _EXTENSIONS.get(row["materializer"], "")
        path = path / f"{row['output_name']}-{row['id'][:8]}{extension}"
    copy_object(project.artifacts, row["digest"], path)
    console.print(f"Wrote {path} ({size(row['size'])}, {row['materializer']}).")


@app.command("lineage")
def lineage(artifact_id: ArtifactArg, as_json: JsonOption = False) -> None:
    """The steps and inputs that made an artifact, and the steps that used it."""
    from shipyard.core.lineage import lineage as trace

    graph = trace(current_project(), artifact_id)
    if as_json:
        print_json(graph)
        return
    art = graph["artifact"]
    tree = Tree(f"[bold]{art['output_name']}[/] {art['id'][:8]} ({art['type_name']})")
    _add_maker(tree, graph["made_by"])
    used = tree.add("[bold]used by[/]") if graph["used_by"] else None
    for step in graph["used_by"]:
        assert used is not None
        used.add(f"{step['name']} (as {step['as']}) in run {step['run_id'][:8]}")
    console.print(tree)


def _add_maker(tree: Tree, maker: dict[str, Any] | None) -> None:
    if maker is None:
        return
    branch = tree.add(
        f"made by step [bold]{maker['name']}[/] in run {maker['run_id'][:8]} ({maker['status']})"
    )
    for name, node in maker["inputs"].items():
        art = node["artifact"]
        child = branch.add(f"{name} ← {art['output_name']} {art['id'][:8]} ({art['type_name']})")
        _add_maker(child, node["made_by"])
