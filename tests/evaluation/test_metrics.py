"""Metrics of shipyard.evaluation.metrics, cross-checked against scikit-learn and Fairlearn."""

from __future__ import annotations

import functools
import json
import math

import numpy as np
import pandas as pd
import polars as pl
import pytest
from fairlearn.metrics import (
    MetricFrame,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from shipyard.errors import EvaluationError
from shipyard.evaluation.metrics import (
    GROUP_METRICS,
    NULL_GROUP,
    by_group,
    calibration,
    check_inputs,
    expected_calibration_error,
    overall,
)

RATIOS = ("accuracy", "precision", "recall", "f1", "selection_rate", "tpr", "fpr", "tnr")


def noisy_model(n: int, seed: int, positives: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores of a noisy model; scores rounded to 2 decimals, so many are tied."""
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < positives
    logits = rng.normal(0, 1, n) + 1.5 * labels
    return labels.astype(int), np.round(1 / (1 + np.exp(-logits)), 2)


def three_groupings(n: int, seed: int) -> dict[str, np.ndarray]:
    """A slice (ints), a country and an age group (strings) per row."""
    rng = np.random.default_rng(seed)
    return {
        "slice": rng.integers(0, 10, n),
        "country": np.array(["DE", "FR", "NL", "BE"])[rng.integers(0, 4, n)],
        "age": np.array(["18-25", "26-40", "41-65", "65+"])[rng.integers(0, 4, n)],
    }


# --------------------------------------------------------------------------- overall


@pytest.mark.parametrize("threshold", [0.0, 0.25, 0.5, 0.71, 0.99])
def test_overall_equals_scikit_learn(threshold: float) -> None:
    y, s = noisy_model(3000, seed=1)
    got = overall(y, s, threshold)
    pred = (s >= threshold).astype(int)
    tn, fp, fn, tp = skm.confusion_matrix(y, pred, labels=[0, 1]).ravel()
    assert got["confusion"] == {"tp": tp, "fp": fp, "fn": fn, "tn": tn}
    expected = {
        "roc_auc": skm.roc_auc_score(y, s),
        "average_precision": skm.average_precision_score(y, s),
        "log_loss": skm.log_loss(y, s),
        "brier": skm.brier_score_loss(y, s),
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, zero_division=np.nan),
        "recall": skm.recall_score(y, pred),
        "f1": skm.f1_score(y, pred),
        "selection_rate": pred.mean(),
        "tpr": tp / (tp + fn),
        "fpr": fp / (fp + tn),
        "tnr": tn / (tn + fp),
    }
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-12, abs=1e-15), name
    assert (got["count"], got["positives"]) == (3000, int(y.sum()))
    assert got["tpr"] == got["recall"]


def test_overall_has_exactly_the_documented_names() -> None:
    y, s = noisy_model(200, seed=2)
    assert set(overall(y, s, 0.5)) == {
        "roc_auc", "average_precision", "log_loss", "brier", "accuracy", "precision",
        "recall", "f1", "selection_rate", "tpr", "fpr", "tnr", "count", "positives",
        "confusion",
    }  # fmt: skip


def test_nobody_flagged_gives_precision_none_and_valid_json() -> None:
    y, s = noisy_model(200, seed=3)
    got = overall(y, s, threshold=1.5)
    assert got["precision"] is None
    assert got["selection_rate"] == 0.0 and got["recall"] == 0.0 and got["f1"] == 0.0
    assert got["confusion"] == {"tp": 0, "fp": 0, "fn": int(y.sum()), "tn": int(200 - y.sum())}
    json.dumps(got, allow_nan=False)


def test_counts_are_python_ints() -> None:
    y, s = noisy_model(50, seed=4)
    got = overall(y, s, 0.5)
    assert all(type(v) is int for v in got["confusion"].values())
    assert type(got["count"]) is int and type(got["positives"]) is int


def test_log_loss_clips_scores_of_exactly_zero_and_one() -> None:
    got = overall([0, 1, 1, 0], [0.0, 1.0, 0.0, 1.0], threshold=0.5)
    # Scores clipped to [1e-15, 1 - 1e-15]; in float64, 1 - (1 - 1e-15) is 9.992e-16.
    wrong = [1e-15, 1 - (1 - 1e-15)]
    right = [1 - 1e-15, 1 - 1e-15]
    expected = -sum(math.log(p) for p in [*wrong, *right]) / 4
    assert got["log_loss"] == pytest.approx(expected, rel=1e-15)
    assert got["brier"] == 0.5


def test_bool_labels_and_scores_outside_zero_one_rank_as_given() -> None:
    got = overall(np.array([False, True, True, False]), [-3.0, 7.5, 2.0, 2.0], threshold=2.0)
    assert got["roc_auc"] == skm.roc_auc_score([0, 1, 1, 0], [-3.0, 7.5, 2.0, 2.0]) == 0.875
    assert got["confusion"] == {"tp": 2, "fp": 1, "fn": 0, "tn": 1}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.sampled_from([0.0, 0.1, 0.5, 0.5, 0.9, 1.0])),
        min_size=2,
        max_size=30,
    ).filter(lambda rows: len({label for label, _ in rows}) == 2)
)
def test_ranking_metrics_equal_scikit_learn_with_ties(rows: list[tuple[bool, float]]) -> None:
    y = np.array([label for label, _ in rows], dtype=int)
    s = np.array([score for _, score in rows])
    got = overall(y, s, 0.5)
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, s), rel=1e-12)
    assert got["average_precision"] == pytest.approx(skm.average_precision_score(y, s), rel=1e-12)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([0, 0, 0], "only class 0 present (3 rows); AUC, recall and the threshold search need "
         "both classes; evaluate on data with positives"),
        ([1, 1], "only class 1 present (2 rows); AUC, recall and the threshold search need "
         "both classes; evaluate on data with negatives"),
    ],
)  # fmt: skip
def test_single_class_is_refused(labels: list[int], message: str) -> None:
    with pytest.raises(EvaluationError) as info:
        check_inputs(labels, [0.5] * len(labels))
    assert str(info.value) == message


def test_nan_and_inf_scores_are_counted_with_the_first_index() -> None:
    with pytest.raises(EvaluationError) as info:
        check_inputs([0, 1, 0, 1, 0], [0.1, 0.2, np.inf, np.nan, np.nan])
    assert str(info.value) == (
        "scores must be finite numbers; 3 of 5 are NaN or infinite, the first at index 2 "
        "(inf). Drop or fill those rows before evaluating."
    )


def test_non_binary_labels_name_the_values_found() -> None:
    with pytest.raises(EvaluationError) as info:
        check_inputs([0, 1, 2, -1, 2], [0.5] * 5)
    assert str(info.value) == (
        "y_true must hold the labels 0 and 1 (bool or int); found [2, -1] in 3 of 5 rows. "
        "Map the labels to 0/1 first, e.g. y_true == 'fraud'."
    )


def test_string_labels_are_refused() -> None:
    with pytest.raises(EvaluationError, match=r"found \['fraud', 'ok'\] in 3 of 3 rows"):
        check_inputs(["fraud", "ok", "ok"], [0.5] * 3)


def test_nan_labels_are_refused() -> None:
    with pytest.raises(EvaluationError, match=r"found \[nan\] in 1 of 3 rows"):
        check_inputs([0.0, 1.0, np.nan], [0.5] * 3)


def test_float_labels_of_zero_and_one_are_accepted() -> None:
    labels, scores = check_inputs([0.0, 1.0, 1.0], [1, 0, 1])
    assert labels.tolist() == [False, True, True] and scores.dtype == np.float64


def test_length_mismatch_is_refused() -> None:
    with pytest.raises(EvaluationError) as info:
        check_inputs([0, 1, 0], [0.5, 0.5])
    assert str(info.value) == (
        "y_true has 3 rows but scores has 2; pass exactly one score per label."
    )


def test_empty_input_is_refused() -> None:
    with pytest.raises(EvaluationError) as info:
        check_inputs([], [])
    assert str(info.value) == (
        "y_true is empty; expected labels 0/1 for at least one row. Evaluate on data with rows."
    )


def test_non_numeric_scores_are_refused() -> None:
    with pytest.raises(EvaluationError, match=r"^scores must be numbers, one per row; got "):
        check_inputs([0, 1], ["high", "low"])


def test_two_dimensional_scores_are_refused() -> None:
    with pytest.raises(
        EvaluationError,
        match=r"^scores must be one-dimensional, one value per row; got shape \(2, 2\)\.",
    ):
        check_inputs([0, 1], [[0.1, 0.9], [0.8, 0.2]])


# --------------------------------------------------------------------------- by group


@pytest.fixture(scope="module")
def grouped() -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Labels, predictions and 3 groupings; nobody in country NL is flagged (precision 0/0)."""
    y, s = noisy_model(6000, seed=5)
    groups = three_groupings(6000, seed=6)
    pred = (s >= 0.6) & (groups["country"] != "NL")
    return y, pred, groups


def fairlearn_frame(y: np.ndarray, pred: np.ndarray, values: np.ndarray) -> MetricFrame:
    return MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "tpr": true_positive_rate,
            "fpr": false_positive_rate,
            "precision": functools.partial(skm.precision_score, zero_division=np.nan),
            "accuracy": skm.accuracy_score,
        },
        y_true=y,
        y_pred=pred.astype(int),
        sensitive_features=pd.Series(values, name="group"),
    )


