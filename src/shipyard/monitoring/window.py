"""Windows of the prediction log: what monitoring compares with the training reference.

:func:`read_window` reads the Parquet segments a :class:`~shipyard.serving.log.PredictionLog`
wrote (``<directory>/segments/<UTC date of the flush>/<seq>-<uuid>.parquet``) into one
DataFrame, with the ``inputs_json`` and ``features_json`` columns decoded into one column
per field. :func:`split_windows` cuts such a frame into calendar windows (``"1h"``,
``"1d"``, ``"1w"``...) or into windows of a fixed number of rows.

Choices worth knowing:

- Date folders before ``since``'s date minus one day are not opened: a segment is
  flushed after its predictions were made, so its folder's date is never earlier than
  their ``ts`` (the day of grace covers clock skew between processes). A log replayed
  with timestamps *later* than the day it was written must be read with ``since=None``.
  The other bounds are applied on ``ts``, with Parquet statistics skipping row groups.
- A segment that cannot be read (truncated, not Parquet, other columns or types than
  ``serving.log.SCHEMA``) is skipped; :attr:`LogWindow.skipped` holds one message per
  such file, naming it, and the rest of the log is still read. ``.parquet.tmp`` files
  (a flush in progress, or one a crash interrupted) are never read.
- JSON is decoded as newline-delimited JSON (see ``_ndjson``), both columns in parallel,
  each JSON column parsed only for the fields it carries in a sample of up to
  ``INFER_ROWS`` rows spread over the window (the first and last included); a field no
  sampled row carries is looked for in every row. An input and a feature with the same
  name give one column: the input's. With ``schema``, every named field comes back with
  that dtype: a field no row carries is a null column, listed in :attr:`LogWindow.missing`;
  a value that cannot be cast is null and counted in :attr:`LogWindow.uncastable`.
  Without ``schema``, fields and types are those of the sample; pass ``schema`` to be
  exact. A field named like a log column (``score``, ``ts``...) gets the suffix ``_field``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl

from shipyard.errors import MonitoringError
from shipyard.monitoring._ndjson import decode_columns, infer_dtypes, present
from shipyard.serving.log import SCHEMA

__all__ = ["INFER_ROWS", "LogWindow", "WindowSlice", "read_window", "split_windows"]

INFER_ROWS = 10_000  # rows sampled to infer the JSON fields when no schema is given
LOG_COLUMNS = [name for name in SCHEMA.names if name not in ("inputs_json", "features_json")]
_LOG_SCHEMA = pl.Schema(dict(pl.from_arrow(SCHEMA.empty_table()).schema))  # type: ignore[union-attr]
_JSON_COLUMNS = ("inputs_json", "features_json")
_UNREADABLE = (pl.exceptions.PolarsError, pl.exceptions.PanicException, OSError)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MONDAY = datetime(1970, 1, 5, tzinfo=UTC)
_EVERY = re.compile(r"^\s*(\d+)\s*([hdw])\s*$")


@dataclass(frozen=True)
class LogWindow:
    """Predictions read from the log, inputs and features decoded.

    Attributes:
        frame: ``request_id, ts, model, model_version, entity_key, shadow, score, decision,
            latency_ms`` then one column per decoded input and feature, in time order.
        skipped: One message per segment that could not be read, naming the file.
        segments: Number of segment files read.
        missing: Fields of ``schema`` that no prediction of the window carries.
        uncastable: Per field, values that could not be cast to the schema's dtype (now null).
    """

    frame: pl.DataFrame
    skipped: list[str] = field(default_factory=list)
    segments: int = 0
    missing: tuple[str, ...] = ()
    uncastable: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class WindowSlice:
    """One window of traffic: rows with ``start <= ts < end`` (possibly none)."""

    start: datetime
    end: datetime
    frame: pl.DataFrame


def read_window(
    directory: Path,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    model: str | None = None,
    shadow: bool = False,
    schema: Mapping[str, pl.DataType | type[pl.DataType]] | None = None,
) -> LogWindow:
    """Read the predictions of ``[since, until)`` from a prediction log, JSON decoded.

    Args:
        directory: The folder a ``PredictionLog`` writes to (holding ``segments/``).
        since: First prediction time included (a naive datetime is taken as UTC).
        until: First prediction time excluded.
        model: Only this model's predictions.
        shadow: False for the primary model's predictions, True for the shadow model's.
        schema: Field name to polars dtype for the decoded inputs and features; None infers.

    Returns:
        The window; ``skipped`` names the segments that could not be read.
    """
    since_utc = None if since is None else _utc(since)
    until_utc = None if until is None else _utc(until)
    files = _segment_files(Path(directory) / "segments", since_utc)
    frame, skipped, read = _read_segments(files, since_utc, until_utc, model, shadow)
    if not frame["ts"].is_sorted():
        frame = frame.sort("ts", maintain_order=True)
    dtypes = None if schema is None else {name: _dtype(dtype) for name, dtype in schema.items()}
    decoded, missing, uncastable = _decode(frame, dtypes)
    return LogWindow(
        frame=pl.concat([frame.select(LOG_COLUMNS), decoded], how="horizontal"),
        skipped=skipped,
        segments=read,
        missing=missing,
        uncastable=uncastable,
    )


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _dtype(dtype: pl.DataType | type[pl.DataType]) -> pl.DataType:
    return dtype() if isinstance(dtype, type) else dtype


def _segment_files(segments: Path, since: datetime | None) -> list[Path]:
    """Segment files of the date folders that can hold predictions at or after ``since``."""
    first = None if since is None else since.date() - timedelta(days=1)
    files: list[Path] = []
    for folder in sorted(segments.glob("*")):
        if first is not None and _folder_date(folder.name) < first:
            continue
        files.extend(sorted(folder.glob("*.parquet")))  # never *.parquet.tmp
    return files


def _folder_date(name: str) -> date:
    try:
        return date.fromisoformat(name)
    except ValueError:
        return date.max  # an unexpected folder is read rather than silently ignored


def _read_segments(
    files: list[Path],
    since: datetime | None,
    until: datetime | None,
    model: str | None,
    shadow: bool,
) -> tuple[pl.DataFrame, list[str], int]:
    """All rows of the segments that pass the filters; corrupted segments skipped."""
    if not files:
        return _LOG_SCHEMA.to_frame(), [], 0
    with contextlib.suppress(*_UNREADABLE):  # fast path: every segment at once
        scan = pl.scan_parquet(files, schema=_LOG_SCHEMA)
        return _filter(scan, since, until, model, shadow).collect(), [], len(files)
    frames: list[pl.DataFrame] = []
    skipped: list[str] = []
    for path in files:  # slow path: find the segments that cannot be read
        try:
            frames.append(_filter(_scan_one(path), since, until, model, shadow).collect())
        except (*_UNREADABLE, MonitoringError) as exc:
            skipped.append(_skip_message(path, exc))
    frame = pl.concat(frames) if frames else _LOG_SCHEMA.to_frame()
    return frame, skipped, len(frames)


def _scan_one(path: Path) -> pl.LazyFrame:
    scan = pl.scan_parquet(path)
    found = scan.collect_schema()
    wrong = [
        f"{name} ({found.get(name, 'absent')}, expected {dtype})"
        for name, dtype in _LOG_SCHEMA.items()
        if found.get(name) != dtype
    ]
    if wrong:
        raise MonitoringError(f"it does not have the prediction log's columns: {', '.join(wrong)}")
    return scan.select(_LOG_SCHEMA.names())


def _skip_message(path: Path, exc: Exception) -> str:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (
        f"Skipped the prediction log segment {path}: it cannot be read as a segment of "
        f"the log ({reason}). The rest of the log was read. Move the file out of "
        f"{path.parent} (or restore it from a backup) to read the log without this message."
    )


def _filter(
    frame: pl.LazyFrame,
    since: datetime | None,
    until: datetime | None,
    model: str | None,
    shadow: bool,
) -> pl.LazyFrame:
    conditions = [pl.col("shadow").fill_null(False) == shadow]
    if since is not None:
        conditions.append(pl.col("ts") >= since)
    if until is not None:
        conditions.append(pl.col("ts") < until)
    if model is not None:
        conditions.append(pl.col("model") == model)
    return frame.filter(*conditions)


def _decode(
    frame: pl.DataFrame, dtypes: dict[str, pl.DataType] | None
) -> tuple[pl.DataFrame, tuple[str, ...], dict[str, int]]:
    """One column per input and feature field, each JSON column parsed for its own fields."""
    seen = {column: infer_dtypes(values) for column, values in _sample(frame).items()}
    if dtypes is None:
        dtypes = _merge(seen["inputs_json"], seen["features_json"])
    plans: dict[str, dict[str, pl.DataType]] = {column: {} for column in _JSON_COLUMNS}
    missing: list[str] = []
    for name, dtype in dtypes.items():
        owner = next((column for column in _JSON_COLUMNS if name in seen[column]), None)
        if owner is None and frame.height:  # not in the sample: look through every row
            owner = next((c for c in _JSON_COLUMNS if present(frame[c], name)), None)
            if owner is None:
                missing.append(name)
        if owner is not None:
            plans[owner][name] = dtype
    frames, uncastable = decode_columns({column: frame[column] for column in plans}, plans)
    columns = [column for decoded in frames for column in decoded.get_columns()]
    columns.extend(pl.Series(name, [None] * frame.height, dtypes[name]) for name in missing)
    if not frame.height:
        columns = [pl.Series(name, [], dtype) for name, dtype in dtypes.items()]
    decoded = pl.DataFrame(columns, height=frame.height).select(list(dtypes))
    return decoded.rename(_renames(dtypes)), tuple(missing), uncastable


def _renames(dtypes: Mapping[str, pl.DataType]) -> dict[str, str]:
    return {name: f"{name}_field" for name in dtypes if name in LOG_COLUMNS}


def _sample(frame: pl.DataFrame) -> dict[str, pl.Series]:
    """Up to ``INFER_ROWS`` values of each JSON column, spread over the window."""
    if frame.height > INFER_ROWS:
        rows = np.unique(np.linspace(0, frame.height - 1, INFER_ROWS).round().astype(np.int64))
        frame = frame[rows]
    return {column: frame[column] for column in _JSON_COLUMNS}


def _merge(*found: dict[str, pl.DataType]) -> dict[str, pl.DataType]:
    """Inputs' dtypes first; a field seen only as null becomes String."""
    dtypes: dict[str, pl.DataType] = {}
    for fields in found:
        for name, dtype in fields.items():
            if dtypes.get(name, pl.Null()) == pl.Null:
                dtypes[name] = dtype
    return {name: pl.String() if dtype == pl.Null else dtype for name, dtype in dtypes.items()}


