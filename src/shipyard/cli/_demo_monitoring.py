"""The demo's weeks in production: the served model scores day after day of drifting traffic.

For each replayed day the upstream team's generator makes the day's payments (from the
third week on with a growing drift and more and more of the new ``crypto`` category),
``fraud@production`` scores them through :func:`shipyard.monitoring._replay.replay` into
the project's prediction log, stamped with their own times, and the day is delivered as
``data/transactions_<day>.parquet`` with its chargebacks added to ``data/labels.parquet``
(each with the time it arrives). Every ``refresh_days`` days the online store catches up
with the deliveries: an ingestion run validates the last ``HISTORY_DAYS`` days' deliveries under the
contract (the ``crypto`` rows are quarantined: the contract does not know the category)
and the feature views are materialized up to the start of the day about to be scored, so
no payment ever sees features from its own future.
"""

from __future__ import annotations

import datetime as dt
import importlib
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from shipyard import pipeline
from shipyard.contracts.ingest import ingest

CONTRACT = "contracts/transactions.yaml"
CALM_DAYS = 14  # replayed days without drift before the ramp starts
HISTORY_DAYS = 45  # deliveries each refresh reads: the training window's length, so that
# merchant_risk's 30 days see the chargebacks of payments up to 15 days older
LABEL_SEED_STREAM = 11


@pipeline
def deliveries(files: list[str]) -> Any:
    """The upstream team's latest deliveries, validated under the contract: what the
    online store is materialized from (broken batches are quarantined, not fatal)."""
    return ingest(files, CONTRACT, fail_on_batch_error=False)


def replay_production(
    project: Any,
    directory: Path,
    *,
    start: dt.date,
    weeks: int,
    rows_per_day: int,
    seed: int,
    console: Any,
    refresh_days: int = 7,
    label_delay_days: int = 14,
) -> dict[str, Any]:
    """Replay ``weeks`` weeks of payments from ``start`` through ``fraud@production``.

    Args:
        project: The demo project (a ``Project``), with ``fraud@production`` registered.
        directory: The project's folder (``data/`` is written there).
        start: The first replayed day: the day after the training data ends.
        weeks: How many weeks to replay.
        rows_per_day: Payments a day.
        seed: The generator's seed (the demo's, so customers carry over from training).
        console: A Rich console for the progress lines.
        refresh_days: Days between two refreshes of the online store.
        label_delay_days: The chargebacks file holds the labels known this many days
            after the last replayed day.

    Returns:
        What happened: ``days``, ``rows``, ``logged``, ``rejected`` (by ``reasons``),
        ``seconds`` (all), ``replay_seconds``, ``refresh_seconds`` (online store),
        ``refreshes``, ``log_dir``, ``labels`` (the full label feed), ``chargebacks``
        (the replayed days' labels known at ``labels_as_of``), ``first_ts``, ``last_ts``
        and ``daily`` (per day: date, drift, novel_category, rows, logged, rejected,
        crypto rows, fraud rows, replay seconds). Times are UTC; ``last_ts`` is exclusive.
    """
    from shipyard.serving.log import PredictionLog

    began = time.perf_counter()
    run = _Production(project, directory, start, rows_per_day, seed, weeks * 7)
    try:
        with PredictionLog(run.log_dir, model=run.served.name, flush_rows=1 << 30) as log:
            for index in range(run.days):
                if index % refresh_days == 0:
                    run.refresh(start + dt.timedelta(days=index))
                run.replay_day(index, log)
                if index % 7 == 6 or index == run.days - 1:
                    _show_week(console, run.daily[-(index % 7 + 1) :])
    finally:
        run.store.online.close()
    return run.outcome(label_delay_days, time.perf_counter() - began)


