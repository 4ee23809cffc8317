"""``shipyard init [DIR]``: write a working project."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli._console import console, fail

_PIPELINES = '''\
"""This project's pipelines. `shipyard run hello` runs the one below."""

from shipyard import get_context, pipeline, step


@step
def numbers(count: int) -> list[int]:
    return list(range(count))


@step
def total(values: list[int]) -> int:
    result = sum(values)
    get_context().log_metric("total", result)
    return result


@pipeline
def hello(count: int = 10):
    return total(numbers(count))
'''

_GITIGNORE = ".shipyard/\n__pycache__/\n"


def init(
    directory: Annotated[
        Path, typer.Argument(help="Project folder (created if missing).")
    ] = Path(),
    name: Annotated[str | None, typer.Option(help="Project name (default: folder name).")] = None,
    owner: Annotated[str, typer.Option(help="The team that owns the service.")] = "",
) -> None:
    """Create a project: shipyard.toml, an example pipeline, and .gitignore."""
    from shipyard.config import CONFIG_FILE, PROJECT_TEMPLATE

    directory = directory.resolve()
    config = directory / CONFIG_FILE
    if config.exists():
        fail(
            f"{config} already exists; this is a project already. Edit that file, "
            "or run `shipyard init` in another folder.",
            code=2,
        )
    directory.mkdir(parents=True, exist_ok=True)
    project_name = name or directory.name or "project"
    config.write_text(PROJECT_TEMPLATE.format(name=project_name, owner=owner), encoding="utf-8")
    for filename, text in (("pipelines.py", _PIPELINES), (".gitignore", _GITIGNORE)):
        target = directory / filename
        if not target.exists():
            target.write_text(text, encoding="utf-8")
    console.print(f"Created project [bold]{project_name}[/] in {directory}.")
    console.print(f"Next: cd {directory} && shipyard run hello && shipyard runs list")
