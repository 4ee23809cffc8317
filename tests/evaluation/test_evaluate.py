"""``evaluate``: a model scored against the objectives, the threshold tuned on validation only."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from sklearn.linear_model import LogisticRegression

from shipyard.errors import EvaluationError
from shipyard.evaluation.evaluate import evaluate
from shipyard.evaluation.gate import run_gate
from shipyard.evaluation.objectives import Objectives
from shipyard.evaluation.threshold import OutcomeValues, best_threshold

OBJECTIVES = Objectives.from_table(
    {
        "task": "binary",
        "values": {"false_negative": "-(amount + 15)", "false_positive": -5.0},
        "thresholds": [{"metric": "recall", "lower": 0.1}, {"metric": "roc_auc", "lower": 0.6}],
        "slices": [
            {"name": "large", "where": "amount >= 100"},
            {"name": "none", "where": "amount < 0"},
        ],
        "fairness": {
            "sensitive": ["country"],
            "limits": [{"metric": "selection_rate", "max_difference": 1.0}],
        },
    }
)


def data(rows: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    fraud = (rng.random(rows) < 1 / (1 + np.exp(-(2 * x - 3)))).astype(np.int8)
    return pl.DataFrame(
        {
            "x": x,
            "amount": rng.gamma(2.0, 50.0, rows).round(2),
            "country": rng.choice(["DE", "FR", "PL"], rows),
            "label": fraud,
        }
    )


@pytest.fixture(scope="module")
def model() -> LogisticRegression:
    train = data(4000, 1)
    return LogisticRegression().fit(train.select("x").to_numpy(), train["label"].to_numpy())


class Model:
    """The fitted model behind predict_proba on a Polars frame, as pipelines pass it."""

    def __init__(self, fitted: LogisticRegression) -> None:
        self.fitted = fitted

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray:
        return self.fitted.predict_proba(frame.to_numpy())


def test_the_threshold_is_tuned_on_validation_and_reported_on_test(model) -> None:
    validation, test = data(3000, 2), data(3000, 3)
    result = evaluate(
        Model(model), test, OBJECTIVES, features=["x"], label="label", validation=validation
    )
    scores = model.predict_proba(validation.select("x").to_numpy())[:, 1]
    values = OBJECTIVES.values_for(validation)
    expected, _ = best_threshold(
        validation["label"].to_numpy(),
        scores,
        OutcomeValues(
            tp=values["true_positive"],
            fp=values["false_positive"],
            fn=values["false_negative"],
            tn=values["true_negative"],
        ),
    )
    assert result.threshold == pytest.approx(expected)
    assert result.rows == {"validation": 3000, "test": 3000}
    overall = result.metrics["overall"]
    assert overall["count"] == 3000
    assert overall["value_per_1000"] >= overall["value_per_1000_at_0_5"] - 200
    assert set(result.metrics["slices"]) == {"large", "none"}
    assert result.metrics["slices"]["none"]["count"] == 0
    assert set(result.metrics["groups"]["country"]["rows"]) == {"DE", "FR", "PL"}
    assert result.metrics["latency_ms"]["p99"] > 0
    json.dumps(result.to_dict())  # JSON-able

    gate = run_gate(OBJECTIVES, result.metrics, None)
    assert gate.passed, gate.summary()


def test_without_validation_the_first_half_tunes_and_the_second_is_judged(model) -> None:
    result = evaluate(Model(model), data(2000, 4), OBJECTIVES, features=["x"], label="label")
    assert result.rows == {"validation": 1000, "test": 1000}


def test_a_missing_sensitive_feature_and_a_missing_input_are_named(model) -> None:
    test = data(500, 5)
    with pytest.raises(EvaluationError, match=r"sensitive feature\(s\) \['country'\]"):
        evaluate(Model(model), test.drop("country"), OBJECTIVES, features=["x"], label="label")
    with pytest.raises(EvaluationError, match=r"lacks the model's input columns \['y'\]"):
        evaluate(Model(model), test, OBJECTIVES, features=["y"], label="label")


def test_a_task_other_than_binary_is_refused_not_misread(model) -> None:
    regression = Objectives.from_table({**OBJECTIVES.to_dict(), "task": "regression"})
    with pytest.raises(EvaluationError, match="binary classifiers only so far"):
        evaluate(Model(model), data(200, 6), regression, features=["x"], label="label")
