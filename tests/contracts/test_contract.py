"""Reading and writing contracts: valid ODCS in, valid ODCS out, clear errors otherwise."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from open_data_contract_standard.model import OpenDataContractStandard

from shipyard.contracts import Contract
from shipyard.errors import ContractError
from tests.contracts.test_validation import BASE

EXAMPLE = Path(__file__).parents[2] / "examples" / "fraud" / "contracts" / "transactions.yaml"


def parse(edit: Any) -> Contract:
    data = copy.deepcopy(BASE)
    edit(data)
    return Contract.from_dict(data, source="c.yaml")


def test_the_demo_contract_round_trips_and_is_valid_odcs() -> None:
    contract = Contract.load(EXAMPLE)
    written = contract.to_dict()

    OpenDataContractStandard.model_validate(written)
    again = Contract.from_yaml(contract.to_yaml())
    assert again.to_dict() == written
    assert [p.name for p in again.dataset().properties][:3] == [
        "transaction_id",
        "customer_id",
        "merchant_id",
    ]
    assert again.dataset().max_quarantine_share == 0.05
    assert written["team"]["name"] == "payments-platform"


def test_a_contract_built_in_code_is_valid_odcs() -> None:
    from shipyard.contracts import Property, QualityRule, SchemaObject

    contract = Contract(
        id="orders",
        version="0.1.0",
        status="draft",
        schema=[
            SchemaObject(
                "orders",
                [
                    Property("id", "string", required=True, primary_key=True),
                    Property(
                        "total",
                        "number",
                        options={"minimum": 0},
                        quality=[
                            QualityRule(
                                metric="nullValues",
                                operator="mustBeLessThan",
                                threshold=5,
                                unit="percent",
                                column="total",
                            )
                        ],
                    ),
                ],
            )
        ],
    )
    OpenDataContractStandard.model_validate(contract.to_dict())
    assert Contract.from_yaml(contract.to_yaml()).to_dict() == contract.to_dict()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [1, 2", "is not valid YAML"),
        ("- just\n- a list", "is not an ODCS contract: expected a YAML mapping"),
        ("kind: DataContract\nid: x\nversion: 1\nstatus: active", "apiVersion: is required"),
        (
            "apiVersion: v2.2.0\nkind: DataContract\nid: x\nversion: 1\nstatus: a",
            "must be an ODCS v3 version",
        ),
    ],
)
def test_broken_documents_are_explained(text: str, message: str) -> None:
    with pytest.raises(ContractError, match=message):
        Contract.from_yaml(text, source="c.yaml")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: d["schema"][0]["properties"][1]["logicalTypeOptions"].update(minimum=2000),
            "contradicts itself: minimum 2000 is above maximum 1000",
        ),
        (
            lambda d: d["schema"][0]["properties"][1].update(logicalType="money"),
            "logicalType: must be one of string, date",
        ),
        (
            lambda d: d["schema"][0].update(
                quality=[
                    {
                        "metric": "duplicateValues",
                        "mustBe": 0,
                        "arguments": {"properties": ["nope"]},
                    }
                ]
            ),
            "names the property 'nope', which the dataset does not have",
        ),
        (
            lambda d: d["schema"][0]["properties"][2]["quality"][0].update(mustBeLessThan=3),
            "needs exactly one operator",
        ),
        (
            lambda d: d["schema"][0]["properties"][2]["quality"][0].update(metric="freshValues"),
            "metric: must be one of nullValues",
        ),
        (
            lambda d: d["schema"][0]["properties"][1]["logicalTypeOptions"].update(pattern="(["),
            "pattern: is not a valid regular expression",
        ),
        (
            lambda d: d["schema"][0]["properties"][0].update(items={"logicalType": "string"}),
            "schema.transactions.properties.id.items: nested structures are not enforced",
        ),
        (lambda d: d.update(shipyardMagic=True), "shipyardMagic: is not supported by shipyard"),
        (
            lambda d: d["schema"][0]["properties"][1]["logicalTypeOptions"].update(multipleOf=5),
            "logicalTypeOptions.multipleOf: is not supported",
        ),
    ],
)
def test_contracts_that_cannot_be_enforced_name_the_element(edit: Any, message: str) -> None:
    with pytest.raises(ContractError, match=message) as caught:
        parse(edit)
    assert str(caught.value).startswith("c.yaml: ")


def test_an_unsupported_element_can_be_marked_to_skip() -> None:
    def skipped(data: dict[str, Any]) -> None:
        data["schema"][0]["properties"][0]["items"] = {"logicalType": "string"}
        data["customProperties"] = [
            {"property": "shipyard.skip", "value": ["schema.transactions.properties.id.items"]}
        ]

    contract = parse(skipped)
    assert contract.skip == ["schema.transactions.properties.id.items"]


def test_descriptive_elements_are_kept_as_written() -> None:
    def described(data: dict[str, Any]) -> None:
        data["support"] = [{"channel": "#data", "tool": "slack"}]
        data["schema"][0]["properties"][0]["classification"] = "internal"

    written = parse(described).to_dict()
    assert written["support"] == [{"channel": "#data", "tool": "slack"}]
    assert written["schema"][0]["properties"][0]["classification"] == "internal"


def test_a_multi_dataset_contract_needs_the_dataset_named() -> None:
    def two(data: dict[str, Any]) -> None:
        data["schema"].append({"name": "refunds", "properties": [{"name": "id"}]})

    contract = parse(two)
    with pytest.raises(ContractError, match="has 2 datasets"):
        contract.dataset()
    assert contract.dataset("refunds").name == "refunds"


def test_loading_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="No contract file at"):
        Contract.load(tmp_path / "nope.yaml")


def test_the_yaml_written_is_plain_and_ordered() -> None:
    text = Contract.load(EXAMPLE).to_yaml()
    first_keys = [line.split(":")[0] for line in text.splitlines()[:5]]
    assert first_keys == ["apiVersion", "kind", "id", "version", "status"]
    assert yaml.safe_load(text)["schema"][0]["name"] == "transactions"