class _Production:
    """The replay's state: the served model, the online store, the label feed, the tallies."""

    def __init__(
        self, project: Any, directory: Path, start: dt.date, rows_per_day: int, seed: int, days: int
    ) -> None:
        from shipyard.features import FeatureStore
        from shipyard.serving.model import load_served

        self.project, self.start, self.days = project, start, days
        self.rows_per_day, self.seed = rows_per_day, seed
        self.generator = _generator(directory)
        self.data = directory / "data"
        self.feed = _LabelFeed(self.data / "labels.parquet", start)
        self.served = load_served("fraud@production", project)
        self.store = FeatureStore.from_project(project)
        self.log_dir: Path = project.settings.state_dir / "predictions" / self.served.name
        self.daily: list[dict[str, Any]] = []
        self.reasons: dict[str, int] = {}
        self.refresh_seconds = 0.0
        self.refreshes = 0

    def refresh(self, day: dt.date) -> None:
        """Bring the online store up to the start of ``day``."""
        self.refresh_seconds += _refresh(self.project, self.store, self.feed, self.data, day)
        self.refreshes += 1

    def replay_day(self, index: int, log: Any) -> None:
        """Score the day's payments into ``log``, then deliver them and their labels."""
        from shipyard.monitoring._replay import replay

        day = self.start + dt.timedelta(days=index)
        drift = _ramp(index, self.days)
        payments = self.generator.generate_transactions(
            day,
            1,
            rows_per_day=self.rows_per_day,
            seed=self.seed,
            drift=drift,
            novel_category=drift,
        )
        summary = replay(self.served, payments, log, request_id="transaction_id")
        for reason, count in summary.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + count
        _deliver(self.generator, payments, self.data, day, self.feed, self.seed)
        self.daily.append(_day_facts(day, drift, payments, summary))

    def outcome(self, label_delay_days: int, seconds: float) -> dict[str, Any]:
        """What happened, with the chargebacks known ``label_delay_days`` after the end."""
        self.feed.write()
        last = self.start + dt.timedelta(days=self.days - 1)
        end = dt.datetime.combine(last, dt.time(), dt.UTC) + dt.timedelta(days=1)
        as_of = end + dt.timedelta(days=label_delay_days)
        name = f"chargebacks_{as_of.date().isoformat()}.parquet"
        return {
            "days": self.days,
            "start": self.start,
            "end": last,
            "rows": sum(d["rows"] for d in self.daily),
            "logged": sum(d["logged"] for d in self.daily),
            "rejected": sum(d["rejected"] for d in self.daily),
            "reasons": self.reasons,
            "seconds": seconds,
            "replay_seconds": sum(d["seconds"] for d in self.daily),
            "refresh_seconds": self.refresh_seconds,
            "refreshes": self.refreshes,
            "log_dir": self.log_dir,
            "labels": self.feed.path,
            "chargebacks": self.feed.known(as_of, self.data / name),
            "labels_as_of": as_of,
            "first_ts": dt.datetime.combine(self.start, dt.time(), dt.UTC),
            "last_ts": end,
            "daily": self.daily,
        }


def _ramp(index: int, days: int) -> float:
    """0 for the first ``CALM_DAYS`` days, then rising linearly to 1 on the last day."""
    ramp = days - CALM_DAYS
    if index < CALM_DAYS or ramp <= 0:
        return 0.0
    return min(1.0, (index - CALM_DAYS + 1) / ramp)


def _generator(directory: Path) -> Any:
    """The project's own ``fraud.generator`` (the upstream team's stand-in)."""
    sys.path.insert(0, str(directory))
    try:
        return importlib.import_module("fraud.generator")
    finally:
        sys.path.remove(str(directory))


def _refresh(project: Any, store: Any, feed: _LabelFeed, data: Path, day: dt.date) -> float:
    """Bring the online store up to the start of ``day``; returns the seconds it took."""
    started = time.perf_counter()
    midnight = dt.datetime.combine(day, dt.time(), dt.UTC)
    _forget_the_future(store, midnight)
    feed.write()
    first = day - dt.timedelta(days=HISTORY_DAYS)
    files = [
        f"data/{path.name}"
        for offset in range(HISTORY_DAYS)
        if (path := data / f"transactions_{first + dt.timedelta(days=offset)}.parquet").exists()
    ]
    if files:
        deliveries.run(params={"files": files}, project=project, raise_on_failure=False)
        store.materialize(end=midnight)
    return time.perf_counter() - started


