"""Objectives from Python and from [objectives]: parsing, round trips, refusals, expressions."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from shipyard.config import load_settings
from shipyard.core.project import Project
from shipyard.errors import ConfigError, EvaluationError, ObjectivesError
from shipyard.evaluation._expr import parse_predicate, parse_value
from shipyard.evaluation.objectives import (
    METRICS,
    DecisionValues,
    Fairness,
    FairnessLimit,
    Objectives,
    Slice,
    Threshold,
)

FULL = """\
[objectives]
task = "binary"
latency_ms_p99 = 50

[objectives.values]
true_positive = 100
false_positive = -15
false_negative = "-(amount + 15)"

[[objectives.thresholds]]
metric = "recall"
lower = 0.6

[[objectives.thresholds]]
metric = "value_per_1000"
change = "relative"
direction = "higher"
limit = -0.02

[[objectives.thresholds]]
metric = "log_loss"
upper = 0.5
slice = "large"

[[objectives.thresholds]]
metric = "brier"
change = "absolute"
slice = "by_country"

[[objectives.slices]]
name = "large"
where = "amount >= 1000"

[[objectives.slices]]
name = "web"
where = "channel == 'web'"

[[objectives.slices]]
name = "by_country"
by = "country"

[objectives.fairness]
sensitive = ["country", "account_age_group"]

[[objectives.fairness.limits]]
metric = "selection_rate"
max_difference = 0.1

