"""``shipyard demo [DIR]``: the fraud-detection example, end to end."""

from __future__ import annotations

import datetime as dt
import importlib
import shutil
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from shipyard.cli._console import console, duration, status

DEMO_START = dt.date(2026, 1, 1)
DEMO_DAYS = 60


def example_folder() -> Path:
    """The fraud example project, from the installed package or the source tree."""
    import shipyard

    packaged = Path(shipyard.__file__).parent / "_examples" / "fraud"
    if packaged.is_dir():
        return packaged
    source = Path(shipyard.__file__).resolve().parents[2] / "examples" / "fraud"
    if source.is_dir():
        return source
    raise typer.BadParameter("the fraud example is not installed with this shipyard")


def demo(
    directory: Annotated[Path, typer.Argument(help="Where to create the demo project.")] = Path(
        "shipyard-demo"
    ),
    days: Annotated[int, typer.Option(help="Days of upstream batches to generate.")] = DEMO_DAYS,
    rows_per_day: Annotated[int, typer.Option(help="Transactions per daily batch.")] = 5000,
) -> None:
    """Create the fraud-detection example project, generate its data, and train."""
    from shipyard.cli.run import RunProgress
    from shipyard.core.project import Project

    directory = directory.resolve()
    _copy_example(directory)
    console.print(f"[bold]1.[/] Example project written to {directory}")
    batches = _generate(directory, days, rows_per_day)
    console.print(
        f"[bold]2.[/] The upstream payments team delivered {len(batches)} daily "
        f"batches of {rows_per_day} transactions to {directory / 'data'}"
    )
    project = Project.discover(directory)
    console.print("[bold]3.[/] Training the fraud model (pipeline [bold]training[/]):")
    with RunProgress(enabled=True) as progress:
        run = project.pipeline("training").run(
            project=project, listener=progress, raise_on_failure=False
        )
    _report(run, directory)
    if run.status != "completed":
        raise typer.Exit(1)


def _copy_example(directory: Path) -> None:
    source = example_folder()
    ignore = shutil.ignore_patterns("__pycache__", ".shipyard", "data", "*.pyc")
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, directory, ignore=ignore, dirs_exist_ok=True)


def _generate(directory: Path, days: int, rows_per_day: int) -> list[Path]:
    sys.path.insert(0, str(directory))
    try:
        generator: Any = importlib.import_module("fraud.generator")
    finally:
        sys.path.remove(str(directory))
    return list(
        generator.write_daily_batches(
            directory / "data", DEMO_START, days, rows_per_day=rows_per_day, seed=7
        )
    )


def _report(run: Any, directory: Path) -> None:
    console.print(f"Run [bold]{run.id[:8]}[/] {status(run.status)} in {duration(run.seconds)}.")
    for key, value in run.metrics.items():
        console.print(f"  {key:<24} {value:.4f}")
    command = _shipyard_command()
    console.print("\nWhere to look next:")
    for line in (
        f"cd {directory}",
        f"{command} runs show {run.id[:8]}",
        f"{command} runs list",
        f"{command} run training   [dim]# again: the loaders re-read the data, "
        "every other step is a cache hit[/]",
        f"{command} run training -p learning_rate=0.05",
    ):
        console.print(f"  {line}")


def _shipyard_command() -> str:
    """``shipyard`` if it is on PATH, else the full path of the script next to this Python."""
    if shutil.which("shipyard"):
        return "shipyard"
    beside = Path(sys.executable).parent / "shipyard"
    return str(beside) if beside.exists() else "shipyard"
