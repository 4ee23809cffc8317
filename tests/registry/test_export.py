"""Model export: a self-contained folder, verified anywhere, refusing what it does not trust."""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from shipyard import pipeline, step
from shipyard.core.project import Project
from shipyard.errors import EvaluationError, ExportError, MaterializerError
from shipyard.registry.export import VerifyCheck, export_model, load_export, verify_export
from shipyard.registry.registry import Registry

FEATURES = ["amount", "x1", "x2"]
FILES = {
    "model.skops",
    "trusted_types.json",
    "model.json",
    "card.md",
    "card.html",
    "requirements.txt",
    "sample.parquet",
    "sample_scores.npy",
}
HGB_TYPE = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"


def rows(seed: int, count: int = 500) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=count), rng.normal(size=count)
    return pl.DataFrame(
        {
            "amount": rng.uniform(1, 200, count),
            "x1": x1,
            "x2": x2,
            "label": (x1 + 0.5 * x2 + rng.normal(scale=0.8, size=count) > 0.3).astype(np.int64),
        }
    )


@step(cache=False)
def fit_model(kind: str) -> BaseEstimator:
    data = rows(0)
    model = (
        HistGradientBoostingClassifier(max_iter=15, random_state=0)
        if kind == "hgb"
        else make_pipeline(StandardScaler(), LogisticRegression())
    )
    return model.fit(data.select(FEATURES), data["label"].to_numpy())


@pipeline
def training(kind: str = "linear"):
    return fit_model(kind)


def registered(project: Project, kind: str = "linear", **lineage: object) -> tuple[Registry, str]:
    registry = Registry(project)
    artifact = training(kind=kind).step_runs["fit_model"].outputs["output"]
    evaluation = {"threshold": 0.31, "metrics": {"overall": {"roc_auc": 0.8}}}
    version = registry.register(
        "fraud", artifact_id=artifact.id, lineage=lineage, evaluation=evaluation
    )
    return registry, version.ref


@pytest.fixture
def sample() -> pl.DataFrame:
    return rows(9, 200)