[[objectives.fairness.limits]]
metric = "tpr"
min_ratio = 0.8
"""

EXPECTED = Objectives(
    task="binary",
    values=DecisionValues(
        true_positive=100, false_positive=-15, false_negative="-(amount + 15)", true_negative=0
    ),
    thresholds=[
        Threshold(metric="recall", lower=0.6),
        Threshold("value_per_1000", change="relative", direction="higher", limit=-0.02),
        Threshold("log_loss", upper=0.5, slice="large"),
        Threshold("brier", change="absolute", slice="by_country"),
    ],
    slices=[
        Slice(name="large", where="amount >= 1000"),
        Slice(name="web", where="channel == 'web'"),
        Slice(name="by_country", by="country"),
    ],
    fairness=Fairness(
        sensitive=["country", "account_age_group"],
        limits=[
            FairnessLimit(metric="selection_rate", max_difference=0.1),
            FairnessLimit(metric="tpr", min_ratio=0.8),
        ],
    ),
    latency_ms_p99=50.0,
)


def parse(text: str) -> Objectives:
    return Objectives.from_table(tomllib.loads(text)["objectives"], text=text)


def refusal(text: str) -> str:
    with pytest.raises(ObjectivesError) as caught:
        parse(text)
    return str(caught.value)


# -- parsing and round trips ---------------------------------------------------------


def test_every_form_of_the_toml_table_parses_to_the_python_objectives() -> None:
    assert parse(FULL) == EXPECTED


def test_to_dict_is_the_toml_table_and_reads_back_equal() -> None:
    table = EXPECTED.to_dict()
    assert table["thresholds"][1] == {
        "metric": "value_per_1000",
        "change": "relative",
        "direction": "higher",
        "limit": -0.02,
    }
    assert table["slices"][2] == {"name": "by_country", "by": "country"}
    assert table["fairness"]["sensitive"] == ["country", "account_age_group"]
    assert Objectives.from_table(table) == EXPECTED
    assert Objectives.from_table(Objectives().to_dict()) == Objectives()


def test_other_tasks_parse() -> None:
    assert parse('[objectives]\ntask = "regression"\n').task == "regression"
    assert parse('[objectives]\ntask = "multiclass"\n').task == "multiclass"


def test_direction_defaults_to_the_metric_and_can_be_overridden() -> None:
    assert Threshold("recall", change="absolute").higher_is_better
    assert not Threshold("log_loss", change="absolute").higher_is_better
    assert not Threshold("latency_ms_p99", upper=20).higher_is_better
    assert not Threshold("recall", change="absolute", direction="lower").higher_is_better
    assert Threshold("recall", change="absolute").tolerance == 0.0


def test_from_project_reads_shipyard_toml(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "shipyard.toml").write_text('[project]\nname = "p"\n\n' + FULL, encoding="utf-8")
    settings = load_settings(root, environ={})
    assert Objectives.from_project(settings) == EXPECTED
    assert Objectives.from_project(Project(settings)) == EXPECTED


def test_errors_from_a_project_name_the_file_and_line(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    text = FULL.replace('metric = "tpr"', 'metric = "tpr_gap"')
    (root / "shipyard.toml").write_text('[project]\nname = "p"\n\n' + text, encoding="utf-8")
    with pytest.raises(ObjectivesError) as caught:
        Objectives.from_project(load_settings(root, environ={}))
    assert str(caught.value) == (
        f"{root / 'shipyard.toml'}:52: [[objectives.fairness.limits]] #2: unknown fairness "
        "metric 'tpr_gap'. Known: selection_rate, tpr, fpr, precision, accuracy. "
        "Use one of those."
    )
    assert isinstance(caught.value, ConfigError)


# -- refusals ------------------------------------------------------------------------


def test_an_unknown_metric_is_refused_with_the_known_ones() -> None:
    message = refusal('[[objectives.thresholds]]\nmetric = "recal"\nlower = 0.6\n')
    assert message == (
        "shipyard.toml:1: [[objectives.thresholds]] #1: unknown metric 'recal'. Known: "
        + ", ".join(METRICS)
        + ". Use one of those."
    )


@pytest.mark.parametrize(
    ("text", "table", "known"),
    [
        ("[objectives]\ncolour = 1\n", "[objectives]", "task, values, thresholds, slices"),
        (
            "[objectives.values]\ncolour = 1\n",
            "[objectives.values]",
            "true_positive, false_positive, false_negative, true_negative",
        ),
        (
            '[[objectives.thresholds]]\nmetric = "recall"\ncolour = 1\n',
            "[[objectives.thresholds]] #1",
            "metric, lower, upper, change, direction, limit, slice",
        ),
        (
            '[[objectives.slices]]\nname = "a"\ncolour = 1\n',
            "[[objectives.slices]] #1",
            "name, where, by",
        ),
        ("[objectives.fairness]\ncolour = 1\n", "[objectives.fairness]", "sensitive, limits"),
        (
            '[[objectives.fairness.limits]]\nmetric = "tpr"\ncolour = 1\n',
            "[[objectives.fairness.limits]] #1",
            "metric, max_difference, min_ratio",
        ),
    ],
)
def test_unknown_keys_are_refused_everywhere(text: str, table: str, known: str) -> None:
    message = refusal(text)
    assert f"{table}: unknown key 'colour'. Known keys: {known}" in message
    assert message.endswith("Remove it or fix its spelling.")


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [
        (
            'metric = "recall"\nchange = "absolute"\ndirection = "up"',
            "unknown direction 'up'. Known: higher, lower. Use one of those.",
        ),
        (
            'metric = "recall"\nchange = "percent"',
            "unknown change 'percent'. Known: absolute, relative. Use one of those.",
        ),
        (
            'metric = "recall"\nlower = 0.8\nupper = 0.6',
            "the threshold on recall has lower = 0.8 above upper = 0.6, so nothing passes. "
            "Swap them or fix one.",
        ),
        (
            'metric = "recall"\nlower = 0.6\nchange = "relative"',
            "the threshold on recall has both a value bound (lower/upper) and change = "
            "'relative'. Split it in two thresholds: one with lower/upper, one with change "
            "and limit.",
        ),
        (
            'metric = "recall"',
            "the threshold on recall bounds nothing. Give lower and/or upper (a value bound), "
            'or change = "absolute" or "relative" (a bound on the change against the '
            "baseline).",
        ),
        (
            'metric = "recall"\nlower = 0.6\nlimit = -0.1',
            "the threshold on recall has lower/upper, so direction and limit do not apply; "
            'they belong to a change threshold (change = "absolute" or "relative"). Remove '
            "them, or make a second threshold for the change.",
        ),
        (
            'metric = "recall"\nlower = "0.6"',
            "lower must be a number, got '0.6' (a str). Change it to a number.",
        ),
        (
            'metric = "recall"\nlower = true',
            "lower must be a number, got True (a bool). Change it to a number.",
        ),
    ],
)
def test_bad_thresholds_are_refused(threshold: str, expected: str) -> None:
    text = f"[objectives]\n\n[[objectives.thresholds]]\n{threshold}\n"
    assert refusal(text) == f"shipyard.toml:3: [[objectives.thresholds]] #1: {expected}"


@pytest.mark.parametrize(
    ("where", "problem"),
    [
        ("abs(amount) > 3", "at position 0: abs(...) is a function call, which is not allowed"),
        ("amount.real > 3", ": unexpected '.' at position 6 (attribute access is not allowed)"),
        ("__import__('os')", "at position 0: __import__(...) is a function call"),
        ("amount[0] > 3", ": unexpected '[' at position 6 (indexing is not allowed)"),
        ("amount = 3", ": unexpected '=' at position 7 (use == to compare)"),
        ("0 < amount < 3", "at position 11: comparisons cannot be chained"),
        ("amount + 3", "'amount + 3' is a number, but a condition is expected here."),
    ],
)
def test_where_expressions_beyond_comparisons_are_refused(where: str, problem: str) -> None:
    text = f'[[objectives.slices]]\nname = "s"\nwhere = "{where}"\n'
    message = refusal(text)
    assert message.startswith("shipyard.toml:1: [[objectives.slices]] #1: slice 's' where: ")
    assert problem in message


def test_a_value_expression_with_a_call_is_refused() -> None:
    message = refusal('[objectives.values]\nfalse_negative = "exec(amount)"\n')
    assert message.startswith(
        "shipyard.toml:1: [objectives.values]: false_negative: cannot parse 'exec(amount)' at "
        "position 0: exec(...) is a function call, which is not allowed."
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[[objectives.fairness.limits]]\nmetric = "tpr"\n',
            "shipyard.toml:1: [[objectives.fairness.limits]] #1: the fairness limit on tpr "
            "bounds nothing. Give max_difference (e.g. 0.1) and/or min_ratio (e.g. 0.8).",
        ),
        (
            '[[objectives.fairness.limits]]\nmetric = "tpr"\nmin_ratio = 1.5\n',
            "shipyard.toml:1: [[objectives.fairness.limits]] #1: min_ratio must be from 0 to 1, "
            "got 1.5.",
        ),
        (
            '[[objectives.fairness.limits]]\nmetric = "tpr"\nmax_difference = -0.1\n',
            "shipyard.toml:1: [[objectives.fairness.limits]] #1: max_difference must be a "
            "number >= 0, got -0.1.",
        ),
        (
            '[[objectives.fairness.limits]]\nmetric = "recall"\nmin_ratio = 0.8\n',
            "shipyard.toml:1: [[objectives.fairness.limits]] #1: unknown fairness metric "
            "'recall'. Known: selection_rate, tpr, fpr, precision, accuracy. Use one of those.",
        ),
        (
            '[[objectives.fairness.limits]]\nmetric = "tpr"\nmin_ratio = 0.8\n',
            "shipyard.toml:1: [objectives.fairness]: fairness limits need sensitive features "
            'to compare groups of. Add sensitive = ["column", ...].',
        ),
        (
            '[objectives]\ntask = "ranking"\n',
            "shipyard.toml:1: [objectives]: unknown task 'ranking'. Known: binary, multiclass, "
            "regression. Use one of those.",
        ),
        (
            "[objectives]\nlatency_ms_p99 = 0\n",
            "shipyard.toml:1: [objectives]: latency_ms_p99 must be above 0 ms, got 0.",
        ),
        (
            '[objectives]\nthresholds = "recall"\n',
            "shipyard.toml:1: [objectives] thresholds must be an array of tables, got 'recall'.",
        ),
        (
            '[[objectives.slices]]\nname = "s"\nwhere = "a > 1"\nby = "b"\n',
            "shipyard.toml:1: [[objectives.slices]] #1: slice 's' needs exactly one of where (a "
            'condition, e.g. "amount >= 1000") or by (a column: one slice per value).',
        ),
        (
            '[[objectives.slices]]\nname = "a b"\nby = "b"\n',
            "shipyard.toml:1: [[objectives.slices]] #1: a slice's name must be a word without "
            "spaces or '=', got 'a b'.",
        ),
    ],
)
def test_bad_tables_are_refused_with_the_fix(text: str, expected: str) -> None:
    assert refusal(text) == expected


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {"thresholds": [Threshold("recall", lower=0.5, slice="large")]},
            "threshold #1 (recall) is on slice 'large', which is not declared. Declared "
            "slices: none. Declare it in [[objectives.slices]].",
        ),
        (
            {"slices": [Slice("a", by="x"), Slice("a", by="y")]},
            "slice names must be unique; declared twice: ['a'].",
        ),
        (
            {
                "slices": [Slice("a", by="x")],
                "thresholds": [Threshold("latency_ms_p99", upper=5, slice="a")],
            },
            "threshold #1 (latency_ms_p99): latency is measured on single-row predictions, "
            "not per slice. Remove its slice.",
        ),
        (
            {"thresholds": [Threshold("value_per_1000", lower=0)]},
            "threshold #1 (value_per_1000): value_per_1000 prices decisions with "
            "[objectives.values], which is not given. Add true_positive, false_positive, "
            "false_negative and true_negative values.",
        ),
        (
            {"thresholds": [{"metric": "recall", "lower": 0.6}]},
            "thresholds must hold Threshold(...) objects, got {'metric': 'recall', 'lower': "
            "0.6}. Build each with Threshold(...).",
        ),
        (
            {"values": {"true_positive": 1}},
            "values must be DecisionValues(...), got {'true_positive': 1}.",
        ),
    ],
)
def test_python_objectives_are_checked_too(kwargs: dict[str, object], expected: str) -> None:
    with pytest.raises(ObjectivesError) as caught:
        Objectives(**kwargs)  # type: ignore[arg-type]
    assert str(caught.value) == expected


def test_a_reference_error_in_toml_names_the_table() -> None:
    text = '[[objectives.thresholds]]\nmetric = "recall"\nlower = 0.5\nslice = "lage"\n'
    assert refusal(text).startswith(
        "shipyard.toml:1: [objectives]: threshold #1 (recall) is on slice 'lage'"
    )


# -- the expression language against Polars -----------------------------------------

FRAME = pl.DataFrame(
    {
        "amount": [5.0, 1000.0, 2500.5, 0.0],
        "fee": [1, 2, 3, 4],
        "channel": ["web", "app", "web", None],
        "account age": [10, 400, 30, 2],
    }
)
A, F = pl.col("amount"), pl.col("fee")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-(amount + 15)", -(A + 15)),
        ("amount - fee - 1", (A - F) - 1),
        ("amount / fee * 2", (A / F) * 2),
        ("-amount * 2 + fee", (-A * 2) + F),
        ("(amount + fee) * 0.5", (A + F) * 0.5),
        ("amount * 1.5e2 / (fee + .5)", A * 150.0 / (F + 0.5)),
        ("--fee", F),
        ("`account age` / 365", pl.col("account age") / 365),
        ("15", pl.lit(15)),
    ],
)
def test_value_expressions_equal_polars(text: str, expected: pl.Expr) -> None:
    parsed = parse_value(text)
    got = FRAME.select(parsed.expr.alias("v")).to_series().to_list()
    assert got == FRAME.select(expected.alias("v")).to_series().to_list()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("amount >= 1000", A >= 1000),
        ("channel == 'web'", pl.col("channel") == "web"),
        ('channel != "web"', pl.col("channel") != "web"),
        ("amount > 10 and fee < 4 or fee == 1", ((A > 10) & (F < 4)) | (F == 1)),
        ("amount > 10 and (fee < 2 or fee == 3)", (A > 10) & ((F < 2) | (F == 3))),
        ("not amount <= 5 and fee > 1", (~(A <= 5)) & (F > 1)),
        ("amount * 2 >= fee + 1000", A * 2 >= F + 1000),
    ],
)
def test_predicates_equal_polars(text: str, expected: pl.Expr) -> None:
    parsed = parse_predicate(text)
    got = FRAME.select(parsed.expr.alias("v")).to_series().to_list()
    assert got == FRAME.select(expected.alias("v")).to_series().to_list()


def test_parsed_expressions_know_their_columns() -> None:
    assert parse_value("amount * fee - amount").columns == {"amount", "fee"}
    assert parse_predicate("`account age` > 3 and channel == 'or'").columns == {
        "account age",
        "channel",
    }


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("amount == 'web'", "\"amount == 'web'\" is a condition, but a number is expected here."),
        ("1 + 'x'", "'+' needs a column or a number, got a string."),
        ("amount +", "expected a column, a number or '(', got 'the end'"),
        ("(amount", "expected ')', got 'the end'"),
        ("amount fee", "expected an operator or the end, got 'fee'"),
        ("amount & fee", "unexpected '&' at position 7 (use `and`)"),
        ("amount ; fee", "unexpected ';' at position 7 (only column names"),
        ("lambda: 1", "unexpected ':' at position 6"),
        ("`*` + 1", "at position 0: `*` would select many columns; name one column"),
        ("`^a.*$`", "at position 0: `^a.*$` would select many columns"),
    ],
)
def test_value_expressions_refuse_everything_else(text: str, problem: str) -> None:
    with pytest.raises(ObjectivesError) as caught:
        parse_value(text)
    assert problem in str(caught.value)


def test_predicates_refuse_comparing_numbers_with_strings() -> None:
    with pytest.raises(ObjectivesError, match="compares a number with a string"):
        parse_predicate("1 == 'x'")
    with pytest.raises(ObjectivesError, match="'and' needs a column or a condition, got a number"):
        parse_predicate("amount > 1 and 3")


# -- values and slices on data -------------------------------------------------------


def test_values_for_gives_one_value_per_row() -> None:
    values = EXPECTED.values_for(FRAME)
    assert values["false_negative"].tolist() == [-20.0, -1015.0, -2515.5, -15.0]
    assert values["true_positive"].tolist() == [100.0] * 4
    assert values["true_negative"].tolist() == [0.0] * 4
    assert all(v.dtype == np.float64 for v in values.values())


def test_values_for_names_a_missing_column_and_those_present() -> None:
    with pytest.raises(EvaluationError) as caught:
        EXPECTED.values_for(FRAME.drop("amount"))
    assert str(caught.value) == (
        "values.false_negative = '-(amount + 15)' reads 'amount', which the evaluation data "
        "does not have. Columns present: 'fee', 'channel', 'account age'. Add the column to "
        "the evaluation data, or change the expression in [objectives]."
    )


def test_values_for_refuses_nulls_and_string_columns() -> None:
    nulls = FRAME.with_columns(pl.Series("amount", [1.0, None, 2.0, None]))
    with pytest.raises(EvaluationError, match=r"null, NaN or infinite in 2 of 4 rows"):
        EXPECTED.values_for(nulls)
    values = DecisionValues(false_negative="-channel")
    with pytest.raises(EvaluationError, match=r"'-channel' cannot be computed"):
        values.values_for(FRAME)


def test_values_for_without_values_says_what_to_add() -> None:
    with pytest.raises(EvaluationError, match=r"Add \[objectives.values\]"):
        Objectives().values_for(FRAME)


def test_slice_masks_of_where_and_by_slices() -> None:
    frame = FRAME.with_columns(country=pl.Series(["FR", "US", None, "FR"]))
    masks = EXPECTED.slice_masks(frame)
    assert {name: mask.tolist() for name, mask in masks.items()} == {
        "large": [False, True, True, False],
        "web": [True, False, True, False],  # a null channel is in no `where` slice
        "by_country=FR": [True, False, False, True],
        "by_country=US": [False, True, False, False],
        "by_country=null": [False, False, True, False],
    }


def test_a_where_slice_on_a_column_that_is_not_boolean_says_so() -> None:
    with pytest.raises(EvaluationError) as caught:
        Slice("c", where="channel").masks(FRAME)
    assert str(caught.value) == (
        "slice 'c': where = 'channel' gives String values, not true/false. Compare the column "
        'with a value, e.g. "amount >= 1000".'
    )
    flags = pl.DataFrame({"web": [True, None, False]})
    assert Slice("w", where="web").masks(flags)["w"].tolist() == [True, False, False]


def test_a_by_slice_on_a_missing_column_names_it() -> None:
    with pytest.raises(EvaluationError, match=r"slice 'c' is by column 'country'"):
        Slice("c", by="country").masks(FRAME)
