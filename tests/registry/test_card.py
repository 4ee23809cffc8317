"""Model cards: what they show for a gated, evaluated version, and what they never invent."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from shipyard import Run, pipeline, step
from shipyard.core.project import Project
from shipyard.errors import ModelNotFoundError
from shipyard.evaluation.evaluate import evaluate
from shipyard.evaluation.gate import run_gate
from shipyard.evaluation.objectives import (
    DecisionValues,
    Fairness,
    FairnessLimit,
    Objectives,
    Slice,
    Threshold,
)
from shipyard.registry.card import ModelCard, model_card
from shipyard.registry.registry import Registry

FEATURES = ["amount", "x1", "x2"]
ATTACK = "<script>alert(1)</script>"
OBJECTIVES = Objectives(
    values=DecisionValues(true_positive=100, false_positive=-15, false_negative="-(amount + 15)"),
    thresholds=[Threshold(metric="roc_auc", lower=0.5), Threshold(metric="log_loss", upper=1e-4)],
    slices=[Slice(name="large", where="amount >= 100")],
    fairness=Fairness(
        sensitive=["country"], limits=[FairnessLimit(metric="selection_rate", max_difference=1.0)]
    ),
)
LINEAGE = {
    "contracts": {"transactions": "1.2.0"},
    "training_window": {"start": "2025-01-01", "end": "2025-06-30"},
    "feature_views": {"card_spend": 3, "merchant_risk": 1},
    "features": FEATURES,
    "limits": "not for card-present payments",
}


def shown(value: float) -> str:
    """How the card writes a number: 4 significant digits, whole from 10,000 up."""
    return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:.4g}"


def rows(seed: int, count: int = 600) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=count), rng.normal(size=count)
    return pl.DataFrame(
        {
            "amount": rng.uniform(1, 200, count),
            "x1": x1,
            "x2": x2,
            "country": rng.choice(["DE", "FR"], count),
            "label": (x1 + 0.5 * x2 + rng.normal(scale=0.8, size=count) > 0.3).astype(np.int64),
        }
    )


@step(cache=False)
def fit_model(seed: int) -> Pipeline:
    data = rows(seed)
    model = make_pipeline(StandardScaler(), LogisticRegression())
    return model.fit(data.select(FEATURES), data["label"].to_numpy())


@pipeline
def training(seed: int = 3):
    return fit_model(seed)


@pytest.fixture
def owned(project_dir: Path) -> Iterator[Project]:
    """A project whose [project] table states its owner, contacts and purpose."""
    (project_dir / "shipyard.toml").write_text(
        '[project]\nname = "payments"\nowner = "risk"\n'
        'contacts = ["risk@example.com", "#risk-oncall"]\n'
        'description = "Scores card payments for fraud before they are authorised."\n',
        encoding="utf-8",
    )
    found = Project.discover(project_dir)
    yield found
    if found._metadata is not None:
        found._metadata.close()


@pytest.fixture
def run(owned: Project) -> Run:
    return training(seed=3)


def _register(registry: Registry, run: Run, **kwargs: Any) -> str:
    artifact = run.step_runs["fit_model"].outputs["output"]
    return registry.register("fraud", artifact_id=artifact.id, **kwargs).ref


def _evaluated(registry: Registry, run: Run) -> tuple[str, dict[str, Any], dict[str, Any]]:
    model = run.value("fit_model")
    found = evaluate(model, rows(7, 1200), OBJECTIVES, features=FEATURES, label="label")
    evaluation = found.to_dict()
    ref = _register(registry, run, lineage=LINEAGE, evaluation=evaluation, description="v1")
    gate = run_gate(OBJECTIVES, evaluation["metrics"], None)
    registry.record_gate("fraud", 1, {"passed": True, "checks": []}, passed=True)  # older
    registry.record_gate("fraud", 1, gate.to_dict(), passed=gate.passed)
    return ref, evaluation, gate.to_dict()


def test_the_card_of_an_evaluated_gated_version_shows_what_was_recorded(
    owned: Project, run: Run
) -> None:
    registry = Registry(owned)
    ref, evaluation, _ = _evaluated(registry, run)
    overall = evaluation["metrics"]["overall"]
    text = model_card(registry, ref).markdown()

    assert text.startswith("# Model card: fraud:1\n")
    for line in [
        "- **Owner team:** risk",
        "- **Contacts:** risk@example.com, #risk-oncall",
        "- **Intended use:** Scores card payments for fraud before they are authorised.",
        "- **This version:** v1",
        "- **Known limits:** not for card-present payments",
        "| transactions | 1.2.0 |",
        "- **Training window:** 2025-01-01 to 2025-06-30",
        r"| card\_spend | 3 |",
        "- **Input features:** amount, x1, x2",
        f"| ROC AUC | {shown(overall['roc_auc'])} |",
        f"| Recall | {overall['recall'] * 100:.1f}% |",
        f"- **Threshold:** {evaluation['threshold']:.4g}, tuned on the validation rows",
        f"- **Value per 1,000 at 0.5:** {shown(overall['value_per_1000_at_0_5'])}",
        f"- **Value per 1,000 at {evaluation['threshold']:.4g}:** "
        f"{shown(overall['value_per_1000'])}",
        "> **Gate FAILED: 1 of 3 checks**",
        "- **Baseline:** none",
        "shipyard runs reproduce " + run.id,
        '  "seed": 3',
        f"- **Training run:** {run.id}",
        "- **Git commit:** not recorded",
    ]:
        assert line in text, line
    large = evaluation["metrics"]["slices"]["large"]
    assert f"| large | {large['count']:,} | {large['positives']:,} | " in text
    failed = r"| value | log\_loss | overall | "
    assert failed in text and "| <= 0.0001 |" in text


def test_the_fairness_table_lists_each_group_and_the_gaps(owned: Project, run: Run) -> None:
    registry = Registry(owned)
    ref, evaluation, _ = _evaluated(registry, run)
    country = evaluation["metrics"]["groups"]["country"]
    text = model_card(registry, ref).markdown()

    assert "| country group | rows | selection rate | TPR | FPR |" in text
    for group in ("DE", "FR"):
        row = country["rows"][group]
        rates = " | ".join(f"{row[k] * 100:.1f}%" for k in ("selection_rate", "tpr", "fpr"))
        assert f"| {group} | {row['count']:,} | {rates} |" in text
    gap, ratio = country["difference"]["selection_rate"], country["ratio"]["selection_rate"]
    assert rf"| selection\_rate | {shown(gap)} | {shown(ratio)} |" in text


def test_the_newest_gate_record_is_the_one_shown(owned: Project, run: Run) -> None:
    registry = Registry(owned)
    ref, _, gate = _evaluated(registry, run)
    card = model_card(registry, ref)

    assert card.gate is not None and card.gate["record"] == gate
    assert card.gate["id"] == registry.gates("fraud", 1)[0]["id"]


def test_a_version_without_evaluation_gate_or_lineage_says_so(project: Project) -> None:
    registry = Registry(project)
    artifact = training(seed=1).step_runs["fit_model"].outputs["output"]
    ref = registry.register("fraud", artifact_id=artifact.id).ref
    card = model_card(registry, ref)
    text = card.markdown()

    assert text.count("*Not evaluated: this version was registered without an evaluation.*") == 3
    for line in [
        "- **Owner team:** tests",
        "- **Contacts:** not stated",
        "- **Intended use:** not stated",
        "- **This version:** not stated",
        "- **Known limits:** not stated",
        "- **Data contracts:** not recorded",
        "- **Training window:** not recorded",
        "- **Feature views:** not recorded",
        "*No gate record for this version.*",
        f"- **Artifact digest:** {artifact.digest}",
        f"- **Step run:** fit\\_model ({artifact.step_run_id})",
    ]:
        assert line in text, line
    assert card.evaluation is None and card.gate is None
    assert "Not evaluated" in card.html()


def test_a_run_that_is_not_in_the_project_is_named_not_invented(project: Project) -> None:
    registry = Registry(project)
    artifact = training(seed=1).step_runs["fit_model"].outputs["output"]
    ref = registry.register(
        "fraud", artifact_id=artifact.id, run_id="f" * 32, lineage={"git_commit": "abc123"}
    ).ref
    text = model_card(registry, ref).markdown()

    assert f"- **Training run:** {'f' * 32}" in text
    assert "- **Run record:** not in this project's metadata store" in text
    assert "- **Git commit:** abc123 (from the lineage)" in text
    assert "Cannot be rerun from here: its run is not in this project." in text
    assert "shipyard runs reproduce" not in text


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_recorded_text_is_escaped_in_html_and_markdown(owned: Project, run: Run) -> None:
    registry = Registry(owned)
    lineage = {"contracts": {ATTACK: "1 | 2"}, "limits": ATTACK}
    ref = _register(registry, run, description=ATTACK, lineage=lineage)
    card = model_card(registry, ref)
    page = _Page()
    page.feed(card.html())

    assert "script" not in page.tags and "<script" not in card.html()
    assert page.text.count(ATTACK) == 3  # description, contract and limits, shown as text
    text = card.markdown()
    assert r"- **This version:** \<script>alert(1)\</script>" in text
    assert r"| \<script>alert(1)\</script> | 1 \| 2 |" in text
    assert not re.search(r"(?<!\\)<[A-Za-z/!?]", text)  # no "<" that could open a tag


def test_the_html_page_is_self_contained(owned: Project, run: Run) -> None:
    registry = Registry(owned)
    ref, _, _ = _evaluated(registry, run)
    page = model_card(registry, ref).html()

    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert not re.search(r"<(script|link|img|iframe)\b|https?://", page)
    assert '<div class="verdict fail"><h3 class="fail">Gate FAILED: 1 of 3 checks</h3>' in page


def test_to_dict_is_plain_json_with_every_fact(owned: Project, run: Run) -> None:
    registry = Registry(owned)
    ref, evaluation, gate = _evaluated(registry, run)
    card = model_card(registry, ref)
    found = card.to_dict()

    assert json.loads(json.dumps(found)) == found
    assert set(found) == set(ModelCard.__dataclass_fields__)
    assert found["project"]["contacts"] == ["risk@example.com", "#risk-oncall"]
    assert found["evaluation"]["threshold"] == evaluation["threshold"]
    assert found["gate"]["record"] == gate
    assert found["run"]["params"] == {"seed": 3}
    assert found["step_run"]["name"] == "fit_model"


def test_an_unknown_reference_names_what_exists(owned: Project, run: Run) -> None:
    registry = Registry(owned)
    _register(registry, run)
    with pytest.raises(ModelNotFoundError, match="fraud"):
        model_card(registry, "fraud:2")
