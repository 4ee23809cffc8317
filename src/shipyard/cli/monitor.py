"""``shipyard monitor [MODEL]``: drift, contract health, performance, SLOs and alerts of a
served model, as a Rich summary, an HTML report and JSON; exit 1 while an error alert fires."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from shipyard.cli._console import console, print_json

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def monitor(
    model: Annotated[
        str | None,
        typer.Argument(
            metavar="[MODEL]", help="NAME@ALIAS or NAME:VERSION (default: [monitoring] model)."
        ),
    ] = None,
    window: Annotated[
        str | None,
        typer.Option("--window", help="Window size: 1h, 6h, 1d, 7d, or a count of predictions."),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="First moment watched (ISO date or time, UTC).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="End of the range, excluded (ISO, UTC; default now).")
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Write a self-contained HTML report here.")
    ] = None,
    retrain: Annotated[
        bool,
        typer.Option(
            "--retrain",
            help="When a rule marked retrain fires, run [monitoring.retrain] and gate the "
            "candidate (promoted only if it passes).",
        ),
    ] = False,
    log_dir: Annotated[
        Path | None,
        typer.Option(help="The prediction log (default .shipyard/predictions/MODEL)."),
    ] = None,
    notify: Annotated[
        bool,
        typer.Option("--notify/--no-notify", help="Deliver alerts to the log and the webhook."),
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Compare recent traffic with the training reference; alert; optionally retrain."""
    from shipyard.cli._console import current_project
    from shipyard.monitoring._monitor import monitor as run_monitor
    from shipyard.monitoring.settings import MonitorSettings

    project = current_project()
    settings = MonitorSettings.from_project(project)
    notifiers = _notifiers(project, settings, model, terminal=not as_json) if notify else []
    with console.status("Monitoring…", spinner="dots") as spinner:
        result = run_monitor(
            project,
            model,
            every=window,
            since=_moment(since, "--since"),
            until=_moment(until, "--until"),
            retrain=retrain,
            notifiers=notifiers,
            log_dir=log_dir,
            settings=settings,
            progress=None if as_json else lambda stage: spinner.update(f"Monitoring: {stage}…"),
        )
    for notifier in notifiers:
        notifier.close(timeout=5.0)
    _warn_undelivered(notifiers)
    if report is not None:
        from shipyard.monitoring.report import write_report

        write_report(result.to_dict(), report)
    if as_json:
        print_json(result.to_dict())
    else:
        show(result.to_dict(), report)
    raise typer.Exit(result.exit_code)


def _moment(text: str | None, option: str) -> dt.datetime | None:
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"expected an ISO date or time such as 2026-03-01 or 2026-03-01T12:00, got {text!r}",
            param_hint=option,
        ) from None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment


def _warn_undelivered(notifiers: list[Any]) -> None:
    """Alerts a notifier gave up on (a webhook down or refusing them), said on stderr: the
    monitoring result and exit code stand."""
    from shipyard.cli._console import err_console

    for notifier in notifiers:
        for failure in getattr(notifier, "failures", []):
            err_console.print(
                f"[yellow]warning:[/] alert {escape(failure.alert)} ({failure.status}) was not "
                f"delivered after {failure.attempts} attempt(s): {escape(failure.reason)}",
                soft_wrap=True,
            )


def _notifiers(project: Any, settings: Any, model: str | None, *, terminal: bool) -> list[Any]:
    from shipyard.monitoring.alerts import LogNotifier, TerminalNotifier, WebhookNotifier

    found: list[Any] = [LogNotifier(project.settings.state_dir / "monitoring" / "alerts.jsonl")]
    if terminal:
        found.append(TerminalNotifier(console))
    if settings.webhook is not None:
        name = (model or settings.model or "").partition("@")[0].partition(":")[0]
        found.append(
            WebhookNotifier(
                settings.webhook.url,
                timeout=settings.webhook.timeout,
                retries=settings.webhook.retries,
                project=project.settings.project.name,
                model=name,
            )
        )
    return found


