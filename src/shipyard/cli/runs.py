"""``shipyard runs list|show|diff|reproduce``."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from shipyard.cli._console import (
    console,
    current_project,
    duration,
    print_json,
    size,
    status,
    when,
)

app = typer.Typer(help="Look at runs, compare them, and run them again.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
RunArg = Annotated[str, typer.Argument(help="A run id or a unique prefix of one.")]


def _load(run_id: str) -> Any:
    from shipyard.core.heartbeat import detect_crashed
    from shipyard.core.run import Run

    project = current_project()
    detect_crashed(project.metadata)
    return Run.load(project, run_id)


@app.command("list")
def list_runs(
    pipeline: Annotated[str | None, typer.Option(help="Only runs of this pipeline.")] = None,
    state: Annotated[str | None, typer.Option("--status", help="Only runs in this status.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """List runs, newest first."""
    from shipyard.core.heartbeat import detect_crashed

    store = current_project().metadata
    detect_crashed(store)
    rows = store.list_runs(pipeline=pipeline, status=state, limit=limit)
    if as_json:
        print_json([_run_row(r) for r in rows])
        return
    table = Table("run", "pipeline", "status", "started", "took", "params")
    for row in rows:
        took = (row["ended_at"] - row["started_at"]) if row["ended_at"] else None
        table.add_row(
            row["id"][:8],
            row["pipeline"],
            status(row["status"]),
            when(row["started_at"]),
            duration(took),
            _short(row["params"]),
        )
    if rows:
        console.print(table)
    elif pipeline or state:
        console.print(f"No runs match {_filters(pipeline, state)}. See all: shipyard runs list")
    else:
        console.print("No runs yet. Start one with: shipyard run PIPELINE")


def _filters(pipeline: str | None, state: str | None) -> str:
    given = {"--pipeline": pipeline, "--status": state}
    return " ".join(f"{option} {value}" for option, value in given.items() if value)


def _run_row(row: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "id",
        "pipeline",
        "status",
        "started_at",
        "ended_at",
        "params",
        "seed",
        "git_commit",
        "git_dirty",
        "error",
        "resumed_from",
    )
    return {k: row.get(k) for k in keep}


def _short(value: Any, width: int = 60) -> str:
    text = (
        ", ".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else str(value)
    )
    # Values are user data (params, errors, previews): shown as they are, never as markup.
    return escape(text if len(text) <= width else text[: width - 1] + "…")


@app.command("show")
def show(run_id: RunArg, as_json: JsonOption = False) -> None:
    """Everything a run recorded: params, code version, environment, steps, metrics, artifacts."""
    run = _load(run_id)
    if as_json:
        print_json(run_summary(run))
        return
    console.print(f"[bold]Run {run.id}[/]  pipeline [bold]{run.pipeline}[/]  {status(run.status)}")
    console.print(
        f"started {when(run.started_at)}, took {duration(run.seconds)}, "
        f"host {run.host}, pid {run.pid}"
    )
    dirty = " (uncommitted changes)" if run.git_dirty else ""
    console.print(f"params {_short(run.params, 200)}   seed {run.seed}")
    console.print(f"git {run.git_commit or 'not a git repository'}{dirty}")
    env = run.environment
    if env:
        console.print(f"python {env.get('python')} on {env.get('platform')}")
        console.print("packages " + _short(env.get("packages", {}), 200))
    if run.resumed_from:
        console.print(f"resumed from {run.resumed_from[:8]}")
    if run.error:
        console.print(f"[red]{escape(run.error)}[/]")
    console.print(_steps_table(run))
    if run.metrics:
        metrics = Table("metric", "value", "logged")
        counts: dict[str, int] = {}
        for m in run.metric_history:
            counts[m["key"]] = counts.get(m["key"], 0) + 1
        for key, value in run.metrics.items():
            metrics.add_row(key, f"{value:.6g}", f"{counts[key]}×")
        console.print(metrics)
    console.print(_artifacts_table(run))
    for step_run in run.step_runs.values():
        if step_run.traceback:
            console.print(f"[red]{step_run.name} failed:[/]")
            console.print(step_run.traceback.rstrip(), markup=False, style="dim", soft_wrap=True)


def _steps_table(run: Any) -> Table:
    table = Table("step", "status", "took", "tries", "inputs", "outputs", "note")
    for s in run.step_runs.values():
        note = f"from {s.cached_from[:8]}" if s.cached_from else (s.error or "")
        table.add_row(
            s.name,
            status(s.status),
            duration(s.seconds),
            str(s.attempts or "-"),
            ", ".join(s.inputs) or "-",
            ", ".join(s.outputs) or "-",
            _short(note, 50),
        )
    return table


def _artifacts_table(run: Any) -> Table:
    table = Table("output", "artifact", "type", "size", "preview")
    for ref, artifact in run.artifacts.items():
        table.add_row(
            ref,
            artifact.id[:8],
            artifact.type_name.rsplit(".", 1)[-1],
            size(artifact.size),
            _preview(artifact.preview),
        )
    return table


def _preview(preview: dict[str, Any]) -> str:
    kind = preview.get("kind")
    if kind == "table":
        return f"{preview['rows']} rows × {len(preview['columns'])} columns"
    if kind == "json":
        return _short(preview.get("value", ""), 40)
    if kind == "array":
        return f"{preview.get('dtype')} {tuple(preview.get('shape', ()))}"
    if kind == "model":
        return str(preview.get("class", "")).rsplit(".", 1)[-1]
    return kind or ""


def run_summary(run: Any) -> dict[str, Any]:
    """A run as plain JSON-able data."""
    return {
        "id": run.id,
        "pipeline": run.pipeline,
        "status": run.status,
        "params": run.params,
        "seed": run.seed,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "seconds": run.seconds,
        "git_commit": run.git_commit,
        "git_dirty": run.git_dirty,
        "git_diff_hash": run.git_diff_hash,
        "environment": run.environment,
        "error": run.error,
        "resumed_from": run.resumed_from,
        "metrics": run.metrics,
        "tags": run.tags,
        "steps": [
            {
                "id": s.id,
                "name": s.name,
                "step": s.step,
                "status": s.status,
                "seconds": s.seconds,
                "attempts": s.attempts,
                "cache_key": s.cache_key,
                "code_hash": s.code_hash,
                "cached_from": s.cached_from,
                "params": s.params,
                "error": s.error,
                "inputs": {k: a.id for k, a in s.inputs.items()},
                "outputs": {k: a.id for k, a in s.outputs.items()},
            }
            for s in run.step_runs.values()
        ],
        "artifacts": {
            ref: {
                "id": a.id,
                "digest": a.digest,
                "type": a.type_name,
                "materializer": a.materializer,
                "size": a.size,
                "preview": a.preview,
            }
            for ref, a in run.artifacts.items()
        },
    }


@app.command("diff")
def diff(run_a: RunArg, run_b: RunArg, as_json: JsonOption = False) -> None:
    """What differs between two runs: params, code, environment, metrics."""
    from shipyard.core.history import diff_runs

    a, b = _load(run_a), _load(run_b)
    changes = diff_runs(a, b)
    if as_json:
        print_json({"a": a.id, "b": b.id, "changes": changes})
        return
    if not changes:
        console.print(f"Runs {a.id[:8]} and {b.id[:8]} do not differ.")
        return
    table = Table("what", "name", a.id[:8], b.id[:8])
    for change in changes:
        table.add_row(
            change["what"], change["name"], _short(change["a"], 40), _short(change["b"], 40)
        )
    console.print(table)


@app.command("reproduce")
def reproduce(
    run_id: RunArg,
    cache: Annotated[bool, typer.Option(help="Reuse cached steps instead of rerunning.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Run again with the same parameters and seed; warn about every change since."""
    from shipyard.cli.run import RunProgress
    from shipyard.core.history import drift_since

    project = current_project()
    original = _load(run_id)
    pipeline = project.pipeline(original.pipeline)
    changes = drift_since(original, pipeline, project)
    if not as_json:
        for change in changes:
            console.print(
                f"[yellow]warning:[/] {change['what']} {change['name']} was "
                f"{escape(str(change['a']))}, is now {escape(str(change['b']))}"
            )
    with RunProgress(enabled=not as_json) as progress:
        result = pipeline.run(
            params=original.params,
            seed=original.seed,
            cache=cache,
            project=project,
            listener=progress,
            raise_on_failure=False,
        )
    if as_json:
        print_json({"original": original.id, "run": run_summary(result), "changes": changes})
    else:
        console.print(
            f"Run [bold]{result.id[:8]}[/] reproduced {original.id[:8]}: {status(result.status)}."
        )
    if result.status != "completed":
        raise typer.Exit(1)
