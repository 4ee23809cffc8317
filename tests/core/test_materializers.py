"""Materializers: every supported type round-trips; nothing unpickles unless asked."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from shipyard import Materializer, pipeline, register_materializer, step
from shipyard.core import materializers
from shipyard.core.project import Project
from shipyard.errors import MaterializerError


def round_trip(value: Any, tmp_path: Path, annotation: Any = Any, name: str | None = None) -> Any:
    chosen = materializers.choose(value, annotation, name)
    path = tmp_path / "value"
    chosen.save(value, path)
    return chosen.load(path, materializers.qualified_name(type(value)))


def test_polars_frames_round_trip_with_their_schema(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {"id": [1, 2], "when": pl.Series([0, 1]).cast(pl.Datetime("us", "UTC")), "x": [0.5, None]}
    )
    back = round_trip(frame, tmp_path)
    assert back.schema == frame.schema
    assert back.equals(frame)


def test_a_lazy_frame_is_collected_and_comes_back_lazy(tmp_path: Path) -> None:
    lazy = pl.LazyFrame({"a": [1, 2, 3]}).filter(pl.col("a") > 1)
    back = round_trip(lazy, tmp_path)
    assert isinstance(back, pl.LazyFrame)
    assert back.collect()["a"].to_list() == [2, 3]


def test_pandas_frames_keep_their_index(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0]}, index=pd.Index(["x", "y"], name="key"))
    pd.testing.assert_frame_equal(round_trip(frame, tmp_path), frame)


def test_arrow_tables_round_trip(tmp_path: Path) -> None:
    table = pa.table({"a": [1, 2], "b": ["x", None]})
    assert round_trip(table, tmp_path).equals(table)


def test_numpy_arrays_round_trip_without_pickle(tmp_path: Path) -> None:
    array = np.arange(12, dtype=np.int32).reshape(3, 4)
    np.testing.assert_array_equal(round_trip(array, tmp_path), array)
    with pytest.raises(ValueError, match="allow_pickle"):
        round_trip(np.array([{"a": 1}], dtype=object), tmp_path)


@pytest.mark.parametrize(
    "value", [None, True, 3, 2.5, "text", [1, "a"], {"k": [1, 2]}, (1, 2), float("nan")]
)
def test_json_values_round_trip(tmp_path: Path, value: Any) -> None:
    back = round_trip(value, tmp_path)
    if isinstance(value, float) and value != value:
        assert back != back
    else:
        assert back == value and type(back) is type(value)


def test_bytes_round_trip(tmp_path: Path) -> None:
    assert round_trip(b"\x00\x01", tmp_path) == b"\x00\x01"


def test_a_dict_that_is_not_json_names_the_problem(tmp_path: Path) -> None:
    with pytest.raises(MaterializerError, match="not JSON-able"):
        round_trip({"when": object()}, tmp_path)


def test_scikit_learn_models_are_stored_with_skops(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    model = LogisticRegression(C=2.0).fit(x, [0, 0, 1, 1])
    chosen = materializers.choose(model, Any, None)
    assert chosen.name == "skops"
    path = tmp_path / "model"
    preview = chosen.save(model, path)
    assert preview["class"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert preview["params"]["C"] == 2.0
    assert not path.read_bytes().startswith(b"\x80")  # not a pickle stream
    back = chosen.load(path, "")
    np.testing.assert_allclose(back.predict_proba(x), model.predict_proba(x))


class Custom:
    """A type of a user's own, which shipyard does not trust."""

    def __init__(self) -> None:
        self.value = 1


def test_a_model_holding_an_untrusted_type_is_refused_at_save(tmp_path: Path) -> None:
    from sklearn.preprocessing import FunctionTransformer

    model = FunctionTransformer(func=Custom)
    with pytest.raises(MaterializerError, match="does not trust.*trust_types") as caught:
        materializers.choose(model, Any, None).save(model, tmp_path / "model")
    assert "test_materializers.Custom" in str(caught.value)


def test_trusting_a_module_by_name_allows_its_types(tmp_path: Path) -> None:
    from sklearn.preprocessing import FunctionTransformer

    model = FunctionTransformer(func=Custom)
    saved = list(materializers.TRUSTED_MODULE_PREFIXES)
    try:
        materializers.trust_types(f"{__name__}.")
        back = round_trip(model, tmp_path)
        assert back.func is Custom
    finally:
        materializers.TRUSTED_MODULE_PREFIXES[:] = saved


def test_pickle_is_never_chosen_from_a_type(tmp_path: Path) -> None:
    with pytest.raises(
        MaterializerError, match='opt in to pickle with @step\\(materializer="pickle"\\)'
    ):
        materializers.choose(Custom(), Any, None)
    back = round_trip(Custom(), tmp_path, name="pickle")
    assert isinstance(back, Custom)
    assert pickle.loads((tmp_path / "value").read_bytes()).value == 1


@step(materializer="pickle")
def make_custom() -> Custom:
    return Custom()


@step
def read_custom(obj: Custom) -> int:
    return obj.value


@pipeline
def with_pickle():
    return read_custom(make_custom())


def test_a_step_that_names_pickle_gets_it(project: Project) -> None:
    run = with_pickle()
    assert run.output == 1
    assert run.step_runs["make_custom"].outputs["output"].materializer == "pickle"


class Point:
    def __init__(self, x: float, y: float) -> None:
        self.x, self.y = x, y


class PointMaterializer(Materializer):
    name = "tests.point"
    version = "3"
    types = (f"{__name__}.Point",)

    def save(self, value: Any, path: Path) -> dict[str, Any]:
        path.write_text(f"{value.x},{value.y}")
        return {"kind": "point"}

    def load(self, path: Path, type_name: str) -> Any:
        x, y = path.read_text().split(",")
        return Point(float(x), float(y))


def test_a_registered_materializer_is_chosen_for_its_type(tmp_path: Path) -> None:
    register_materializer(PointMaterializer())
    back = round_trip(Point(1.5, 2.0), tmp_path, annotation=Point)
    assert (back.x, back.y) == (1.5, 2.0)


def test_an_unknown_materializer_name_lists_the_known_ones() -> None:
    with pytest.raises(MaterializerError, match="No materializer is named 'parquet'. Known:"):
        materializers.by_name("parquet")


def test_lightgbm_models_and_boosters_are_stored_with_skops(tmp_path: Path) -> None:
    import lightgbm

    rng = np.random.default_rng(0)
    x = rng.random((200, 3))
    y = (x[:, 0] > 0.5).astype(int)
    model = lightgbm.LGBMClassifier(n_estimators=5, verbose=-1).fit(x, y)
    for value in (model, model.booster_):
        assert materializers.choose(value, Any, None).name == "skops"
        back = round_trip(value, tmp_path)
        predict = "predict_proba" if value is model else "predict"
        np.testing.assert_array_equal(getattr(back, predict)(x), getattr(value, predict)(x))
