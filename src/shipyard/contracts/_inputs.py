"""Turning whatever the user hands ``validate`` into one lazy Polars query.

Files are scanned, not loaded: Parquet as it is typed, CSV with every column as
text (the contract decides the types, so "00123" stays an id and "12,50" is
reported instead of guessed), JSON lines as the reader infers them.
"""

from __future__ import annotations

import glob as globbing
from pathlib import Path
from typing import Any

import polars as pl

from shipyard.errors import DataInputError

_PARQUET = (".parquet", ".pq")
_CSV = (".csv", ".tsv", ".txt")
_JSONL = (".jsonl", ".ndjson", ".json")


def as_lazy(data: Any) -> tuple[pl.LazyFrame, str, set[str]]:
    """The data as a LazyFrame, a description of where it came from, and which columns
    arrived as text (so that reports can say "values are text")."""
    frame, source = _frame(data)
    try:
        schema = frame.collect_schema()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataInputError(f"Cannot read {source}: {exc}") from None
    return frame, source, {name for name, dtype in schema.items() if dtype == pl.String}


def _frame(data: Any) -> tuple[pl.LazyFrame, str]:
    if isinstance(data, pl.LazyFrame):
        return data, "a LazyFrame"
    if isinstance(data, pl.DataFrame):
        return data.lazy(), f"a DataFrame of {data.height} rows"
    module = type(data).__module__.partition(".")[0]
    if module == "pandas":
        return _from_pandas(data), f"a pandas DataFrame of {len(data)} rows"
    if module == "pyarrow":
        table = pl.from_arrow(data)
        if isinstance(table, pl.Series):
            table = table.to_frame()
        return table.lazy(), "an Arrow table"
    if isinstance(data, (str, Path)):
        return _files([data])
    if isinstance(data, (list, tuple)) and data and all(isinstance(d, (str, Path)) for d in data):
        return _files(list(data))
    raise DataInputError(
        f"Cannot validate a {type(data).__name__}. Pass a Polars or pandas DataFrame, a "
        "LazyFrame, an Arrow table, or Parquet/CSV/JSON-lines paths (globs allowed)."
    )


def _from_pandas(data: Any) -> pl.LazyFrame:
    frame = data.copy()
    for name in frame.columns:
        if frame[name].dtype == object:
            # A column of mixed Python objects: read each as text, keep missing as missing.
            frame[name] = frame[name].map(lambda v: None if v is None or v != v else str(v))
    try:
        converted: pl.DataFrame = pl.from_pandas(frame)
        return converted.lazy()
    except Exception as exc:
        raise DataInputError(f"Cannot convert the pandas DataFrame: {exc}") from None


def _files(items: list[str | Path]) -> tuple[pl.LazyFrame, str]:
    paths: list[Path] = []
    for item in items:
        text = str(item)
        matched = sorted(globbing.glob(text)) if any(c in text for c in "*?[") else [text]
        if not matched:
            raise DataInputError(f"No file matches {text!r}. Check the path or the pattern.")
        paths += [Path(m) for m in matched]
    for path in paths:
        _check_file(path)
    kinds = {_kind(p) for p in paths}
    if len(kinds) != 1:
        raise DataInputError(
            f"The files mix formats ({', '.join(sorted(kinds))}); validate one format at a time."
        )
    kind = kinds.pop()
    described = str(paths[0]) if len(paths) == 1 else f"{len(paths)} {kind} files"
    names = [str(p) for p in paths]
    if kind == "parquet":
        return pl.scan_parquet(names), described
    if kind == "csv":
        separator = "\t" if paths[0].suffix == ".tsv" else ","
        return pl.scan_csv(names, infer_schema=False, separator=separator), described
    return pl.scan_ndjson(names, infer_schema_length=10_000), described


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in _PARQUET:
        return "parquet"
    if suffix in _CSV:
        return "csv"
    if suffix in _JSONL:
        return "json-lines"
    raise DataInputError(
        f"{path}: cannot tell the format from the extension {suffix or '(none)'!r}. Use .parquet, "
        ".csv, .tsv or .jsonl."
    )


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise DataInputError(f"{path} does not exist or is not a file.")
    size = path.stat().st_size
    if size == 0:
        raise DataInputError(f"{path} is empty (0 bytes): the delivery has no data at all.")
    with open(path, "rb") as handle:
        head = handle.read(4096)
        if _kind(path) == "parquet":
            handle.seek(max(size - 4, 0))
            tail = handle.read(4)
    if _kind(path) == "parquet" and (head[:4] != b"PAR1" or tail != b"PAR1"):
        raise DataInputError(
            f"{path} is not a Parquet file, whatever its extension says (it does not start and "
            "end with the Parquet marker PAR1). Ask upstream what they sent, or rename it."
        )
    if _kind(path) != "parquet" and b"\x00" in head:
        raise DataInputError(
            f"{path} holds binary data, not {_kind(path)} text. Ask upstream what they sent."
        )
