"""Small frames built fast: a request's few rows, typed exactly."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl


def by_rows(columns: Mapping[str, Sequence[Any]], schema: Mapping[str, Any]) -> pl.DataFrame | None:
    """The frame of ``columns`` with ``schema``, built row by row from dicts: several times
    faster than one Series per column for a few rows. None when a value does not fit its
    dtype strictly; the caller then builds column by column, converting or explaining."""
    names = list(columns)
    try:
        rows = [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]
        return pl.from_dicts(rows, schema=dict(schema), strict=True)
    except (pl.exceptions.PolarsError, TypeError, ValueError, OverflowError):
        return None