def split_windows(
    frame: pl.DataFrame,
    every: str | int,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[WindowSlice]:
    """Cut a window's frame into consecutive windows, by calendar period or by row count.

    Args:
        frame: A frame with a ``ts`` column (a :class:`LogWindow` frame).
        every: ``"1h"``, ``"6h"``, ``"1d"``, ``"7d"``, ``"1w"``... (UTC periods aligned on
            the calendar: hours on the hour, days at midnight, weeks and multiples of
            7 days on Mondays, other day counts on multiples since 1970-01-01), or a number
            of rows (``1000`` or ``"1000"``: consecutive windows of that many rows in time
            order, the last one possibly shorter).
        start: First time covered (time windows start at the period holding it);
            default the frame's first ``ts``.
        end: First time not covered; default just after the frame's last ``ts``.

    Returns:
        The windows in time order; time windows without traffic are empty, not left out.

    Raises:
        MonitoringError: ``every`` is neither a period nor a positive row count.
    """
    frame = frame.sort("ts", maintain_order=True)
    ts = frame["ts"].dt.replace_time_zone(None).dt.cast_time_unit("us").to_numpy()
    ts = ts.astype("datetime64[us]").astype(np.int64)
    rows = _row_count(every)
    if rows is not None:
        return _by_rows(frame, ts, rows, start, end)
    period, origin = _period(str(every))
    first = _utc(start) if start is not None else _from_us(int(ts[0])) if len(ts) else None
    last = _utc(end) if end is not None else _from_us(int(ts[-1]) + 1) if len(ts) else None
    if first is None or last is None:
        return []
    bound = origin + ((first - origin) // period) * period
    slices: list[WindowSlice] = []
    while bound < last:
        upper = bound + period
        low, high = np.searchsorted(ts, [_to_us(max(bound, first)), _to_us(min(upper, last))])
        slices.append(WindowSlice(bound, upper, frame.slice(int(low), int(high - low))))
        bound = upper
    return slices


def _row_count(every: str | int) -> int | None:
    text = str(every).strip()
    if not text.lstrip("-").isdigit():
        return None
    if int(text) <= 0:
        raise MonitoringError(f"A window of {text} rows cannot be cut; give a positive count.")
    return int(text)


def _period(every: str) -> tuple[timedelta, datetime]:
    match = _EVERY.match(every)
    if match is None or int(match.group(1)) == 0:
        raise MonitoringError(
            f"Cannot cut windows every {every!r}: expected a period such as '1h', '6h', "
            "'1d', '7d' or '1w', or a number of rows such as '1000'."
        )
    count, unit = int(match.group(1)), match.group(2)
    period = {"h": timedelta(hours=count), "d": timedelta(days=count), "w": timedelta(weeks=count)}
    weekly = unit == "w" or (unit == "d" and count % 7 == 0)
    return period[unit], _MONDAY if weekly else _EPOCH


def _by_rows(
    frame: pl.DataFrame,
    ts: npt.NDArray[np.int64],
    rows: int,
    start: datetime | None,
    end: datetime | None,
) -> list[WindowSlice]:
    low = 0 if start is None else int(np.searchsorted(ts, _to_us(_utc(start))))
    high = len(ts) if end is None else int(np.searchsorted(ts, _to_us(_utc(end))))
    return [
        WindowSlice(
            _from_us(int(ts[offset])),
            _from_us(int(ts[min(offset + rows, high) - 1]) + 1),
            frame.slice(offset, min(rows, high - offset)),
        )
        for offset in range(low, high, rows)
    ]


def _to_us(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)
