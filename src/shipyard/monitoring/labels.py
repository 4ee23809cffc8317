"""Delayed ground truth: labels that arrive after the predictions (fraud: chargebacks weeks later).

A :class:`LabelStore` keeps labels under a directory (a project keeps one per model under
``.shipyard/labels/<model>``), one Parquet segment per ingest, written under a ``.tmp``
name and renamed, so a failed ingest stores nothing. Labels are keyed either

- by request id (``key="request_id"``, or the name of the column holding it, stored as
  ``request_id``), under ``<directory>/request_id/``; or
- by entity and time (``key=("customer_id", "event_timestamp")``, stored as ``entity_key``,
  the entity's value as text, as the prediction log writes it, and ``ts``, UTC), under
  ``<directory>/entity/``.

Within one file, identical duplicates are kept once (``duplicates``) and a key given
several different labels keeps the last one (``conflicts``). A later ingest overrides
an earlier label of the same key: a correction (``updated``). Labels whose key is not in
the prediction log are stored all the same (the prediction may be logged later) and
counted in ``unknown``, never dropped.

:func:`attach` adds the labels to a window's frame: a left join on ``request_id``, or for
entity labels an as-of join (``serving.log.join_labels``): a prediction gets the label of
its entity's latest event at or before it, at most ``DEFAULT_TOLERANCE`` (5 minutes)
earlier, so it never inherits the label of an older, unrelated event of the same entity.
"""

from __future__ import annotations

import os
import uuid
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import polars as pl

from shipyard.errors import MonitoringError
from shipyard.serving.log import join_labels

__all__ = ["DEFAULT_TOLERANCE", "LabelIngest", "LabelStore", "attach"]

DEFAULT_TOLERANCE = timedelta(minutes=5)
EXAMPLES = 5  # ids shown when some are unknown or wrong
_TRUE = {"1", "true", "t", "yes"}
_FALSE = {"0", "false", "f", "no"}
_TS = pl.Datetime("us", "UTC")
Kind = Literal["request_id", "entity"]


