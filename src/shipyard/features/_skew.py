"""Skew checks: recompute online values from the offline history and compare."""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING, Any

import polars as pl

from shipyard.features._materialize import encode_rows
from shipyard.features._offline import Build
from shipyard.features._time import iso_of
from shipyard.features.online import _check_state
from shipyard.features.view import CREATED, EVENT, FeatureView

if TYPE_CHECKING:
    from shipyard.features.store import FeatureStore


def skew(store: FeatureStore, view_name: str, sample: int, seed: int) -> dict[str, Any]:
    """Recompute a sample of online values from the offline history and compare."""
    view = store.view(view_name)
    state = store.online.state(view.name)
    _check_state(view, state)
    assert state is not None
    build = store.build([view.name])[view.name]
    expected = _latest_as_of(store, view, build, state.watermark_us)
    chosen = sorted(
        random.Random(seed).sample(range(expected.height), min(sample, expected.height))
    )
    rows = expected[chosen]
    encoded = encode_rows(view, rows)
    found = store.online.read(view.name, [r[0] for r in encoded])
    mismatches: list[dict[str, Any]] = []
    for (key, event, _, offline), online in zip(encoded, found, strict=True):
        if online is None:
            mismatches.append({"key": key, "feature": None, "offline": "present", "online": None})
            continue
        if online[0] != event:
            mismatches.append(
                {
                    "key": key,
                    "feature": "event_time",
                    "offline": iso_of(event),
                    "online": iso_of(online[0]),
                }
            )
        for name, a, b in zip(view.features, offline, online[1], strict=True):
            if not _same(a, b):
                mismatches.append({"key": key, "feature": name, "offline": a, "online": b})
    return {
        "view": view.name,
        "version": view.version,
        "watermark": iso_of(state.watermark_us),
        "entities_offline": expected.height,
        "entities_online": state.rows,
        "sampled": len(chosen),
        "mismatches": mismatches,
    }


def _latest_as_of(
    store: FeatureStore, view: FeatureView, build: Build, watermark: int | None
) -> pl.DataFrame:
    columns = [*view.keys, EVENT, CREATED, *view.features]
    latest: pl.DataFrame | None = None
    for partition in build.partitions:
        if watermark is None or partition.min_ns // 1000 > watermark:
            break
        rows = store.read_partition(partition, columns).filter(
            pl.col(EVENT).cast(pl.Int64) // 1000 <= watermark
        )
        if latest is not None:
            rows = pl.concat([latest, rows], how="vertical_relaxed")
        latest = rows.group_by(list(view.keys), maintain_order=True).last()
    return latest if latest is not None else pl.DataFrame(schema=dict.fromkeys(columns, pl.Null))


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return (a is None or (isinstance(a, float) and math.isnan(a))) and (
            b is None or (isinstance(b, float) and math.isnan(b))
        )
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return bool(a == b)
