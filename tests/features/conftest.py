"""Fixtures of the feature store tests: projects with small history partitions, and
feature stores whose online connections are closed after each test."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from shipyard.core.project import Project
from shipyard.features import Entity, FeatureStore
from tests.conftest import write_project

T0 = dt.datetime(2024, 1, 1)


def at(minutes: float = 0, *, seconds: float = 0, us: int = 0) -> dt.datetime:
    """A naive time ``minutes`` (and seconds, microseconds) after ``T0``."""
    return T0 + dt.timedelta(minutes=minutes, seconds=seconds, microseconds=us)


def customer_entity() -> Entity:
    return Entity("customer", join_keys={"customer_id": pl.Int64})


MakeProject = Callable[..., Project]
OpenStore = Callable[..., FeatureStore]


@pytest.fixture
def make_project(tmp_path: Path, project_dir: Path) -> Iterator[MakeProject]:
    """A factory of extra projects (beside ``project_dir``), by partition size."""
    made: list[Project] = []

    def make(partition_rows: int | None = None, name: str | None = None) -> Project:
        extra = "" if partition_rows is None else f"[features]\npartition_rows = {partition_rows}\n"
        label = name or f"rows{partition_rows}_{len(made)}"
        root = write_project(tmp_path / label, name=label, extra=extra)
        found = Project.discover(root)
        assert found.settings.partition_rows == (partition_rows or 1_000_000)
        made.append(found)
        return found

    yield make
    for found in made:
        if found._metadata is not None:
            found._metadata.close()


@pytest.fixture
def tiny_project(make_project: MakeProject) -> Project:
    """A project whose feature history is cut into partitions of (about) 3 rows."""
    return make_project(3, name="tiny")


@pytest.fixture
def open_store() -> Iterator[OpenStore]:
    """``FeatureStore(definitions, project=..., online=...)``, online store closed at teardown."""
    opened: list[FeatureStore] = []

    def make(definitions: Iterable[Any], project: Project, **kwargs: Any) -> FeatureStore:
        store = FeatureStore(definitions, project=project, **kwargs)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.online.close()
