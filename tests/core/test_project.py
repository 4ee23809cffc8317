"""``Project.discover``: found from a path or a string, and cached per folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.core.project import Project
from shipyard.errors import ConfigError
from tests.conftest import write_project


def test_a_project_is_found_from_a_string_path_as_from_a_path(project_dir: Path) -> None:
    (project_dir / "sub").mkdir()
    assert Project.discover(str(project_dir / "sub")) is Project.discover(project_dir)
    assert Project.discover(str(project_dir)).root == project_dir.resolve()


def test_a_pipelines_module_that_does_not_exist_names_the_setting_and_the_fix(
    tmp_path: Path,
) -> None:
    root = write_project(tmp_path / "p", extra='pipelines = ["flows.nope"]\n')
    with pytest.raises(
        ConfigError, match=r"\[project\] pipelines names 'flows.nope'.*Create flows"
    ):
        Project.discover(root).pipelines()