def as_float(value: float | None) -> float:
    return math.nan if value is None else value


@pytest.mark.parametrize("grouping", ["slice", "country", "age"])
def test_group_metrics_equal_fairlearn_metric_frame(grouped, grouping: str) -> None:
    y, pred, groups = grouped
    table = by_group(y, pred, groups)[grouping]
    frame = fairlearn_frame(y, pred, groups[grouping])
    expected = frame.by_group
    assert list(table.rows) == [str(value) for value in expected.index]
    for value, row in expected.iterrows():
        got = table.rows[str(value)]
        for metric in GROUP_METRICS:
            assert as_float(got[metric]) == pytest.approx(row[metric], nan_ok=True, rel=1e-12)
        selected = groups[grouping] == value
        assert (got["count"], got["positives"]) == (selected.sum(), y[selected].sum())
    for metric in GROUP_METRICS:
        difference = frame.difference(method="between_groups")[metric]
        ratio = frame.ratio(method="between_groups")[metric]
        assert as_float(table.difference(metric)) == pytest.approx(difference, nan_ok=True)
        assert as_float(table.ratio(metric)) == pytest.approx(ratio, nan_ok=True)


def test_a_group_nobody_flagged_has_precision_none(grouped) -> None:
    y, pred, groups = grouped
    row = by_group(y, pred, groups)["country"].rows["NL"]
    assert row["precision"] is None and row["selection_rate"] == 0.0


