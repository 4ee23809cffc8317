"""The demo's weeks in production: the served model scores day after day of drifting traffic.

For each replayed day the upstream team's generator makes the day's payments (from the
third week on with a growing drift and more and more of the new ``crypto`` category),
``fraud@production`` scores them through :func:`shipyard.monitoring.replay.replay` into
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
        from shipyard.monitoring.replay import replay

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
