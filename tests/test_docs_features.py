"""docs/features.md tells the truth: its Python blocks run, in order, as one script, and
its tables and printed outputs are what that script produces.

A block preceded by ``<!-- docs-test: skip ... -->`` is an excerpt and is not run.
"""

from __future__ import annotations

import datetime as dt
import re
import runpy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from shipyard.core.project import Project
from shipyard.features import FeatureStore
from tests.conftest import REPO

DOC = REPO / "docs" / "features.md"
SKIP = "<!-- docs-test: skip"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
PRINTED = re.compile(r"^print\(.*\)  # (.*)$", re.MULTILINE)


def python_blocks(text: str) -> list[str]:
    """The doc's ```python blocks, without the ones marked as excerpts."""
    blocks = []
    for match in BLOCK.finditer(text):
        before = text[: match.start()].rstrip().splitlines()
        if before and before[-1].startswith(SKIP):
            continue
        blocks.append(match.group(1))
    return blocks


def table_after(text: str, anchor: str) -> list[dict[str, str]]:
    """The first Markdown table after ``anchor``, as one dict per row."""
    assert anchor in text, f"docs/features.md no longer says {anchor!r}"
    lines = text[text.index(anchor) :].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    header, rows = table[0], table[2:]  # table[1] is the --- line
    return [dict(zip(header, row, strict=True)) for row in rows]


def shown(value: Any) -> str:
    """A value as the doc's tables write it."""
    if value is None:
        return "null"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def columns(table: list[dict[str, str]], names: list[str]) -> list[list[str]]:
    return [[row[name] for name in names] for row in table]


def frame_cells(frame: pl.DataFrame, names: list[str]) -> list[list[str]]:
    return [[shown(value) for value in row] for row in frame.select(names).rows()]


@pytest.fixture
def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


@pytest.fixture
def doc_run(
    project: Project,
    doc_text: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[tuple[dict[str, Any], list[str]]]:
    """The doc's blocks run as one script inside a fresh project: its globals, its output."""
    opened: list[FeatureStore] = []
    original = FeatureStore.__init__

    def recording(self: FeatureStore, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        opened.append(self)

    monkeypatch.setattr(FeatureStore, "__init__", recording)
    script = tmp_path / "docs_features_example.py"  # a file, so transforms have a source
    script.write_text("\n".join(python_blocks(doc_text)), encoding="utf-8")
    try:
        namespace = runpy.run_path(str(script))
        yield namespace, capsys.readouterr().out.splitlines()
    finally:
        for store in opened:
            store.online.close()
            if store._project is not None and store._project is not project:
                store.project.metadata.close()


def test_the_worked_example_gives_the_training_frame_of_the_doc(
    doc_run: tuple[dict[str, Any], list[str]], doc_text: str
) -> None:
    namespace, _ = doc_run
    history = table_after(doc_text, "The history, as a table")
    names = ["customer_id", "event_timestamp", "created", "orders_7d"]
    assert columns(history, names) == frame_cells(namespace["history"], names)

    train = table_after(doc_text, "The training frame, with the reason")
    names = ["customer_id", "event_timestamp", "is_fraud", "orders_7d"]
    assert namespace["train"].columns == names
    assert columns(train, names) == frame_cells(namespace["train"], names)
    assert columns(train, ["orders_7d"]) == [["6"], ["null"], ["null"], ["null"], ["4"]]


def test_the_online_values_are_those_of_the_doc(
    doc_run: tuple[dict[str, Any], list[str]], doc_text: str
) -> None:
    online = doc_run[0]["online"]
    table = table_after(doc_text, "print(online.status)")
    got = [
        [shown(key), shown(value), status, shown(event)]
        for key, value, status, event in zip(
            online.to_dict()["customer_id"],
            online.to_dict()["orders_7d"],
            online.status["customer_stats"],
            online.event_times("customer_stats"),
            strict=True,
        )
    ]
    names = ["customer_id", "orders_7d", "status", "event time of the value"]
    assert columns(table, names) == got
    assert [row[2] for row in got] == ["expired", "found", "unknown"]


def test_as_of_just_before_the_event_training_and_serving_agree(
    doc_run: tuple[dict[str, Any], list[str]], doc_text: str
) -> None:
    namespace, _ = doc_run
    before, at = namespace["before"], namespace["at"]
    table = table_after(doc_text, "Here is the effect on three payments")
    assert [row["payment"] for row in table] == [
        t.strftime("%H:%M") for t in before["event_timestamp"]
    ]
    names = ["amount", "count_1h", "amount_sum_1h"]
    assert columns(table, names) == frame_cells(before, names)
    assert [row["amount_sum_1h as of t"] for row in table] == [
        shown(v) for v in at["amount_sum_1h"]
    ]
    served = namespace["served"].to_dict()
    last = before.row(-1, named=True)
    assert served["count_1h"] == [last["count_1h"]] == [2]
    assert served["amount_sum_1h"] == [last["amount_sum_1h"]] == [55.0]


def test_every_printed_output_is_the_one_written_next_to_it(
    doc_run: tuple[dict[str, Any], list[str]], doc_text: str
) -> None:
    expected = [
        comment
        for block in python_blocks(doc_text)
        for comment in PRINTED.findall(block)
        if comment.startswith(("{", "[", "("))
    ]
    printed = doc_run[1]
    assert len(expected) == len(printed) == 4
    assert printed == expected


def test_the_concept_definitions_compute_what_their_schema_says(
    doc_run: tuple[dict[str, Any], list[str]], project: Project
) -> None:
    namespace, _ = doc_run
    orders = pl.DataFrame(
        {
            "buyer": [7, 7, 7],
            "ordered_at": [
                dt.datetime(2024, 3, 1, 10),
                dt.datetime(2024, 3, 2, 9),
                dt.datetime(2024, 3, 2, 11),
            ],
            "amount": [10.0, 30.0, 5.0],
        }
    )
    rows = pl.DataFrame(
        {
            "customer_id": [7, 8],
            "event_timestamp": [dt.datetime(2024, 3, 2, 12), dt.datetime(2024, 3, 2, 12)],
            "amount": [90.0, 10.0],
        }
    )
    store = FeatureStore([namespace["customer_spending"], namespace["order"]], project=project)
    try:
        frame = store.training_frame(
            rows, ["customer_spending", "order"], sources={"orders": orders}
        )
    finally:
        store.online.close()
    assert frame.select("count_1d", "count_7d", "amount_sum_7d", "share_of_week").rows() == [
        (2, 3, 45.0, 2.0),
        (None, None, None, 10.0),
    ]
    assert re.fullmatch(r"[0-9a-f]{16}", namespace["version"])