def test_export_then_verify_round_trips_a_scikit_learn_pipeline(
    project: Project, sample: pl.DataFrame, tmp_path: Path
) -> None:
    registry, ref = registered(project, objectives={"task": "binary"})
    folder = export_model(registry, ref, tmp_path / "export", sample=sample)
    meta = json.loads((folder / "model.json").read_text())

    assert {p.name for p in folder.iterdir()} == FILES | {"model.onnx"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # staging is gone
    assert (meta["name"], meta["version"], meta["threshold"]) == ("fraud", 1, 0.31)
    assert meta["features"] == FEATURES  # the names the model was fitted with
    assert meta["objectives"] == {"task": "binary"}
    assert meta["shipyard_version"] == md.version("shipyard")
    assert meta["sample"] == {"file": "sample.parquet", "rows": 200}
    assert json.loads((folder / "trusted_types.json").read_text())["types"] == []
    model = registry.load(ref)
    expected = model.predict_proba(sample.select(FEATURES))[:, 1]
    np.testing.assert_array_equal(np.load(folder / "sample_scores.npy"), expected)
    result = verify_export(folder)
    assert result.ok, result.summary()
    assert [(c.name, c.passed) for c in result.checks] == [
        ("model file", True),
        ("model loads", True),
        ("sample scores", True),
        ("requirements", True),
        ("onnx", True),
    ]


def test_the_onnx_model_gives_the_same_scores(
    project: Project, sample: pl.DataFrame, tmp_path: Path
) -> None:
    registry, ref = registered(project)
    folder = export_model(registry, ref, tmp_path / "export", sample=sample)
    onnx = json.loads((folder / "model.json").read_text())["onnx"]

    assert onnx["available"] is True and onnx["sample_rows"] == 200
    assert onnx["skl2onnx"] == md.version("skl2onnx")
    assert onnx["max_abs_difference"] < 1e-5
    result = verify_export(folder)
    assert result.max_abs_difference_onnx is not None
    assert result.max_abs_difference_onnx < 1e-5


def test_requirements_pin_the_packages_the_model_is_made_of(
    project: Project, tmp_path: Path
) -> None:
    registry, ref = registered(project)
    folder = export_model(registry, ref, tmp_path / "export")
    pins = (folder / "requirements.txt").read_text().splitlines()[1:]

    names = ["numpy", "polars", "scikit-learn", "skops"]
    assert pins == [f"{name}=={md.version(name)}" for name in names]


def test_a_model_skl2onnx_cannot_convert_is_exported_without_onnx_and_says_why(
    project: Project, sample: pl.DataFrame, tmp_path: Path
) -> None:
    registry, ref = registered(project, kind="hgb")
    folder = export_model(registry, ref, tmp_path / "export", sample=sample)
    meta = json.loads((folder / "model.json").read_text())

    assert json.loads((folder / "trusted_types.json").read_text())["types"] == [HGB_TYPE]
    if meta["onnx"]["available"]:  # a later skl2onnx converts it: then it must agree
        assert meta["onnx"]["max_abs_difference"] < 1e-5
        assert (folder / "model.onnx").is_file()
    else:
        assert meta["onnx"]["reason"].startswith("skl2onnx cannot convert this model: ")
        assert len(meta["onnx"]["reason"]) < 400  # skl2onnx's message holds the whole model
        assert not (folder / "model.onnx").exists()
    assert verify_export(folder).ok


def test_tampered_sample_scores_fail_that_check(
    project: Project, sample: pl.DataFrame, tmp_path: Path
) -> None:
    registry, ref = registered(project)
    folder = export_model(registry, ref, tmp_path / "out" / "export", sample=sample.head(50))
    scores = np.load(folder / "sample_scores.npy")
    scores[[3, 7]] += 0.25
    np.save(folder / "sample_scores.npy", scores)
    result = verify_export(folder)
    failed = [c for c in result.checks if not c.passed]

    assert not result.ok
    assert [c.name for c in failed] == ["sample scores"]
    assert failed[0].detail.startswith(
        "2 of 50 scores differ from sample_scores.npy, by up to 0.25"
    )
    assert "FAIL  sample scores: 2 of 50" in result.summary()


def test_a_trusted_list_edited_to_drop_a_needed_type_refuses_to_load(
    project: Project, tmp_path: Path
) -> None:
    registry, ref = registered(project, kind="hgb")
    folder = export_model(registry, ref, tmp_path / "export")
    (folder / "trusted_types.json").write_text(json.dumps({"types": []}))

    with pytest.raises(MaterializerError, match=f"needs the type {HGB_TYPE}, which trusted_types"):
        load_export(folder)
    with pytest.raises(MaterializerError, match=HGB_TYPE):
        verify_export(folder)


def test_a_type_outside_shipyards_prefixes_is_refused_even_if_listed(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry, ref = registered(project, kind="hgb")
    folder = export_model(registry, ref, tmp_path / "export")
    from shipyard.core import materializers

    monkeypatch.setattr(materializers, "TRUSTED_MODULE_PREFIXES", ["numpy."])
    with pytest.raises(MaterializerError, match=f"needs the type {HGB_TYPE}, which shipyard does"):
        load_export(folder)


def test_random_bytes_as_the_model_file_are_a_clear_error(project: Project, tmp_path: Path) -> None:
    registry, ref = registered(project)
    folder = export_model(registry, ref, tmp_path / "export")
    (folder / "model.skops").write_bytes(os.urandom(512))

    with pytest.raises(MaterializerError, match=r"model.skops is not a valid skops model file \(B"):
        load_export(folder)
    with pytest.raises(MaterializerError, match="not a valid skops model file"):
        verify_export(folder)


def test_a_swapped_model_file_fails_the_digest_scores_and_onnx_checks(
    project: Project, sample: pl.DataFrame, tmp_path: Path
) -> None:
    registry, ref = registered(project)
    other = registered(project, kind="hgb")[1]
    folder = export_model(registry, ref, tmp_path / "a", sample=sample)
    second = export_model(registry, other, tmp_path / "b")
    (folder / "model.skops").write_bytes((second / "model.skops").read_bytes())
    (folder / "trusted_types.json").write_bytes((second / "trusted_types.json").read_bytes())
    result = verify_export(folder)

    assert not result.ok
    assert [c.name for c in result.checks if not c.passed] == [
        "model file",
        "sample scores",
        "onnx",
    ]


def test_a_non_empty_folder_is_refused_and_nothing_is_written(
    project: Project, tmp_path: Path
) -> None:
    registry, ref = registered(project)
    target = tmp_path / "out" / "export"
    target.mkdir(parents=True)
    (target / "notes.txt").write_text("mine")

    with pytest.raises(ExportError, match="already exists and is not an empty folder"):
        export_model(registry, ref, target)
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    assert [p.name for p in target.parent.iterdir()] == ["export"]


def test_an_empty_folder_is_filled(project: Project, tmp_path: Path) -> None:
    registry, ref = registered(project)
    (tmp_path / "export").mkdir()
    folder = export_model(registry, ref, tmp_path / "export")

    assert {p.name for p in folder.iterdir()} >= {"model.skops", "model.json", "card.md"}


def test_a_failure_midway_leaves_nothing_behind(
    project: Project, tmp_path: Path, sample: pl.DataFrame
) -> None:
    registry, ref = registered(project)
    out = tmp_path / "out"
    out.mkdir()

    with pytest.raises(EvaluationError, match=r"lacks the model's input columns \['x2'\]"):
        export_model(registry, ref, out / "export", sample=sample.drop("x2"))
    assert list(out.iterdir()) == []


def test_features_come_from_the_argument_then_the_lineage(
    project: Project, sample: pl.DataFrame, tmp_path: Path
) -> None:
    registry, ref = registered(project, features=FEATURES)
    folder = export_model(registry, ref, tmp_path / "a", sample=sample, features=FEATURES)
    meta = json.loads((folder / "model.json").read_text())

    assert meta["features"] == FEATURES
    assert pl.read_parquet(folder / "sample.parquet").columns == FEATURES  # no label kept


def test_the_card_travels_with_the_model(project: Project, tmp_path: Path) -> None:
    registry, ref = registered(project)
    folder = export_model(registry, ref, tmp_path / "export")

    assert (folder / "card.md").read_text().startswith("# Model card: fraud:1\n")
    assert "<title>Model card: fraud:1</title>" in (folder / "card.html").read_text()


def test_an_export_without_sample_verifies_what_it_can(project: Project, tmp_path: Path) -> None:
    registry, ref = registered(project)
    folder = export_model(registry, ref, tmp_path / "export")
    result = verify_export(folder)

    assert result.ok
    assert [(c.name, c.passed, c.warning) for c in result.checks] == [
        ("model file", True, False),
        ("model loads", True, False),
        ("requirements", True, False),
        ("onnx", False, True),
    ]


def test_a_folder_that_is_not_an_export_is_named(tmp_path: Path) -> None:
    with pytest.raises(MaterializerError, match="is not a model export"):
        verify_export(tmp_path)


def test_without_skl2onnx_the_export_says_how_to_get_onnx(
    project: Project, sample: pl.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry, ref = registered(project)
    monkeypatch.setitem(sys.modules, "skl2onnx", None)  # what an uninstalled package does
    folder = export_model(registry, ref, tmp_path / "export", sample=sample)
    onnx = json.loads((folder / "model.json").read_text())["onnx"]

    assert onnx == {
        "available": False,
        "reason": "skl2onnx is not installed: pip install 'shipyard[onnx]'",
    }
    assert verify_export(folder).ok


def test_without_onnxruntime_verify_warns_that_onnx_was_not_checked(
    project: Project, sample: pl.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry, ref = registered(project)
    folder = export_model(registry, ref, tmp_path / "export", sample=sample)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    result = verify_export(folder)

    assert result.ok and result.max_abs_difference_onnx is None
    assert result.checks[-1] == VerifyCheck(
        "onnx", False, "onnxruntime is not installed: pip install 'shipyard[onnx]'", warning=True
    )
    assert "warn  onnx: onnxruntime is not installed" in result.summary()
