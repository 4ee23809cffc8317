"""Realised and estimated (CBPE) performance of a monitoring window, against scikit-learn,
direct computations and the evaluation recorded at promotion.

Tolerances of the CBPE checks. Given the scores, a calibrated model's labels are independent
Bernoulli(score) draws, so the realised confusion counts and value scatter around the CBPE
estimate with a standard error (SE) known in closed form: ``sqrt(sum p(1-p))`` over the
flagged rows divided by their number for precision (exact), the delta method for recall
(a ratio of two independent sums) and ``sqrt(sum p(1-p)(v+ - v-)^2)`` for value (exact).
``estimated`` returns these SEs; a test checks them against the spread of realised metrics
over 300 redraws of the labels. The per-window tolerance is ``|estimate - realised| <= 4 SE``
(a miss has probability 6e-5 per comparison, under 0.4% for the 60 comparisons); on the
20 windows of 5,000 rows below, 4 SE is 0.025-0.22 for precision (80 to 4,800 flagged rows),
0.007-0.046 for recall and 560-2,000 per 1,000 decisions for value (amounts are
lognormal, mean ~55). Over the 20 windows the mean error must also be within 4 SE of zero
(no bias). ROC AUC has no closed-form SE given the scores; the tolerance is 4 times the
Hanley-McNeil SE of the realised AUC (0.007-0.013 on these windows; it also counts the
sampling of the scores, so it is conservative); the largest error seen is 0.016.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import polars as pl
import pytest
from sklearn import metrics as sk

from shipyard.errors import MonitoringError
from shipyard.evaluation.evaluate import evaluate
from shipyard.evaluation.objectives import Objectives
from shipyard.monitoring.performance import (
    CALIBRATION_ASSUMPTION,
    against_promotion,
    estimated,
    realised,
)

# The fraud example's [objectives]: values and fairness as in examples/fraud/shipyard.toml.
FRAUD = Objectives.from_table(
    {
        "task": "binary",
        "values": {"false_negative": "-(amount + 15)", "false_positive": -5.0},
        "fairness": {
            "sensitive": ["country"],
            "limits": [
                {"metric": "fpr", "max_difference": 0.25},
                {"metric": "selection_rate", "max_difference": 0.01, "min_ratio": 0.5},
            ],
        },
    }
)
THRESHOLD = 0.4
WINDOWS = 20
ROWS = 5000


def window(rows: int, seed: int, *, a: float = 1.0, b: float = 3.0) -> pl.DataFrame:
    """Calibrated scores ~ Beta(a, b), labels ~ Bernoulli(score), a third of them unknown."""
    rng = np.random.default_rng(seed)
    score = rng.beta(a, b, rows)
    label = (rng.random(rows) < score).astype(np.int8)
    known = rng.random(rows) < 2 / 3
    return pl.DataFrame(
        {
            "score": score,
            "decision": (score >= THRESHOLD).astype(np.int64),
            "label": pl.Series(np.where(known, label, 0), dtype=pl.Int8).set(
                pl.Series(~known), None
            ),
            "amount": rng.lognormal(3.5, 1.0, rows).round(2),
            "country": rng.choice(["DE", "FR", "PL"], rows, p=[0.5, 0.3, 0.2]),
        }
    )


def beta_windows(seed: int = 7) -> list[pl.DataFrame]:
    """20 fully labelled windows of 5,000 rows, mean score from 0.08 to 0.71."""
    rng = np.random.default_rng(seed)
    frames = []
    for index in range(WINDOWS):
        score = rng.beta(0.5 + 0.25 * index, 6.0 - 0.2 * index, ROWS)
        frames.append(
            pl.DataFrame(
                {
                    "score": score,
                    "label": (rng.random(ROWS) < score).astype(np.int8),
                    "amount": rng.lognormal(3.5, 1.0, ROWS),
                }
            )
        )
    return frames


def hanley_mcneil(auc: float, labels: np.ndarray) -> float:
    """The standard error of an AUC (Hanley & McNeil, 1982)."""
    positives = int(labels.sum())
    negatives = labels.size - positives
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    spread = auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)
    return math.sqrt(spread / (positives * negatives))


# --------------------------------------------------------------------------- realised


def test_realised_metrics_equal_scikit_learn_on_the_labelled_rows() -> None:
    frame = window(3000, 1)
    known = frame.filter(pl.col("label").is_not_null())
    y, s = known["label"].to_numpy(), known["score"].to_numpy()
    flagged = s >= THRESHOLD

    result = realised(frame, threshold=THRESHOLD)

    assert result["estimated"] is False
    assert result["rows"] == 3000
    assert result["labelled"] == known.height
    assert result["label_coverage"] == known.height / 3000
    assert result["positives"] == int(y.sum())
    found = result["metrics"]
    assert found["precision"] == pytest.approx(sk.precision_score(y, flagged), abs=1e-12)
    assert found["recall"] == pytest.approx(sk.recall_score(y, flagged), abs=1e-12)
    assert found["f1"] == pytest.approx(sk.f1_score(y, flagged), abs=1e-12)
    assert found["accuracy"] == pytest.approx(sk.accuracy_score(y, flagged), abs=1e-12)
    assert found["roc_auc"] == pytest.approx(sk.roc_auc_score(y, s), abs=1e-12)
    assert found["average_precision"] == pytest.approx(sk.average_precision_score(y, s), abs=1e-12)
    assert found["count"] == known.height
    bins = np.clip(np.ceil(s * 10), 1, 10)  # (0, 0.1] -> 1 ... (0.9, 1] -> 10, as evaluation
    gaps = [abs(y[bins == b].sum() - s[bins == b].sum()) for b in range(1, 11)]
    expected_ece = sum(gaps) / y.size
    assert found["expected_calibration_error"] == pytest.approx(expected_ece)
    assert result["fairness"] == {}
    assert "value_per_1000" not in found
    json.dumps(result)


def test_realised_value_equals_a_direct_per_row_computation() -> None:
    frame = window(3000, 2)
    known = frame.filter(pl.col("label").is_not_null())
    y = known["label"].to_numpy() == 1
    flagged = known["score"].to_numpy() >= THRESHOLD
    amount = known["amount"].to_numpy()
    # fraud example: missed fraud costs amount + 15, a blocked good payment 5, else 0
    per_row = np.select([~flagged & y, flagged & ~y], [-(amount + 15), -5.0], 0.0)

    found = realised(frame, threshold=THRESHOLD, objectives=FRAUD)["metrics"]

    assert found["value"] == pytest.approx(per_row.sum(), rel=1e-12)
    assert found["value_per_1000"] == pytest.approx(per_row.sum() / known.height * 1000, rel=1e-12)


def test_the_decisions_taken_count_not_todays_threshold() -> None:
    # The window was served by an older version with threshold 0.2; the version now at
    # the alias has 0.4. Value and recall are those of the decisions actually taken.
    frame = window(4000, 5).with_columns(decision=(pl.col("score") >= 0.2).cast(pl.Int64))
    known = frame.filter(pl.col("label").is_not_null())
    y = known["label"].to_numpy() == 1
    taken = known["score"].to_numpy() >= 0.2
    amount = known["amount"].to_numpy()
    per_row = np.select([~taken & y, taken & ~y], [-(amount + 15), -5.0], 0.0)

    found = realised(frame, threshold=THRESHOLD, objectives=FRAUD, decision="decision")
    by_threshold = realised(frame, threshold=THRESHOLD, objectives=FRAUD)

    assert found["metrics"]["value"] == pytest.approx(per_row.sum(), rel=1e-12)
    assert found["metrics"]["recall"] == pytest.approx(sk.recall_score(y, taken))
    assert found["metrics"]["precision"] == pytest.approx(sk.precision_score(y, taken))
    assert found["metrics"]["roc_auc"] == by_threshold["metrics"]["roc_auc"]  # no threshold
    assert found["metrics"]["recall"] > by_threshold["metrics"]["recall"]
    guess = estimated(frame, threshold=THRESHOLD, decision="decision")["metrics"]
    scores = frame["score"].to_numpy()
    assert guess["confusion"]["tp"] == pytest.approx(scores[scores >= 0.2].sum())


def test_missing_decisions_are_refused_with_the_fix() -> None:
    frame = window(100, 6).with_columns(
        decision=pl.when(pl.int_range(pl.len()) == 3).then(None).otherwise(pl.col("decision"))
    )
    with pytest.raises(MonitoringError, match="1 rows have no 'decision'"):
        realised(frame, threshold=THRESHOLD, decision="decision")


def test_realised_fairness_gaps_equal_a_direct_groupby() -> None:
    frame = window(3000, 3).with_columns(
        pl.when(pl.int_range(pl.len()) % 97 == 0)
        .then(None)
        .otherwise(pl.col("country"))
        .alias("country")
    )
    known = frame.filter(pl.col("label").is_not_null())
    groups = (
        known.with_columns(flagged=pl.col("score") >= THRESHOLD, y=pl.col("label") == 1)
        .group_by("country")
        .agg(
            selection_rate=pl.col("flagged").mean(),
            fpr=pl.col("flagged").filter(~pl.col("y")).mean(),
            tpr=pl.col("flagged").filter(pl.col("y")).mean(),
        )
    )

    fairness = realised(frame, threshold=THRESHOLD, objectives=FRAUD)["fairness"]["country"]

    assert set(fairness["rows"]) == {"DE", "FR", "PL", "null"}
    for metric in ("selection_rate", "fpr", "tpr"):
        values = groups[metric].to_numpy()
        assert fairness["difference"][metric] == pytest.approx(values.max() - values.min())
        assert fairness["ratio"][metric] == pytest.approx(values.min() / values.max())
    fpr_limit, rate_limit = fairness["limits"]
    assert fpr_limit["metric"] == "fpr"
    assert fpr_limit["passed"] is (fairness["difference"]["fpr"] <= 0.25)
    assert rate_limit["difference"] == fairness["difference"]["selection_rate"]
    assert rate_limit["passed"] is False  # random groups differ by more than 0.01
    assert fairness["passed"] is False
    json.dumps(fairness)


def test_a_fairness_limit_on_a_metric_no_group_defines_is_unknown() -> None:
    frame = window(500, 4).with_columns(label=pl.lit(1, dtype=pl.Int8))  # no negatives: no fpr

    fairness = realised(frame, threshold=THRESHOLD, objectives=FRAUD)["fairness"]["country"]

    assert fairness["difference"]["fpr"] is None
    assert fairness["limits"][0]["passed"] is None
    assert fairness["limits"][1]["passed"] is False
    assert fairness["passed"] is False


def test_a_sensitive_feature_missing_from_the_window_is_noted_not_raised() -> None:
    result = realised(window(500, 5).drop("country"), threshold=THRESHOLD, objectives=FRAUD)

    assert result["fairness"]["country"]["passed"] is None
    assert "no column 'country'" in result["fairness"]["country"]["note"]
    assert result["metrics"]["recall"] is not None


@pytest.mark.parametrize("dtype", [pl.Int8, pl.Null])
def test_no_labelled_rows_is_reported_not_raised(dtype: pl.DataType) -> None:
    frame = window(400, 6).with_columns(label=pl.lit(None, dtype=dtype))

    result = realised(frame, threshold=THRESHOLD, objectives=FRAUD)

    assert result["rows"] == 400
    assert result["labelled"] == 0
    assert result["label_coverage"] == 0.0
    assert result["positives"] == 0
    assert result["metrics"] == {}
    assert result["fairness"] == {}
    assert "none of the window's 400 rows has a label yet" in result["note"]


def test_an_empty_window_is_reported_not_raised() -> None:
    frame = window(10, 7).clear()

    result = realised(frame, threshold=THRESHOLD, objectives=FRAUD)
    guess = estimated(frame, threshold=THRESHOLD, objectives=FRAUD)

    assert (result["rows"], result["labelled"], result["label_coverage"]) == (0, 0, None)
    assert result["metrics"] == {}
    assert "no rows (no traffic)" in result["note"]
    assert (guess["rows"], guess["metrics"], guess["estimated"]) == (0, {}, True)
    assert "no rows" in guess["note"]


@pytest.mark.parametrize("only", [0, 1])
def test_one_class_gives_the_metrics_still_defined(only: int) -> None:
    frame = window(800, 8).with_columns(label=pl.lit(only, dtype=pl.Int8))
    y = np.full(800, only)
    flagged = frame["score"].to_numpy() >= THRESHOLD

    result = realised(frame, threshold=THRESHOLD, objectives=FRAUD)
    found = result["metrics"]

    assert result["positives"] == 800 * only
    assert found["roc_auc"] is None
    assert found["average_precision"] is None
    assert f"only class {only}" in found["note"]
    assert found["accuracy"] == pytest.approx(sk.accuracy_score(y, flagged))
    assert found["selection_rate"] == pytest.approx(flagged.mean())
    assert found["brier"] == pytest.approx(sk.brier_score_loss(y, frame["score"], pos_label=1))
    if only:
        assert found["recall"] == pytest.approx(flagged.mean())
        assert found["precision"] == 1.0
        assert found["fpr"] is None
    else:
        assert found["recall"] is None
        assert found["precision"] == 0.0
        assert found["fpr"] == pytest.approx(flagged.mean())
    assert found["value_per_1000"] is not None
    json.dumps(result)


@pytest.mark.parametrize(
    ("labels", "found"),
    [
        ([0, 1, 2, None], "[2.0]"),
        ([0, -1, 1, 1], "[-1.0]"),
        (["no", "fraud", None, "no"], "String"),
    ],
)
def test_labels_other_than_0_1_raise_with_the_fix(labels: list[object], found: str) -> None:
    frame = pl.DataFrame({"score": [0.1, 0.9, 0.5, 0.3], "label": labels})

    with pytest.raises(MonitoringError, match="Map the labels to 0/1") as caught:
        realised(frame, threshold=THRESHOLD)

    assert found in str(caught.value)


def test_boolean_labels_are_read_as_0_1() -> None:
    frame = pl.DataFrame({"score": [0.1, 0.9, 0.5, 0.3], "label": [False, True, None, True]})

    result = realised(frame, threshold=THRESHOLD)

    assert (result["labelled"], result["positives"]) == (3, 2)
    assert result["metrics"]["recall"] == 0.5


def test_missing_columns_and_bad_scores_raise_with_the_fix() -> None:
    frame = window(50, 9)
    with pytest.raises(MonitoringError, match=r"needs the column\(s\) \['label'\].*Attach labels"):
        realised(frame.drop("label"), threshold=THRESHOLD)
    with pytest.raises(MonitoringError, match="null, NaN or infinite in 1 of"):
        realised(
            frame.with_columns(score=pl.lit(None, pl.Float64))
            .head(1)
            .with_columns(label=pl.lit(1, pl.Int8)),
            threshold=THRESHOLD,
        )
    with pytest.raises(MonitoringError, match="amount"):
        realised(frame.drop("amount"), threshold=THRESHOLD, objectives=FRAUD)
    with pytest.raises(MonitoringError, match="threshold must be a number"):
        realised(frame, threshold="0.5")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- estimated


def test_estimated_applies_the_cbpe_formulas() -> None:
    frame = pl.DataFrame({"score": [0.9, 0.6, 0.2, 0.1], "amount": [100.0, 10.0, 50.0, 0.0]})

    result = estimated(frame, threshold=0.5, objectives=FRAUD)
    found = result["metrics"]

    # flagged 0.9, 0.6: TP = 1.5, FP = 0.5; passed 0.2, 0.1: FN = 0.3, TN = 1.7
    assert result["estimated"] is True
    assert result["assumption"] == CALIBRATION_ASSUMPTION
    assert found["confusion"] == pytest.approx({"tp": 1.5, "fp": 0.5, "fn": 0.3, "tn": 1.7})
    assert found["precision"] == pytest.approx(0.75)
    assert found["recall"] == pytest.approx(1.5 / 1.8)
    assert found["fpr"] == pytest.approx(0.5 / 2.2)
    assert found["accuracy"] == pytest.approx(3.2 / 4)
    assert found["f1"] == pytest.approx(3.0 / 3.8)
    assert found["positives"] == pytest.approx(1.8)
    # flagged rows: 0.1 * -5 and 0.4 * -5; passed: 0.2 * -(50 + 15) and 0.1 * -(0 + 15)
    value = -0.5 - 2.0 - 13.0 - 1.5
    assert found["value"] == pytest.approx(value)
    assert found["value_per_1000"] == pytest.approx(value / 4 * 1000)
    assert result["calibration_warning"] is None
    json.dumps(result)


def test_estimated_roc_auc_is_the_auc_of_each_row_as_a_weighted_positive_and_negative() -> None:
    rng = np.random.default_rng(11)
    score = np.round(rng.beta(1.0, 3.0, 2000), 2)  # ties, as NannyML's estimator handles them
    both = np.concatenate([score, score])
    truth = np.concatenate([np.ones(2000), np.zeros(2000)])

    found = estimated(pl.DataFrame({"score": score}), threshold=0.5)["metrics"]["roc_auc"]

    expected = sk.roc_auc_score(truth, both, sample_weight=np.concatenate([score, 1 - score]))
    assert found == pytest.approx(expected, abs=1e-12)


def test_cbpe_is_within_4_standard_errors_of_realised_on_calibrated_windows() -> None:
    errors: dict[str, list[float]] = {"precision": [], "recall": [], "value_per_1000": []}
    spreads: dict[str, list[float]] = {name: [] for name in errors}
    for frame in beta_windows():
        real = realised(frame, threshold=THRESHOLD, objectives=FRAUD)["metrics"]
        guess = estimated(frame, threshold=THRESHOLD, objectives=FRAUD)
        for name in errors:
            error, se = guess["metrics"][name] - real[name], guess["standard_errors"][name]
            assert abs(error) <= 4 * se, (name, error, se)
            errors[name].append(error)
            spreads[name].append(se)
        auc_error = guess["metrics"]["roc_auc"] - real["roc_auc"]
        assert abs(auc_error) <= 4 * hanley_mcneil(real["roc_auc"], frame["label"].to_numpy())
    for name, found in errors.items():  # no bias: the mean error is within 4 SE of 0
        mean_se = math.sqrt(sum(se**2 for se in spreads[name])) / WINDOWS
        assert abs(np.mean(found)) <= 4 * mean_se, name
    assert max(spreads["recall"]) < 0.012  # 4 SE under 0.05 on every 5,000-row window
    assert min(spreads["precision"]) < 0.007  # 0.026 where nearly all 5,000 rows are flagged


def test_the_standard_errors_match_the_spread_of_realised_metrics() -> None:
    rng = np.random.default_rng(12)
    base = beta_windows()[10]
    score = base["score"].to_numpy()
    guess = estimated(base, threshold=THRESHOLD, objectives=FRAUD)
    draws: dict[str, list[float]] = {"precision": [], "recall": [], "value_per_1000": []}
    for _ in range(300):
        label = (rng.random(score.size) < score).astype(np.int8)
        real = realised(base.with_columns(label=label), threshold=THRESHOLD, objectives=FRAUD)
        for name in draws:
            draws[name].append(real["metrics"][name])
    for name, found in draws.items():
        # the sample SD of 300 draws is within ~4% (1 SE) of the true SD; allow 20%
        assert np.std(found, ddof=1) == pytest.approx(guess["standard_errors"][name], rel=0.2)
        assert np.mean(found) == pytest.approx(
            guess["metrics"][name], abs=guess["standard_errors"][name]
        )


def test_cbpe_is_off_when_the_scores_are_not_calibrated() -> None:
    misses = 0
    for frame in beta_windows():
        overconfident = frame.with_columns(score=pl.col("score").sqrt())  # labels stay ~ p
        real = realised(overconfident, threshold=THRESHOLD)["metrics"]
        guess = estimated(overconfident, threshold=THRESHOLD)
        error = guess["metrics"]["precision"] - real["precision"]
        misses += error > 10 * guess["standard_errors"]["precision"]
        assert error > 0.1  # sqrt(p) > p: the estimate promises far more fraud caught
    assert misses == WINDOWS


def test_a_poor_calibration_at_promotion_warns() -> None:
    frame = window(100, 13)

    good = estimated(frame, threshold=THRESHOLD, calibration_error=0.01)
    poor = estimated(frame, threshold=THRESHOLD, calibration_error=0.08)
    stricter = estimated(
        frame, threshold=THRESHOLD, calibration_error=0.01, max_calibration_error=0.005
    )

    assert good["calibration_warning"] is None
    assert "expected calibration error at promotion was 0.08" in poor["calibration_warning"]
    assert stricter["calibration_warning"] is not None
    with pytest.raises(MonitoringError, match="calibration_error must be a finite number"):
        estimated(frame, threshold=THRESHOLD, calibration_error=float("nan"))


def test_estimated_needs_probabilities() -> None:
    frame = pl.DataFrame({"score": [0.2, 1.7, -0.1]})

    with pytest.raises(MonitoringError, match=r"ranges from -0.1 to 1.7; log calibrated"):
        estimated(frame, threshold=0.5)
    with pytest.raises(MonitoringError, match=r"needs the column\(s\) \['score'\]"):
        estimated(frame.rename({"score": "p"}), threshold=0.5)


def test_estimated_ignores_the_labels() -> None:
    frame = window(1000, 14)

    assert estimated(frame, threshold=THRESHOLD) == estimated(
        frame.drop("label"), threshold=THRESHOLD
    )


# --------------------------------------------------------------------------- promotion


@pytest.fixture(scope="module")
def promotion() -> dict[str, Any]:
    """A real evaluation at promotion, in the shape Registry.evaluation returns."""
    frame = window(6000, 15).with_columns(label=pl.col("label").fill_null(0))

    class Model:
        def predict_proba(self, data: pl.DataFrame) -> np.ndarray:
            score = data["score"].to_numpy()
            return np.column_stack([1 - score, score])

    found = evaluate(Model(), frame, FRAUD, features=["score"], label="label", latency_rows=3)
    loaded: dict[str, Any] = json.loads(json.dumps(found.to_dict()))
    return loaded


def test_against_promotion_compares_the_metrics_both_have(promotion: dict[str, Any]) -> None:
    current = realised(window(3000, 16), threshold=THRESHOLD, objectives=FRAUD)
    before = promotion["metrics"]["overall"]

    found = against_promotion(current, promotion)

    assert {"roc_auc", "recall", "precision", "value_per_1000", "brier"} <= set(found)
    assert not {"latency_ms_p99", "count", "positives", "threshold", "value"} & set(found)
    recall = found["recall"]
    assert recall["now"] == current["metrics"]["recall"]
    assert recall["at_promotion"] == before["recall"]
    assert recall["change"] == pytest.approx(recall["now"] - before["recall"])
    assert recall["relative_change"] == pytest.approx(recall["change"] / before["recall"])
    value = found["value_per_1000"]
    assert value["relative_change"] == pytest.approx(
        value["change"] / abs(before["value_per_1000"])
    )
    assert recall["estimated"] is False
    gap = found["fairness.country.fpr.difference"]
    assert gap["at_promotion"] == promotion["metrics"]["groups"]["country"]["difference"]["fpr"]
    assert gap["now"] == current["fairness"]["country"]["difference"]["fpr"]
    json.dumps(found)


def test_against_promotion_marks_estimates_and_skips_undefined(promotion: dict[str, Any]) -> None:
    guess = estimated(window(3000, 17), threshold=THRESHOLD, objectives=FRAUD)
    one_class = realised(
        window(300, 18).with_columns(label=pl.lit(0, pl.Int8)), threshold=THRESHOLD
    )

    found = against_promotion(guess, promotion)
    partial = against_promotion(one_class, promotion["metrics"])

    assert found["precision"]["estimated"] is True
    assert found["value_per_1000"]["now"] == guess["metrics"]["value_per_1000"]
    assert "roc_auc" not in partial and "recall" not in partial
    assert "fpr" in partial
    assert against_promotion(realised(window(5, 19).clear(), threshold=0.5), promotion) == {}


def test_a_zero_at_promotion_has_no_relative_change() -> None:
    found = against_promotion({"metrics": {"fpr": 0.1}}, {"metrics": {"overall": {"fpr": 0.0}}})

    assert found["fpr"] == {
        "now": 0.1,
        "at_promotion": 0.0,
        "change": 0.1,
        "relative_change": None,
        "estimated": False,
    }