def _forget_the_future(store: Any, moment: dt.datetime) -> None:
    """Drop the views the online store holds beyond ``moment``, to be rebuilt up to it.

    Materializing up to now writes events the replay has not reached yet (chargebacks
    arrive weeks after their payments), and the newest event always wins in the store.
    """
    limit = int((moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)).total_seconds() * 1e6)
    for name in store.views:
        state = store.online.state(name)
        if state is not None and state.watermark_us is not None and state.watermark_us > limit:
            store.online.drop(name)


def _deliver(
    generator: Any, payments: pl.DataFrame, data: Path, day: dt.date, feed: _LabelFeed, seed: int
) -> None:
    """Upstream delivers the day's batch; its chargebacks join the label feed."""
    payments.drop("is_fraud").write_parquet(data / f"transactions_{day.isoformat()}.parquet")
    stream = np.random.SeedSequence([seed, LABEL_SEED_STREAM, day.toordinal()])
    feed.add(generator.generate_labels(payments, seed=int(stream.generate_state(1)[0])))


def _day_facts(day: dt.date, drift: float, payments: pl.DataFrame, summary: Any) -> dict[str, Any]:
    crypto = payments.filter(pl.col("merchant_category") == "crypto")
    return {
        "date": day,
        "drift": drift,
        "novel_category": drift,
        "rows": payments.height,
        "logged": summary.logged,
        "rejected": summary.rejected,
        "crypto": crypto.height,
        "fraud": int(payments["is_fraud"].sum()),
        "seconds": summary.seconds,
    }


def _show_week(console: Any, days: list[dict[str, Any]]) -> None:
    rows = sum(d["logged"] for d in days)
    crypto = sum(d["crypto"] for d in days)
    console.print(
        f"   {days[0]['date']:%Y-%m-%d} to {days[-1]['date']:%m-%d}: {rows:,} payments scored "
        f"and logged, drift {days[0]['drift']:.2f} to {days[-1]['drift']:.2f}, "
        f"{crypto:,} in the new category 'crypto'"
    )


class _LabelFeed:
    """``labels.parquet`` as upstream keeps it: the labels of the days before the replay
    as they were, then the replayed days' as they are delivered."""

    def __init__(self, path: Path, start: dt.date) -> None:
        self.path = path
        before = pl.col("transaction_id").str.slice(3, 8) < start.strftime("%Y%m%d")
        self.frames = [pl.read_parquet(path).filter(before)] if path.exists() else []
        self.replayed: list[pl.DataFrame] = []

    def add(self, labels: pl.DataFrame) -> None:
        self.replayed.append(labels)

    def write(self) -> None:
        """Write every label so far, sorted by arrival as the generator writes them."""
        frames = self.frames + self.replayed
        if frames:
            everything = pl.concat(frames).sort("label_timestamp", maintain_order=True)
            everything.write_parquet(self.path)

    def known(self, as_of: dt.datetime, path: Path) -> Path:
        """Write the replayed days' labels that arrived by ``as_of`` to ``path``."""
        replayed = pl.concat(self.replayed).filter(pl.col("label_timestamp") <= as_of)
        replayed.sort("label_timestamp", maintain_order=True).write_parquet(path)
        return path