@dataclass(frozen=True)
class LabelIngest:
    """What one ingest did.

    Attributes:
        rows: Rows in the source.
        stored: Labels written (one per key).
        duplicates: Rows identical to an earlier row of the source (kept once).
        conflicts: Keys given different labels in the source (the last row won).
        updated: Keys whose stored label this ingest changed (corrections).
        unchanged: Keys already stored with the same label.
        unknown: Keys not found in the prediction log (stored all the same); 0 without a log.
        unknown_examples: A few of those keys.
        path: The segment written.
        kind: ``"request_id"`` or ``"entity"``.
    """

    rows: int
    stored: int
    duplicates: int
    conflicts: int
    updated: int
    unchanged: int
    unknown: int
    unknown_examples: tuple[str, ...]
    path: Path
    kind: Kind

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: the counts, ``unknown_examples`` as a list and ``path`` as text."""
        fields = {name: getattr(self, name) for name in self.__dataclass_fields__}
        return fields | {"unknown_examples": list(self.unknown_examples), "path": str(self.path)}


class LabelStore:
    """Labels of one model, kept as Parquet segments under ``directory``.

    Args:
        directory: Folder of the store; created on the first ingest.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def ingest(
        self,
        source: Path | pl.DataFrame,
        *,
        label: str,
        key: str | tuple[str, str] = "request_id",
        log: pl.LazyFrame | None = None,
    ) -> LabelIngest:
        """Validate labels from a Parquet or CSV file (or a DataFrame) and store them.

        Args:
            source: A ``.parquet`` or ``.csv`` file, or a DataFrame.
            label: Column of the label: 0/1, true/false (any case), or a boolean.
            key: Column of the request id, or the (entity, event time) columns.
            log: The prediction log (``serving.log.read_log(...)``), to count labels of
                predictions it does not hold.

        Returns:
            The counts of the ingest and the segment written.

        Raises:
            MonitoringError: The source cannot be read, lacks a column, has a null key or a
                label that is not 0/1; nothing is stored then.
        """
        name = source.name if isinstance(source, Path) else "the DataFrame"
        frame = _read_source(source, key)
        labels, kind = _normalise(frame, name, label=label, key=key)
        columns = _key_columns(kind)
        distinct = labels.unique(maintain_order=True)
        latest = distinct.unique(subset=columns, keep="last", maintain_order=True)
        updated, unchanged = self._compare(latest, kind)
        unknown = _unknown(latest, kind, log)
        stamped = latest.with_columns(
            ingested_at=pl.lit(datetime.now(UTC), dtype=_TS), source=pl.lit(name)
        )
        path = self._write(stamped, kind)
        return LabelIngest(
            rows=frame.height,
            stored=latest.height,
            duplicates=labels.height - distinct.height,
            conflicts=distinct.height - latest.height,
            updated=updated,
            unchanged=unchanged,
            unknown=unknown.height,
            unknown_examples=tuple(unknown[columns[0]].head(EXAMPLES).to_list()),
            path=path,
            kind=kind,
        )

    def read(self, kind: Kind | None = None) -> pl.LazyFrame:
        """The current labels, the latest per key.

        Args:
            kind: ``"request_id"`` or ``"entity"``; None for the kind the store holds.

        Returns:
            ``request_id, label`` or ``entity_key, ts, label`` (``label`` Int8); empty when
            nothing was ingested.

        Raises:
            MonitoringError: ``kind`` is None and the store holds both kinds.
        """
        kind = self._kind(kind)
        columns = _key_columns(kind)
        files = self._segments(kind)
        if not files:
            return pl.LazyFrame(schema=_schema(kind))
        return (
            pl.scan_parquet(files)
            .select(*columns, "label")
            .unique(subset=columns, keep="last", maintain_order=True)
        )

    def _kind(self, kind: Kind | None) -> Kind:
        if kind is not None:
            return kind
        held: list[Kind] = [name for name in ("request_id", "entity") if self._segments(name)]
        if len(held) > 1:
            raise MonitoringError(
                f"The label store {self.directory} holds labels keyed by request id and by "
                "entity and time; say which to read: read('request_id') or read('entity')."
            )
        return held[0] if held else "request_id"

    def _segments(self, kind: Kind) -> list[Path]:
        return sorted((self.directory / kind).glob("*.parquet"))

    def _compare(self, latest: pl.DataFrame, kind: Kind) -> tuple[int, int]:
        columns = _key_columns(kind)
        if not self._segments(kind):
            return 0, 0
        stored = self.read(kind).collect().rename({"label": "stored_label"})
        both = latest.join(stored, on=columns, how="inner")
        changed = int((both["label"] != both["stored_label"]).sum())
        return changed, both.height - changed

    def _write(self, frame: pl.DataFrame, kind: Kind) -> Path:
        folder = self.directory / kind
        folder.mkdir(parents=True, exist_ok=True)
        numbers = [int(path.name.split("-", 1)[0]) for path in folder.glob("*.parquet")]
        final = folder / f"{max(numbers, default=-1) + 1:010d}-{uuid.uuid4().hex}.parquet"
        staged = final.with_name(final.name + ".tmp")
        try:
            with open(staged, "wb") as handle:
                frame.write_parquet(handle, compression="zstd")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(staged, final)
        finally:
            staged.unlink(missing_ok=True)
        return final


def _key_columns(kind: Kind) -> list[str]:
    return ["request_id"] if kind == "request_id" else ["entity_key", "ts"]


def _schema(kind: Kind) -> dict[str, pl.DataType]:
    keys: dict[str, pl.DataType] = (
        {"request_id": pl.String()}
        if kind == "request_id"
        else {"entity_key": pl.String(), "ts": _TS}
    )
    return {**keys, "label": pl.Int8()}


