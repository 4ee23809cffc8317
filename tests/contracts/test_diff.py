"""Breaking-change detection: every change classified for the consumer of the data."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.contracts import Contract
from shipyard.contracts._engine import compare
from shipyard.contracts.diff import Change, ContractDiff, diff_contracts

Doc = dict[str, Any]
Edit = Callable[[Doc], None]
P = "schema.orders.properties"

BASE: Doc = {
    "apiVersion": "v3.1.0",
    "kind": "DataContract",
    "id": "orders",
    "version": "1.0.0",
    "status": "active",
    "name": "Orders",
    "description": {"purpose": "Orders for billing"},
    "team": [{"username": "ana", "role": "owner"}],
    "schema": [
        {
            "name": "orders",
            "properties": [
                {
                    "name": "order_id",
                    "logicalType": "integer",
                    "required": True,
                    "primaryKey": True,
                },
                {
                    "name": "amount",
                    "logicalType": "number",
                    "logicalTypeOptions": {"minimum": 0, "maximum": 1000},
                    "quality": [{"metric": "nullValues", "mustBeLessThan": 5, "unit": "percent"}],
                },
                {
                    "name": "status",
                    "logicalType": "string",
                    "quality": [
                        {
                            "metric": "invalidValues",
                            "arguments": {"validValues": ["new", "paid", "shipped"]},
                            "mustBe": 0,
                        }
                    ],
                },
                {
                    "name": "customer",
                    "logicalType": "string",
                    "logicalTypeOptions": {"minLength": 3, "maxLength": 40, "pattern": "^C"},
                },
                {"name": "created_at", "logicalType": "timestamp", "required": True},
                {"name": "note", "logicalType": "string"},
            ],
            "quality": [{"metric": "rowCount", "mustBeGreaterThan": 0}],
            "customProperties": [{"property": "shipyard.maxQuarantineShare", "value": 0.1}],
        }
    ],
    "slaProperties": [
        {"property": "freshness", "value": 1, "unit": "d", "element": "orders.created_at"}
    ],
}


def props(doc: Doc) -> list[Doc]:
    return list(doc["schema"][0]["properties"])


def prop(doc: Doc, name: str) -> Doc:
    return next(p for p in doc["schema"][0]["properties"] if p["name"] == name)


def dataset(doc: Doc) -> Doc:
    return dict(doc["schema"][0])


def diff(edit: Edit, old_edit: Edit | None = None) -> ContractDiff:
    """The diff from BASE (edited by ``old_edit``) to BASE edited by ``old_edit`` and ``edit``."""
    old = copy.deepcopy(BASE)
    if old_edit is not None:
        old_edit(old)
    new = copy.deepcopy(old)
    edit(new)
    return diff_contracts(Contract.from_dict(old), Contract.from_dict(new))


def seen(result: ContractDiff) -> list[tuple[str, str, Any, Any]]:
    """kind, path, old, new of every change but the version advice."""
    return [(c.kind, c.path, c.old, c.new) for c in result.changes if c.path != "version"]


def setter(*steps: Callable[[Doc], Any]) -> Edit:
    def edit(doc: Doc) -> None:
        for step in steps:
            step(doc)

    return edit


def remove_property(name: str) -> Edit:
    def edit(doc: Doc) -> None:
        doc["schema"][0]["properties"] = [p for p in props(doc) if p["name"] != name]

    return edit


def add_property(entry: Doc) -> Edit:
    return lambda doc: doc["schema"][0]["properties"].append(entry)


def options(name: str, **values: Any) -> Edit:
    """Set (or with None, drop) logicalTypeOptions of property ``name``."""

    def edit(doc: Doc) -> None:
        opts = prop(doc, name).setdefault("logicalTypeOptions", {})
        for key, value in values.items():
            if value is None:
                opts.pop(key)
            else:
                opts[key] = value

    return edit


# -- datasets and properties -----------------------------------------------------------------


def test_a_removed_dataset_breaks() -> None:
    refunds = {"name": "refunds", "properties": [{"name": "id", "logicalType": "integer"}]}
    result = diff(lambda d: d["schema"].pop(), old_edit=lambda d: d["schema"].append(refunds))
    assert seen(result) == [("breaking", "schema.refunds", "refunds", None)]


def test_an_added_dataset_is_compatible() -> None:
    refunds = {"name": "refunds", "properties": [{"name": "id", "logicalType": "integer"}]}
    result = diff(lambda d: d["schema"].append(refunds))
    assert seen(result) == [("compatible", "schema.refunds", None, "refunds")]


def test_a_removed_property_breaks() -> None:
    result = diff(remove_property("note"))
    assert seen(result) == [("breaking", f"{P}.note", "note", None)]
    assert result.breaking[0].what == "property removed"


def test_a_removed_and_an_added_property_of_the_same_type_is_a_rename() -> None:
    result = diff(
        setter(remove_property("note"), add_property({"name": "comment", "logicalType": "string"}))
    )
    assert seen(result) == [("breaking", f"{P}.note", "note", "comment")]
    assert result.breaking[0].what == "property renamed"


def test_a_rename_picks_the_most_alike_name_and_reports_what_else_changed() -> None:
    edit = setter(
        remove_property("note"),
        add_property({"name": "zzz", "logicalType": "string"}),
        add_property({"name": "notes", "logicalType": "string", "required": True}),
    )
    assert seen(diff(edit)) == [
        ("breaking", f"{P}.note", "note", "notes"),
        ("breaking", f"{P}.notes.required", False, True),
        ("compatible", f"{P}.zzz", None, "zzz"),
    ]


def test_a_removed_and_an_added_property_of_different_types_is_no_rename() -> None:
    edit = setter(remove_property("note"), add_property({"name": "flag", "logicalType": "boolean"}))
    assert seen(diff(edit)) == [
        ("breaking", f"{P}.note", "note", None),
        ("compatible", f"{P}.flag", None, "flag"),
    ]


@pytest.mark.parametrize(
    ("entry", "kind"),
    [
        ({"name": "coupon", "logicalType": "string"}, "compatible"),
        ({"name": "coupon", "logicalType": "string", "required": True}, "breaking"),
        ({"name": "coupon", "logicalType": "string", "primaryKey": True}, "breaking"),
    ],
    ids=["optional", "required", "primary-key"],
)
def test_an_added_property_breaks_only_when_batches_must_have_it(entry: Doc, kind: str) -> None:
    assert seen(diff(add_property(entry))) == [(kind, f"{P}.coupon", None, "coupon")]


# -- types -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "old", "new", "kind"),
    [
        ("order_id", "integer", "number", "compatible"),
        ("amount", "number", "integer", "breaking"),
        ("order_id", "integer", "string", "breaking"),
        ("created_at", "timestamp", "date", "breaking"),
        ("note", "string", None, "compatible"),
    ],
    ids=[
        "integer-number-widens",
        "number-integer-narrows",
        "integer-string",
        "timestamp-date",
        "type-dropped",
    ],
)
def test_a_type_change_breaks_unless_it_widens(
    name: str, old: str, new: str | None, kind: str
) -> None:
    def edit(doc: Doc) -> None:
        if new is None:
            del prop(doc, name)["logicalType"]
        else:
            prop(doc, name)["logicalType"] = new

    assert seen(diff(edit)) == [(kind, f"{P}.{name}.logicalType", old, new)]


def test_date_to_timestamp_widens_and_a_new_type_breaks() -> None:
    def retype(doc: Doc) -> None:
        prop(doc, "note")["logicalType"] = "timestamp"

    def as_date(doc: Doc) -> None:
        prop(doc, "note")["logicalType"] = "date"

    assert seen(diff(retype, old_edit=as_date)) == [
        ("compatible", f"{P}.note.logicalType", "date", "timestamp")
    ]
    untyped = diff(retype, old_edit=lambda d: prop(d, "note").pop("logicalType"))
    assert seen(untyped) == [("breaking", f"{P}.note.logicalType", None, "timestamp")]


# -- flags -------------------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["required", "unique", "primaryKey"])
def test_a_property_newly_required_unique_or_key_breaks(flag: str) -> None:
    result = diff(lambda d: prop(d, "note").update({flag: True}))
    assert seen(result) == [("breaking", f"{P}.note.{flag}", False, True)]


@pytest.mark.parametrize("flag", ["required", "primaryKey"])
def test_a_property_no_longer_required_or_key_is_compatible(flag: str) -> None:
    result = diff(lambda d: prop(d, "order_id").update({flag: False}))
    assert seen(result) == [("compatible", f"{P}.order_id.{flag}", True, False)]


def test_required_on_a_primary_key_changes_nothing() -> None:
    result = diff(
        lambda d: prop(d, "order_id").update(required=True),
        old_edit=lambda d: prop(d, "order_id").pop("required"),
    )
    assert seen(result) == [("compatible", f"{P}.order_id.required", False, True)]
    assert result.compatible[0].reason == "already enforced by primaryKey"


def test_tightening_a_property_whose_checks_only_warn_is_compatible() -> None:
    warn = [{"property": "shipyard.severity", "value": "warning"}]
    result = diff(
        lambda d: prop(d, "note").update(required=True),
        old_edit=lambda d: prop(d, "note").update(customProperties=warn),
    )
    assert seen(result) == [("compatible", f"{P}.note.required", False, True)]
    assert result.compatible[0].reason.endswith("(but the check only warns)")


def test_property_checks_turned_from_warning_to_error_break() -> None:
    warn = [{"property": "shipyard.severity", "value": "warning"}]
    result = diff(
        lambda d: prop(d, "note").pop("customProperties"),
        old_edit=lambda d: prop(d, "note").update(customProperties=warn),
    )
    assert seen(result) == [
        ("breaking", f"{P}.note.customProperties.shipyard.severity", "warning", "error")
    ]


# -- ranges, lengths, patterns, formats ---------------------------------------------------------

OPT = f"{P}.amount.logicalTypeOptions"
S = f"{P}.customer.logicalTypeOptions"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (options("amount", minimum=10), [("breaking", f"{OPT}.minimum", 0, 10)]),
        (options("amount", maximum=500), [("breaking", f"{OPT}.maximum", 1000, 500)]),
        (
            options("amount", minimum=None, exclusiveMinimum=0),
            [
                ("breaking", f"{OPT}.minimum", 0, None),
                ("breaking", f"{OPT}.exclusiveMinimum", None, 0),
            ],
        ),
        (
            options("amount", exclusiveMaximum=1000),
            [("breaking", f"{OPT}.exclusiveMaximum", None, 1000)],
        ),
        (options("customer", minLength=5), [("breaking", f"{S}.minLength", 3, 5)]),
        (options("customer", maxLength=20), [("breaking", f"{S}.maxLength", 40, 20)]),
        (options("customer", pattern="^CU"), [("breaking", f"{S}.pattern", "^C", "^CU")]),
        (
            options("note", pattern="^[a-z]"),
            [("breaking", f"{P}.note.logicalTypeOptions.pattern", None, "^[a-z]")],
        ),
        (
            options("created_at", format="%d.%m.%Y %H:%M"),
            [("breaking", f"{P}.created_at.logicalTypeOptions.format", None, "%d.%m.%Y %H:%M")],
        ),
    ],
    ids=[
        "minimum-raised",
        "maximum-lowered",
        "exclusive-minimum",
        "exclusive-maximum",
        "minLength-raised",
        "maxLength-lowered",
        "pattern-changed",
        "pattern-added",
        "format-added",
    ],
)
def test_a_tightened_option_breaks(edit: Edit, expected: list[Any]) -> None:
    assert seen(diff(edit)) == expected


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (options("amount", minimum=-10), [("compatible", f"{OPT}.minimum", 0, -10)]),
        (options("amount", maximum=None), [("compatible", f"{OPT}.maximum", 1000, None)]),
        (options("customer", minLength=1), [("compatible", f"{S}.minLength", 3, 1)]),
        (options("customer", maxLength=None), [("compatible", f"{S}.maxLength", 40, None)]),
        (options("customer", pattern=None), [("compatible", f"{S}.pattern", "^C", None)]),
        (
            options("amount", minimum=None, exclusiveMinimum=-1),
            [
                ("compatible", f"{OPT}.minimum", 0, None),
                ("compatible", f"{OPT}.exclusiveMinimum", None, -1),
            ],
        ),
    ],
    ids=[
        "minimum-lowered",
        "maximum-dropped",
        "minLength-lowered",
        "maxLength-dropped",
        "pattern-dropped",
        "exclusive-below-old-minimum",
    ],
)
def test_a_loosened_option_is_compatible(edit: Edit, expected: list[Any]) -> None:
    assert seen(diff(edit)) == expected


def test_dropping_a_format_breaks_because_text_is_then_parsed_as_iso() -> None:
    result = diff(
        options("created_at", format=None), old_edit=options("created_at", format="%d.%m.%Y %H:%M")
    )
    assert seen(result) == [
        ("breaking", f"{P}.created_at.logicalTypeOptions.format", "%d.%m.%Y %H:%M", None)
    ]


def test_date_bounds_compare_as_dates_from_yaml() -> None:
    text = BASE_YAML.replace("minimum: 2024-01-01", "minimum: 2024-06-01")
    result = diff_contracts(Contract.from_yaml(BASE_YAML), Contract.from_yaml(text))
    import datetime as dt

    path = f"{P}.shipped_on.logicalTypeOptions.minimum"
    assert seen(result) == [("breaking", path, dt.date(2024, 1, 1), dt.date(2024, 6, 1))]
    assert result.to_dict()["changes"][0]["old"] == "2024-01-01"
    assert json.loads(json.dumps(result.to_dict()))["counts"] == {
        "breaking": 1,
        "compatible": 0,
        "info": 1,
    }


BASE_YAML = """
apiVersion: v3.1.0
kind: DataContract
id: orders
version: 1.0.0
status: active
schema:
  - name: orders
    properties:
      - name: shipped_on
        logicalType: date
        logicalTypeOptions:
          minimum: 2024-01-01
