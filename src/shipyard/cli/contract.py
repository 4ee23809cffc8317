"""``shipyard contract check|infer|diff|lint|release``."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from shipyard.cli._console import console, err_console, print_json

app = typer.Typer(
    help="Data contracts: check deliveries, draft contracts, catch breaking changes.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
ContractArg = Annotated[Path, typer.Argument(help="The contract (ODCS YAML).")]


@app.command("check")
def check(
    contract: ContractArg,
    data: Annotated[list[str], typer.Argument(help="Files or globs (Parquet, CSV, JSON lines).")],
    dataset: Annotated[str | None, typer.Option(help="Which dataset of the contract.")] = None,
    quarantine: Annotated[
        Path | None, typer.Option(help="Write quarantined rows (with reasons) to this Parquet.")
    ] = None,
    accepted: Annotated[Path | None, typer.Option(help="Write accepted rows here.")] = None,
    report: Annotated[Path | None, typer.Option(help="Write an HTML report here.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Check a delivery. Exit 0: accepted (or quarantine within the contract's limit);
    1: a batch-level error rule failed or rows were quarantined; 2: unusable input."""
    from shipyard.contracts import Contract

    agreed = Contract.load(contract)
    with _Spinner(f"checking {len(data)} input(s) against {agreed.id}", enabled=not as_json):
        result = _validate(agreed, data, dataset, accepted, quarantine, report is not None)
    summary = result.report
    if report is not None:
        summary.write_html(report)
    if as_json:
        print_json(summary.to_dict())
    else:
        _print_report(summary, quarantine, report)
    if _failed(agreed, summary, dataset):
        raise typer.Exit(1)


def _validate(
    contract: Any,
    data: list[str],
    dataset: str | None,
    accepted: Path | None,
    quarantine: Path | None,
    plots: bool,
) -> Any:
    source: Any = data if len(data) > 1 else data[0]
    profile_rows = 100_000 if plots else 0
    if accepted is None and quarantine is None:
        return contract.validate(source, dataset=dataset, profile_rows=profile_rows)
    # Streaming to files keeps memory bounded; an output nobody asked for goes to scratch.
    with tempfile.TemporaryDirectory(prefix="shipyard-check-") as scratch:
        return contract.validate(
            source,
            dataset=dataset,
            accepted_path=accepted or Path(scratch) / "accepted.parquet",
            quarantine_path=quarantine or Path(scratch) / "quarantine.parquet",
            profile_rows=profile_rows,
        )


def _failed(contract: Any, summary: Any, dataset: str | None) -> bool:
    if not summary.batch_passed:
        return True
    limit = contract.dataset(dataset).max_quarantine_share
    return bool(summary.rows_quarantined) and limit is None


def _print_report(summary: Any, quarantine: Path | None, html: Path | None) -> None:
    verdict = "[green]passed[/]" if summary.batch_passed else "[bold red]FAILED[/]"
    console.print(
        f"[bold]{escape(summary.dataset)}[/] against contract "
        f"{escape(summary.contract_id)} v{escape(summary.contract_version)}: batch "
        f"{verdict}"
    )
    console.print(
        f"{summary.rows_in} rows in = {summary.rows_accepted} accepted + "
        f"{summary.rows_quarantined} quarantined"
        + ("" if summary.counts_add_up else "  [bold red](counts do not add up!)[/]")
    )
    failed = [r for r in summary.results if not r.passed]
    if failed:
        table = Table("check", "severity", "rows", "what happened", show_lines=False)
        for result in failed:
            style = "red" if result.severity == "error" else "yellow"
            rows = str(result.failed_rows) if result.kind == "row" else "-"
            table.add_row(
                escape(result.id), f"[{style}]{result.severity}[/]", rows, escape(result.message)
            )
        console.print(table)
    else:
        console.print("[green]Every check passed.[/]")
    if summary.new_columns:
        console.print(
            f"[yellow]Schema drift:[/] columns not in the contract: "
            f"{escape(', '.join(summary.new_columns))}"
        )
    if quarantine is not None and summary.rows_quarantined:
        console.print(f"Quarantined rows and their reasons: {quarantine}")
    if html is not None:
        console.print(f"HTML report: {html}")


