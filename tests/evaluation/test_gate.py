"""The gate's checks: value and change bounds at their edges, slices, fairness, latency."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from shipyard.evaluation.gate import Check, GateRecord, run_gate
from shipyard.evaluation.objectives import (
    DecisionValues,
    Fairness,
    FairnessLimit,
    Objectives,
    Slice,
    Threshold,
)


def gate(*thresholds: Threshold, **kwargs: Any) -> Objectives:
    return Objectives(values=DecisionValues(), thresholds=thresholds, **kwargs)


def overall(**metrics: object) -> dict[str, Any]:
    return {"overall": metrics}


def only(record: GateRecord) -> Check:
    assert len(record.checks) == 1
    return record.checks[0]


# -- value thresholds ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("threshold", "value", "passed"),
    [
        (Threshold("recall", lower=0.6), 0.6, True),
        (Threshold("recall", lower=0.6), 0.5999, False),
        (Threshold("recall", lower=0.6), 0.9, True),
        (Threshold("fpr", upper=0.1), 0.1, True),
        (Threshold("fpr", upper=0.1), 0.1001, False),
        (Threshold("fpr", upper=0.1), 0.0, True),
        (Threshold("f1", lower=0.2, upper=0.3), 0.2, True),
        (Threshold("f1", lower=0.2, upper=0.3), 0.3, True),
        (Threshold("f1", lower=0.2, upper=0.3), 0.31, False),
        (Threshold("f1", lower=0.2, upper=0.3), 0.19, False),
        (Threshold("recall", lower=0.3), 0.1 + 0.2, True),  # 0.30000000000000004
        (Threshold("recall", upper=0.3), 0.1 + 0.2, True),
    ],
)
def test_value_bounds_are_inclusive(threshold: Threshold, value: float, passed: bool) -> None:
    record = run_gate(gate(threshold), overall(**{threshold.metric: value}), None)
    check = only(record)
    assert (check.kind, check.metric, check.slice, check.candidate) == (
        "value",
        threshold.metric,
        None,
        value,
    )
    assert check.passed is passed
    assert record.passed is passed


def test_value_limits_read_as_bounds() -> None:
    objectives = gate(
        Threshold("recall", lower=0.6), Threshold("fpr", upper=0.1), Threshold("f1", 0.2, 0.3)
    )
    record = run_gate(objectives, overall(recall=1, fpr=0, f1=0.25), None)
    assert [c.limit for c in record.checks] == [">= 0.6", "<= 0.1", ">= 0.2 and <= 0.3"]


def test_a_metric_that_was_not_computed_fails_with_a_note() -> None:
    check = only(run_gate(gate(Threshold("roc_auc", lower=0.8)), overall(recall=0.7), None))
    assert not check.passed
    assert check.candidate is None
    assert check.note == "the candidate's roc_auc was not computed"


@pytest.mark.parametrize(
    ("value", "note"),
    [
        (math.nan, "the candidate's recall is NaN (undefined on these rows)"),
        ("high", "the candidate's recall is 'high', not a number"),
        (True, "the candidate's recall is True, not a number"),
    ],
)
def test_a_value_that_is_not_a_number_fails_with_a_note(value: object, note: str) -> None:
    check = only(run_gate(gate(Threshold("recall", lower=0.6)), overall(recall=value), None))
    assert (check.passed, check.note) == (False, note)


# -- change thresholds ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("threshold", "baseline", "candidate", "passed"),
    [
        # higher is better, absolute: candidate - baseline >= limit
        (Threshold("recall", change="absolute", limit=-0.01), 0.80, 0.79, True),
        (Threshold("recall", change="absolute", limit=-0.01), 0.80, 0.789, False),
        (Threshold("recall", change="absolute"), 0.80, 0.80, True),
        (Threshold("recall", change="absolute"), 0.80, 0.7999, False),
        (Threshold("recall", change="absolute", limit=0.05), 0.70, 0.75, True),
        (Threshold("recall", change="absolute", limit=0.05), 0.70, 0.7499, False),
        # lower is better (the metric's default), absolute: candidate - baseline <= limit
        (Threshold("log_loss", change="absolute", limit=0.01), 0.30, 0.31, True),
        (Threshold("log_loss", change="absolute", limit=0.01), 0.30, 0.3101, False),
        (Threshold("log_loss", change="absolute", limit=-0.05), 0.30, 0.25, True),
        (Threshold("log_loss", change="absolute", limit=-0.05), 0.30, 0.2501, False),
        # higher is better, relative: (candidate - baseline) / |baseline| >= limit
        (Threshold("roc_auc", change="relative", limit=-0.02), 0.80, 0.784, True),
        (Threshold("roc_auc", change="relative", limit=-0.02), 0.80, 0.7839, False),
        (Threshold("value_per_1000", change="relative", limit=-0.02), -500.0, -510.0, True),
        (Threshold("value_per_1000", change="relative", limit=-0.02), -500.0, -510.1, False),
        (Threshold("value_per_1000", change="relative"), -100.0, -90.0, True),
        (Threshold("value_per_1000", change="relative"), -100.0, -110.0, False),
        # lower is better, relative
        (Threshold("brier", change="relative", limit=0.05), 0.20, 0.21, True),
        (Threshold("brier", change="relative", limit=0.05), 0.20, 0.2101, False),
        # direction overrides the metric's default
        (Threshold("recall", change="absolute", direction="lower"), 0.5, 0.5, True),
        (Threshold("recall", change="absolute", direction="lower"), 0.5, 0.6, False),
        (Threshold("fpr", change="absolute", direction="higher"), 0.1, 0.1, True),
        (Threshold("fpr", change="absolute", direction="higher"), 0.1, 0.09, False),
    ],
)
def test_change_bounds_at_their_edges(
    threshold: Threshold, baseline: float, candidate: float, passed: bool
) -> None:
    metric = threshold.metric
    record = run_gate(
        gate(threshold),
        overall(**{metric: candidate}),
        overall(**{metric: baseline}),
        baseline_name="fraud@production v3",
    )
    check = only(record)
    assert (check.kind, check.candidate, check.baseline) == ("change", candidate, baseline)
    assert check.passed is passed
    assert record.passed is passed
    assert record.baseline == "fraud@production v3"


def test_change_limits_and_notes_read_as_the_rule() -> None:
    objectives = gate(
        Threshold("value_per_1000", change="relative", limit=-0.02),
        Threshold("log_loss", change="absolute"),
    )
    record = run_gate(
        objectives,
        overall(value_per_1000=-550.0, log_loss=0.25),
        overall(value_per_1000=-500.0, log_loss=0.5),
    )
    first, second = record.checks
    assert first.limit == "change >= -0.02 (relative)"
    assert first.note == "change -0.1"
    assert not first.passed
    assert second.limit == "change <= 0 (absolute)"
    assert second.note == "change -0.25"
    assert second.passed


def test_a_relative_change_from_a_zero_baseline_fails() -> None:
    threshold = Threshold("value_per_1000", change="relative")
    check = only(run_gate(gate(threshold), overall(value_per_1000=5), overall(value_per_1000=0)))
    assert not check.passed
    assert check.note == (
        'the baseline is 0, so a relative change is undefined; use change = "absolute"'
    )


def test_without_a_baseline_change_checks_are_skipped_and_the_record_says_so() -> None:
    objectives = gate(
        Threshold("recall", lower=0.6), Threshold("recall", change="absolute", limit=-0.01)
    )
    record = run_gate(objectives, overall(recall=0.7), None, baseline_name="ignored")
    value, change = record.checks
    assert value.passed and not value.skipped
    assert change.skipped and change.passed and not change.failed
    assert change.candidate == 0.7 and change.baseline is None
    assert change.note == "skipped: no baseline to compare with"
    assert record.passed
    assert record.baseline is None
    assert record.note == (
        "no baseline model: 1 change check(s) skipped; only value, fairness and latency "
        "checks apply"
    )
    assert record.summary() == f"gate passed: 1 check, 1 skipped ({record.note})"


def test_a_metric_missing_from_the_baseline_fails_the_change_check() -> None:
    threshold = Threshold("recall", change="absolute")
    check = only(run_gate(gate(threshold), overall(recall=0.7), overall(f1=0.5)))
    assert not check.passed
    assert check.note == "the baseline's recall was not computed"


# -- slices --------------------------------------------------------------------------


def test_thresholds_on_slices_read_the_slice() -> None:
    objectives = gate(
        Threshold("recall", lower=0.6, slice="large"), slices=[Slice("large", "amount > 9")]
    )
    metrics = {"overall": {"recall": 0.9}, "slices": {"large": {"count": 10, "recall": 0.5}}}
    check = only(run_gate(objectives, metrics, None))
    assert (check.slice, check.candidate, check.passed) == ("large", 0.5, False)


def test_a_missing_slice_fails_with_a_note_naming_the_slices_present() -> None:
    objectives = gate(
        Threshold("recall", lower=0.6, slice="large"), slices=[Slice("large", "amount > 9")]
    )
    metrics = {"overall": {"recall": 0.9}, "slices": {"web": {"recall": 0.9}}}
    check = only(run_gate(objectives, metrics, None))
    assert not check.passed
    assert check.note == "the candidate's metrics have no slice 'large' (slices: 'web')"


def test_an_empty_slice_is_reported() -> None:
    objectives = gate(Threshold("fpr", upper=0.1, slice="night"), slices=[Slice("night", "h<6")])
    metrics = {"slices": {"night": {"count": 0, "note": "slice night has no rows"}}}
    record = run_gate(objectives, metrics, None)
    assert not record.passed
    assert only(record).note == "slice night has no rows"
    assert record.summary() == (
        "gate failed: 1 of 1 check failed\n"
        "  value fpr on night: n/a, needs <= 0.1 (slice night has no rows)"
    )


def test_a_metric_a_slice_could_not_compute_carries_the_slice_note() -> None:
    objectives = gate(Threshold("recall", lower=0.5, slice="s"), slices=[Slice("s", by="c")])
    metrics = {"slices": {"s=FR": {"count": 3, "note": "only class 0 present"}}}
    check = only(run_gate(objectives, metrics, None))
    assert (
        check.note == "the candidate's recall on slice s=FR was not computed: only class 0 present"
    )


def test_a_by_slice_threshold_is_checked_on_every_group() -> None:
    objectives = gate(
        Threshold("recall", lower=0.5, slice="by_country"), slices=[Slice("by_country", by="c")]
    )
    metrics = {
        "slices": {
            "by_country=US": {"recall": 0.7},
            "by_country=FR": {"recall": 0.4},
            "large": {"recall": 0.1},
        }
    }
    record = run_gate(objectives, metrics, None)
    assert [(c.slice, c.passed) for c in record.checks] == [
        ("by_country=FR", False),
        ("by_country=US", True),
    ]
    assert record.summary() == (
        "gate failed: 1 of 2 checks failed\n  value recall on by_country=FR: 0.4, needs >= 0.5"
    )


def test_a_by_slice_without_groups_fails() -> None:
    objectives = gate(Threshold("recall", lower=0.5, slice="by_c"), slices=[Slice("by_c", by="c")])
    check = only(run_gate(objectives, {"slices": {}}, None))
    assert not check.passed
    assert check.note == "the candidate's metrics have no slice 'by_c' (slices: none)"


# -- fairness and latency ------------------------------------------------------------

FAIR = Objectives(
    fairness=Fairness(
        sensitive=["country"],
        limits=[
            FairnessLimit("selection_rate", max_difference=0.1),
            FairnessLimit("tpr", min_ratio=0.8),
        ],
    )
)


def groups(difference: float, ratio: float) -> dict[str, Any]:
    return {
        "groups": {
            "country": {"difference": {"selection_rate": difference}, "ratio": {"tpr": ratio}}
        }
    }


@pytest.mark.parametrize(
    ("difference", "ratio", "passed"),
    [(0.1, 0.8, (True, True)), (0.1001, 0.7999, (False, False)), (0.0, 1.0, (True, True))],
)
def test_fairness_limits_on_difference_and_ratio(
    difference: float, ratio: float, passed: tuple[bool, bool]
) -> None:
    record = run_gate(FAIR, groups(difference, ratio), groups(0.05, 0.9))
    gap, share = record.checks
    assert (gap.kind, gap.metric, gap.group, gap.limit) == (
        "fairness",
        "selection_rate",
        "country",
        "difference <= 0.1",
    )
    assert (share.metric, share.limit, share.candidate, share.baseline) == (
        "tpr",
        "ratio >= 0.8",
        ratio,
        0.9,
    )
    assert (gap.passed, share.passed) == passed
    assert record.passed is all(passed)


def test_a_fairness_metric_that_was_not_computed_fails() -> None:
    record = run_gate(FAIR, {"groups": {"country": {"ratio": {"tpr": None}}}}, None)
    assert [c.note for c in record.checks] == [
        "selection_rate difference across 'country' was not computed",
        "tpr ratio across 'country' was not computed",
    ]
    assert not record.passed
    record = run_gate(FAIR, {"groups": {"age": {}}}, None)
    assert record.checks[0].note == "no groups for 'country' in the metrics (groups: 'age')"


@pytest.mark.parametrize(
    ("latency", "passed", "note"),
    [
        ({"p50": 1.0, "p99": 50.0}, True, ""),
        ({"p50": 1.0, "p99": 50.01}, False, ""),
        ({"p50": 1.0}, False, "the candidate's latency_ms_p99 was not computed"),
    ],
)
def test_the_latency_budget_is_on_p99(latency: dict[str, float], passed: bool, note: str) -> None:
    record = run_gate(Objectives(latency_ms_p99=50), {"latency_ms": latency}, None)
    check = only(record)
    assert (check.kind, check.metric, check.limit) == ("latency", "latency_ms_p99", "p99 <= 50 ms")
    assert (check.passed, check.note) == (passed, note)


def test_latency_thresholds_read_the_latency_table() -> None:
    objectives = gate(Threshold("latency_ms_p50", upper=5))
    assert only(run_gate(objectives, {"latency_ms": {"p50": 4.0}}, None)).passed


# -- the record ----------------------------------------------------------------------


def test_no_objectives_pass_with_a_note() -> None:
    record = run_gate(Objectives(), overall(recall=0.1), None)
    assert record.passed
    assert record.checks == ()
    assert record.note == "the objectives declare no thresholds, fairness limits or latency budget"


def test_the_record_round_trips_through_json() -> None:
    objectives = gate(
        Threshold("recall", lower=0.6),
        Threshold("recall", change="absolute"),
        latency_ms_p99=10,
    )
    record = run_gate(
        objectives,
        {"overall": {"recall": 0.5}, "latency_ms": {"p99": 3.0}},
        overall(recall=0.6),
        baseline_name="fraud@production v3",
    )
    data = json.loads(json.dumps(record.to_dict()))
    assert GateRecord.from_dict(data) == record
    assert data["checks"][0] == {
        "kind": "value",
        "metric": "recall",
        "slice": None,
        "candidate": 0.5,
        "baseline": 0.6,
        "limit": ">= 0.6",
        "passed": False,
        "note": "",
        "group": None,
        "skipped": False,
    }
    assert record.summary() == (
        "gate failed against fraud@production v3: 2 of 3 checks failed\n"
        "  value recall: 0.5 (baseline 0.6), needs >= 0.6\n"
        "  change recall: 0.5 (baseline 0.6), needs change >= 0 (absolute) (change -0.1)"
    )
    assert record.created_at.tzinfo is not None


# -- the rule, for any numbers -------------------------------------------------------

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@given(candidate=finite, baseline=finite, limit=st.floats(min_value=-1e3, max_value=1e3))
@example(candidate=0.79, baseline=0.80, limit=-0.01)  # -0.010000000000000009: at the edge
@example(candidate=0.789, baseline=0.80, limit=-0.01)
def test_a_higher_is_better_absolute_change_passes_iff_the_change_reaches_the_limit(
    candidate: float, baseline: float, limit: float
) -> None:
    threshold = Threshold("recall", change="absolute", limit=limit)
    check = only(run_gate(gate(threshold), overall(recall=candidate), overall(recall=baseline)))
    change = candidate - baseline
    at_edge = math.isclose(change, limit, rel_tol=1e-9, abs_tol=1e-12)
    assert check.passed is (change >= limit or at_edge)


@given(candidate=finite, baseline=finite.filter(bool), limit=st.floats(-10, 10))
def test_a_lower_is_better_relative_change_passes_iff_it_stays_under_the_limit(
    candidate: float, baseline: float, limit: float
) -> None:
    threshold = Threshold("log_loss", change="relative", limit=limit)
    check = only(run_gate(gate(threshold), overall(log_loss=candidate), overall(log_loss=baseline)))
    change = (candidate - baseline) / abs(baseline)
    at_edge = math.isclose(change, limit, rel_tol=1e-9, abs_tol=1e-12)
    assert check.passed is (change <= limit or at_edge)


junk = st.one_of(st.none(), st.floats(), st.text(max_size=3), st.booleans(), st.integers())


@given(recall=junk, sliced=junk, gap=junk, p99=junk, base=junk)
def test_any_numbers_or_junk_give_a_record_never_a_crash(
    recall: object, sliced: object, gap: object, p99: object, base: object
) -> None:
    objectives = Objectives(
        values=DecisionValues(),
        thresholds=[
            Threshold("recall", lower=0.5),
            Threshold("recall", upper=0.9, slice="s"),
            Threshold("recall", change="relative"),
        ],
        slices=[Slice("s", by="c")],
        fairness=Fairness(["c"], [FairnessLimit("tpr", max_difference=0.1, min_ratio=0.5)]),
        latency_ms_p99=10,
    )
    candidate = {
        "overall": {"recall": recall},
        "slices": {"s=a": {"recall": sliced}},
        "groups": {"c": {"difference": {"tpr": gap}, "ratio": {"tpr": gap}}},
        "latency_ms": {"p99": p99},
    }
    record = run_gate(objectives, candidate, overall(recall=base))
    assert len(record.checks) == 6
    assert record.passed is all(c.passed for c in record.checks)
    assert record.passed is not any(c.failed for c in record.checks)
    for check in record.checks:
        assert check.passed or check.note or check.candidate is not None
