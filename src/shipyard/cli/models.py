"""``shipyard models list|show|promote|rollback|card|export|verify``."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from shipyard.cli._console import console, current_project, err_console, print_json, when
from shipyard.cli.evaluate import KEY_METRICS, number, read_parquet

app = typer.Typer(
    help="The model registry: versions, gated promotion, rollback, model cards, export.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
RefArg = Annotated[
    str, typer.Argument(help="A model version: name@alias, name:3, or name (the latest).")
]
AliasOption = Annotated[str, typer.Option(help="The alias to move.")]
ReasonOption = Annotated[str, typer.Option(help="Why; kept in the audit log.")]


def _registry() -> Any:
    from shipyard.registry.registry import Registry

    return Registry(current_project())


@app.command("list")
def list_models(as_json: JsonOption = False) -> None:
    """Every registered model: its number of versions, the latest one, where its aliases point."""
    registry = _registry()
    models = registry.models()
    if as_json:
        print_json([asdict(m) for m in models])
        return
    if not models:
        console.print(
            "No models registered yet. Register a trained model artifact with "
            "Registry(project).register(name, artifact_id=...)."
        )
        return
    table = Table("model", "versions", "latest", "aliases", "owner")
    for model in models:
        latest = registry.get(f"{model.name}:{model.latest_version}")
        table.add_row(
            escape(model.name),
            str(model.latest_version),
            f"{model.latest_version}, registered {when(latest.created_at)}",
            _aliases(model.aliases),
            escape(model.owner),
        )
    console.print(table)


@app.command("register")
def register(
    name: Annotated[str, typer.Argument(help="The model's name, e.g. fraud.")],
    run: Annotated[str, typer.Option(help="The run that trained it (an id or unique prefix).")],
    step: Annotated[str, typer.Option(help="The step whose output is the model.")],
    output: Annotated[str, typer.Option(help="The step's output holding the model.")] = "output",
    features: Annotated[
        str | None, typer.Option(help="The model's input columns, a,b,c (kept in its lineage).")
    ] = None,
    description: Annotated[str, typer.Option(help="What this version is.")] = "",
    profile: Annotated[
        bool,
        typer.Option(
            "--profile/--no-profile",
            help="Profile the training data and the model's scores now, as the reference "
            "monitoring compares production with (needs --features).",
        ),
    ] = True,
    as_json: JsonOption = False,
) -> None:
    """Register the model a run's step stored as a new version of NAME.

    The version records the run's lineage: the contracts its ingestion checked, the
    feature view versions its training set used, params, seed and git commit; with
    --features, the reference profile that monitoring compares production with is kept
    with it. Exit 2 for an unknown run, step or output."""
    from shipyard.core.run import Run

    registry = _registry()
    trained = Run.load(current_project(), run)
    columns = None if features is None else [c.strip() for c in features.split(",") if c.strip()]
    version = registry.register_run(
        name, trained, step=step, output=output, features=columns, description=description
    )
    profiled, why = None, ""
    if profile and columns:
        from shipyard.errors import MonitoringError
        from shipyard.monitoring import profile_version

        try:
            profiled = profile_version(registry.project, version.ref)
        except MonitoringError as exc:  # registering still succeeds; monitoring says why
            why = str(exc)
    if as_json:
        print_json(asdict(version))
        return
    console.print(f"Registered [bold]{escape(version.ref)}[/] from run {trained.id[:8]}.")
    if profiled is not None:
        console.print(
            f"Reference profile for monitoring: {len(profiled.columns)} columns of "
            f"{profiled.rows:,} training rows."
        )
    elif why:
        console.print(f"[yellow]No reference profile for monitoring:[/] {escape(why)}")


@app.command("show")
def show(ref: RefArg, as_json: JsonOption = False) -> None:
    """A version: what it is, where it came from, its evaluation, its gate records, and
    the audit log of the model's aliases. Exit 2 for an unknown reference."""
    registry = _registry()
    version = registry.get(ref)
    gates = registry.gates(version.name, version.version)
    history = registry.history(version.name)
    if as_json:
        events = [asdict(e) for e in history]
        print_json({"version": asdict(version), "gates": gates, "history": events})
        return
    aliases = ", ".join(version.aliases) or "no alias"
    console.print(f"[bold]{escape(version.ref)}[/]  ({escape(aliases)})")
    if version.description:
        console.print(escape(version.description))
    console.print(
        f"registered {when(version.created_at)}  artifact {version.artifact_id[:12]}  "
        f"run {(version.run_id or '-')[:8]}  step run {(version.step_run_id or '-')[:8]}"
    )
    for key, value in version.lineage.items():
        shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        console.print(f"  {escape(str(key)):<16} {escape(shown)}")
    _print_evaluation(version.evaluation, gates)
    console.print(_gates_table(gates) if gates else "No gate records: run `shipyard evaluate`.")
    if history:
        console.print(_history_table(history, version.version))