def show_monitoring(
    project: Any,
    directory: Path,
    *,
    start: dt.date,
    weeks: int,
    rows_per_day: int,
    seed: int,
    console: Any,
) -> dict[str, Any]:
    """Steps 10-12: weeks in production watched by a weekly cron job, the chargebacks
    arriving, the value drop found, the contract agreed anew, and retraining through the gate.
    """
    from shipyard.monitoring.reference import profile_version
    from shipyard.registry.registry import Registry

    served = Registry(project).get("fraud@production").ref  # what scores these weeks
    profile = profile_version(project, "fraud@production")
    console.print(
        f"\n[bold]10.[/] {weeks} weeks in production from {start}: each day's payments go "
        "through fraud@production into the prediction log (the reference it is watched "
        f"against: {len(profile.columns)} columns of {profile.rows:,} training rows, "
        "profiled once). From the third week, amounts grow and a new fraud pattern appears "
        "in a merchant category nobody has seen: 'crypto'."
    )
    done = replay_production(
        project,
        directory,
        start=start,
        weeks=weeks,
        rows_per_day=rows_per_day,
        seed=seed,
        console=console,
        label_delay_days=LABEL_DELAY_DAYS,
    )
    console.print(
        f"   {done['logged']:,} predictions logged in {done['seconds']:.1f} s "
        f"({done['refreshes']} online-store refreshes took {done['refresh_seconds']:.1f} s)."
    )
    _weekly_cron(project, done, console)
    _chargebacks(project, directory, done, console)
    return {**_retrain_story(project, directory, done, console), "served": served}


LABEL_DELAY_DAYS = 28  # the chargebacks known four weeks after the last replayed day


def _weekly_cron(project: Any, done: dict[str, Any], console: Any) -> None:
    """``shipyard monitor`` once a week, as cron would run it: alerts fire once and stay."""
    from shipyard.monitoring._monitor import monitor
    from shipyard.monitoring.alerts import LogNotifier

    notifier = LogNotifier(project.settings.state_dir / "monitoring" / "alerts.jsonl")
    console.print("   A weekly cron job ran [bold]shipyard monitor[/] (no labels yet):")
    first, end = done["first_ts"], done["last_ts"]
    monday = first + dt.timedelta(days=7)
    while monday <= end:
        result = monitor(project, since=first, until=monday, notifiers=[notifier])
        fired = [e for e in result.data["alerts"] if e["status"] == "fired"]
        firing = [a["alert"] for a in result.data["firing"]]
        newest = result.windows[-1] if result.windows else {}
        drift = (newest.get("drift") or {}).get("share")
        what = ", ".join(f"[yellow]{e['alert']}[/] fired" for e in fired)
        still = [a for a in firing if a not in {e["alert"] for e in fired}]
        if still:
            what += ("; " if what else "") + f"still firing: {', '.join(still)} (not repeated)"
        console.print(
            f"     {monday:%a %Y-%m-%d}: drifted columns {0 if drift is None else drift:.0%}, "
            f"exit {result.exit_code}: {what or '[green]all clear[/]'}"
        )
        monday += dt.timedelta(days=7)
    notifier.close()


def _chargebacks(project: Any, directory: Path, done: dict[str, Any], console: Any) -> None:
    from shipyard.monitoring.labels import LabelStore
    from shipyard.serving.log import read_log

    store = LabelStore(project.settings.state_dir / "labels" / "fraud")
    ingested = store.ingest(
        done["chargebacks"],
        label="is_chargeback",
        key="transaction_id",
        log=read_log(done["log_dir"], model="fraud"),
    )
    path = Path(done["chargebacks"]).relative_to(directory)
    console.print(
        f"\n[bold]11.[/] {done['labels_as_of']:%Y-%m-%d}: the chargebacks known so far arrive. "
        f"[bold]shipyard labels ingest {path}[/]: {ingested.stored:,} labels, "
        f"{ingested.unknown} for payments the log does not know, "
        f"{ingested.duplicates} duplicates."
    )


