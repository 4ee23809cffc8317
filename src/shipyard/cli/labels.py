"""``shipyard labels ingest FILE``: delayed ground truth (chargebacks, say) for monitoring."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from shipyard.cli._console import console, print_json

app = typer.Typer(help="Ground truth that arrives after the predictions.", no_args_is_help=True)


@app.command("ingest")
def ingest(
    source: Annotated[Path, typer.Argument(metavar="FILE", help="Parquet or CSV of labels.")],
    model: Annotated[
        str | None,
        typer.Option(help="The model the labels are for (default: [monitoring] model)."),
    ] = None,
    label: Annotated[
        str | None, typer.Option(help="The label column (default: [monitoring] label).")
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(
            help="The column holding the request id (default: [monitoring] label_key); the "
            "server logs the client's X-Request-ID as the request id."
        ),
    ] = None,
    entity: Annotated[
        str | None, typer.Option(help="Key by entity and time instead: the entity column.")
    ] = None,
    time: Annotated[
        str | None, typer.Option(help="With --entity: the column of the labelled event's time.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Store labels; report duplicates, conflicts and ids the prediction log does not know."""
    from shipyard.cli._console import current_project
    from shipyard.monitoring.labels import LabelStore
    from shipyard.monitoring.settings import MonitorSettings
    from shipyard.serving.log import read_log

    project = current_project()
    settings = MonitorSettings.from_project(project)
    name = _model_name(model or settings.model)
    joined: Any = settings.label_key if key is None else key
    if entity is not None or time is not None:
        if entity is None or time is None:
            raise typer.BadParameter("give both --entity and --time, or neither")
        joined = (entity, time)
    log = read_log(project.settings.state_dir / "predictions" / name, model=name)
    store = LabelStore(project.settings.state_dir / "labels" / name)
    done = store.ingest(source, label=label or settings.label, key=joined, log=log)
    summary = done.to_dict() if hasattr(done, "to_dict") else dict(vars(done))
    if as_json:
        print_json({"model": name, **summary})
        return
    stored = f"Stored {summary['stored']:,} labels for [bold]{escape(name)}[/]"
    console.print(f"{stored} from {escape(str(source))}.")
    for field, meaning in (
        ("duplicates", "identical duplicates kept once"),
        ("conflicts", "keys labelled twice with different values (the last one kept)"),
        ("updated", "labels that replace earlier ones (corrections)"),
        ("unknown", "ids not in the prediction log (kept: they may be logged later)"),
    ):
        count = summary.get(field)
        if isinstance(count, int) and count:
            console.print(f"  [yellow]{count:,}[/] {meaning}")
    if examples := summary.get("unknown_examples"):
        console.print(f"  e.g. {escape(', '.join(map(str, examples[:5])))}")


def _model_name(ref: str | None) -> str:
    if not ref:
        raise typer.BadParameter(
            'name the model with --model fraud, or set [monitoring] model = "fraud@production"',
            param_hint="--model",
        )
    from shipyard.registry._lookup import check_model_name

    name = ref.partition("@")[0].partition(":")[0]
    check_model_name(name)  # it names a folder: no path may hide in it
    return name
