"""The compiled tree scorer: the same probabilities as scikit-learn's ``predict_proba`` (NaN,
unknown and null categories, values at thresholds), ``None`` for every model it does not
support exactly."""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from shipyard.serving import _trees
from shipyard.serving._trees import MAX_ROWS, compile_scorer

CATEGORICAL = ["merchant_category", "currency", "country", "device", "channel"]
NUMERIC = ["amount", "count_24h", "rate_30d", "hour", "is_weekend", "account_age_days"]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """scikit-learn's OpenMP threads spin-wait: on a busy 2-core machine a fit takes 7x longer."""
    with threadpool_limits(1):
        yield


def fraud_like(rows: int, seed: int, *, nulls: bool = True) -> pl.DataFrame:
    """Five string categories (with nulls) and six numeric columns (with NaN and nulls)."""
    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {}
    for i, name in enumerate(CATEGORICAL):
        levels: list[str | None] = [f"{name}-{k}" for k in range(3 + 4 * i)]
        columns[name] = rng.choice(np.array(levels + [None] * nulls, dtype=object), rows).tolist()
    for name in NUMERIC:
        values = np.round(rng.gamma(2.0, 10.0, rows), 1)
        if nulls:
            values[rng.random(rows) < 0.1] = np.nan
        columns[name] = values
    frame = pl.DataFrame(columns).with_columns(
        pl.col("hour").fill_nan(None).cast(pl.Int64) % 24,  # an integer column with nulls
        (pl.col("is_weekend") > 20).alias("is_weekend"),  # a boolean column with nulls
    )
    return frame


def label(frame: pl.DataFrame, seed: int) -> np.ndarray[Any, Any]:
    rng = np.random.default_rng(seed)
    signal = (
        frame["amount"].fill_nan(None).fill_null(0).to_numpy() / 20
        + (frame["device"] == "device-5").fill_null(value=True).to_numpy()
        - (frame["country"].is_null()).to_numpy()
    )
    return (rng.random(frame.height) < 1 / (1 + np.exp(2 - signal))).astype(int)


def fraud_pipeline(**encoder: Any) -> Any:
    """The fraud demo's model: categories ordinal-encoded, then categorical-aware trees."""
    settings_ = {
        "handle_unknown": "use_encoded_value",
        "unknown_value": -1,
        "encoded_missing_value": -2,
    }
    encode = ColumnTransformer(
        [("categories", OrdinalEncoder(**(settings_ | encoder)), CATEGORICAL)],
        remainder="passthrough",
    )
    classifier = HistGradientBoostingClassifier(
        max_iter=60, categorical_features=list(range(len(CATEGORICAL))), random_state=0
    )
    return make_pipeline(encode, classifier)


@functools.cache
def fitted_fraud() -> Any:
    frame = fraud_like(3000, seed=1)
    return fraud_pipeline().fit(frame, label(frame, seed=2))


@contextlib.contextmanager
def compiled_only(model: Any) -> Iterator[None]:
    """Fail if the scorer hands a frame to the model instead of scoring it itself."""

    def refuse(frame: Any) -> None:
        raise AssertionError(f"the scorer fell back to predict_proba for {len(frame)} rows")

    model.predict_proba = refuse
    try:
        yield
    finally:
        del model.predict_proba