def _retrain_story(
    project: Any, directory: Path, done: dict[str, Any], console: Any
) -> dict[str, Any]:
    from shipyard.cli.monitor import windows_table
    from shipyard.monitoring._monitor import monitor
    from shipyard.monitoring.report import write_report

    since, until = done["first_ts"], done["last_ts"]
    console.print(
        f"\n[bold]12.[/] The next cron run, now with labels: [bold]shipyard monitor --since "
        f"{since:%Y-%m-%d} --until {until:%Y-%m-%d} --report reports/monitoring.html[/]"
    )
    result = monitor(project, since=since, until=until)
    report = write_report(result.to_dict(), directory / "reports" / "monitoring.html")
    console.print(windows_table(result.to_dict()))
    for event in result.data["alerts"]:
        if event["status"] == "fired":
            console.print(
                f"   [bold red]{event['severity']}[/] {event['alert']}: {event['message']}"
            )
    console.print(
        f"   Exit code {result.exit_code}: cron and CI see it. Report: "
        f"{report.relative_to(directory)}. The estimated value (CBPE, from the scores alone) "
        "barely moved: a new fraud pattern the model does not know leaves its scores calm."
    )
    _agree_contract(directory, console)
    console.print(
        "\n[bold]13.[/] [bold]shipyard monitor --retrain[/]: the firing value-drop rule "
        "asks for retraining on recent data."
    )
    with console.status("Retraining, then gating the candidate…"):
        retrained = monitor(project, since=since, until=until, retrain=True).data["retrain"]
    if retrained is None:
        console.print("   No firing rule asked for retraining.")
    else:
        _show_retrained(retrained, console)
    return {**result.to_dict(), "retrain": retrained}


def _show_retrained(retrained: dict[str, Any], console: Any) -> None:
    from rich.markup import escape

    params = retrained["params"]
    console.print(
        f"   Retraining ({', '.join(retrained['triggered_by'])}): pipeline "
        f"{retrained['pipeline']} on {params.get('start')} to {params.get('end')} "
        f"(labels as of {params.get('labels_as_of')}), run {retrained['run_id'][:8]} "
        f"{retrained['status']}; candidate {retrained.get('candidate') or '-'}."
    )
    if gate := retrained.get("gate"):
        for line in gate["summary"].splitlines():
            console.print(f"   {escape(line)}")
        mine, theirs = gate.get("candidate") or {}, gate.get("production") or {}
        if "value_per_1000" in mine and "value_per_1000" in theirs:
            console.print(
                f"   On the newest days: value per 1,000 payments {mine['value_per_1000']:,.0f} "
                f"EUR (production: {theirs['value_per_1000']:,.0f}), recall "
                f"{mine.get('recall', 0):.1%} (production: {theirs.get('recall', 0):.1%})."
            )
        verdict = (
            "was promoted to [bold]production[/]" if retrained["promoted"] else ("was not promoted")
        )
        console.print(f"   The candidate {verdict}: the gate decides, not the alert.")


def _agree_contract(directory: Path, console: Any) -> None:
    """The payments team and the ML team agree a new contract version: 'crypto' is valid."""
    from shipyard.contracts import Contract
    from shipyard.contracts.diff import diff_contracts

    path = directory / CONTRACT
    old = Contract.load(path)
    text = path.read_text(encoding="utf-8")
    new_text = text.replace("pharmacy, gift_cards]", "pharmacy, gift_cards, crypto]", 1)
    if new_text == text:  # the example's contract was edited: say so rather than guess
        console.print("   (The contract's merchant categories were edited; 'crypto' not added.)")
        return
    major, minor, *_ = old.version.split(".")
    new_text = new_text.replace(
        f"version: {old.version}", f"version: {major}.{int(minor) + 1}.0", 1
    )
    new = Contract.from_yaml(new_text, source=str(path))
    changes = diff_contracts(old, new)
    path.write_text(new_text, encoding="utf-8")
    console.print(
        f"\n   The payments team confirms 'crypto' is a real category: contract "
        f"{old.version} -> {new.version} ({len(changes.breaking)} breaking changes), so "
        "retraining can learn from those payments instead of quarantining them."
    )