"""


# -- quality rules -----------------------------------------------------------------------------

Q_STATUS = f"{P}.status.quality[invalidValues(validValues)]"
Q_NULLS = f"{P}.amount.quality[nullValues]"


def rule(name: str, index: int = 0) -> Callable[[Doc], Doc]:
    return lambda doc: prop(doc, name)["quality"][index]


def test_a_removed_allowed_value_breaks_and_an_added_one_is_compatible() -> None:
    result = diff(
        lambda d: rule("status")(d)["arguments"].update(validValues=["new", "paid", "refunded"])
    )
    assert seen(result) == [
        ("breaking", f"{Q_STATUS}.arguments.validValues", "shipped", None),
        ("compatible", f"{Q_STATUS}.arguments.validValues", None, "refunded"),
    ]


def test_a_value_that_newly_counts_as_missing_breaks() -> None:
    def missing(values: list[Any]) -> Edit:
        def edit(doc: Doc) -> None:
            prop(doc, "note")["quality"] = [
                {"metric": "missingValues", "arguments": {"missingValues": values}, "mustBe": 0}
            ]

        return edit

    result = diff(missing([None, "", "n/a"]), old_edit=missing([None, ""]))
    assert seen(result) == [
        ("breaking", f"{P}.note.quality[missingValues].arguments.missingValues", None, "n/a")
    ]


@pytest.mark.parametrize(
    ("threshold", "kind", "what"),
    [(1, "breaking", "tolerance tightened"), (10, "compatible", "tolerance loosened")],
)
def test_a_tolerance_compares_through_its_operator(threshold: int, kind: str, what: str) -> None:
    result = diff(lambda d: rule("amount")(d).update(mustBeLessThan=threshold))
    assert seen(result) == [
        (
            kind,
            f"{Q_NULLS}.threshold",
            {"mustBeLessThan": 5, "unit": "percent"},
            {"mustBeLessThan": threshold, "unit": "percent"},
        )
    ]
    assert result.changes[0].what == what


def test_a_raised_minimum_row_count_breaks() -> None:
    result = diff(lambda d: d["schema"][0]["quality"][0].update(mustBeGreaterThan=100))
    assert seen(result) == [
        (
            "breaking",
            "schema.orders.quality[rowCount].threshold",
            {"mustBeGreaterThan": 0, "unit": "rows"},
            {"mustBeGreaterThan": 100, "unit": "rows"},
        )
    ]


def test_a_threshold_written_another_way_for_counts_is_compatible() -> None:
    def rewrite(doc: Doc) -> None:
        doc["schema"][0]["quality"][0] = {"metric": "rowCount", "mustBeGreaterOrEqualTo": 1}

    result = diff(rewrite)
    assert [c.what for c in result.changes] == ["threshold rewritten"]
    assert result.changes[0].kind == "compatible"


def test_a_new_error_rule_breaks_and_a_new_warning_rule_does_not() -> None:
    nulls = {"metric": "nullValues", "mustBe": 0}
    error = diff(lambda d: prop(d, "note").update(quality=[nulls]))
    warning = diff(lambda d: prop(d, "note").update(quality=[{**nulls, "severity": "warning"}]))
    path = f"{P}.note.quality[nullValues]"
    assert seen(error) == [("breaking", path, None, "nullValues")]
    assert seen(warning) == [("compatible", path, None, "nullValues")]


def test_a_removed_rule_is_compatible() -> None:
    result = diff(lambda d: prop(d, "amount").pop("quality"))
    assert seen(result) == [("compatible", Q_NULLS, "nullValues", None)]


def test_a_warning_rule_turned_error_breaks_and_back_is_compatible() -> None:
    def warn(doc: Doc) -> None:
        rule("amount")(doc)["severity"] = "warning"

    def err(doc: Doc) -> None:
        rule("amount")(doc)["severity"] = "error"

    assert seen(diff(err, old_edit=warn)) == [
        ("breaking", f"{Q_NULLS}.severity", "warning", "error")
    ]
    assert seen(diff(warn)) == [("compatible", f"{Q_NULLS}.severity", "error", "warning")]


def test_a_tolerance_tightened_on_a_rule_that_now_only_warns_is_compatible() -> None:
    result = diff(lambda d: rule("amount")(d).update(mustBeLessThan=1, severity="warning"))
    assert [c.kind for c in result.changes] == ["compatible", "compatible"]
    assert [c.path for c in result.changes] == [f"{Q_NULLS}.threshold", f"{Q_NULLS}.severity"]


def test_text_rules_are_information() -> None:
    text = {"type": "text", "description": "Amounts are in cents."}
    result = diff(lambda d: prop(d, "amount")["quality"].append(text))
    key = "text:Amounts are in cents."
    assert seen(result) == [("info", f"{P}.amount.quality[{key}]", None, key)]


# -- dataset settings and service levels --------------------------------------------------------

CUSTOM = "schema.orders.customProperties.shipyard"


def custom(**values: Any) -> Edit:
    def edit(doc: Doc) -> None:
        entries = [
            {"property": f"shipyard.{k}", "value": v} for k, v in values.items() if v is not None
        ]
        doc["schema"][0]["customProperties"] = entries

    return edit


def test_forbidding_extra_columns_breaks_and_allowing_them_is_compatible() -> None:
    forbid = custom(maxQuarantineShare=0.1, allowExtraColumns=False)
    allow = custom(maxQuarantineShare=0.1)
    path = f"{CUSTOM}.allowExtraColumns"
    assert seen(diff(forbid)) == [("breaking", path, True, False)]
    assert seen(diff(allow, old_edit=forbid)) == [("compatible", path, False, True)]


@pytest.mark.parametrize(
    ("share", "kind"),
    [(0.05, "breaking"), (0.2, "compatible"), (None, "compatible")],
)
def test_a_lower_quarantine_share_breaks(share: float | None, kind: str) -> None:
    result = diff(custom(maxQuarantineShare=share))
    assert seen(result) == [(kind, f"{CUSTOM}.maxQuarantineShare", 0.1, share)]


def test_a_new_quarantine_share_breaks() -> None:
    result = diff(custom(maxQuarantineShare=0.1), old_edit=custom())
    assert seen(result) == [("breaking", f"{CUSTOM}.maxQuarantineShare", None, 0.1)]


SLA = "slaProperties.freshness(orders.created_at)"


@pytest.mark.parametrize(
    ("value", "unit", "kind", "new"),
    [(12, "h", "breaking", "12h"), (2, "d", "compatible", "2d"), (24, "h", "info", "24h")],
    ids=["stricter", "looser", "same-limit"],
)
def test_a_stricter_sla_breaks(value: int, unit: str, kind: str, new: str) -> None:
    result = diff(lambda d: d["slaProperties"][0].update(value=value, unit=unit))
    assert seen(result) == [(kind, SLA, "1d", new)]


def test_a_new_sla_breaks_and_a_removed_one_is_compatible() -> None:
    gap = {"property": "frequency", "value": 1, "unit": "h", "element": "orders.created_at"}
    added = diff(lambda d: d["slaProperties"].append(gap))
    removed = diff(lambda d: d.pop("slaProperties"))
    assert seen(added) == [("breaking", "slaProperties.frequency(orders.created_at)", None, "1h")]
    assert seen(removed) == [("compatible", SLA, "1d", None)]


# -- descriptions and versions -----------------------------------------------------------------


def test_descriptive_changes_are_information() -> None:
    def edit(doc: Doc) -> None:
        doc.update(name="All orders", status="deprecated", version="1.0.1")
        doc["team"] = [{"username": "bo", "role": "owner"}]
        doc["support"] = [{"channel": "#orders"}]
        doc["schema"][0]["description"] = "One row per order"
        prop(doc, "note")["description"] = "Free text"

    result = diff(edit)
    assert [(c.kind, c.path) for c in result.changes] == [
        ("info", "name"),
        ("info", "status"),
        ("info", "support"),
        ("info", "team"),
        ("info", "version"),
        ("info", "schema.orders.description"),
        ("info", f"{P}.note.description"),
    ]
    assert not result.is_breaking


@pytest.mark.parametrize(
    ("old", "new", "advice"),
    [
        ("1.0.0", "1.0.0", "version not bumped"),
        ("1.0.0", "1.1.0", "major version not bumped"),
        ("1.4.2", "1.4.3", "major version not bumped"),
        ("1.0.0", "2.0.0", None),
        ("0.3.0", "0.4.0", None),
        ("2024-01", "2024-02", "version not semantic"),
    ],
)
def test_a_breaking_change_expects_a_major_version(old: str, new: str, advice: str | None) -> None:
    result = diff(
        setter(remove_property("note"), lambda d: d.update(version=new)),
        old_edit=lambda d: d.update(version=old),
    )
    advised = [c for c in result.changes if c.path == "version" and c.what != "version changed"]
    assert [c.what for c in advised] == ([advice] if advice else [])
    assert all(c.kind == "info" for c in advised)


# -- output ------------------------------------------------------------------------------------


def test_summary_lists_breaking_changes_first() -> None:
    result = diff(setter(remove_property("note"), lambda d: d.update(name="All orders")))
    assert result.summary().splitlines() == [
        "orders 1.0.0 → 1.0.0: 1 breaking, 0 compatible, 2 info",
        "BREAKING:",
        f"  {P}.note: property removed ('note' → -); consumers reading it lose it",
        "INFO:",
        "  name: name changed ('Orders' → 'All orders'); "
        "descriptive: nothing is checked against it",
        "  version: version not bumped ('1.0.0' → '1.0.0'); 1 breaking change, but the version "
        "stayed the same",
    ]


def test_an_unchanged_contract_says_so() -> None:
    result = diff(lambda d: None)
    assert result.changes == []
    assert result.summary() == "orders 1.0.0 → 1.0.0: no changes"
    assert result.to_dict() == {
        "contract": "orders",
        "old_version": "1.0.0",
        "new_version": "1.0.0",
        "breaking": False,
        "counts": {"breaking": 0, "compatible": 0, "info": 0},
        "changes": [],
    }


def test_to_dict_is_json_with_every_field() -> None:
    result = diff(remove_property("note"))
    document = json.loads(json.dumps(result.to_dict()))
    assert document["breaking"] is True
    assert document["changes"][0] == {
        "kind": "breaking",
        "path": f"{P}.note",
        "what": "property removed",
        "old": "note",
        "new": None,
        "reason": "consumers reading it lose it",
    }
    assert result.changes[0] == Change(
        "breaking", f"{P}.note", "property removed", "note", None, "consumers reading it lose it"
    )


# -- properties --------------------------------------------------------------------------------

TYPES = ["string", "integer", "number", "boolean", "date", "timestamp"]
OPERATORS = [
    "mustBe",
    "mustNotBe",
    "mustBeGreaterThan",
    "mustBeGreaterOrEqualTo",
    "mustBeLessThan",
    "mustBeLessOrEqualTo",
    "mustBeBetween",
    "mustNotBeBetween",
]


@st.composite
def contracts(draw: st.DrawFn) -> Doc:
    names = draw(st.lists(st.sampled_from("abcdefghij"), min_size=1, max_size=6, unique=True))
    properties = []
    for name in names:
        entry: Doc = {"name": name, "logicalType": draw(st.sampled_from(TYPES))}
        for flag in ("required", "unique", "primaryKey"):
            if draw(st.booleans()):
                entry[flag] = True
        if entry["logicalType"] in ("integer", "number"):
            low = draw(st.integers(-100, 100))
            entry["logicalTypeOptions"] = {
                "minimum": low,
                "maximum": low + draw(st.integers(0, 50)),
            }
        if draw(st.booleans()):
            entry["quality"] = [
                {
                    "metric": "nullValues",
                    "unit": draw(st.sampled_from(["rows", "percent"])),
                    "mustBeLessThan": draw(st.integers(0, 100)),
                }
            ]
        properties.append(entry)
    doc = copy.deepcopy(BASE)
    doc["schema"] = [{"name": "orders", "properties": properties}]
    doc.pop("slaProperties")
    return doc


@settings(max_examples=60, deadline=None)
@given(contracts())
def test_a_contract_does_not_differ_from_itself(doc: Doc) -> None:
    contract = Contract.from_dict(doc)
    assert diff_contracts(contract, Contract.from_dict(copy.deepcopy(doc))).changes == []


@st.composite
def loosenings(draw: st.DrawFn) -> tuple[Doc, Doc]:
    """A contract and a copy loosened in one to four places."""
    tight = copy.deepcopy(BASE)
    minimum, maximum = draw(st.integers(0, 50)), draw(st.integers(100, 1000))
    options("amount", minimum=minimum, maximum=maximum)(tight)
    rule("amount")(tight)["mustBeLessThan"] = draw(st.integers(1, 50))
    loose = copy.deepcopy(tight)
    edits: list[Edit] = [
        options("amount", minimum=minimum - draw(st.integers(1, 10))),
        options("amount", maximum=None),
        lambda d: rule("amount")(d).update(mustBeLessThan=rule("amount")(d)["mustBeLessThan"] + 1),
        lambda d: rule("status")(d)["arguments"]["validValues"].append("lost"),
        lambda d: prop(d, "created_at").update(required=False),
        lambda d: d["slaProperties"][0].update(value=draw(st.integers(2, 9))),
        lambda d: rule("amount")(d).update(severity="warning"),
        custom(maxQuarantineShare=draw(st.sampled_from([None, 0.5]))),
        options("customer", minLength=draw(st.integers(0, 2))),
    ]
    for edit in draw(st.lists(st.sampled_from(edits), min_size=1, max_size=4, unique_by=id)):
        edit(loose)
    return tight, loose


@settings(max_examples=60, deadline=None)
@given(loosenings())
def test_loosening_is_compatible_and_tightening_back_breaks_the_same_elements(
    pair: tuple[Doc, Doc],
) -> None:
    tight, loose = (Contract.from_dict(d) for d in pair)
    forward, back = diff_contracts(tight, loose), diff_contracts(loose, tight)
    assert forward.breaking == []
    assert forward.compatible != []
    assert sorted(c.path for c in back.breaking) == sorted(c.path for c in forward.compatible)


def null_rule(operator: str, threshold: Any, unit: str) -> Edit:
    def edit(doc: Doc) -> None:
        prop(doc, "amount")["quality"] = [
            {"metric": "nullValues", operator: threshold, "unit": unit}
        ]

    return edit


# Few, close thresholds (halves included) so that edges meet: < 1 row and = 0 rows are the same.
LEVELS = st.sampled_from([0, 0.5, 1, 1.5, 2, 3, 100])
thresholds = st.tuples(st.sampled_from(OPERATORS), LEVELS, LEVELS).map(
    lambda t: (t[0], sorted(t[1:]) if "Between" in t[0] else t[1])
)


@settings(max_examples=300, deadline=None)
@given(thresholds, thresholds, st.sampled_from(["rows", "percent"]))
def test_a_tolerance_breaks_exactly_when_some_measurement_passes_before_but_not_after(
    old: tuple[str, Any], new: tuple[str, Any], unit: str
) -> None:
    # Cross-checked with the engine's own comparison over every measurement that can occur:
    # whole counts of rows, or percentages in steps finer than the thresholds.
    measurements = range(102) if unit == "rows" else [k / 4 for k in range(401)]
    witness = any(
        compare(old[0], x, old[1]) and not compare(new[0], x, new[1]) for x in measurements
    )
    result = diff(null_rule(*new, unit), old_edit=null_rule(*old, unit))
    kinds = {c.kind for c in result.changes if c.path == f"{Q_NULLS}.threshold"}
    assert kinds == (set() if old == new else {"breaking" if witness else "compatible"})


def many_properties(count: int, changed: int) -> tuple[Contract, Contract]:
    old = copy.deepcopy(BASE)
    old["schema"][0]["properties"] = [
        {
            "name": f"c{i}",
            "logicalType": "number",
            "required": i % 2 == 0,
            "logicalTypeOptions": {"minimum": 0, "maximum": 100},
            "quality": [{"metric": "nullValues", "mustBeLessThan": 5, "unit": "percent"}],
        }
        for i in range(count)
    ]
    new = copy.deepcopy(old)
    for i in range(changed):
        entry = new["schema"][0]["properties"][i * (count // changed)]
        entry["logicalTypeOptions"]["minimum"] = 1 if i % 2 else -1
    return Contract.from_dict(old), Contract.from_dict(new)


def test_two_contracts_of_200_properties_diff_quickly() -> None:
    old, new = many_properties(200, 50)
    started = time.perf_counter()
    result = diff_contracts(old, new)
    seconds = time.perf_counter() - started
    assert (len(result.breaking), len(result.compatible)) == (25, 25)
    assert seconds < 1.0  # a tenth of that is the target; benchmarks/contracts_diff.py times it
