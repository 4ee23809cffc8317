"""The input side of batch scoring: files, streamed chunks, and the strict input check.

Parquet is read in record batches (``ParquetFile.iter_batches``), only the columns
scoring needs; CSV with ``pyarrow.csv.open_csv``, the model's request columns read as
text so that every value goes through the same strict conversion. Nothing reads a
whole file.
"""

from __future__ import annotations

import glob
from collections.abc import Iterator, Mapping, Sequence, Set
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from shipyard.errors import DataInputError

PARQUET = (".parquet", ".pq")
CSV = (".csv",)
_CSV_BLOCK_BYTES = 1 << 22
_TRUE = ("true", "1", "t", "yes")
_FALSE = ("false", "0", "f", "no")


@dataclass(frozen=True)
class InputFile:
    """One file of the input and the column names it holds."""

    path: Path
    columns: tuple[str, ...]
    rows: int | None  # None for CSV: unknown until read

    @property
    def is_csv(self) -> bool:
        return self.path.suffix.lower() in CSV


@dataclass(frozen=True)
class Chunk:
    """Up to ``chunk_rows`` rows of one file; ``first_row`` counts from 0 in that file."""

    file: InputFile
    first_row: int
    frame: pl.DataFrame


def input_files(source: str | Path, *, exclude: Set[Path] = frozenset()) -> list[InputFile]:
    """The Parquet and CSV files ``source`` names: one file, a folder of them, or a glob.

    Raises:
        DataInputError: Nothing matches, or a file is neither Parquet nor CSV.
    """
    text = str(source)
    path = Path(text)
    if glob.has_magic(text):
        paths = [Path(p) for p in sorted(glob.glob(text, recursive=True))]
    elif path.is_dir():
        paths = sorted(p for p in path.iterdir() if p.suffix.lower() in PARQUET + CSV)
    else:
        paths = [path]
    paths = [p for p in paths if p.resolve() not in exclude and not p.name.endswith(".tmp")]
    if not paths:
        raise DataInputError(
            f"No input files match {text!r}; give a Parquet or CSV file, a folder of them, "
            "or a glob such as 'data/*.parquet' (quote it so the shell does not expand it)."
        )
    return [_describe(p) for p in paths]


def _describe(path: Path) -> InputFile:
    suffix = path.suffix.lower()
    if suffix not in PARQUET + CSV:
        raise DataInputError(
            f"{path}: cannot read '{suffix or 'no suffix'}' files; batch scoring reads "
            "Parquet (.parquet, .pq) and CSV (.csv)."
        )
    if not path.is_file():
        raise DataInputError(f"{path}: no such file.")
    try:
        if suffix in PARQUET:
            meta = pq.ParquetFile(path).metadata
            return InputFile(path, tuple(meta.schema.to_arrow_schema().names), meta.num_rows)
        with pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 16)) as reader:
            return InputFile(path, tuple(reader.schema.names), None)
    except (pa.ArrowException, OSError) as exc:
        raise DataInputError(f"{path}: cannot be read as {suffix[1:]}: {exc}") from exc


def chunks(
    file: InputFile, columns: Sequence[str], text_columns: Set[str], chunk_rows: int
) -> Iterator[Chunk]:
    """The file's ``columns`` in chunks of at most ``chunk_rows`` rows.

    ``text_columns`` are read from CSV as strings (converted strictly later); other CSV
    columns get pyarrow's type inference.
    """
    try:
        if file.is_csv:
            yield from _csv_chunks(file, columns, text_columns, chunk_rows)
        else:
            yield from _parquet_chunks(file, columns, chunk_rows)
    except pa.ArrowException as exc:
        hint = " Convert it to Parquet with explicit types." if file.is_csv else ""
        raise DataInputError(f"{file.path}: reading failed: {exc}.{hint}") from exc


def _parquet_chunks(file: InputFile, columns: Sequence[str], chunk_rows: int) -> Iterator[Chunk]:
    # pre_buffer (pyarrow's default) keeps every buffered column chunk until the file is
    # closed: memory grew with the file (~14 MB per 262k-row chunk), not with the chunk.
    reader = pq.ParquetFile(file.path, pre_buffer=False)
    first = 0
    for batch in reader.iter_batches(batch_size=chunk_rows, columns=list(columns)):
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        yield Chunk(file, first, frame)
        first += frame.height


def _csv_chunks(
    file: InputFile, columns: Sequence[str], text_columns: Set[str], chunk_rows: int
) -> Iterator[Chunk]:
    convert = pacsv.ConvertOptions(
        include_columns=list(columns),
        column_types={name: pa.string() for name in columns if name in text_columns},
        strings_can_be_null=True,
        null_values=[""],  # only an empty field is missing: "n/a" is reported, not guessed
    )
    read = pacsv.ReadOptions(block_size=_CSV_BLOCK_BYTES)
    pending: list[pa.RecordBatch] = []
    waiting = 0
    first = 0
    with pacsv.open_csv(file.path, read_options=read, convert_options=convert) as reader:
        for batch in reader:
            pending.append(batch)
            waiting += batch.num_rows
            while waiting >= chunk_rows:
                table = pa.Table.from_batches(pending)
                yield Chunk(file, first, _frame(table.slice(0, chunk_rows)))
                rest = table.slice(chunk_rows)
                pending, waiting, first = rest.to_batches(), rest.num_rows, first + chunk_rows
        if waiting:
            yield Chunk(file, first, _frame(pa.Table.from_batches(pending)))


