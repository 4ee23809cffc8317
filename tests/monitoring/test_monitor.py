"""``monitor`` end to end on a tiny project: a registered, gated and promoted model, its
traffic replayed into the prediction log with a shift in the later days, labels arriving
for some days, alert rules and retraining read from shipyard.toml.

Real files, real SQLite, the real replay path; nothing is mocked. The world is built in
``tests/monitoring/conftest.py``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from shipyard.errors import MonitoringError
from shipyard.monitoring import LabelStore, monitor, profile_version
from shipyard.monitoring.alerts import LogNotifier
from shipyard.serving.log import PredictionLog, read_log
from tests.monitoring.conftest import (
    DAY,
    DAYS,
    EMPTY_DAY,
    INPUTS,
    MODEL,
    PER_DAY,
    PIPELINE,
    SHIFT_DAY,
    T0,
    World,
    replay_days,
)

REF = f"{MODEL}@production"
END = T0 + DAYS * DAY
TAG = f"shipyard.profile.{MODEL}.v1"


def _drifted(window: dict[str, Any]) -> set[str]:
    return {name for name, c in window["drift"]["columns"].items() if c["drifted"]}


def _run_id(world: World) -> str:
    run_id = world.registry.get(REF).run_id
    assert run_id is not None
    return run_id


# -- one pass over the week ----------------------------------------------------------------


def test_daily_windows_find_the_shift_in_the_shifted_column_only(world: World) -> None:
    result = monitor(world.project, REF, since=T0, until=END)
    data = result.to_dict()
    assert data["schema"] == "shipyard.monitor/v1"
    assert (data["model"], data["version"], data["ref"], data["every"]) == (MODEL, "1", REF, "1d")
    assert data["reference"]["rows"] == 600  # the training split the model was fit on
    assert data["reference"]["columns"] == [*INPUTS, "score"]
    assert data["log"] | {"directory": None} == {
        "directory": None,
        "rows": PER_DAY * (DAYS - 1),
        "segments": 1,
        "skipped": [],
        "missing": [],
    }
    windows = result.windows
    assert [w["start"] for w in windows] == [(T0 + d * DAY).isoformat() for d in range(DAYS)]
    assert [w["rows"] for w in windows] == [0 if d == EMPTY_DAY else PER_DAY for d in range(DAYS)]
    for day, window in enumerate(windows):
        if day == EMPTY_DAY:  # no traffic: nothing to measure, and no crash
            assert window["drift"] is None and window["score"] is None
            assert window["estimated"] is None and window["performance"] is None
            assert window["signals"]["rows"] == 0
            continue
        # the amount moved; the score follows it (the model reads the amount); nothing else
        expected = {"amount", "score"} if day >= SHIFT_DAY else set()
        assert _drifted(window) == expected, day
        assert window["drift"]["drifted"] is (day >= SHIFT_DAY)  # 2 of 4 columns: share 0.5
        assert window["versions"] == {"1": PER_DAY}
        score = window["score"]
        assert 0 <= score["quantiles"]["p10"] <= score["quantiles"]["p50"] <= 1
        assert score["quantiles"]["p50"] <= score["quantiles"]["p90"] <= score["quantiles"]["p99"]
        assert window["estimated"]["estimated"] is True
    # a shift up in amounts makes the model flag more and score higher
    before, after = windows[0]["score"], windows[-1]["score"]
    assert after["mean"] > before["mean"] + 0.2 and after["flag_rate"] > before["flag_rate"]
    # the score summary is the logged scores' own
    logged = read_log(world.log_dir).collect().filter(pl.col("ts") < T0 + DAY)
    assert windows[0]["score"]["mean"] == pytest.approx(logged["score"].mean())
    flagged = (logged["score"] >= data["threshold"]).mean()
    assert windows[0]["score"]["flag_rate"] == pytest.approx(flagged)
    # the newest window's signals are what alert rules read
    newest = windows[-1]["signals"]
    assert data["signals"]["drift.amount.drifted"] is True
    assert data["signals"]["drift.items.drifted"] is False
    assert newest["dataset_drift"] is True and newest["drift.share"] == 0.5
    assert newest["score.flag_rate"] == windows[-1]["score"]["flag_rate"]
    assert data["promotion"]["roc_auc"] > 0.8  # the evaluation at promotion
    assert data["alerts"] == [] and data["firing"] == [] and data["exit_code"] == 0
    json.dumps(data, allow_nan=False)  # plain JSON all the way down


def test_windows_by_count_cut_the_traffic_in_time_order(world: World) -> None:
    windows = monitor(world.project, REF, every="300", since=T0, until=END).windows
    assert [w["rows"] for w in windows] == [300, 300, 150]
    assert [w["start"] < w["end"] for w in windows] == [True] * 3
    assert windows[0]["end"] <= windows[1]["start"] and windows[1]["end"] <= windows[2]["start"]
    assert "amount" not in _drifted(windows[0])  # days 0 and 1
    assert _drifted(windows[2]) == {"amount", "score"}  # the last shifted day


def test_the_reference_profile_is_built_on_first_use_then_read_back(world: World) -> None:
    run_id = _run_id(world)
    assert TAG not in world.project.metadata.tags(run_id)
    first = monitor(world.project, REF, since=T0, until=END).to_dict()["reference"]
    digest = world.project.metadata.tags(run_id)[TAG]
    stored = world.project.artifacts.local_path(digest).read_text(encoding="utf-8")
    assert json.loads(stored)["rows"] == first["rows"] == 600
    # mark the stored profile: a second pass that rebuilt it would not carry the mark
    marked = dataclasses.replace(profile_version(world.project, REF), created_at="2001-01-01")
    staged = world.project.artifacts.staging_path()
    staged.write_text(marked.to_json(), encoding="utf-8")
    mark = str(world.project.artifacts.commit(staged).digest)
    world.project.metadata.set_tags(run_id, {TAG: mark})
    second = monitor(world.project, REF, since=T0, until=END).to_dict()["reference"]
    assert second["created_at"] == "2001-01-01"
    assert world.project.metadata.tags(run_id)[TAG] == mark


def test_no_traffic_at_all_gives_empty_windows(world: World) -> None:
    later = END + 10 * DAY
    result = monitor(world.project, REF, since=later, until=later + 2 * DAY)
    assert [w["rows"] for w in result.windows] == [0, 0]
    assert result.to_dict()["log"]["rows"] == 0
    assert result.to_dict()["signals"] == {"rows": 0}
    # the hint a person needs: when the log's newest prediction was made
    newest = dt.datetime.fromisoformat(result.to_dict()["log"]["newest"])
    assert END - DAY <= newest < END


def test_since_after_until_is_refused(world: World) -> None:
    with pytest.raises(MonitoringError, match="must be before"):
        monitor(world.project, REF, since=END, until=T0)


# -- labels ------------------------------------------------------------------------------


def _ingest(world: World, days: range, *, extra: tuple[str, ...] = ()) -> Any:
    """Labels of every request of ``days``, one row given twice, and ``extra`` unknown ids."""
    labelled = world.traffic.filter(
        pl.col("event_timestamp").is_between(T0 + days.start * DAY, T0 + days.stop * DAY, "left")
    ).select("transaction_id", "label")
    unknown = pl.DataFrame(
        {"transaction_id": list(extra), "label": [1] * len(extra)},
        schema={"transaction_id": pl.String, "label": pl.Int8},
    )
    source = pl.concat([labelled, labelled.head(1), unknown])
    store = LabelStore(world.project.settings.state_dir / "labels" / MODEL)
    return store.ingest(source, label="label", key="transaction_id", log=read_log(world.log_dir))


def test_labels_give_realised_performance_only_where_they_arrived(world: World) -> None:
    done = _ingest(world, range(2), extra=("tx-nobody-1", "tx-nobody-2"))
    assert (done.stored, done.duplicates, done.unknown) == (2 * PER_DAY + 2, 1, 2)
    assert set(done.unknown_examples) == {"tx-nobody-1", "tx-nobody-2"}
    data = monitor(world.project, REF, since=T0, until=END).to_dict()
    assert data["labels"] == {"stored": 2 * PER_DAY + 2, "attached": 2 * PER_DAY}
    windows = data["windows"]
    for day, window in enumerate(windows):
        if day < 2:
            performance = window["performance"]
            assert performance["labelled"] == PER_DAY and performance["label_coverage"] == 1.0
            assert performance["against_promotion"]["roc_auc"]["at_promotion"] == pytest.approx(
                data["promotion"]["roc_auc"]
            )
            assert "performance.recall" in window["signals"]
        else:
            assert window["performance"] is None
            assert not any(k.startswith("performance.") for k in window["signals"])
        assert (window["estimated"] is None) is (day == EMPTY_DAY)
    # realised recall is the labels' own on the logged decisions at the threshold
    day0 = read_log(world.log_dir).collect().filter(pl.col("ts") < T0 + DAY)
    truth = dict(world.traffic.select("transaction_id", "label").iter_rows())
    labels = np.array([truth[i] for i in day0["request_id"]])
    flagged = day0["score"].to_numpy() >= data["threshold"]
    recall = (flagged & (labels == 1)).sum() / (labels == 1).sum()
    assert windows[0]["performance"]["metrics"]["recall"] == pytest.approx(recall)
    # the newest known performance figure (day 1's) is a signal for the alert rules
    assert data["signals"]["performance.recall"] == windows[1]["signals"]["performance.recall"]
    assert data["signals"]["estimated.recall"] == windows[-1]["signals"]["estimated.recall"]


def test_partly_labelled_windows_give_no_performance_signal(world: World) -> None:
    _ingest(world, range(1))
    half = world.traffic.filter(pl.col("event_timestamp") >= T0 + DAY).head(PER_DAY // 2)
    store = LabelStore(world.project.settings.state_dir / "labels" / MODEL)
    store.ingest(half.select("transaction_id", "label"), label="label", key="transaction_id")
    windows = monitor(world.project, REF, since=T0, until=END).windows
    assert windows[1]["performance"]["label_coverage"] == pytest.approx(0.5)
    assert "performance.recall" in windows[0]["signals"]  # 100% >= min_label_coverage 0.9
    assert "performance.recall" not in windows[1]["signals"]  # 50% is not enough yet
    assert "estimated.recall" in windows[1]["signals"]


# -- a damaged or incomplete log -----------------------------------------------------------


def test_a_corrupted_segment_is_skipped_named_and_the_rest_read(world: World) -> None:
    folder = next((world.log_dir / "segments").iterdir())
    bad = folder / "0000009999-broken.parquet"
    bad.write_bytes(b"PAR1 this is not a parquet file")
    data = monitor(world.project, REF, since=T0, until=END).to_dict()
    assert data["log"]["rows"] == PER_DAY * (DAYS - 1)
    assert len(data["log"]["skipped"]) == 1 and str(bad) in data["log"]["skipped"][0]
    assert _drifted(data["windows"][-1]) == {"amount", "score"}


def test_a_feature_missing_from_the_log_is_listed_and_not_tested(
    world: World, tmp_path: Path
) -> None:
    """An older server that did not log ``items``: the other columns are still watched."""
    records = read_log(world.log_dir).collect().to_dicts()
    for record in records:
        inputs = json.loads(record["inputs_json"])
        del inputs["items"]
        record["inputs_json"] = json.dumps(inputs)
    older = tmp_path / "older-log"
    with PredictionLog(older, model=MODEL) as log:
        log.append_many(records)
    data = monitor(world.project, REF, since=T0, until=END, log_dir=older).to_dict()
    assert data["log"]["missing"] == ["items"]
    assert data["log"]["rows"] == PER_DAY * (DAYS - 1)
    newest = data["windows"][-1]["drift"]["columns"]
    assert newest["items"]["drifted"] is False and newest["items"]["statistic"] is None
    assert newest["items"]["current_nulls"] == PER_DAY and newest["items"]["note"]
    assert newest["amount"]["drifted"] is True


# -- alerts --------------------------------------------------------------------------------

ALERTS = """
[[monitoring.alerts]]
name = "amount-drift"
when = "drift.amount.drifted is true"
severity = "error"

