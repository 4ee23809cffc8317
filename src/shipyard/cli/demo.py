"""``shipyard demo [DIR]``: the fraud-detection example, end to end."""

from __future__ import annotations

import datetime as dt
import importlib
import shutil
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from shipyard.cli._console import console, duration, status
from shipyard.cli._demo_serving import show_serving

DEMO_START = dt.date(2026, 1, 1)
DEMO_DAYS = 60
BROKEN_DAY = 12  # a delivery with out-of-range amounts, missing ids, duplicates, bad currencies
CONTRACT = "contracts/transactions.yaml"


def example_folder() -> Path:
    """The fraud example project, from the installed package or the source tree."""
    import shipyard

    packaged = Path(shipyard.__file__).parent / "_examples" / "fraud"
    if packaged.is_dir():
        return packaged
    source = Path(shipyard.__file__).resolve().parents[2] / "examples" / "fraud"
    if source.is_dir():
        return source
    raise typer.BadParameter("the fraud example is not installed with this shipyard")


def demo(
    directory: Annotated[Path, typer.Argument(help="Where to create the demo project.")] = Path(
        "shipyard-demo"
    ),
    days: Annotated[int, typer.Option(help="Days of upstream batches to generate.")] = DEMO_DAYS,
    rows_per_day: Annotated[int, typer.Option(help="Transactions per daily batch.")] = 5000,
    weeks: Annotated[
        int, typer.Option(min=0, help="Weeks of production traffic to monitor (0: none).")
    ] = 6,
) -> None:
    """Create the fraud-detection example project, generate its data, and train."""
    from shipyard.cli._demo_monitoring import show_monitoring
    from shipyard.cli.run import RunProgress
    from shipyard.core.project import Project
    from shipyard.registry.registry import Registry

    directory = directory.resolve()
    _copy_example(directory)
    console.print(f"[bold]1.[/] Example project written to {directory}")
    batches = _generate(directory, days, rows_per_day)
    console.print(
        f"[bold]2.[/] The upstream payments team delivered {len(batches)} daily "
        f"batches of {rows_per_day} transactions to {directory / 'data'}"
    )
    project = Project.discover(directory)
    console.print("[bold]3.[/] Training the fraud model (pipeline [bold]training[/]):")
    with RunProgress(enabled=True) as progress:
        run = project.pipeline("training").run(
            project=project, listener=progress, raise_on_failure=False
        )
    _report(run, directory)
    if run.status != "completed":
        raise typer.Exit(1)
    _explain_ingestion(run)
    _check_latest(directory, batches[-1])
    _serve_features(project, run)
    _gate_and_promote(project, run)
    _refuse_worse(project)
    show_serving(
        project, directory, batches[-2] if len(batches) > 1 else batches[-1], _served(project)
    )
    watched = None
    if weeks and "production" in Registry(project).aliases("fraud"):
        watched = show_monitoring(
            project,
            directory,
            start=DEMO_START + dt.timedelta(days=days),
            weeks=weeks,
            rows_per_day=rows_per_day,
            seed=7,
            console=console,
        )
    _next_steps(run, directory, batches[-1], watched)


def _copy_example(directory: Path) -> None:
    source = example_folder()
    ignore = shutil.ignore_patterns("__pycache__", ".shipyard", "data", "*.pyc")
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, directory, ignore=ignore, dirs_exist_ok=True)


def _generate(directory: Path, days: int, rows_per_day: int) -> list[Path]:
    sys.path.insert(0, str(directory))
    try:
        generator: Any = importlib.import_module("fraud.generator")
    finally:
        sys.path.remove(str(directory))
    return list(
        generator.write_daily_batches(
            directory / "data",
            DEMO_START,
            days,
            rows_per_day=rows_per_day,
            seed=7,
            broken_day=BROKEN_DAY if days > BROKEN_DAY + 1 else None,
            # The newest delivery renames `amount`: upstream changed its schema.
            schema_change_day=days - 1 if days > 1 else None,
        )
    )


