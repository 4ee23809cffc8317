"""Definitions: names, schemas, versions, and what a step's cache key sees of them."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from shipyard import Entity, FeatureStore, FeatureView
from shipyard.core._closure import closure_of
from shipyard.core.project import Project
from shipyard.errors import ConfigError, FeatureDefinitionError, FeatureNotFoundError
from shipyard.features import Source
from tests.conftest import write_project

customer = Entity("customer", join_keys={"customer_id": pl.Int64})
ROWS = pl.DataFrame({"customer_id": [1], "event_timestamp": [dt.datetime(2026, 1, 1)], "x": [1.0]})


def doubled(frame: pl.LazyFrame) -> pl.LazyFrame:
    return frame.with_columns(pl.col("x") * 2)


def tripled(frame: pl.LazyFrame) -> pl.LazyFrame:
    return frame.with_columns(pl.col("x") * 3)


def view(transform=doubled, **schema: object) -> FeatureView:
    return FeatureView(
        "stats",
        entities=[customer],
        source=Source.frame(ROWS, name="rows"),
        schema=schema or {"x": pl.Float64},
        transform=transform,
    )


VIEW = view()


def uses_the_view() -> str:
    return VIEW.name


def test_a_steps_code_closure_covers_the_version_of_a_view_it_uses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = closure_of(uses_the_view).digest
    monkeypatch.setitem(globals(), "VIEW", view(tripled))  # a notebook cell run again
    assert closure_of(uses_the_view).digest != before


def test_the_version_changes_with_the_transform_and_the_schema_only() -> None:
    assert view().version == view().version
    assert view(tripled).version != view().version
    assert view(x=pl.Float32).version != view().version


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "bad name"}, "letter or underscore"),
        ({"entities": []}, "needs entities"),
        ({"schema": {}}, "needs schema"),
        ({"schema": {"x": float}}, "Polars dtype"),
        ({"ttl": dt.timedelta(0)}, "positive"),
        ({"join_keys": {"merchant_id": "m"}}, "not join keys of its entities"),
        ({"schema": {"customer_id": pl.Int64}}, "both features and keys"),
    ],
)
def test_an_ill_defined_view_is_refused_with_the_fix(kwargs: dict, message: str) -> None:
    arguments = {
        "name": "stats",
        "entities": [customer],
        "source": Source.frame(ROWS, name="rows"),
        "schema": {"x": pl.Float64},
    } | kwargs
    name = arguments.pop("name")
    with pytest.raises(FeatureDefinitionError, match=message):
        FeatureView(name, **arguments)


def test_two_definitions_with_one_name_are_refused() -> None:
    with pytest.raises(FeatureDefinitionError, match="Two definitions are named 'stats'"):
        FeatureStore([view(), view(tripled)])


def test_an_unknown_view_lists_the_defined_ones() -> None:
    store = FeatureStore([view()])
    with pytest.raises(FeatureNotFoundError, match="Feature views: stats"):
        store.view("nope")
    with pytest.raises(FeatureNotFoundError, match="Defined: stats:x"):
        store.resolve(["stats:y"])


def test_definitions_modules_are_optional_by_default_and_checked_when_named(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = write_project(tmp_path / "plain")
    assert FeatureStore.from_project(Project.discover(plain)).views == {}
    named = write_project(tmp_path / "named", extra='[features]\ndefinitions = ["feats"]\n')
    with pytest.raises(ConfigError, match=r"\[features\] definitions names 'feats'.*Create feats"):
        FeatureStore.from_project(Project.discover(named))
