"""The Typer application and the error handling shared by every command."""

from __future__ import annotations

import os
import sys
from typing import Any

import typer

from shipyard.cli import (
    artifacts,
    contract,
    demo,
    evaluate,
    features,
    init,
    labels,
    models,
    monitor,
    run,
    runs,
)
from shipyard.cli import score as score_cli
from shipyard.cli import serve as serve_cli

app = typer.Typer(
    name="shipyard",
    help="Own your ML service end to end: pipelines, artifacts, runs, data contracts, the demo.",
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
app.add_typer(contract.app, name="contract")
app.add_typer(features.app, name="features")
app.add_typer(models.app, name="models")
app.command("evaluate")(evaluate.evaluate)
app.command("score")(score_cli.score)
app.command("serve")(serve_cli.serve)
app.command("monitor")(monitor.monitor)
app.add_typer(labels.app, name="labels")


# Usage errors (a bad --param, an unknown option) are ClickExceptions: click's own, or in
# newer Typer (0.29 here) the copy Typer vendors, which `click.ClickException` does not
# match (and the `click` package need not be installed). The base of typer.BadParameter
# is the right class either way.
_ClickException: Any = next(
    cls for cls in typer.BadParameter.__mro__ if cls.__name__ == "ClickException"
)


def main() -> None:
    """Entry point of the ``shipyard`` script."""
    from shipyard.cli._console import fail
    from shipyard.errors import ShipyardError, StepFailedError

    try:
        result = app(standalone_mode=False)
    except StepFailedError as exc:
        fail(str(exc), code=1)
    except ShipyardError as exc:
        fail(str(exc), code=2)
    except (typer.Abort, KeyboardInterrupt):
        _interrupted()
    except _ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    if result == _INTERRUPTED:  # Typer turns Ctrl-C into exit code 130
        _interrupted()
    sys.exit(result if isinstance(result, int) else 0)


_INTERRUPTED = 130


def _interrupted() -> None:
    from shipyard.cli._console import err_console

    err_console.print("Interrupted.")
    sys.stdout.flush()
    sys.stderr.flush()
    # Steps still running in worker threads would keep the process alive: leave now.
    # The run was already recorded as cancelled.
    os._exit(_INTERRUPTED)
