"""``shipyard run PIPELINE``: run a pipeline with live step progress."""

from __future__ import annotations

import inspect
import json
from typing import Annotated, Any, ClassVar

import typer
from rich.markup import escape

from shipyard.cli._console import console, current_project, duration, print_json, status

ParamOption = Annotated[
    list[str] | None,
    typer.Option("--param", "-p", help="A pipeline parameter as key=value (repeatable)."),
]


def run(
    pipeline: Annotated[str, typer.Argument(help="Pipeline name, or module:attribute.")],
    param: ParamOption = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Run every step.")] = False,
    resume: Annotated[
        str | None, typer.Option(help="Continue a failed or crashed run, reusing its steps.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed for the run.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run as JSON.")] = False,
) -> None:
    """Run a pipeline of this project. Exit 1 if the run fails."""
    from shipyard.cli.runs import run_summary

    project = current_project()
    target = project.pipeline(pipeline)
    params = parse_params(param or [], target.signature)
    with RunProgress(enabled=not as_json) as progress:
        result = target.run(
            params=params,
            cache=not no_cache,
            resume=resume,
            seed=seed,
            project=project,
            listener=progress,
            raise_on_failure=False,
        )
    if as_json:
        print_json(run_summary(result))
    else:
        console.print(
            f"Run [bold]{result.id[:8]}[/] {status(result.status)} in {duration(result.seconds)}."
            f"  Details: [bold]shipyard runs show {result.id[:8]}[/]"
        )
        for step_run in result.step_runs.values():
            if step_run.status == "failed":
                console.print(f"[red]{step_run.name} failed:[/] {escape(str(step_run.error))}")
                if step_run.traceback:
                    console.print(
                        step_run.traceback.rstrip(), markup=False, style="dim", soft_wrap=True
                    )
                console.print(
                    f"Fix the cause, then continue with: "
                    f"[bold]shipyard run {target.name} --resume {result.id[:8]}[/]"
                )
    if result.status != "completed":
        raise typer.Exit(1)


def parse_params(pairs: list[str], signature: inspect.Signature) -> dict[str, Any]:
    """``key=value`` pairs to typed values, by the pipeline's annotations."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected key=value, got {pair!r}", param_hint="--param")
        parameter = signature.parameters.get(key)
        if parameter is None:
            known = ", ".join(signature.parameters) or "(none)"
            raise typer.BadParameter(
                f"the pipeline has no parameter {key!r}; its parameters are: {known}",
                param_hint="--param",
            )
        params[key] = _convert(text, parameter, key)
    return params


def _convert(text: str, parameter: inspect.Parameter, key: str) -> Any:
    annotation = parameter.annotation
    if isinstance(annotation, str):
        annotation = {"int": int, "float": float, "bool": bool, "str": str}.get(annotation)
    if annotation is str:
        return text
    if annotation is bool:
        lowered = text.lower()
        if lowered in ("true", "1", "yes", "false", "0", "no"):
            return lowered in ("true", "1", "yes")
        raise typer.BadParameter(f"{key} must be true or false, got {text!r}", param_hint="--param")
    if annotation in (int, float):
        try:
            return annotation(text)
        except ValueError:
            kind = annotation.__name__
            raise typer.BadParameter(
                f"{key} must be {kind}, got {text!r}", param_hint="--param"
            ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


class RunProgress:
    """Live step progress: a bar over the steps, a line as each step ends."""

    _MARKS: ClassVar[dict[str, str]] = {
        "completed": "✓",
        "cached": "↺",
        "failed": "✗",
        "skipped": "·",
        "cancelled": "■",
    }

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> RunProgress:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                console=console,
                transient=True,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, event: Any) -> None:
        if self._progress is None:
            return
        if event.kind == "run_started":
            console.print(f"Run [bold]{event.run_id[:8]}[/]: {len(event.steps)} steps")
            self._task = self._progress.add_task("steps", total=len(event.steps))
        elif event.kind == "step_started":
            self._progress.update(self._task, description=f"running {event.step}")
        elif event.kind == "step_finished":
            mark = self._MARKS.get(event.status or "", "?")
            console.print(
                f"  {mark} {event.step:<28} {status(event.status or '')}  {duration(event.seconds)}"
            )
            self._progress.advance(self._task)
