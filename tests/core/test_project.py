"""``Project.discover``: found from a path or a string, and cached per folder."""

from __future__ import annotations

from pathlib import Path

from shipyard.core.project import Project


def test_a_project_is_found_from_a_string_path_as_from_a_path(project_dir: Path) -> None:
    (project_dir / "sub").mkdir()
    assert Project.discover(str(project_dir / "sub")) is Project.discover(project_dir)
    assert Project.discover(str(project_dir)).root == project_dir.resolve()
