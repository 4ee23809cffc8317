"""Batch scoring: Parquet, CSV and globs streamed in chunks, strict input checks, atomic
output, the prediction log, and the same scores as the HTTP API."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from shipyard.errors import DataInputError, ScoreCountError
from shipyard.serving.batch import score_batch
from shipyard.serving.log import PredictionLog, read_log
from shipyard.serving.model import ServedModel

SCHEMA: dict[str, pl.DataType] = {
    "customer_id": pl.String(),
    "amount": pl.Float64(),
    "items": pl.Int32(),
    "country": pl.String(),
}
RISK = {"c0": 0.0, "c1": 1.5, "c2": -2.0}


def add_risk(frame: pl.DataFrame) -> pl.DataFrame:
    """A stand-in for online features: a value looked up by the entity key."""
    risk = frame["customer_id"].replace_strict(RISK, default=0.5, return_dtype=pl.Float64)
    return frame.with_columns(risk.alias("risk"))


def sigmoid_score(frame: pl.DataFrame) -> np.ndarray[Any, Any]:
    amount = frame["amount"].to_numpy()
    risk = frame["risk"].to_numpy()
    items = frame["items"].to_numpy()
    return np.asarray(1.0 / (1.0 + np.exp(-((amount - 50.0) / 10.0 + risk - 0.1 * items))))


def expected_score(row: dict[str, Any]) -> float:
    risk = RISK.get(row["customer_id"], 0.5) if "risk" not in row else row["risk"]
    z = (row["amount"] - 50.0) / 10.0 + risk - 0.1 * row["items"]
    return 1.0 / (1.0 + math.exp(-z))


def served(**changes: Any) -> ServedModel:
    fields: dict[str, Any] = {
        "name": "fraud",
        "version": "3",
        "schema": SCHEMA,
        "optional": frozenset({"country"}),
        "score": sigmoid_score,
        "threshold": 0.5,
        "features": add_risk,
        "inputs": ("amount", "items", "risk"),
        "keys": ("customer_id",),
    }
    return ServedModel(**{**fields, **changes})


def requests(rows: int, seed: int = 7) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(rows)],
            "customer_id": [f"c{i % 4}" for i in range(rows)],
            "amount": rng.uniform(1, 100, rows).round(2),
            "items": pl.Series(rng.integers(1, 5, rows), dtype=pl.Int32),
            "country": [None if i % 3 == 0 else "DE" for i in range(rows)],
        }
    )


def expected(frame: pl.DataFrame) -> list[float]:
    return [expected_score(row) for row in frame.to_dicts()]


def test_parquet_scores_every_row_keeps_the_entity_key_and_applies_the_threshold(
    tmp_path: Path,
) -> None:
    frame = requests(50)
    frame.write_parquet(tmp_path / "in.parquet")

    summary = score_batch(served(), tmp_path / "in.parquet", tmp_path / "out.parquet")

    out = pl.read_parquet(tmp_path / "out.parquet")
    assert out.columns == ["customer_id", "score", "decision"]
    assert out["customer_id"].to_list() == frame["customer_id"].to_list()
    assert out["score"].to_list() == pytest.approx(expected(frame), rel=1e-12)
    assert out["decision"].to_list() == [s >= 0.5 for s in out["score"].to_list()]
    assert (summary.rows, summary.chunks, summary.files) == (50, 1, 1)
    assert summary.positives == sum(out["decision"].to_list())
    assert summary.features == "online"
    assert summary.kept == ("customer_id",)
    assert summary.output == tmp_path / "out.parquet"
    assert {p.name for p in tmp_path.iterdir()} == {"in.parquet", "out.parquet"}


def test_csv_in_and_csv_out_match_parquet(tmp_path: Path) -> None:
    frame = requests(40)
    frame.write_parquet(tmp_path / "in.parquet")
    frame.write_csv(tmp_path / "in.csv")

    score_batch(served(), tmp_path / "in.parquet", tmp_path / "a.parquet")
    score_batch(served(), tmp_path / "in.csv", tmp_path / "b.csv", chunk_rows=9)

    csv = pl.read_csv(tmp_path / "b.csv")
    parquet = pl.read_parquet(tmp_path / "a.parquet")
    assert csv["customer_id"].to_list() == parquet["customer_id"].to_list()
    assert csv["score"].to_list() == pytest.approx(parquet["score"].to_list(), rel=1e-12)
    assert csv["decision"].to_list() == parquet["decision"].to_list()


def test_a_glob_reads_every_file_in_name_order_and_never_its_own_output(tmp_path: Path) -> None:
    frame = requests(30)
    for index, part in enumerate(frame.iter_slices(11)):
        part.write_parquet(tmp_path / f"day-{index}.parquet")
    pattern = str(tmp_path / "*.parquet")

    first = score_batch(served(), pattern, tmp_path / "scores.parquet", keep=["transaction_id"])
    again = score_batch(served(), pattern, tmp_path / "scores.parquet", keep=["transaction_id"])

    out = pl.read_parquet(tmp_path / "scores.parquet")
    assert out["transaction_id"].to_list() == frame["transaction_id"].to_list()
    assert (first.files, first.rows, first.chunks) == (3, 30, 3)
    assert (again.files, again.rows) == (3, 30)


def test_a_folder_is_read_like_a_glob_of_its_files(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    frame = requests(12)
    frame.head(5).write_parquet(folder / "a.parquet")
    frame.tail(7).write_parquet(folder / "b.parquet")

    summary = score_batch(served(), folder, tmp_path / "out.parquet")

    assert (summary.files, summary.rows) == (2, 12)


@pytest.mark.parametrize("source", ["in.parquet", "in.csv"])
def test_results_do_not_depend_on_chunk_size(tmp_path: Path, source: str) -> None:
    frame = requests(60)
    frame.write_parquet(tmp_path / "in.parquet")
    frame.write_csv(tmp_path / "in.csv")
    outputs = []
    for rows in (1, 7, 60, 1_000_000):
        target = tmp_path / f"out-{rows}.parquet"
        summary = score_batch(
            served(), tmp_path / source, target, chunk_rows=rows, keep=["transaction_id"]
        )
        assert summary.chunks == math.ceil(60 / rows)
        outputs.append(pl.read_parquet(target))
    for other in outputs[1:]:
        assert_frame_equal(outputs[0], other)
    assert outputs[0]["transaction_id"].to_list() == frame["transaction_id"].to_list()


def test_keep_names_the_columns_to_copy_and_refuses_unknown_or_clashing_ones(
    tmp_path: Path,
) -> None:
    requests(5).write_parquet(tmp_path / "in.parquet")

    score_batch(served(), tmp_path / "in.parquet", tmp_path / "out.parquet", keep=[])
    assert pl.read_parquet(tmp_path / "out.parquet").columns == ["score", "decision"]
    score_batch(
        served(),
        tmp_path / "in.parquet",
        tmp_path / "out.parquet",
        keep=["transaction_id", "customer_id"],
    )
    assert pl.read_parquet(tmp_path / "out.parquet").columns == [
        "transaction_id",
        "customer_id",
        "score",
        "decision",
    ]
    with pytest.raises(DataInputError, match=r"lacks 'order_id' of the --keep columns"):
        score_batch(served(), tmp_path / "in.parquet", tmp_path / "x.parquet", keep=["order_id"])
    pl.DataFrame({**requests(2).to_dict(), "score": [1.0, 2.0]}).write_parquet(tmp_path / "s.pq")
    with pytest.raises(DataInputError, match="cannot keep score"):
        score_batch(served(), tmp_path / "s.pq", tmp_path / "x.parquet", keep=["score"])


def test_a_missing_required_column_lists_expected_and_found_and_writes_nothing(
    tmp_path: Path,
) -> None:
    requests(5).drop("items").write_parquet(tmp_path / "in.parquet")

    with pytest.raises(DataInputError) as caught:
        score_batch(served(), tmp_path / "in.parquet", tmp_path / "out.parquet")

    assert str(caught.value) == (
        f"{tmp_path / 'in.parquet'} lacks 'items' of the model's request columns. Expected: "
        "customer_id, amount, items, country. Found: transaction_id, customer_id, amount, "
        "country. Add or rename the columns, or choose other options."
    )
    assert not (tmp_path / "out.parquet").exists()


def test_a_missing_optional_column_is_null_as_in_the_api(tmp_path: Path) -> None:
    frame = requests(6).drop("country")
    frame.write_parquet(tmp_path / "in.parquet")
    seen: list[pl.DataFrame] = []

    def features(request: pl.DataFrame) -> pl.DataFrame:
        seen.append(request)
        return add_risk(request)

    score_batch(served(features=features), tmp_path / "in.parquet", tmp_path / "out.parquet")

    assert seen[0].schema == pl.Schema(SCHEMA)
    assert seen[0]["country"].null_count() == 6


def test_a_bad_value_names_column_row_and_value_and_leaves_the_old_output(
    tmp_path: Path,
) -> None:
    frame = requests(30).with_columns(pl.col("amount").cast(pl.String))
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 23)
        .then(pl.lit("12,50"))
        .otherwise(pl.col("amount"))
        .alias("amount")
    )
    frame.write_csv(tmp_path / "in.csv")
    (tmp_path / "out.csv").write_text("customer_id,score,decision\nc0,0.1,false\n")

    with pytest.raises(DataInputError) as caught:
        score_batch(served(), tmp_path / "in.csv", tmp_path / "out.csv", chunk_rows=10)

    assert str(caught.value) == (
        f"{tmp_path / 'in.csv'}: column 'amount', row 23 (counting from 0, header excluded): "
        "expected a number (Float64), got '12,50'. Fix or remove those rows, or convert the "
        "column to Float64, and run again."
    )
    assert (tmp_path / "out.csv").read_text() == "customer_id,score,decision\nc0,0.1,false\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        (
            "items",
            [1.0, 2.5, 3.0],
            "column 'items', row 1 (counting from 0, header excluded): "
            "expected an integer that fits Int32 (Int32), got 2.5.",
        ),
        (
            "items",
            [1, 2, 2**40],
            "column 'items', row 2 (counting from 0, header excluded): "
            "expected an integer that fits Int32 (Int32), got 1099511627776.",
        ),
        (
            "amount",
            [1.0, None, None],
            "column 'amount', row 1 (counting from 0, header "
            "excluded): expected a number (Float64), got null; the column is required (2 such "
            "values in rows 0 to 2).",
        ),
        (
            "customer_id",
            [1, 2, 3],
            "column 'customer_id', row 0 (counting from 0, header "
            "excluded): expected a string (String), got 1; the column is Int64 (3 such values in "
            "rows 0 to 2).",
        ),
        (
            "amount",
            [True, False, True],
            "column 'amount', row 0 (counting from 0, header "
            "excluded): expected a number (Float64), got True; the column is Boolean (3 such "
            "values in rows 0 to 2).",
        ),
    ],
)
def test_parquet_values_must_convert_strictly(
    tmp_path: Path, column: str, values: list[Any], message: str
) -> None:
    requests(3).with_columns(pl.Series(column, values)).write_parquet(tmp_path / "in.parquet")

    with pytest.raises(DataInputError) as caught:
        score_batch(served(), tmp_path / "in.parquet", tmp_path / "out.parquet")

    assert message in str(caught.value)
    assert not (tmp_path / "out.parquet").exists()


def test_a_bad_value_in_a_later_file_counts_rows_in_that_file(tmp_path: Path) -> None:
    requests(5).write_csv(tmp_path / "a.csv")
    bad = requests(5).with_columns(pl.col("items").cast(pl.String))
    bad = bad.with_columns(
        pl.when(pl.int_range(pl.len()) == 3)
        .then(pl.lit("many"))
        .otherwise(pl.col("items"))
        .alias("items")
    )
    bad.write_csv(tmp_path / "b.csv")

    with pytest.raises(DataInputError, match=r"b\.csv: column 'items', row 3 .*got 'many'"):
        score_batch(served(), str(tmp_path / "*.csv"), tmp_path / "out.parquet", chunk_rows=2)


def test_an_input_without_rows_writes_the_columns_and_no_rows(tmp_path: Path) -> None:
    requests(5).clear().write_parquet(tmp_path / "in.parquet")
    requests(5).clear().write_csv(tmp_path / "in.csv")

    summary = score_batch(served(), tmp_path / "in.parquet", tmp_path / "out.parquet")
    score_batch(served(), tmp_path / "in.csv", tmp_path / "out.csv")

    out = pl.read_parquet(tmp_path / "out.parquet")
    assert out.schema == pl.Schema(
        {"customer_id": pl.String, "score": pl.Float64, "decision": pl.Boolean}
    )
    assert (summary.rows, summary.chunks) == (0, 0)
    assert (tmp_path / "out.csv").read_text().strip() == '"customer_id","score","decision"'


def test_no_matching_file_and_unknown_formats_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataInputError, match=r"No input files match .*quote it"):
        score_batch(served(), str(tmp_path / "*.parquet"), tmp_path / "out.parquet")
    (tmp_path / "in.json").write_text("{}")
    with pytest.raises(DataInputError, match=r"cannot read '\.json' files"):
        score_batch(served(), tmp_path / "in.json", tmp_path / "out.parquet")
    requests(2).write_parquet(tmp_path / "in.parquet")
    with pytest.raises(DataInputError, match=r"name OUTPUT \.parquet or \.csv"):
        score_batch(served(), tmp_path / "in.parquet", tmp_path / "out.xlsx")


def test_given_features_are_used_as_they_are_and_auto_detected(tmp_path: Path) -> None:
    frame = requests(20).with_columns(pl.lit(3.0).alias("risk"))
    frame.write_parquet(tmp_path / "in.parquet")

    def never(request: pl.DataFrame) -> pl.DataFrame:
        raise AssertionError("features computed although given")

    auto = score_batch(served(features=never), tmp_path / "in.parquet", tmp_path / "a.parquet")
    online = score_batch(
        served(), tmp_path / "in.parquet", tmp_path / "b.parquet", given_features=False
    )

    assert (auto.features, online.features) == ("given", "online")
    given_scores = pl.read_parquet(tmp_path / "a.parquet")["score"].to_list()
    assert given_scores == pytest.approx(expected(frame), rel=1e-12)
    online_scores = pl.read_parquet(tmp_path / "b.parquet")["score"].to_list()
    assert online_scores == pytest.approx(expected(frame.drop("risk")), rel=1e-12)


def test_given_features_without_the_inputs_is_refused(tmp_path: Path) -> None:
    requests(3).write_parquet(tmp_path / "in.parquet")

    with pytest.raises(DataInputError, match=r"lacks 'risk' of the model's inputs"):
        score_batch(
            served(), tmp_path / "in.parquet", tmp_path / "out.parquet", given_features=True
        )


def test_a_model_returning_another_number_of_scores_fails_cleanly(tmp_path: Path) -> None:
    requests(4).write_parquet(tmp_path / "in.parquet")

    with pytest.raises(ScoreCountError, match="returned 1 scores for 4 rows"):
        score_batch(
            served(score=lambda frame: np.zeros(1)),
            tmp_path / "in.parquet",
            tmp_path / "out.parquet",
        )
    assert [p.name for p in tmp_path.iterdir()] == ["in.parquet"]


def test_progress_reports_rows_done_and_the_total(tmp_path: Path) -> None:
    requests(25).write_parquet(tmp_path / "in.parquet")
    requests(25).write_csv(tmp_path / "in.csv")
    calls: list[tuple[int, int | None]] = []

    score_batch(
        served(),
        tmp_path / "in.parquet",
        tmp_path / "out.parquet",
        chunk_rows=10,
        progress=lambda done, total: calls.append((done, total)),
    )
    score_batch(
        served(),
        tmp_path / "in.csv",
        tmp_path / "out.parquet",
        chunk_rows=10,
        progress=lambda done, total: calls.append((done, total)),
    )

    assert calls == [(10, 25), (20, 25), (25, 25), (10, None), (20, None), (25, None)]


def test_the_prediction_log_gets_every_row_with_the_kept_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("shipyard.serving.batch.LOG_ROWS", 4)  # chunks of 10 logged 4 by 4
    frame = requests(23)
    frame.write_parquet(tmp_path / "in.parquet")
    log = PredictionLog(tmp_path / "log", model="fraud")

    summary = score_batch(
        served(),
        tmp_path / "in.parquet",
        tmp_path / "out.parquet",
        chunk_rows=10,
        keep=["transaction_id", "customer_id"],
        log=log,
    )
    log.close()

    logged = read_log(tmp_path / "log").collect().sort("request_id")
    out = pl.read_parquet(tmp_path / "out.parquet").sort("transaction_id")
    assert summary.logged == 23
    assert len(list((tmp_path / "log" / "segments").glob("*/*.parquet"))) == 7  # 4+4+2, 4+4+2, 3
    assert logged["request_id"].to_list() == out["transaction_id"].to_list()
    assert logged["entity_key"].to_list() == out["customer_id"].to_list()
    assert logged["score"].to_list() == out["score"].to_list()
    assert logged["decision"].to_list() == out["decision"].cast(pl.Int64).to_list()
    assert set(logged["model_version"].to_list()) == {"3"}
    first = frame.row(0, named=True)
    inputs = {k: first[k] for k in SCHEMA}
    row = logged.filter(pl.col("request_id") == "t0").row(0, named=True)
    assert pl.Series([row["inputs_json"]]).str.json_decode().to_list()[0] == inputs
    assert pl.Series([row["features_json"]]).str.json_decode().to_list()[0] == {"risk": RISK["c0"]}


def test_without_an_id_column_the_log_numbers_rows_of_the_run(tmp_path: Path) -> None:
    requests(3).write_parquet(tmp_path / "in.parquet")
    log = PredictionLog(tmp_path / "log", model="fraud")

    score_batch(served(), tmp_path / "in.parquet", tmp_path / "out.parquet", log=log)
    log.close()

    ids = read_log(tmp_path / "log").collect()["request_id"].to_list()
    run = ids[0].split("-")[1]
    assert ids == [f"batch-{run}-0", f"batch-{run}-1", f"batch-{run}-2"]


def test_batch_scores_equal_the_http_api_for_the_same_rows(tmp_path: Path) -> None:
    from shipyard.serving.app import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    frame = requests(40)
    frame.write_parquet(tmp_path / "in.parquet")
    model = served()
    score_batch(model, tmp_path / "in.parquet", tmp_path / "out.parquet", chunk_rows=7)
    out = pl.read_parquet(tmp_path / "out.parquet")

    body = frame.select(list(SCHEMA)).to_dicts()
    with TestClient(create_app(model)) as client:
        response = client.post("/predict", json=body)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [p["score"] for p in predictions] == out["score"].to_list()
    assert [p["decision"] for p in predictions] == out["decision"].to_list()


def test_reading_parquet_holds_about_one_chunk_not_the_whole_file(tmp_path: Path) -> None:
    import pyarrow as pa

    from shipyard.serving._batch_input import chunks, input_files

    rng = np.random.default_rng(0)
    table = pl.DataFrame({f"x{i}": rng.random(800_000) for i in range(4)})
    table.write_parquet(tmp_path / "big.parquet", row_group_size=20_000)  # 25 MB, 40 groups
    [file] = input_files(tmp_path / "big.parquet")
    before = pa.total_allocated_bytes()
    peak = 0
    for chunk in chunks(file, ["x0", "x1", "x2", "x3"], frozenset(), 20_000):
        assert chunk.frame.height == 20_000
        peak = max(peak, pa.total_allocated_bytes() - before)
    assert peak < 5 * 20_000 * 4 * 8  # a few chunks' worth (640 kB each), not 25 MB


def test_a_failed_run_stops_its_reader_thread(tmp_path: Path) -> None:
    import threading

    frame = requests(50).with_columns(pl.col("items").cast(pl.Float64))
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 12).then(0.5).otherwise(pl.col("items")).alias("items")
    )
    frame.write_parquet(tmp_path / "in.parquet", row_group_size=5)

    with pytest.raises(DataInputError, match=r"column 'items', row 12 .*got 0\.5"):
        score_batch(served(), tmp_path / "in.parquet", tmp_path / "out.parquet", chunk_rows=5)

    readers = [t for t in threading.enumerate() if t.name == "batch-scoring-reader"]
    assert readers == []