[[monitoring.alerts]]
name = "many-flagged"
when = "score.flag_rate > 0.9"
severity = "warning"
"""


def _statuses(result: Any) -> dict[str, str]:
    return {a["alert"]: a["status"] for a in result.to_dict()["alerts"]}


def test_an_alert_fires_once_goes_on_firing_and_resolves_once(world: World, tmp_path: Path) -> None:
    project = world.reopen(ALERTS)
    sent = tmp_path / "sent.jsonl"
    notifiers = [LogNotifier(sent)]
    first = monitor(project, REF, since=T0, until=END, notifiers=notifiers)
    assert _statuses(first) == {"amount-drift": "fired", "many-flagged": "fired"}
    assert first.exit_code == 1  # an error alert is firing
    assert {a["alert"] for a in first.to_dict()["firing"]} == {"amount-drift", "many-flagged"}
    again = monitor(project, REF, since=T0, until=END, notifiers=notifiers)
    assert _statuses(again) == {"amount-drift": "firing", "many-flagged": "firing"}
    assert again.exit_code == 1
    episode = first.to_dict()["alerts"][0]["episode"]
    assert again.to_dict()["firing"][0]["episode"] == episode
    # traffic back to normal in the following days
    replay_days(world, range(DAYS, DAYS + 2))
    later = monitor(project, REF, since=END, until=END + 2 * DAY, notifiers=notifiers)
    assert _statuses(later) == {"amount-drift": "resolved", "many-flagged": "resolved"}
    assert later.exit_code == 0 and later.to_dict()["firing"] == []
    quiet = monitor(project, REF, since=END, until=END + 2 * DAY, notifiers=notifiers)
    assert _statuses(quiet) == {} and quiet.exit_code == 0
    # only the fired and resolved events were delivered: one of each per rule
    lines = [json.loads(line) for line in sent.read_text(encoding="utf-8").splitlines()]
    delivered = sorted((line["alert"], line["status"]) for line in lines)
    assert delivered == [
        ("amount-drift", "fired"),
        ("amount-drift", "resolved"),
        ("many-flagged", "fired"),
        ("many-flagged", "resolved"),
    ]


def test_a_firing_warning_alone_exits_0(world: World) -> None:
    project = world.reopen(ALERTS.replace('severity = "error"', 'severity = "info"'))
    result = monitor(project, REF, since=T0, until=END)
    assert _statuses(result) == {"amount-drift": "fired", "many-flagged": "fired"}
    assert result.exit_code == 0 and result.to_dict()["exit_code"] == 0


# -- retraining ----------------------------------------------------------------------------


def _retrain_toml(params: str, *, promote: bool = True) -> str:
    return f"""