@app.command("lint")
def lint(contract: ContractArg, as_json: JsonOption = False) -> None:
    """Check that a contract is valid ODCS that shipyard can enforce (exit 2 if not)."""
    from shipyard.contracts.lint import lint_contract

    findings = lint_contract(contract)
    if as_json:
        print_json(findings)
    else:
        for finding in findings["notes"]:
            console.print(f"[yellow]note:[/] {escape(finding)}")
        console.print(
            f"{contract}: [green]valid ODCS v3[/], {findings['checks']} checks shipyard enforces."
        )


@app.command("diff")
def diff(
    old: Annotated[Path, typer.Argument(help="The contract as it was (ODCS YAML).")],
    new: Annotated[Path, typer.Argument(help="The contract as proposed.")],
    as_json: JsonOption = False,
) -> None:
    """Every change between two contract versions, classified for the consumer.
    Exit 1 when anything breaks, so CI can block the change."""
    from shipyard.contracts import Contract
    from shipyard.contracts.diff import diff_contracts

    changes = diff_contracts(Contract.load(old), Contract.load(new))
    if as_json:
        print_json(changes.to_dict())
    else:
        console.print(escape(changes.summary()))
    if changes.breaking:
        raise typer.Exit(1)


@app.command("infer")
def infer(
    data: Annotated[list[str], typer.Argument(help="Files or globs to learn from.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the YAML.")] = Path(
        "contract.yaml"
    ),
    name: Annotated[str, typer.Option(help="The dataset's name in the contract.")] = "dataset",
    contract_id: Annotated[str | None, typer.Option("--id", help="The contract's id.")] = None,
) -> None:
    """Draft a contract from data, with comments for the team to review."""
    from shipyard.contracts.infer import infer_yaml

    if output.exists():
        err_console.print(f"[red]error:[/] {output} exists; choose another --output or remove it.")
        raise typer.Exit(2)
    with _Spinner("reading the data", enabled=True):
        text = infer_yaml(data if len(data) > 1 else data[0], name=name, contract_id=contract_id)
    output.write_text(text, encoding="utf-8")
    console.print(
        f"Wrote {output}. Review every rule with the data's owners, then "
        f"`shipyard contract check {output} DATA`."
    )


@app.command("release")
def release(
    quarantine: Annotated[str, typer.Argument(help="A quarantine Parquet file or artifact id.")],
    contract: Annotated[Path, typer.Option(help="The contract to check the rows against.")],
    into: Annotated[Path, typer.Option(help="Write the released rows to this Parquet file.")],
    dataset: Annotated[str | None, typer.Option(help="Which dataset of the contract.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Re-check quarantined rows after a fix; release those that pass now.

    Rows that still fail stay in quarantine (a file is rewritten in place, whole or
    not at all). Exit 0 when every row was released, 1 when some remain."""
    from shipyard.contracts.release import release_quarantine

    outcome = release_quarantine(quarantine, contract, into, dataset=dataset)
    if as_json:
        print_json(outcome)
    else:
        console.print(
            f"{outcome['rows_in']} quarantined rows re-checked: "
            f"{outcome['released']} released to {into}, "
            f"{outcome['remaining']} still quarantined"
            + (f" in {outcome['remaining_path']}" if outcome["remaining_path"] else "")
        )
    if outcome["remaining"]:
        raise typer.Exit(1)


class _Spinner:
    """A status line while a long check runs (quiet for --json)."""

    def __init__(self, text: str, *, enabled: bool) -> None:
        self._status = console.status(text) if enabled else None

    def __enter__(self) -> None:
        if self._status is not None:
            self._status.__enter__()

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.__exit__(None, None, None)