def test_null_group_values_form_the_null_group() -> None:
    labels = [1, 0, 1, 0, 1, 0]
    flagged = [True, True, False, False, True, False]
    groups = {
        "country": np.array(["DE", None, "DE", math.nan, "FR", None], dtype=object),
        "age": np.array([30.0, np.nan, 30.0, 41.0, np.nan, 41.0]),
    }
    tables = by_group(labels, flagged, groups)
    assert list(tables["country"].rows) == ["DE", "FR", NULL_GROUP]
    assert tables["country"].rows[NULL_GROUP] == {
        "count": 3, "positives": 0, "selection_rate": 1 / 3, "tpr": None, "fpr": 1 / 3,
        "precision": 0.0, "accuracy": 2 / 3,
    }  # fmt: skip
    assert list(tables["age"].rows) == ["30", "41", NULL_GROUP]
    assert tables["age"].rows[NULL_GROUP]["count"] == 2


def test_an_expected_group_without_rows_is_reported_empty() -> None:
    tables = by_group(
        [1, 0, 1, 0],
        [True, False, False, False],
        {"country": ["DE", "DE", "FR", "FR"]},
        expected_groups={"country": ["DE", "FR", "NL"]},
    )
    table = tables["country"]
    assert table.rows["NL"] == {
        "count": 0, "positives": 0, "selection_rate": None, "tpr": None, "fpr": None,
        "precision": None, "accuracy": None,
    }  # fmt: skip
    assert table.difference("selection_rate") == 0.5
    assert table.ratio("selection_rate") == 0.0


def test_ratio_of_zero_to_zero_is_none() -> None:
    table = by_group([1, 0, 1, 0], [False] * 4, {"g": ["a", "a", "b", "b"]})["g"]
    assert table.ratio("selection_rate") is None
    assert table.difference("selection_rate") == 0.0
    assert table.difference("precision") is None


