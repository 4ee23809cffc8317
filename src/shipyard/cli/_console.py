"""Output helpers: one Rich console, JSON for machines, and how errors are shown."""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any, NoReturn

from rich.console import Console
from rich.markup import escape

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def print_json(value: Any) -> None:
    """Print ``value`` as JSON on stdout, nothing else."""
    sys.stdout.write(json.dumps(value, indent=2, default=str, sort_keys=True) + "\n")


def fail(message: str, *, code: int) -> NoReturn:
    """Print an error the user can act on, and exit with ``code``."""
    # Messages quote user text and name tables like [executor]: never read them as markup.
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise SystemExit(code)


def when(timestamp: float | None) -> str:
    """A local time, to the second."""
    if timestamp is None:
        return "-"
    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | None) -> str:
    """``12 ms``, ``3.4 s`` or ``2 min 5 s``."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def size(nbytes: int) -> str:
    """``512 B``, ``1.2 MB``..."""
    value = float(nbytes)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


STATUS_STYLE = {
    "completed": "green",
    "cached": "cyan",
    "running": "yellow",
    "pending": "dim",
    "failed": "red",
    "crashed": "red",
    "cancelled": "magenta",
    "skipped": "dim",
}


def status(text: str) -> str:
    """A status word in its colour."""
    return f"[{STATUS_STYLE.get(text, 'white')}]{text}[/]"


def current_project() -> Any:
    """The project around the working directory (errors exit 2 through main)."""
    from shipyard.core.project import Project

    return Project.discover()