def assert_same(model: Any, scorer: Any, frame: pl.DataFrame) -> None:
    """Every chunk of up to MAX_ROWS rows, and every row alone, scores as scikit-learn."""
    expected = model.predict_proba(frame)[:, 1]
    with compiled_only(model):
        chunks = [scorer(frame.slice(s, MAX_ROWS)) for s in range(0, frame.height, MAX_ROWS)]
        alone = [scorer(frame.slice(row, 1))[0] for row in range(frame.height)]
    np.testing.assert_allclose(np.concatenate(chunks), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(alone, expected, rtol=0, atol=1e-12)


def unseen_rows(rows: int, seed: int) -> pl.DataFrame:
    """Rows of new data with unknown categories mixed in."""
    frame = fraud_like(rows, seed)
    rng = np.random.default_rng(seed)
    unknown = pl.Series(rng.choice(["never-seen", None, "x"], rows).tolist())
    return frame.with_columns(
        pl.when(pl.Series(rng.random(rows) < 0.2)).then(unknown).otherwise(pl.col(c)).alias(c)
        for c in CATEGORICAL
    )


def test_the_fraud_pipeline_scores_as_sklearn_on_new_rows_with_unknown_categories() -> None:
    model = fitted_fraud()
    scorer = compile_scorer(model, CATEGORICAL + NUMERIC)
    assert scorer is not None
    assert_same(model, scorer, unseen_rows(300, seed=3))


def test_scores_are_bit_for_bit_sklearns_because_the_trees_are_added_in_order() -> None:
    model = fitted_fraud()
    scorer = compile_scorer(model, CATEGORICAL + NUMERIC)
    assert scorer is not None
    frame = unseen_rows(MAX_ROWS, seed=4)
    expected = model.predict_proba(frame)[:, 1].tolist()
    with compiled_only(model):
        assert scorer(frame).tolist() == expected
        assert [scorer(frame.slice(row, 1))[0] for row in range(MAX_ROWS)] == expected


@st.composite
def edge_rows(draw: st.DrawFn, model: Any) -> pl.DataFrame:
    """1..MAX_ROWS rows at thresholds (and one float either side), NaN, null, +-inf, and
    categories known, unknown or null."""
    classifier = model[-1]
    encoder = model[0].named_transformers_["categories"]
    cuts = sorted(
        {float(t) for p in classifier._predictors for t in p[0].nodes["num_threshold"]}
        - {0.0, math.inf}
    )
    near = st.sampled_from(cuts).flatmap(
        lambda t: st.sampled_from([t, math.nextafter(t, -math.inf), math.nextafter(t, math.inf)])
    )
    number = st.one_of(near, st.just(math.nan), st.none(), st.floats(allow_nan=False))
    rows = draw(st.integers(1, MAX_ROWS))
    columns: dict[str, pl.Series] = {}
    for name, known in zip(CATEGORICAL, encoder.categories_, strict=True):
        category = st.one_of(st.sampled_from(list(known)), st.sampled_from(["unknown", None]))
        drawn = draw(st.lists(category, min_size=rows, max_size=rows))
        columns[name] = pl.Series(name, drawn, dtype=pl.String)  # typed, as a request is
    for name in NUMERIC:
        values = draw(st.lists(number, min_size=rows, max_size=rows))
        columns[name] = pl.Series(name, values, dtype=pl.Float64)
    return pl.DataFrame(columns)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_rows_at_the_edges_score_as_sklearn(data: st.DataObject) -> None:
    model = fitted_fraud()
    scorer = compile_scorer_cached()
    frame = data.draw(edge_rows(model))
    expected = model.predict_proba(frame)[:, 1]
    with compiled_only(model):
        np.testing.assert_allclose(scorer(frame), expected, rtol=0, atol=1e-12)


def test_an_untyped_all_null_column_is_left_to_sklearn_which_reads_it_as_nan() -> None:
    model = fitted_fraud()
    frame = unseen_rows(1, seed=3).with_columns(pl.lit(None).alias(CATEGORICAL[2]))
    assert frame.schema[CATEGORICAL[2]] == pl.Null
    expected = model.predict_proba(frame)[:, 1]
    np.testing.assert_allclose(compile_scorer_cached()(frame), expected, rtol=0, atol=1e-12)


@functools.cache
def compile_scorer_cached() -> Any:
    scorer = compile_scorer(fitted_fraud(), CATEGORICAL + NUMERIC)
    assert scorer is not None
    return scorer


@pytest.mark.parametrize(
    ("max_depth", "max_leaf_nodes", "nan_in_training"),
    [(None, 31, True), (2, 31, False), (6, 63, True), (None, 3, False), (None, 100, True)],
)
def test_numeric_trees_fitted_on_an_array_score_as_sklearn(
    max_depth: int | None, max_leaf_nodes: int, nan_in_training: bool
) -> None:
    rng = np.random.default_rng(5)
    matrix = np.round(rng.normal(size=(1000, 5)), 2)
    target = (matrix[:, 0] + matrix[:, 1] * matrix[:, 2] > 0).astype(int)
    if nan_in_training:
        matrix[rng.random(matrix.shape) < 0.1] = np.nan
    model = HistGradientBoostingClassifier(
        max_iter=20, max_depth=max_depth, max_leaf_nodes=max_leaf_nodes, random_state=0
    ).fit(matrix, target)
    names = [f"x{i}" for i in range(5)]
    scorer = compile_scorer(model, names)
    assert scorer is not None
    new = np.round(rng.normal(size=(200, 5)), 2)
    new[rng.random(new.shape) < 0.2] = np.nan
    frame = pl.DataFrame(new, schema=names)
    expected = model.predict_proba(new)[:, 1]
    with compiled_only(model):
        first = scorer(frame.head(MAX_ROWS))
        alone = [scorer(frame.slice(row, 1))[0] for row in range(frame.height)]
    np.testing.assert_allclose(first, expected[:MAX_ROWS], rtol=0, atol=1e-12)
    np.testing.assert_allclose(alone, expected, rtol=0, atol=1e-12)


def test_a_bare_classifier_with_its_own_string_categories_scores_as_sklearn() -> None:
    frame = fraud_like(2000, seed=6)
    model = HistGradientBoostingClassifier(
        max_iter=40, categorical_features=CATEGORICAL, random_state=0
    ).fit(frame, label(frame, seed=7))
    scorer = compile_scorer(model, frame.columns)
    assert scorer is not None
    assert_same(model, scorer, unseen_rows(150, seed=8))


@pytest.mark.parametrize(
    "encoder",
    [
        {"handle_unknown": "use_encoded_value", "unknown_value": np.nan},
        {"unknown_value": 99, "encoded_missing_value": 98},
        {"unknown_value": -5, "encoded_missing_value": -2, "dtype": np.int32},
        {"handle_unknown": "use_encoded_value", "unknown_value": -1, "dtype": np.float32},
    ],
)
def test_every_ordinal_encoder_setting_scores_as_sklearn(encoder: dict[str, Any]) -> None:
    frame = fraud_like(2000, seed=9)
    model = fraud_pipeline(**encoder).fit(frame, label(frame, seed=10))
    scorer = compile_scorer(model, frame.columns)
    assert scorer is not None
    assert_same(model, scorer, unseen_rows(100, seed=11))


def test_categories_used_as_numbers_and_a_dropped_remainder_score_as_sklearn() -> None:
    frame = fraud_like(2000, seed=12)
    encode = ColumnTransformer(
        [
            ("numbers", "passthrough", ["amount", "hour"]),
            (
                "codes",
                OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
                [
                    "device",
                    "country",
                ],
            ),
        ],
        remainder="drop",
    )
    model = make_pipeline(encode, HistGradientBoostingClassifier(max_iter=30, random_state=0))
    model.fit(frame, label(frame, seed=13))
    scorer = compile_scorer(model, frame.columns)
    assert scorer is not None
    assert_same(model, scorer, unseen_rows(100, seed=14))


def test_an_unknown_category_the_encoder_rejects_raises_sklearns_error() -> None:
    frame = fraud_like(2000, seed=15, nulls=False)
    model = fraud_pipeline(handle_unknown="error", unknown_value=None, encoded_missing_value=np.nan)
    model.fit(frame, label(frame, seed=16))
    scorer = compile_scorer(model, frame.columns)
    assert scorer is not None
    assert_same(model, scorer, fraud_like(50, seed=17, nulls=False))
    unknown = frame.head(1).with_columns(pl.lit("never-seen").alias("device"))
    with pytest.raises(ValueError, match="Found unknown categories"):
        scorer(unknown)


def test_columns_are_found_by_name_in_any_order_among_others() -> None:
    model = fitted_fraud()
    scorer = compile_scorer_cached()
    frame = unseen_rows(10, seed=18)
    shuffled = frame.select(reversed(frame.columns)).with_columns(pl.lit("x").alias("request_id"))
    expected = model.predict_proba(frame)[:, 1]
    with compiled_only(model):
        np.testing.assert_allclose(scorer(shuffled), expected, rtol=0, atol=1e-12)
        np.testing.assert_allclose(scorer(shuffled.head(1)), expected[:1], rtol=0, atol=1e-12)


def test_frames_larger_than_max_rows_and_strange_values_go_to_the_model_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = fitted_fraud()
    scorer = compile_scorer_cached()
    calls: list[int] = []
    predict = model.predict_proba
    monkeypatch.setattr(model, "predict_proba", lambda x: calls.append(len(x)) or predict(x))
    big = unseen_rows(MAX_ROWS + 1, seed=19)
    np.testing.assert_allclose(scorer(big), predict(big)[:, 1], rtol=0, atol=1e-12)
    assert calls == [MAX_ROWS + 1]
    as_categorical = big.head(2).with_columns(pl.col("currency").cast(pl.Categorical))
    scorer(as_categorical)
    assert calls == [MAX_ROWS + 1]  # categorical dtype: still strings, still compiled
    odd = big.head(2).with_columns(pl.lit(3).alias("currency"))  # a number among strings
    np.testing.assert_allclose(scorer(odd), predict(odd)[:, 1], rtol=0, atol=1e-12)
    assert calls == [MAX_ROWS + 1, 2]


def test_a_scorer_that_disagrees_with_sklearn_is_never_returned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    score = _trees._Forest.score
    monkeypatch.setattr(
        _trees._Forest, "score", lambda self, n, c: score(self, n, c) + 1e-11 * (n[:, 0] > 30)
    )
    assert compile_scorer(fitted_fraud(), CATEGORICAL + NUMERIC) is None


def test_the_check_rows_a_caller_passes_are_verified_too(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = unseen_rows(20, seed=20)
    assert compile_scorer(fitted_fraud(), CATEGORICAL + NUMERIC, check=frame) is not None
    monkeypatch.setattr(_trees, "check_frame", lambda *args: frame.head(1))
    wrong = frame.with_columns(pl.lit(None, dtype=pl.Float64).alias("amount"))
    score = _trees._Forest.score
    monkeypatch.setattr(
        _trees._Forest, "score", lambda self, n, c: score(self, n, c) + np.isnan(n[:, 0])
    )
    assert compile_scorer(fitted_fraud(), CATEGORICAL + NUMERIC, check=wrong) is None


def test_models_it_cannot_score_exactly_get_none() -> None:
    frame = fraud_like(600, seed=21)
    numbers = frame.select("amount", "count_24h").fill_nan(0).fill_null(0)
    binary = label(frame, seed=22)
    three = frame["hour"].fill_null(0).to_numpy() % 3
    onehot = ColumnTransformer(
        [("c", OneHotEncoder(sparse_output=False), ["device"])], remainder="drop"
    )
    on_numbers = [
        HistGradientBoostingClassifier(max_iter=5).fit(numbers, three),  # three classes
        HistGradientBoostingRegressor(max_iter=5).fit(numbers, binary),
        LogisticRegression().fit(numbers, binary),
        make_pipeline(StandardScaler(), HistGradientBoostingClassifier(max_iter=5)).fit(
            numbers, binary
        ),
        HistGradientBoostingClassifier(),  # not fitted
    ]
    on_frame = [
        make_pipeline(onehot, HistGradientBoostingClassifier(max_iter=5)).fit(frame, binary),
        fraud_pipeline(min_frequency=50).fit(frame, binary),  # infrequent categories grouped
    ]
    assert [compile_scorer(m, numbers.columns) for m in on_numbers] == [None] * 5
    renamed = HistGradientBoostingClassifier(max_iter=5).fit(numbers, binary)
    del renamed._bin_mapper  # as a scikit-learn release might rename its private attributes
    assert compile_scorer(renamed, numbers.columns) is None
    assert [compile_scorer(m, frame.columns) for m in on_frame] == [None] * 2