def _read_source(source: Path | pl.DataFrame, key: str | tuple[str, str]) -> pl.DataFrame:
    if isinstance(source, pl.DataFrame):
        return source
    path = Path(source)
    if not path.is_file():
        raise MonitoringError(f"No label file at {path}; give the path of a .parquet or .csv file.")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pl.read_parquet(path)
        if suffix == ".csv":
            ids = [key] if isinstance(key, str) else [key[0]]
            return pl.read_csv(path, schema_overrides=dict.fromkeys(ids, pl.String()))
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise MonitoringError(
            f"Cannot read the labels in {path} as {suffix[1:].upper()}: {exc}. Check the file "
            "is complete and in that format."
        ) from exc
    raise MonitoringError(
        f"Cannot read labels from {path}: expected a .parquet or .csv file, got "
        f"{suffix or 'a file without extension'}. Convert it to Parquet or CSV."
    )


def _normalise(
    frame: pl.DataFrame, name: str, *, label: str, key: str | tuple[str, str]
) -> tuple[pl.DataFrame, Kind]:
    """Key columns renamed to the log's names, labels as Int8 0/1, checked."""
    if frame.height == 0:
        raise MonitoringError(f"No labels in {name}: it has no rows. Give a file with labels.")
    keys = [key] if isinstance(key, str) else list(key)
    absent = [column for column in [*keys, label] if column not in frame.columns]
    if absent:
        raise MonitoringError(
            f"The labels in {name} have no column {', '.join(map(repr, absent))}; found "
            f"{frame.columns}. Name the columns with --key and --label (key= and label=)."
        )
    for column in keys:
        _no_nulls(frame, column, name)
    values = _binary(frame[label], name)
    if isinstance(key, str):
        ids = frame[key].cast(pl.String).alias("request_id")
        return pl.DataFrame([ids, values]), "request_id"
    entity = frame[key[0]].cast(pl.String).alias("entity_key")
    return pl.DataFrame([entity, _times(frame[key[1]], name), values]), "entity"


def _no_nulls(frame: pl.DataFrame, column: str, name: str) -> None:
    nulls = frame[column].null_count()
    if nulls:
        rows = frame.with_row_index("row").filter(pl.col(column).is_null())["row"].head(EXAMPLES)
        raise MonitoringError(
            f"{nulls} labels in {name} have no {column} (rows {rows.to_list()}, counted from "
            "0); every label needs its key. Fill them in or remove those rows."
        )


def _binary(column: pl.Series, name: str) -> pl.Series:
    """0/1, true/false (any case) or booleans as Int8 0/1; anything else is an error."""
    text = column.cast(pl.String).str.strip_chars().str.to_lowercase()
    truthy, falsy = text.is_in(list(_TRUE)), text.is_in(list(_FALSE))
    if column.dtype.is_float():  # 1.0 / 0.0 from a CSV or pandas
        truthy, falsy = column == 1.0, column == 0.0
    bad = ~(truthy | falsy).fill_null(False)
    if bad.any():
        examples = column.filter(bad).unique(maintain_order=True).head(EXAMPLES).to_list()
        raise MonitoringError(
            f"{int(bad.sum())} labels in {name} (column {column.name!r}) are not 0/1 or "
            f"true/false: {examples}. Give each labelled prediction 1 (positive, e.g. fraud) "
            "or 0; leave out the ones not known yet."
        )
    return truthy.fill_null(False).cast(pl.Int8).alias("label")


def _times(column: pl.Series, name: str) -> pl.Series:
    """Event times as UTC microseconds; naive times are taken as UTC."""
    if column.dtype == pl.String:
        parsed = _parse_iso(column)
        bad = parsed.is_null() & column.is_not_null()
        if bad.any():
            raise MonitoringError(
                f"{int(bad.sum())} event times in {name} (column {column.name!r}) are not "
                f"ISO 8601 times: {column.filter(bad).head(EXAMPLES).to_list()}. Write them as "
                "2026-01-31T14:05:00Z."
            )
        column = parsed
    if column.dtype == pl.Date:
        column = column.cast(pl.Datetime("us"))
    if not isinstance(column.dtype, pl.Datetime):
        raise MonitoringError(
            f"The event times in {name} (column {column.name!r}) are {column.dtype}; expected "
            "datetimes or ISO 8601 text."
        )
    if column.dtype.time_zone is None:
        column = column.dt.replace_time_zone("UTC")
    return column.dt.convert_time_zone("UTC").dt.cast_time_unit("us").alias("ts")