def _explain_ingestion(run: Any) -> None:
    from rich.markup import escape

    report = run.step_runs["ingest"].outputs["report"].load()
    console.print(
        f"\n[bold]4.[/] The contract {report['contract_id']} v{report['contract_version']} "
        f"checked {len(report['batches'])} deliveries: {report['rows_in']} rows in = "
        f"{report['rows_accepted']} accepted + {report['rows_quarantined']} quarantined."
    )
    for batch in report["batches"]:
        failed = [r for r in batch["results"] if not r["passed"] and r["severity"] == "error"]
        if failed:
            console.print(f"   {Path(batch['source']).name}:")
            for result in failed:
                console.print(f"     [red]✗[/] {escape(result['message'])}")
    artifact = run.step_runs["ingest"].outputs["quarantine"]
    console.print(
        f"   The quarantined rows and their reasons: artifact {artifact.id[:8]} "
        f"(shipyard artifacts show {artifact.id[:8]})"
    )


def _check_latest(directory: Path, latest: Path) -> None:
    from rich.markup import escape

    from shipyard.contracts import Contract

    result = Contract.load(directory / CONTRACT).validate(str(latest))
    verdict = "passed" if result.report.batch_passed else "[bold red]FAILED[/]"
    console.print(f"\n[bold]5.[/] Today's delivery, {latest.name}, {verdict} the contract:")
    for failure in result.report.errors:
        console.print(f"     [red]✗[/] {escape(failure.message)}")
    console.print("   It would not reach training: in CI, `shipyard contract check` exits 1.")


def _serve_features(project: Any, run: Any) -> None:
    """Materialize the feature views online, read one customer back, check for skew."""
    from shipyard.features import FeatureStore

    store = FeatureStore.from_project(project)
    with console.status("Materializing the feature views into the online store…"):
        done = store.materialize()
    rows = sum(view["rows_read"] for view in done)
    entities = ", ".join(f"{view['entities']} {view['view']}" for view in done)
    console.print(
        f"\n[bold]6.[/] The online store now serves the same features: {rows} history rows "
        f"materialized in {sum(v['seconds'] for v in done):.2f} s ({entities})."
    )
    training = run.step_runs["build_training_set"].outputs["output"].load()
    last = training.sort("event_timestamp").row(-1, named=True)
    customer, now = last["customer_id"], last["event_timestamp"]
    online = store.online_features({"customer_id": [customer]}, ["customer_activity"], now=now)
    values = ", ".join(f"{k}={v[0]}" for k, v in list(online.values.items())[:3])
    console.print(f"   Customer {customer} as of {now:%Y-%m-%d %H:%M}: {values}, …")
    mismatches = sum(len(store.skew(name, sample=200)["mismatches"]) for name in store.views)
    console.print(
        f"   Skew check (online vs recomputed from history, 200 entities a view): "
        f"{mismatches} mismatches."
    )


LABEL = "is_chargeback"


def _gate_and_promote(project: Any, run: Any) -> None:
    """Register the model, check it against the objectives, promote it to production."""
    version, gate_id, evaluation, gate = _gate_run(project, run)
    overall = evaluation.metrics["overall"]
    console.print(
        f"\n[bold]7.[/] Registered [bold]{version.ref}[/]. On the held-out days, at the "
        f"threshold tuned on validation ({evaluation.threshold:.3f}): value per 1,000 payments "
        f"{overall['value_per_1000']:,.0f} EUR (at 0.5: {overall['value_per_1000_at_0_5']:,.0f}), "
        f"recall {overall['recall']:.1%}, p99 latency {overall['latency_ms_p99']:.1f} ms."
    )
    console.print(f"   Gate: {gate.summary().splitlines()[0]}")
    if gate.passed:
        from shipyard.registry.registry import Registry

        Registry(project).promote(
            "fraud", version.version, reason="demo: passed the gate", gate_id=gate_id
        )
        console.print(f"   Promoted {version.ref} to [bold]production[/].")
    else:
        console.print(f"   Not promoted: {escape(gate.summary())}")
    _write_papers(project, version, evaluation, gate)


def _served(project: Any) -> str:
    """What step 9 serves: fraud@production, or the first version when its gate failed
    (a latency budget missed on a busy machine, say), so the demo still shows serving."""
    from shipyard.registry.registry import Registry

    return "fraud@production" if "production" in Registry(project).aliases("fraud") else "fraud:1"


