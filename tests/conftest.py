"""Shared fixtures: a fresh project folder per test, with the working directory inside it."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.core.project import Project

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).parent.parent


def write_project(root: Path, name: str = "test-project", extra: str = "") -> Path:
    """Write a minimal shipyard.toml in ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "shipyard.toml").write_text(
        f'[project]\nname = "{name}"\nowner = "tests"\n{extra}', encoding="utf-8"
    )
    return root


@pytest.fixture
def project_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder that is also the working directory."""
    root = write_project(tmp_path / "proj")
    monkeypatch.chdir(root)
    for name in list(os.environ):
        if name.startswith("SHIPYARD_"):
            monkeypatch.delenv(name)
    return root


@pytest.fixture
def project(project_dir: Path) -> Iterator[Project]:
    """The Project of ``project_dir``, its stores closed afterwards."""
    found = Project.discover(project_dir)
    yield found
    if found._metadata is not None:
        found._metadata.close()


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """Environment for running the ``shipyard`` script in a subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env["PYTHONPATH"] = str(REPO / "src")
    env["COLUMNS"] = "200"
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env
