"""The Typer application and the error handling shared by every command."""

from __future__ import annotations

import sys

import typer

from shipyard.cli import artifacts, demo, init, run, runs

app = typer.Typer(
    name="shipyard",
    help="Own your ML service end to end: pipelines, artifacts, runs and the demo.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
app.command("init")(init.init)
app.command("run")(run.run)
app.command("demo")(demo.demo)
app.add_typer(runs.app, name="runs")
app.add_typer(artifacts.app, name="artifacts")


def main() -> None:
    """Entry point of the ``shipyard`` script."""
    from shipyard.cli._console import fail
    from shipyard.errors import ShipyardError, StepFailedError

    try:
        app()
    except StepFailedError as exc:
        fail(str(exc), code=1)
    except ShipyardError as exc:
        fail(str(exc), code=2)
    except KeyboardInterrupt:
        fail("Interrupted.", code=130)
    sys.exit(0)