@app.command("promote")
def promote(
    ref: RefArg,
    alias: AliasOption = "production",
    reason: ReasonOption = "",
    force: Annotated[
        bool,
        typer.Option("--force", help="Promote without a passing gate record (needs --reason)."),
    ] = False,
    gate: Annotated[
        str | None, typer.Option(help="The gate record to rely on (default: the newest).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Point NAME@ALIAS at the version REF names, if its gate record passed.

    Exit 1 when refused for want of a passing gate (the message says how to force it with
    a reason); exit 2 for an unknown reference or gate record, a bad alias, or --force
    without --reason."""
    from shipyard.errors import PromotionRefusedError
    from shipyard.registry._aliases import check_alias_name

    registry = _registry()
    version = registry.get(ref)
    try:
        check_alias_name(alias)
    except PromotionRefusedError as exc:
        raise typer.BadParameter(str(exc), param_hint="--alias") from None
    if force and not reason.strip():
        raise typer.BadParameter("--force skips the gate, so say why.", param_hint="--reason")
    if gate is not None:
        known = [g["id"] for g in registry.gates(version.name, version.version)]
        if gate not in known:
            raise typer.BadParameter(
                f"{gate!r} is not a gate record of {version.ref}; its records: "
                f"{', '.join(known) or 'none'}.",
                param_hint="--gate",
            )
    before = registry.versions(version.name)
    was = next((v.version for v in before if alias in v.aliases), None)
    try:
        event = registry.promote(
            version.name, version.version, alias, reason=reason, gate_id=gate, force=force
        )
    except PromotionRefusedError as exc:
        err_console.print(f"[bold red]refused:[/] {escape(str(exc))}", soft_wrap=True)
        err_console.print(
            f"To promote anyway: shipyard models promote {escape(version.ref)} --alias "
            f"{alias} --force --reason '...'",
            soft_wrap=True,
        )
        raise typer.Exit(1) from None
    if as_json:
        print_json(asdict(event))
    elif was == version.version:
        console.print(f"{escape(version.name)}@{alias} already points at {version.version}.")
    else:
        how = f"forced: {escape(reason)}" if event.forced else f"gate {event.gate_id}"
        start = "nothing" if was is None else str(was)
        console.print(
            f"[green]{escape(version.name)}@{alias}[/]: {start} → {version.version} ({how})"
        )


@app.command("rollback")
def rollback(
    name: Annotated[str, typer.Argument(help="The model (or NAME@ALIAS).")],
    alias: AliasOption = "production",
    reason: ReasonOption = "",
    as_json: JsonOption = False,
) -> None:
    """Point NAME@ALIAS back at the version it held before its latest promotion.

    Each rollback undoes one more promotion. Exit 2 for an unknown model, an alias that
    points nowhere, or nothing left to roll back."""
    if "@" in name:
        name, _, alias = name.partition("@")
    event = _registry().rollback(name, alias, reason=reason)
    if as_json:
        print_json(asdict(event))
        return
    console.print(
        f"[green]{escape(name)}@{escape(alias)}[/]: {event.previous_version} → "
        f"{event.version} (rollback)"
    )


@app.command("card")
def card(
    ref: RefArg,
    html: Annotated[Path | None, typer.Option("--html", help="Write an HTML card here.")] = None,
    md: Annotated[Path | None, typer.Option("--md", help="Write a Markdown card here.")] = None,
    as_json: JsonOption = False,
) -> None:
    """The model card of a version: what it is for, its data, evaluation, gates and aliases.

    Prints Markdown unless --html or --md write it to files."""
    from shipyard.registry.card import model_card

    found = model_card(_registry(), ref)
    for path, render in ((html, found.html), (md, found.markdown)):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render(), encoding="utf-8")
            if not as_json:
                console.print(f"Wrote {escape(str(path))}")
    if as_json:
        print_json(found.to_dict())
    elif html is None and md is None:
        sys.stdout.write(found.markdown())  # as is, for a pipe or a file


@app.command("export")
def export(
    ref: RefArg,
    directory: Annotated[Path, typer.Argument(help="A new (or empty) folder to write.")],
    sample: Annotated[
        Path | None,
        typer.Option(help="Input rows (Parquet) to score now and ship, so verify can rescore."),
    ] = None,
    features: Annotated[
        str | None,
        typer.Option(help="The input columns, a,b,c (default: the lineage's, else the model's)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Write a version to a self-contained folder: the model (skops, and ONNX when it
    converts), model.json, the card, pinned requirements, and the sample with its scores.

    Exit 2 for an unknown reference, a folder that is not new or empty, or a bad sample."""
    import json

    from shipyard.registry.export import export_model

    rows = None if sample is None else read_parquet(sample, "--sample")
    columns = None if features is None else [c.strip() for c in features.split(",") if c.strip()]
    try:
        folder = export_model(_registry(), ref, directory, sample=rows, features=columns)
    except FileExistsError as exc:
        raise typer.BadParameter(str(exc), param_hint="DIRECTORY") from None
    facts = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    files = sorted(p.name for p in folder.iterdir())
    if as_json:
        print_json({"directory": str(folder), "files": files, "model": facts})
        return
    onnx = facts["onnx"]
    console.print(f"Exported {facts['name']}:{facts['version']} to {escape(str(folder))}")
    console.print(f"files: {', '.join(files)}")
    if not onnx.get("available"):
        console.print(f"[yellow]no ONNX:[/] {escape(str(onnx.get('reason')))}")
    if facts["sample"] is None:
        console.print("[yellow]no sample:[/] pass --sample rows.parquet so verify can rescore.")
    console.print(f"Check it anywhere with: shipyard models verify {escape(str(folder))}")


@app.command("verify")
def verify(
    directory: Annotated[Path, typer.Argument(help="A folder `shipyard models export` wrote.")],
    as_json: JsonOption = False,
) -> None:
    """Check an exported folder: the model file's digest, that it loads with trusted types
    only, that it still gives the recorded sample scores, the pinned requirements (a
    warning), and ONNX against skops.

    Exit 1 when a check fails (a model file that no longer loads included); 2 when the
    folder is not an export."""
    from shipyard.errors import MaterializerError
    from shipyard.registry.export import verify_export

    try:
        result = verify_export(directory)
    except MaterializerError as exc:
        if not _is_export(directory):
            raise  # not an export at all: bad input, exit 2
        if as_json:
            print_json({"ok": False, "checks": [], "error": str(exc)})
        else:
            console.print(f"[red]✗ model loads[/] {escape(str(exc))}\n[red]export FAILED[/]")
        raise typer.Exit(1) from None
    if as_json:
        print_json(asdict(result))
    else:
        for check in result.checks:
            mark = (
                "[green]✓[/]" if check.passed else "[yellow]![/]" if check.warning else "[red]✗[/]"
            )
            console.print(f"{mark} {escape(check.name)}: {escape(check.detail)}")
        console.print("[green]export verified[/]" if result.ok else "[red]export FAILED[/]")
    if not result.ok:
        raise typer.Exit(1)


# -- output ----------------------------------------------------------------------------


def _is_export(folder: Path) -> bool:
    import json

    try:
        facts = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(facts, dict) and facts.get("format") == "shipyard-model-export"


def _aliases(aliases: Mapping[str, int]) -> str:
    return ", ".join(f"{escape(a)} → {v}" for a, v in aliases.items()) or "-"


def evaluation_line(evaluation: Mapping[str, Any]) -> str:
    """Threshold, value per 1,000 (tuned and at 0.5) and key metrics of an evaluation dict."""
    overall = (evaluation.get("metrics") or {}).get("overall") or {}
    metrics = "  ".join(f"{k} {number(overall.get(k))}" for k in KEY_METRICS)
    return (
        f"threshold {number(evaluation.get('threshold'), '.3f')}  value per 1,000 "
        f"{number(overall.get('value_per_1000'), ',.1f')} (at 0.5: "
        f"{number(overall.get('value_per_1000_at_0_5'), ',.1f')})  {metrics}"
    )


def _print_evaluation(registered: Mapping[str, Any] | None, gates: list[dict[str, Any]]) -> None:
    recorded = next((g for g in gates if g["record"].get("evaluation")), None)
    if registered:
        console.print(f"evaluation (registered)  {evaluation_line(registered)}")
    elif recorded is not None:
        source = f"gate {recorded['id']}, {when(recorded['created_at'])}"
        console.print(f"evaluation ({source})  {evaluation_line(recorded['record']['evaluation'])}")
    else:
        console.print("[dim]No evaluation recorded.[/]")


def _gates_table(gates: list[dict[str, Any]]) -> Table:
    table = Table("gate", "when", "verdict", "against", "failed checks")
    for gate in gates:
        record = gate["record"]
        checks = record.get("checks") or []
        failed = [c for c in checks if not c.get("passed")]
        names = ", ".join(f"{c.get('kind')} {c.get('metric')}" for c in failed)
        table.add_row(
            str(gate["id"]),
            when(gate["created_at"]),
            "[green]passed[/]" if gate["passed"] else "[red]failed[/]",
            escape(str(record.get("baseline") or "no baseline")),
            f"{len(failed)} of {len(checks)}" + (f": {escape(names)}" if names else ""),
        )
    return table


def _history_table(history: list[Any], version: int) -> Table:
    table = Table("when", "alias", "action", "version", "actor", "gate", "reason")
    table.caption = f"The alias history of the model; rows about version {version} in bold."
    for e in history:
        moved = f"{e.previous_version or '-'} → {e.version or '-'}"
        action = f"{e.action} [yellow](forced)[/]" if e.forced else e.action
        style = "bold" if version in (e.version, e.previous_version) else None
        cells = (e.alias, action, moved, escape(e.actor), str(e.gate_id or "-"), escape(e.reason))
        table.add_row(when(e.created_at), *cells, style=style)
    return table