def show(result: dict[str, Any], report: Path | None = None) -> None:
    """The Rich summary of a monitor result."""
    console.print(
        f"[bold]{escape(result['ref'])}[/] (version {result['version']}): "
        f"{result['log']['rows']:,} predictions from {result['since'][:16]} to "
        f"{result['until'][:16]}, windows of {result['every']}; reference "
        f"{result['reference']['rows']:,} training rows."
    )
    if result["log"]["rows"] == 0:
        newest = result["log"].get("newest")
        hint = (
            f" The newest prediction in the log is from {newest[:16]}: pass --until to watch "
            "an earlier range."
            if newest
            else " The log is empty: is the service logging to "
            f"{escape(result['log']['directory'])}?"
        )
        console.print(f"[yellow]![/] No predictions in this range.{hint}")
    for message in result["log"]["skipped"]:
        console.print(f"[yellow]![/] {escape(message)}")
    console.print(windows_table(result))
    _show_alerts(result)
    _show_unknown(result)
    if retrain := result.get("retrain"):
        _show_retrain(retrain)
    if report is not None:
        console.print(f"Report: {report}")


def windows_table(result: dict[str, Any], last: int = 14) -> Table:
    """One line per window: traffic, drift, score, contract health, value."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    columns = ("window", "rows", "drifted", "flagged", "contract", "labelled", "value/1000")
    for column in (*columns, "recall"):
        table.add_column(column, justify="left" if column == "window" else "right")
    for window in result["windows"][-last:]:
        table.add_row(_label(window, result["every"]), f"{window['rows']:,}", *_cells(window))
    return table


def _label(window: dict[str, Any], every: str) -> str:
    """``2026-03-02`` for windows of days, ``2026-03-02 14:00`` for shorter ones."""
    start = str(window["start"])[:16].replace("T", " ")
    return start[:10] if every.endswith(("d", "w")) and start.endswith("00:00") else start


def _cells(window: dict[str, Any]) -> list[str]:
    if window["rows"] == 0:
        return ["[dim]no traffic[/]", "", "", "", "", ""]
    drift = window["drift"] or {}
    drifted = [name for name, c in drift.get("columns", {}).items() if c.get("drifted")]
    share = drift.get("share")
    style = "red" if drift.get("drifted") else ("yellow" if drifted else "green")
    drift_cell = f"[{style}]{len(drifted)} ({share:.0%})[/]" if share is not None else "-"
    contract = window.get("contract") or {}
    violations = contract.get("violation_share")
    contract_cell = "-" if violations is None else f"{violations:.1%}"
    coverage = (window.get("performance") or {}).get("label_coverage")
    return [
        drift_cell,
        f"{window['score']['flag_rate']:.1%}",
        contract_cell,
        "-" if coverage is None else f"{coverage:.0%}",
        _metric(window, "value_per_1000", "{:,.0f}"),
        _metric(window, "recall", "{:.1%}"),
    ]


def _metric(window: dict[str, Any], name: str, spec: str) -> str:
    """The realised figure where labels arrived, else the estimated one, marked so."""
    performance = window.get("performance") or {}
    value = (performance.get("metrics") or {}).get(name)
    if isinstance(value, int | float) and (performance.get("label_coverage") or 0) > 0:
        return spec.format(value)
    value = ((window.get("estimated") or {}).get("metrics") or {}).get(name)
    if isinstance(value, int | float):
        return f"[italic]~{spec.format(value)}[/] [dim]est.[/]"
    return "-"


def _show_alerts(result: dict[str, Any]) -> None:
    firing = result["firing"]
    if not firing:
        console.print("[green]No alert is firing.[/]")
        return
    console.print(f"[bold]{len(firing)} alert(s) firing:[/]")
    for alert in firing:
        style = SEVERITY_STYLE.get(alert["severity"], "white")
        console.print(
            f"  [{style}]{alert['severity']}[/] {escape(alert['alert'])}: "
            f"{escape(alert['message'])}"
        )


def _show_unknown(result: dict[str, Any]) -> None:
    """Rules whose signal no window measured: a misspelled name, or data not there yet."""
    for event in result["alerts"]:
        if event["status"] == "unknown":
            console.print(
                f"[yellow]?[/] rule {escape(event['alert'])}: {escape(event['message'])} "
                "[dim](check the signal's name in docs/monitoring.md)[/]"
            )


def _show_retrain(retrain: dict[str, Any]) -> None:
    console.print(
        f"Retraining ({', '.join(retrain['triggered_by'])}): run {retrain['run_id'][:8]} "
        f"{retrain['status']}; candidate {retrain.get('candidate') or '-'}."
    )
    if gate := retrain.get("gate"):
        verdict = "[green]passed[/]" if gate["passed"] else "[red]failed[/]"
        console.print(f"  Gate {verdict}: {escape(gate['summary'].splitlines()[0])}")
        console.print("  Promoted." if retrain["promoted"] else "  Not promoted.")