def _frame(table: pa.Table) -> pl.DataFrame:
    frame = pl.from_arrow(table.combine_chunks())
    assert isinstance(frame, pl.DataFrame)
    return frame


def conform(chunk: Chunk, schema: Mapping[str, pl.DataType], optional: Set[str]) -> pl.DataFrame:
    """The chunk's ``schema`` columns with exactly the schema's dtypes, vectorised.

    Missing optional columns are added as nulls. Present columns are converted strictly:
    a value that does not convert (text that is not a number, 2.5 for an integer, an
    integer out of range) or a null in a required column stops the run.

    Raises:
        DataInputError: Naming the column, the first bad row in its file and its value.
    """
    frame = chunk.frame
    columns = []
    for name, dtype in schema.items():
        if name not in frame.columns:
            columns.append(pl.Series(name, [None] * frame.height, dtype=dtype))
            continue
        source = frame[name]
        converted = _convert(source, dtype, chunk, name)
        _check(source, converted, dtype, name in optional, chunk, name)
        columns.append(converted)
    return pl.DataFrame(columns)


def _convert(source: pl.Series, dtype: pl.DataType, chunk: Chunk, name: str) -> pl.Series:
    have = source.dtype
    if have == dtype:
        return source
    if have == pl.Null:
        return pl.Series(name, [None] * source.len(), dtype=dtype)
    if have == pl.String:
        return _from_text(source, dtype)
    numbers = {_kind(have), _kind(dtype)} <= {"int", "float"}
    if _kind(have) != _kind(dtype) and not numbers:
        _fail(chunk, name, source, source.is_not_null(), dtype, f"the column is {have}")
    if isinstance(dtype, pl.Datetime) and isinstance(have, pl.Datetime):
        return _datetime(source, dtype)
    return source.cast(dtype, strict=False)


def _from_text(source: pl.Series, dtype: pl.DataType) -> pl.Series:
    kind = _kind(dtype)
    if kind == "bool":
        lower = source.str.strip_chars().str.to_lowercase()
        return (
            pl.select(
                pl.when(lower.is_in(_TRUE))
                .then(True)
                .when(lower.is_in(_FALSE))
                .then(False)
                .otherwise(None)
                .alias(source.name)
            )
            .to_series()
            .cast(pl.Boolean)
        )
    if kind == "datetime":
        assert isinstance(dtype, pl.Datetime)
        parsed = source.str.to_datetime(time_unit=dtype.time_unit, strict=False)
        return _datetime(parsed, dtype)
    if kind == "date":
        return source.str.to_date(strict=False)
    if kind in ("int", "float"):
        return source.str.strip_chars().cast(dtype, strict=False)
    return source.cast(dtype, strict=False)


def _datetime(source: pl.Series, dtype: pl.Datetime) -> pl.Series:
    """Naive times are UTC, zoned ones are converted, as the HTTP API does."""
    have = source.dtype
    assert isinstance(have, pl.Datetime)
    utc = source.dt.replace_time_zone("UTC") if have.time_zone is None else source
    utc = utc.dt.convert_time_zone("UTC").dt.cast_time_unit(dtype.time_unit)
    if dtype.time_zone is None:
        return utc.dt.replace_time_zone(None)
    return utc.dt.convert_time_zone(dtype.time_zone)


def _check(
    source: pl.Series,
    converted: pl.Series,
    dtype: pl.DataType,
    optional: bool,
    chunk: Chunk,
    name: str,
) -> None:
    if converted is not source:  # same dtype: nothing to lose
        lost = source.is_not_null() & converted.is_null()
        if source.dtype.is_float() and dtype.is_integer():
            lost = lost | (converted.cast(source.dtype) != source).fill_null(False)
        if lost.any():
            _fail(chunk, name, source, lost, dtype, None)
    if not optional and converted.null_count():
        _fail(chunk, name, source, converted.is_null(), dtype, "the column is required")


def _fail(
    chunk: Chunk,
    name: str,
    source: pl.Series,
    bad: pl.Series,
    dtype: pl.DataType,
    why: str | None,
) -> None:
    index = int(bad.arg_true()[0])
    value = source[index]
    count = int(bad.sum())
    last = chunk.first_row + chunk.frame.height - 1
    more = f" ({count} such values in rows {chunk.first_row} to {last})" if count > 1 else ""
    shown = "null" if value is None else repr(value)
    reason = f"; {why}" if why else ""
    raise DataInputError(
        f"{chunk.file.path}: column {name!r}, row {chunk.first_row + index} (counting from "
        f"0, header excluded): expected {_expected(dtype)}, got {shown}{reason}{more}. "
        f"Fix or remove those rows, or convert the column to {dtype}, and run again."
    )


def _kind(dtype: pl.DataType) -> str:
    if dtype == pl.Boolean:
        return "bool"
    if dtype.is_float():
        return "float"
    if dtype.is_integer():
        return "int"
    if dtype == pl.String or dtype == pl.Categorical or dtype == pl.Enum:
        return "string"
    if isinstance(dtype, pl.Datetime):
        return "datetime"
    return "date" if dtype == pl.Date else str(dtype)


def _expected(dtype: pl.DataType) -> str:
    words = {
        "bool": "true or false",
        "float": "a number",
        "int": f"an integer that fits {dtype}",
        "string": "a string",
        "datetime": "a date-time",
        "date": "a date",
    }
    return f"{words.get(_kind(dtype), 'a value')} ({dtype})"