def _parse_iso(column: pl.Series) -> pl.Series:
    """ISO 8601 text (``T`` or space, optional seconds, fraction, ``Z`` or offset) as UTC."""
    text = column.str.strip_chars().str.replace(" ", "T").str.replace(r"[zZ]$", "+00:00")
    text = pl.select(
        pl.when(text.str.contains(r"^\d{4}-\d\d-\d\d$"))
        .then(text + "T00:00:00")
        .when(text.str.contains(r"T\d\d:\d\d$|T\d\d:\d\d[+-]"))
        .then(text.str.replace(r"(T\d\d:\d\d)", "${1}:00"))
        .otherwise(text)
    ).to_series()
    text = pl.select(
        pl.when(text.str.contains(r"[+-]\d\d:?\d\d$")).then(text).otherwise(text + "+00:00")
    ).to_series()
    return text.str.to_datetime(
        format="%Y-%m-%dT%H:%M:%S%.f%z", time_unit="us", time_zone="UTC", strict=False
    )


def _unknown(labels: pl.DataFrame, kind: Kind, log: pl.LazyFrame | None) -> pl.DataFrame:
    """Labels whose request id (or entity) the log does not hold."""
    column = "request_id" if kind == "request_id" else "entity_key"
    if log is None:
        return labels.clear()
    known = log.select(column).unique()
    return labels.lazy().join(known, on=column, how="anti", maintain_order="left").collect()


def attach(
    frame: pl.DataFrame,
    labels: LabelStore | pl.LazyFrame | pl.DataFrame,
    key: str | tuple[str, str] = "request_id",
    *,
    tolerance: timedelta | None = DEFAULT_TOLERANCE,
) -> pl.DataFrame:
    """Add the labels known so far to a window's frame, every row kept in its order.

    Args:
        frame: A window's frame (``request_id``, ``entity_key``, ``ts``...).
        labels: The store, or its ``read()`` output.
        key: ``"request_id"`` or ``("entity_key", "ts")``.
        tolerance: For entity labels, how long after its event a prediction still gets the
            event's label; None for no limit.

    Returns:
        ``frame`` with ``label`` (Int8, null while unknown) replacing any ``label`` it had,
        and for entity labels ``label_ts``, the time of the event labelled.
    """
    kind: Kind = "request_id" if isinstance(key, str) else "entity"
    if isinstance(labels, LabelStore):
        labels = labels.read(kind)
    table = _label_table(labels.lazy(), kind)
    base = frame.drop("label", "label_ts", strict=False).lazy()
    if kind == "request_id":
        return join_labels(base, table, on="request_id").collect()
    entity, time_column = key if isinstance(key, tuple) else ("entity_key", "ts")
    table = table.rename({"entity_key": entity, "ts": time_column})
    joined = join_labels(base, table, on=(entity, time_column), tolerance=tolerance)
    with warnings.catch_warnings():  # both sides are sorted by join_labels itself
        warnings.filterwarnings("ignore", message="Sortedness of columns cannot be checked")
        return joined.rename({f"label_{time_column}": "label_ts"}, strict=False).collect()


def _label_table(labels: pl.LazyFrame, kind: Kind) -> pl.LazyFrame:
    """The key columns and ``label`` (Int8); an empty store of the other kind gives no rows."""
    columns = [*_key_columns(kind), "label"]
    found = labels.collect_schema()
    absent = [column for column in columns if column not in found]
    if absent and labels.select(pl.len()).collect().item() == 0:
        return pl.LazyFrame(schema=_schema(kind))
    if absent:
        raise MonitoringError(
            f"The labels have no column {', '.join(map(repr, absent))} (found {found.names()}); "
            f"labels keyed by {kind.replace('_', ' ')} need {columns}. Read the store with "
            f"LabelStore.read({kind!r}) or pass the store itself."
        )
    return labels.select(columns).with_columns(pl.col("label").cast(pl.Int8))
