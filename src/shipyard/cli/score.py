"""``shipyard score MODEL INPUT OUTPUT``: batch scoring with the service's feature and
threshold logic."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from shipyard.cli._console import console, duration, print_json

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


class FeaturesMode(StrEnum):
    """Where the model's input columns come from."""

    auto = "auto"
    online = "online"
    given = "given"


GIVEN = {FeaturesMode.auto: None, FeaturesMode.online: False, FeaturesMode.given: True}


def score(
    model: Annotated[
        str,
        typer.Argument(
            metavar="MODEL", help="NAME@ALIAS, NAME:VERSION, or an exported model folder."
        ),
    ],
    source: Annotated[
        str,
        typer.Argument(
            metavar="INPUT",
            help="A Parquet or CSV file, a folder of them, or a quoted glob ('data/*.parquet').",
        ),
    ],
    output: Annotated[
        Path, typer.Argument(metavar="OUTPUT", help="Where to write the scores: .parquet or .csv.")
    ],
    project: Annotated[
        Path | None,
        typer.Option(help="The project folder (default: the one around the working directory)."),
    ] = None,
    chunk_rows: Annotated[
        int, typer.Option(min=1, help="Rows scored at a time; memory grows with it.")
    ] = 262_144,
    keep: Annotated[
        list[str] | None,
        typer.Option(
            "--keep",
            help="An input column to copy to OUTPUT (repeat for more). Default: the model's "
            "entity keys.",
        ),
    ] = None,
    features: Annotated[
        FeaturesMode,
        typer.Option(
            "--features",
            help="online: compute the model's features as the API does (online store, "
            "request features); given: INPUT already holds every model input (backfills); "
            "auto: given when every input column is present.",
        ),
    ] = FeaturesMode.auto,
    log: Annotated[
        bool,
        typer.Option(
            "--log/--no-log",
            help="Append every scored row to the project's prediction log "
            "(.shipyard/predictions/MODEL); much slower.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Score every row of INPUT and write score and decision, with key columns, to OUTPUT.

    INPUT is streamed in chunks; OUTPUT appears only when every row was scored. Exit 2 for
    an input that does not fit the model's input contract (the message names the column,
    row and value) or an unknown model."""
    from shipyard.serving.batch import score_batch
    from shipyard.serving.model import load_served

    found = _project(project, model)
    served = load_served(model, found)
    prediction_log = _log(found, served.name) if log else None
    try:
        with _bar(disable=as_json or not console.is_terminal) as (bars, task):
            summary = score_batch(
                served,
                source,
                output,
                chunk_rows=chunk_rows,
                keep=keep,
                given_features=GIVEN[features],
                log=prediction_log,
                progress=lambda done, total: bars.update(task, completed=done, total=total),
            )
    finally:
        if prediction_log is not None:
            prediction_log.close()
    if as_json:
        print_json(summary.as_dict())
        return
    console.print(
        f"Scored {summary.rows:,} rows of {summary.files} file(s) with "
        f"{escape(summary.model)} version {escape(summary.version)} in "
        f"{duration(summary.seconds)} ({summary.rows_per_second:,.0f} rows/s, features "
        f"{summary.features}): {summary.positives:,} positive decisions. Wrote "
        f"{escape(str(summary.output))}"
        + (f"; logged {summary.logged:,} predictions." if log else ".")
    )


def _project(folder: Path | None, model: str) -> Any:
    from shipyard.core.project import Project
    from shipyard.errors import ProjectNotFoundError

    if folder is not None:
        return Project.discover(folder)
    try:
        return Project.discover()
    except ProjectNotFoundError:
        if Path(model).is_dir():  # an export folder scores without a project
            return None
        raise


def _log(project: Any, model: str) -> Any:
    from shipyard.serving.log import PredictionLog

    if project is None:
        raise typer.BadParameter(
            "the prediction log lives in a project; run inside one or give --project",
            param_hint="--log",
        )
    return PredictionLog(project.settings.state_dir / "predictions" / model, model=model)


@contextlib.contextmanager
def _bar(*, disable: bool) -> Iterator[tuple[Any, Any]]:
    """A Rich progress bar for the run and its task; nothing shown when disabled."""
    from rich import progress as bars

    columns = (
        bars.BarColumn(),
        bars.MofNCompleteColumn(),
        bars.TextColumn("rows"),
        bars.TimeElapsedColumn(),
        bars.TimeRemainingColumn(),
    )
    text = bars.TextColumn("[bold]scoring")
    with bars.Progress(text, *columns, console=console, transient=True, disable=disable) as bar:
        yield bar, bar.add_task("scoring", total=None)