def _write_papers(project: Any, version: Any, evaluation: Any, gate: Any) -> None:
    """The evaluation report and the model card, as files a person opens."""
    from shipyard.evaluation.report import write_report
    from shipyard.registry.card import model_card
    from shipyard.registry.registry import Registry

    folder = project.root / "reports"
    name = version.ref.replace(":", "-")
    report = write_report(evaluation.to_dict(), folder / f"{name}-evaluation.html", gate.to_dict())
    card = folder / f"{name}-card.html"
    card.write_text(model_card(Registry(project), version.ref).html(), encoding="utf-8")
    console.print(
        f"   Evaluation report: {report.relative_to(project.root)}; model card: "
        f"{card.relative_to(project.root)}"
    )


def _refuse_worse(project: Any) -> None:
    """Train a deliberately weaker model and show the gate refusing it, with its reasons."""
    from shipyard.errors import PromotionRefusedError
    from shipyard.registry.registry import Registry

    run = project.pipeline("training").run(
        params={"max_iter": 3, "learning_rate": 0.05}, project=project, raise_on_failure=False
    )
    version, _, _, gate = _gate_run(project, run)
    console.print(
        f"\n[bold]8.[/] A weaker candidate ({version.ref}: 3 boosting rounds) against "
        "production, on the same days, scored now:"
    )
    for line in gate.summary().splitlines():
        console.print(f"   {escape(line)}")
    try:
        Registry(project).promote("fraud", version.version, reason="demo: try the weak one")
    except PromotionRefusedError as exc:
        console.print(f"   Promotion refused: {escape(str(exc))}")


def _gate_run(project: Any, run: Any, against: str = "production") -> tuple[Any, str, Any, Any]:
    """Register a training run's model, then gate it against ``fraud@against`` on the
    run's test days, both scored now (as ``shipyard evaluate`` does)."""
    from shipyard.monitoring import profile_version
    from shipyard.monitoring.gating import gate_version
    from shipyard.registry.registry import Registry

    fraud = importlib.import_module("fraud.features")
    features = [*fraud.CATEGORICAL, *fraud.NUMERIC]
    test = run.step_runs["split_by_time"].outputs["test"].load()
    version = Registry(project).register_run(
        "fraud",
        run,
        step="train_model",
        features=features,
        lineage={"training_window": {"start": run.params["start"], "end": run.params["end"]}},
        description="Scores card payments for fraud.",
    )
    profile_version(project, version.ref)  # the reference monitoring compares production with
    gated = gate_version(
        project,
        version,
        test,
        label=LABEL,
        features=features,
        against=against,
        context={"data": f"run {run.id[:8]}: split_by_time.test"},
    )
    assert gated.gate_id is not None  # recorded: record=True
    return version, gated.gate_id, gated.evaluation, gated.gate


def _report(run: Any, directory: Path) -> None:
    console.print(f"Run [bold]{run.id[:8]}[/] {status(run.status)} in {duration(run.seconds)}.")
    for key, value in run.metrics.items():
        if not key.startswith(("rows_", "batches_")):
            console.print(f"  {key:<24} {value:.4f}")


def _monitor_steps(command: str, watched: dict[str, Any] | None) -> list[str]:
    if watched is None:
        return []
    since, until, served = watched["since"][:10], watched["until"][:10], watched["served"]
    return [
        f"{command} monitor {served} --since {since} --until {until} --window 1d --report "
        f"reports/daily.html   [dim]# the version that served those weeks[/]",
        f"{command} monitor {served} --since {since} --until {until} --json   "
        "[dim]# for CI and cron[/]",
    ]


def _next_steps(run: Any, directory: Path, latest: Path, watched: dict[str, Any] | None) -> None:
    command = _shipyard_command()
    console.print("\nWhere to look next:")
    for line in (
        f"cd {directory}",
        f"{command} runs show {run.id[:8]}",
        f"{command} runs list",
        f"{command} run training   [dim]# again: the loaders re-read the data, "
        "every other step is a cache hit[/]",
        f"{command} run training -p learning_rate=0.05",
        f"{command} features list",
        f"{command} features get customer_activity --key customer_id=<id> --now 2026-02-15",
        f"{command} contract check {CONTRACT} data/{latest.name} --report report.html",
        f"{command} serve fraud@production   [dim]# then open http://127.0.0.1:8000/docs[/]",
        *_monitor_steps(command, watched),
    ):
        console.print(f"  {line}")


def _shipyard_command() -> str:
    """``shipyard`` if it is on PATH, else the full path of the script next to this Python."""
    if shutil.which("shipyard"):
        return "shipyard"
    beside = Path(sys.executable).parent / "shipyard"
    return str(beside) if beside.exists() else "shipyard"
