"""The batch scorer's output writer: one file, one schema, whatever the input files held."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shipyard.errors import DataInputError
from shipyard.serving._batch_io import Writer


def test_a_kept_column_that_widens_between_files_is_cast_to_the_first_type(
    tmp_path: Path,
) -> None:
    out = tmp_path / "scores.parquet"
    with Writer(out, "parquet") as writer:
        writer.write(pa.table({"id": pa.array([1, 2], pa.int64()), "score": [0.1, 0.2]}))
        writer.write(pa.table({"id": pa.array([3], pa.int32()), "score": [0.3]}))
    written = pq.read_table(out)
    assert written.schema.field("id").type == pa.int64()
    assert written.column("id").to_pylist() == [1, 2, 3]


def test_a_kept_column_that_changes_type_between_files_is_refused_with_the_fix(
    tmp_path: Path,
) -> None:
    out = tmp_path / "scores.parquet"
    with Writer(out, "parquet") as writer:
        writer.write(pa.table({"id": pa.array([1, 2], pa.int64()), "score": [0.1, 0.2]}))
        later = pa.table({"id": pa.array(["c_17"], pa.string()), "score": [0.3]})
        with pytest.raises(DataInputError) as caught:
            writer.write(later)
    message = str(caught.value)
    assert "the kept columns changed type between input files" in message
    assert "id: string" in message and "id: int64" in message
    assert message.endswith("Score the files separately.")