[[monitoring.alerts]]
name = "amount-drift"
when = "drift.amount.drifted is true"
severity = "error"
retrain = true

[monitoring.retrain]
pipeline = "{PIPELINE}"
step = "fit"
test = "split.test"
params = {params}
promote = {str(promote).lower()}
"""


def test_a_retrain_rule_trains_gates_and_promotes_a_candidate_that_passes(world: World) -> None:
    project = world.reopen(_retrain_toml("{ seed = 1 }"))
    assert world.registry.aliases(MODEL) == {"production": 1}
    result = monitor(project, REF, since=T0, until=END, retrain=True).to_dict()
    retrain = result["retrain"]
    assert retrain["triggered_by"] == ["amount-drift"] and retrain["status"] == "completed"
    assert retrain["params"] == {"seed": 1} and retrain["candidate"] == f"{MODEL}:2"
    assert retrain["gate"]["passed"] is True and retrain["promoted"] is True
    assert world.registry.aliases(MODEL) == {"production": 2}
    candidate = world.registry.get(f"{MODEL}:2")
    assert candidate.lineage["retrained_by"] == ["amount-drift"]
    assert candidate.lineage["replaces"] == f"{MODEL}:1"
    assert f"shipyard.profile.{MODEL}.v2" in project.metadata.tags(str(candidate.run_id))
    # The weeks before were answered by version 1: the new version's score is not compared
    # with them (its inputs are).
    after = monitor(project, REF, since=T0, until=END).windows[0]["drift"]["columns"]
    assert after["score"]["tested"] is False
    assert after["score"]["note"].startswith("no values in the window")
    assert after["amount"]["tested"] is True


def test_a_candidate_that_fails_the_gate_leaves_production_alone(world: World) -> None:
    project = world.reopen(_retrain_toml("{ seed = 1, shuffle = true }"))
    result = monitor(project, REF, since=T0, until=END, retrain=True).to_dict()
    retrain = result["retrain"]
    assert retrain["candidate"] == f"{MODEL}:2" and retrain["gate"]["passed"] is False
    assert "roc_auc" in retrain["gate"]["summary"]
    assert retrain["promoted"] is False
    assert world.registry.aliases(MODEL) == {"production": 1}
    assert result["exit_code"] == 1  # the drift alert still fires


def test_a_passing_candidate_is_not_promoted_when_promote_is_off(world: World) -> None:
    project = world.reopen(_retrain_toml("{ seed = 1 }", promote=False))
    retrain = monitor(project, REF, since=T0, until=END, retrain=True).to_dict()["retrain"]
    assert retrain["gate"]["passed"] is True and retrain["promoted"] is False
    assert world.registry.aliases(MODEL) == {"production": 1}


def test_without_retrain_a_retrain_rule_only_alerts(world: World) -> None:
    project = world.reopen(_retrain_toml("{ seed = 1 }"))
    result = monitor(project, REF, since=T0, until=END).to_dict()
    assert result["retrain"] is None and result["firing"][0]["retrain"] is True
    assert [v.version for v in world.registry.versions(MODEL)] == [1]


def test_retrain_without_a_retrain_table_says_what_to_add(world: World) -> None:
    project = world.reopen(_retrain_toml("{}").split("[monitoring.retrain]")[0])
    with pytest.raises(MonitoringError, match=r"no \[monitoring.retrain\] table"):
        monitor(project, REF, since=T0, until=END, retrain=True)


def test_a_retrain_test_output_that_does_not_exist_is_named(world: World) -> None:
    project = world.reopen(_retrain_toml("{ seed = 1 }").replace("split.test", "split.holdout"))
    with pytest.raises(MonitoringError, match=r"'split.holdout'.*'split': \['test', 'train'\]"):
        monitor(project, REF, since=T0, until=END, retrain=True)
    assert world.registry.aliases(MODEL) == {"production": 1}
