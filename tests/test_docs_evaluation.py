"""docs/evaluation.md tells the truth: its Python blocks run, in order, as one script in a
fresh project, and each prints exactly the ```text block shown under it; its TOML tables,
threshold examples, metric table and links agree with the code.

A block preceded by ``<!-- docs-test: skip ... -->`` is an excerpt and is not run.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import runpy
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shipyard.evaluation.gate import run_gate
from shipyard.evaluation.objectives import (
    LOWER_IS_BETTER,
    METRICS,
    DecisionValues,
    Objectives,
    Threshold,
)
from shipyard.registry.export import verify_export
from tests.conftest import REPO, write_project

DOC = REPO / "docs" / "evaluation.md"
SKIP = "<!-- docs-test: skip"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
MARK = "<<<docs-test block {}>>>"
LINK = re.compile(r"\]\(([^)#\s]+\.md)(?:#([^)\s]+))?\)")

# skl2onnx and onnx call NumPy and protobuf APIs that newer releases deprecate, when the
# example exports its model; the warnings are theirs and say nothing about the page.
pytestmark = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning:skl2onnx", "ignore::DeprecationWarning:onnx"
)


@dataclass(frozen=True)
class Fence:
    lang: str
    body: str
    start: int
    end: int
    excerpt: bool


@dataclass(frozen=True)
class DocRun:
    namespace: dict[str, Any]
    printed: list[str]
    root: Path


def fences(text: str) -> list[Fence]:
    """Every fenced block of the page, in order."""
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip().splitlines()
        excerpt = bool(before) and before[-1].startswith(SKIP)
        found.append(Fence(match.group(1), match.group(2), match.start(), match.end(), excerpt))
    return found


def runnable(text: str) -> list[tuple[str, str]]:
    """Each Python block that runs, with the output shown right under it ("" if none)."""
    blocks = fences(text)
    result = []
    for index, block in enumerate(blocks):
        if block.lang != "python" or block.excerpt:
            continue
        after = blocks[index + 1] if index + 1 < len(blocks) else None
        shown = after is not None and after.lang == "text"
        if shown and after is not None and not text[block.end : after.start].strip():
            result.append((block.body, after.body))
        else:
            result.append((block.body, ""))
    return result


def table_after(text: str, anchor: str) -> list[dict[str, str]]:
    """The first Markdown table after ``anchor``, as one dict per row."""
    assert anchor in text, f"docs/evaluation.md no longer says {anchor!r}"
    lines = text[text.index(anchor) :].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    header, body = rows[0], rows[2:]  # rows[1] is the --- line
    return [dict(zip(header, row, strict=True)) for row in body]


def section(text: str, heading: str) -> str:
    """The text of the ``## heading`` section, up to the next ``## ``."""
    start = text.index(f"\n## {heading}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    kept = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return kept.replace(" ", "-")


@pytest.fixture(scope="module")
def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def doc_run(doc_text: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DocRun]:
    """The page's blocks run as one script inside a fresh project: its globals and, per
    block, what it printed."""
    root = write_project(tmp_path_factory.mktemp("evaluation-doc") / "project", name="docs")
    script = root.parent / "docs_evaluation_example.py"  # a file: steps need their source
    blocks = runnable(doc_text)
    script.write_text(
        "\n".join(f"print({MARK.format(i)!r})\n{code}" for i, (code, _) in enumerate(blocks)),
        encoding="utf-8",
    )
    out = io.StringIO()
    namespace: dict[str, Any] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        for name in list(os.environ):
            if name.startswith("SHIPYARD_"):
                patch.delenv(name)
        try:
            with contextlib.redirect_stdout(out):
                namespace = runpy.run_path(str(script))
            parts = re.split(r"^<<<docs-test block \d+>>>\n", out.getvalue(), flags=re.M)
            yield DocRun(namespace, parts[1:], root)
        finally:
            registry = namespace.get("registry")
            if registry is not None and registry.project._metadata is not None:
                registry.project.metadata.close()


def test_every_block_prints_the_output_shown_under_it(doc_run: DocRun, doc_text: str) -> None:
    expected = [shown for _, shown in runnable(doc_text)]
    assert len(doc_run.printed) == len(expected)
    for index, (printed, shown) in enumerate(zip(doc_run.printed, expected, strict=True)):
        assert printed == shown, f"block {index + 1} printed something else"
    assert sum(bool(shown) for shown in expected) >= 12


def test_the_example_objectives_in_toml_and_python_are_equal(
    doc_run: DocRun, doc_text: str
) -> None:
    example = section(doc_text, "4. A worked example")
    (toml,) = [f.body for f in fences(example) if f.lang == "toml"]
    read = Objectives.from_table(tomllib.loads(toml)["objectives"])
    assert read == doc_run.namespace["objectives"]
    assert Objectives.from_table(read.to_dict()) == read


def test_every_objectives_table_of_the_page_is_valid(doc_text: str) -> None:
    tables = [f.body for f in fences(doc_text) if f.lang == "toml"]
    assert len(tables) == 2
    for table in tables:
        objectives = Objectives.from_table(tomllib.loads(table)["objectives"])
        assert objectives.thresholds and objectives.values is not None


def test_the_threshold_examples_pass_and_fail_as_the_page_says(doc_text: str) -> None:
    rows = table_after(doc_text, "Some examples, each checked by this page's test")
    assert len(rows) == 10
    for row in rows:
        threshold = Threshold(**tomllib.loads(f"t = {{ {row['threshold'].strip('`')} }}")["t"])
        metric = threshold.metric
        candidate = {"overall": {metric: float(row["candidate"])}}
        baseline = {"overall": {metric: float(row["baseline"])}} if row["baseline"] else None
        objectives = Objectives(values=DecisionValues(), thresholds=[threshold])
        gate = run_gate(objectives, candidate, baseline)
        assert not any(check.skipped for check in gate.checks)
        assert gate.passed == (row["result"] == "passes"), row


def test_the_metrics_table_is_the_list_the_code_knows(doc_text: str) -> None:
    rows = table_after(doc_text, "### Known metrics")
    assert [row["metric"].strip("`") for row in rows] == list(METRICS)
    lower = {row["metric"].strip("`") for row in rows if row["better"] == "lower"}
    assert lower == LOWER_IS_BETTER
    assert {row["better"] for row in rows} == {"higher", "lower"}


def test_the_example_leaves_a_report_production_on_2_and_a_verified_export(
    doc_run: DocRun,
) -> None:
    report = (doc_run.root / "report.html").read_text(encoding="utf-8")
    assert report.startswith("<!DOCTYPE html>") and "(gate passed)" in report
    registry = doc_run.namespace["registry"]
    assert registry.get("fraud@production").version == 2
    versions = registry.versions("fraud")
    assert [v.version for v in versions] == [1, 2, 3]
    assert versions[0].artifact_id == versions[2].artifact_id  # the page says: a cache hit
    events = registry.history("fraud", "production")
    assert [(e.action, e.forced) for e in events] == [
        ("set", False),
        ("moved", False),
        ("moved", True),
        ("rollback", False),
        ("rollback", False),
        ("moved", False),
    ]
    result = verify_export(doc_run.root / "export" / "fraud")
    assert result.ok and result.max_abs_difference_onnx is not None


def test_the_demo_objectives_are_the_ones_the_page_describes(doc_text: str) -> None:
    toml = tomllib.loads((REPO / "examples" / "fraud" / "shipyard.toml").read_text("utf-8"))
    fraud = Objectives.from_table(toml["objectives"])
    assert fraud.values is not None
    assert (fraud.values.false_negative, fraud.values.false_positive) == ("-(amount + 15)", -5.0)
    bounds = {(t.metric, t.slice, t.change, t.lower, t.limit) for t in fraud.thresholds}
    assert bounds == {
        ("recall", None, None, 0.5, None),
        ("recall", "large", None, 0.6, None),
        ("value_per_1000", None, "relative", None, -0.02),
        ("roc_auc", None, "absolute", None, -0.01),
    }
    assert [(s.name, s.where) for s in fraud.slices] == [("large", "amount >= 500")]
    assert fraud.fairness is not None
    assert fraud.fairness.sensitive == ("country",)
    assert [(f.metric, f.max_difference) for f in fraud.fairness.limits] == [("fpr", 0.25)]
    assert fraud.latency_ms_p99 == 50.0
    demo = section(doc_text, "7. End to end: the fraud demo")
    for fact in ("-(amount + 15)", "0.5 overall and 0.6 on payments of 500 EUR", "2%", "50 ms"):
        assert fact in demo.replace("\n", " ")


def test_the_page_is_linked_and_its_links_resolve(doc_text: str) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "(docs/evaluation.md)" in readme
    (toml,) = [f.body for f in fences(readme) if f.lang == "toml"]
    assert len(Objectives.from_table(tomllib.loads(toml)["objectives"]).thresholds) == 2
    assert "(evaluation.md)" in (REPO / "docs" / "concepts.md").read_text(encoding="utf-8")
    links = LINK.findall(doc_text)
    assert any(target == "benchmarks.md" and anchor for target, anchor in links)
    for target, anchor in links:
        page = DOC.parent / target
        assert page.is_file(), target
        if anchor:
            headings = re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), re.M)
            assert anchor in {slug(h) for h in headings}, f"{target}#{anchor}"
