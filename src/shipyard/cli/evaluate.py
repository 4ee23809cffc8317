"""``shipyard evaluate REF``: score a registered version and the version behind an alias
on the same data, now, and run the gate of the project's objectives."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from shipyard.cli._console import console, current_project, print_json

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
KEY_METRICS = ("roc_auc", "average_precision", "recall", "precision", "log_loss")


def evaluate(
    ref: Annotated[
        str, typer.Argument(help="The candidate: name@alias, name:3, or name (the latest).")
    ],
    data: Annotated[
        Path,
        typer.Option(
            help="The test rows (Parquet): the features, the label and the columns the "
            "objectives use. Without --validation, its first half tunes the thresholds."
        ),
    ],
    label: Annotated[str, typer.Option(help="The 0/1 label column.")],
    features: Annotated[
        str | None,
        typer.Option(help="The model's input columns, a,b,c (default: the version's lineage)."),
    ] = None,
    validation: Annotated[
        Path | None, typer.Option(help="Rows (Parquet) to tune the decision thresholds on.")
    ] = None,
    against: Annotated[
        str, typer.Option(help="The baseline: the version behind NAME@ALIAS, if it is set.")
    ] = "production",
    report: Annotated[
        Path | None, typer.Option(help="Write the candidate's HTML report, with the gate, here.")
    ] = None,
    record: Annotated[
        bool,
        typer.Option(
            "--record/--no-record",
            help="Record the gate decision on the candidate version (what promotion needs).",
        ),
    ] = True,
    as_json: JsonOption = False,
) -> None:
    """Evaluate a candidate version against the baseline and gate it with the objectives.

    Both models are scored on the same rows now (never stale numbers), each at the
    threshold that maximises business value on the validation rows. The gate checks the
    objectives of shipyard.toml; without a baseline (NAME@ALIAS unset) only value,
    fairness and latency checks apply. The decision is recorded on the candidate unless
    --no-record. Exit 0 gate passed, 1 gate failed, 2 bad input (unknown version,
    unreadable data, missing columns, broken objectives)."""
    from shipyard.evaluation.report import write_report
    from shipyard.monitoring.gating import gate_version
    from shipyard.registry.registry import Registry

    project = current_project()
    candidate = Registry(project).get(ref)
    rows = read_parquet(data, "--data")
    tune = None if validation is None else read_parquet(validation, "--validation")
    columns = _features(features, candidate, rows.columns, label)
    busy = console.status(f"evaluating {escape(candidate.ref)}") if not as_json else nullcontext()
    with busy:
        gated = gate_version(
            project,
            candidate,
            rows,
            label=label,
            features=columns,
            against=against,
            validation=tune,
            record=record,
            context={
                "data": str(data),
                "validation_data": None if validation is None else str(validation),
            },
        )
    mine, theirs, gate, gate_id = (
        gated.evaluation,
        gated.baseline_evaluation,
        gated.gate,
        gated.gate_id,
    )
    baseline, target = gated.baseline, gated.target
    if report is not None:
        write_report(mine.to_dict(), report, gate=gate.to_dict())
    if as_json:
        print_json(
            {
                "candidate": mine.to_dict(),
                "baseline": None if theirs is None else theirs.to_dict(),
                "gate": gate.to_dict(),
                "gate_id": gate_id,
                "report": None if report is None else str(report),
            }
        )
    else:
        _print(candidate, baseline, target, mine, theirs, gate)
        _print_outcome(candidate, gate, gate_id, report, against)
    if not gate.passed:
        raise typer.Exit(1)


def read_parquet(path: Path, option: str) -> Any:
    """A Parquet file as a Polars frame; a missing or unreadable file exits 2."""
    import polars as pl

    if not path.is_file():
        raise typer.BadParameter(f"no such file: {path}", param_hint=option)
    try:
        return pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise typer.BadParameter(
            f"{path} is not a readable Parquet file: {exc}", param_hint=option
        ) from None


def number(value: Any, spec: str = ".4g") -> str:
    """A metric for people: ``n/a`` when missing or not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "n/a"
    return format(value, spec)


def _features(given: str | None, version: Any, columns: list[str], label: str) -> list[str]:
    chosen = [c.strip() for c in (given or "").split(",") if c.strip()]
    if chosen:
        return chosen
    recorded = version.lineage.get("features")
    if isinstance(recorded, list) and recorded:
        return [str(c) for c in recorded]
    others = ", ".join(c for c in columns if c != label) or "none"
    raise typer.BadParameter(
        f"{version.ref} records no features in its lineage, so name the model's input "
        f"columns: --features a,b,c. The data's columns besides the label: {others}.",
        param_hint="--features",
    )


def _print(candidate: Any, baseline: Any, target: str, mine: Any, theirs: Any, gate: Any) -> None:
    rows = mine.rows
    where = "no baseline" if baseline is None else f"{target} ({baseline.ref})"
    console.print(
        f"[bold]{escape(candidate.ref)}[/] against {escape(where)}: {rows['test']:,} test rows, "
        f"thresholds tuned on {rows['validation']:,} validation rows"
    )
    if baseline is None:
        console.print(
            f"[yellow]note:[/] no baseline: {escape(target)} is not set, so only value, "
            "fairness and latency thresholds apply (change checks are skipped)."
        )
    elif baseline.version == candidate.version:
        console.print(f"[yellow]note:[/] {escape(target)} is the candidate itself.")
    shown = [(e, role) for e, role in ((mine, "candidate"), (theirs, "baseline")) if e is not None]
    models = Table("", *(f"{escape(e.model)} ({role})" for e, role in shown))
    overall = [e.metrics["overall"] for e, _ in shown]
    models.add_row("threshold (tuned)", *(number(e.threshold, ".3f") for e, _ in shown))
    for key, name in (("value_per_1000", "at threshold"), ("value_per_1000_at_0_5", "at 0.5")):
        models.add_row(f"value / 1,000 {name}", *(number(o.get(key), ",.1f") for o in overall))
    for key in KEY_METRICS:
        models.add_row(key, *(number(o.get(key)) for o in overall))
    console.print(models)
    if gate.checks:
        console.print(_checks_table(gate))


def _checks_table(gate: Any) -> Table:
    table = Table("verdict", "check", "candidate", "baseline", "limit", "note")
    for check in sorted(gate.checks, key=lambda c: (c.passed, c.skipped)):
        verdict = (
            "[red]✗ failed[/]"
            if not check.passed
            else "[dim]– skipped[/]"
            if check.skipped
            else "[green]✓ passed[/]"
        )
        place = f" on {check.slice}" if check.slice else ""
        place += f" across {check.group}" if check.group else ""
        table.add_row(
            verdict,
            escape(f"{check.kind} {check.metric}{place}"),
            number(check.candidate, ".6g"),
            number(check.baseline, ".6g"),
            escape(check.limit),
            escape(check.note),
        )
    return table


def _print_outcome(
    candidate: Any, gate: Any, gate_id: str | None, report: Path | None, alias: str
) -> None:
    verdict = gate.summary().splitlines()[0]
    console.print(
        f"[bold green]{escape(verdict)}[/]" if gate.passed else f"[bold red]{escape(verdict)}[/]"
    )
    if report is not None:
        console.print(f"Report: {escape(str(report))}")
    if gate_id is None:
        console.print("The gate decision was not recorded (--no-record).")
        return
    console.print(f"Gate record {gate_id} kept on {escape(candidate.ref)}.")
    if gate.passed:
        console.print(
            f"Promote with: shipyard models promote {escape(candidate.ref)} --alias "
            f"{escape(alias)} --gate {gate_id}"
        )