def test_to_dict_is_a_json_copy_of_the_rows() -> None:
    table = by_group([1, 0, 1, 0], [True, False, True, True], {"g": [1, 1, 2, 2]})["g"]
    found = table.to_dict()
    assert found == table.rows and found["1"] is not table.rows["1"]
    assert found["1"]["accuracy"] == 1.0 and found["2"]["accuracy"] == 0.5
    assert table.difference("selection_rate") == 0.5 and table.ratio("selection_rate") == 0.5
    json.dumps(found, allow_nan=False)


def test_polars_columns_with_nulls_keep_their_names() -> None:
    labels, flagged = [1, 0, 1, 0], [True, False, True, False]
    groups = {
        "country": pl.Series(["DE", None, "FR", "DE"]).to_numpy(),
        "segment": pl.Series([3, None, 12, 3]).to_numpy(),  # arrives as floats
        "kind": pl.Series(["a", "b", None, "a"], dtype=pl.Categorical).to_numpy(),
    }
    tables = by_group(labels, flagged, groups)
    assert list(tables["country"].rows) == ["DE", "FR", NULL_GROUP]
    assert list(tables["segment"].rows) == ["3", "12", NULL_GROUP]
    assert list(tables["kind"].rows) == ["a", "b", NULL_GROUP]
    assert tables["segment"].rows["3"]["count"] == 2


def test_unknown_group_metric_names_the_known_ones() -> None:
    table = by_group([1, 0], [True, False], {"g": ["a", "b"]})["g"]
    with pytest.raises(EvaluationError, match=r"unknown group metric 'recall'; expected one of"):
        table.difference("recall")


def test_group_values_of_another_length_are_refused() -> None:
    with pytest.raises(EvaluationError) as info:
        by_group([1, 0, 1], [True, False, True], {"country": ["DE", "FR"]})
    assert str(info.value) == (
        "grouping 'country' has 2 values but y_true has 3 rows; pass one group value per row."
    )


def test_expected_groups_of_an_unknown_grouping_are_refused() -> None:
    with pytest.raises(EvaluationError, match=r"expected_groups names \['age'\], which are not"):
        by_group([1, 0], [True, False], {"country": ["DE", "FR"]}, expected_groups={"age": [1]})


def test_non_binary_predictions_are_refused() -> None:
    with pytest.raises(EvaluationError, match=r"^y_pred must hold the labels 0 and 1"):
        by_group([1, 0], [0.3, 0.9], {"g": ["a", "b"]})


# --------------------------------------------------------------------------- calibration


def test_calibration_equals_scikit_learn_and_reports_empty_bins() -> None:
    y, s = noisy_model(2000, seed=7)
    s = np.where((s > 0.1) & (s <= 0.2), 0.05, s)  # bin (0.1, 0.2] becomes empty
    bins = calibration(y, s, bins=10)
    fraction, mean_score = calibration_curve(y, s, n_bins=10)
    filled = [b for b in bins if b["count"]]
    assert [b["fraction_positive"] for b in filled] == pytest.approx(fraction, rel=1e-12)
    assert [b["mean_score"] for b in filled] == pytest.approx(mean_score, rel=1e-12)
    assert bins[1] == {
        "lower": 0.1, "upper": 0.2, "count": 0, "mean_score": None, "fraction_positive": None,
    }  # fmt: skip
    assert sum(b["count"] for b in bins) == 2000
    ece = sum(b["count"] / 2000 * abs(b["fraction_positive"] - b["mean_score"]) for b in filled)
    assert expected_calibration_error(y, s, bins=10) == pytest.approx(ece, rel=1e-12)


def test_calibration_puts_edges_in_the_lower_bin_and_zero_in_the_first() -> None:
    bins = calibration([0, 1, 0, 1], [0.0, 0.5, 0.5, 1.0], bins=2)
    assert [(b["lower"], b["upper"], b["count"]) for b in bins] == [(0.0, 0.5, 3), (0.5, 1.0, 1)]


def test_calibration_refuses_scores_outside_zero_one() -> None:
    with pytest.raises(EvaluationError) as info:
        calibration([0, 1], [-0.5, 2.0])
    assert str(info.value) == (
        "calibration bins cover [0, 1], but the scores range from -0.5 to 2.0; pass "
        "probabilities, e.g. predict_proba(X)[:, 1]."
    )
