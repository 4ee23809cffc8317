"""The [monitoring] table: every key read, every mistake named with its fix."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path

import pytest

from shipyard.errors import MonitoringConfigError
from shipyard.monitoring.settings import (
    MonitorSettings,
    Retrain,
    parse_duration,
    parse_settings,
    window_size,
)

EXAMPLE = Path(__file__).parents[2] / "examples" / "fraud" / "shipyard.toml"


def test_the_fraud_example_reads_whole() -> None:
    raw = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))["monitoring"]
    settings = parse_settings(raw, str(EXAMPLE), root=Path("/project"))
    assert settings.model == "fraud@production"
    assert settings.every == "7d" and settings.lookback == dt.timedelta(days=42)
    assert settings.label == "is_chargeback" and settings.label_key == "transaction_id"
    assert settings.contract == Path("/project/contracts/transactions.yaml")
    assert settings.drift.weights["amount"] == 3.0 and len(settings.drift.weights) == 8
    assert [r.name for r in settings.alerts] == [
        "input-drift",
        "unknown-values",
        "value-drop",
        "slow",
    ]
    assert [r.retrain for r in settings.alerts] == [False, False, True, False]
    assert settings.retrain is not None and settings.retrain.test == "split_by_time.test"


def test_an_empty_table_means_the_defaults() -> None:
    settings = parse_settings({})
    assert settings == MonitorSettings()
    assert settings.drift.share == 0.5 and settings.alerts == () and settings.retrain is None


def test_retrain_params_fill_in_the_monitored_range() -> None:
    retrain = Retrain(
        params={
            "start": "{until-56d}",
            "end": "{until}",
            "as_of": "{until+28d}",
            "from": "{since}",
            "max_iter": 200,
        }
    )
    since = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    until = dt.datetime(2026, 4, 13, tzinfo=dt.UTC)
    assert retrain.params_for(since, until) == {
        "start": "2026-02-16",
        "end": "2026-04-13",
        "as_of": "2026-05-11",
        "from": "2026-03-02",
        "max_iter": 200,
    }


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"windw": "1d"}, "unknown key(s) windw"),
        ({"every": "daily"}, "a number of predictions such as 10000, got 'daily'"),
        ({"lookback": "0d"}, "must be a duration such as 30m, 6h, 1d or 2w, got '0d'"),
        ({"min_label_coverage": 1.5}, "min_label_coverage must be a share between 0 and 1"),
        ({"label_key": ["a"]}, "label_key must be the column holding the request id"),
        ({"drift": {"amount": {"method": "psi", "cutoff": 1}}}, "[monitoring].drift.amount"),
        ({"drift": {"amount": {"threshold": "high"}}}, "threshold must be a number, got 'high'"),
        ({"weights": {"amount": -1}}, "weights amount must be a positive number, got -1"),
        ({"webhook": {"url": "ftp://x"}}, "http:// or https:// URL"),
        (
            {"webhook": {"url_env": "NOPE_NOT_SET"}},
            "names the variable 'NOPE_NOT_SET', which is not set",
        ),
        ({"alerts": {"name": "x"}}, "alerts must be an array of tables"),
        ({"retrain": {"test": "split"}}, "test must be STEP.OUTPUT"),
        ({"retrain": {"pipelines": "training"}}, "retrain must be a table with keys among"),
        ({"model": 3}, "model must be a string, got 3"),
    ],
)
def test_mistakes_say_what_and_how_to_fix(raw: dict[str, object], expected: str) -> None:
    with pytest.raises(MonitoringConfigError) as caught:
        parse_settings(raw, "shipyard.toml", environ={})
    assert expected in str(caught.value)
    assert str(caught.value).startswith("shipyard.toml")


def test_the_webhook_url_comes_from_the_environment() -> None:
    settings = parse_settings(
        {"webhook": {"url_env": "HOOK", "retries": 5}}, environ={"HOOK": "https://h.example/x?t=s"}
    )
    assert settings.webhook is not None
    assert settings.webhook.url == "https://h.example/x?t=s" and settings.webhook.retries == 5


def test_windows_are_durations_or_counts() -> None:
    assert window_size("1h") == dt.timedelta(hours=1)
    assert window_size("7d") == dt.timedelta(days=7)
    assert window_size("10000") == 10_000
    assert parse_duration("2w", "x") == dt.timedelta(days=14)
    with pytest.raises(MonitoringConfigError):
        window_size("-5")
