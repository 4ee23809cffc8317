"""What a run records about where it ran: code version, Python, platform, packages."""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import platform
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

_GIT_TIMEOUT = 10


def git_state(root: Path) -> dict[str, Any]:
    """The commit at HEAD, whether the tree is dirty, and a hash of the uncommitted diff."""
    commit = _git(root, "rev-parse", "HEAD")
    if commit is None:
        return {"git_commit": None, "git_dirty": None, "git_diff_hash": None}
    status = _git(root, "status", "--porcelain", "--untracked-files=no") or ""
    diff = _git(root, "diff", "HEAD", "--no-ext-diff", "--binary") if status else ""
    return {
        "git_commit": commit,
        "git_dirty": bool(status),
        "git_diff_hash": hashlib.sha256((diff or "").encode()).hexdigest() if status else None,
    }


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def environment(root: Path, packages: Mapping[str, str]) -> dict[str, Any]:
    """Python, platform, and the versions of shipyard, of the project's declared
    dependencies and of ``packages`` (the distributions the steps' code reaches)."""
    versions = _versions({"shipyard", *project_dependencies(root)})
    versions.update(packages)
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": dict(sorted(versions.items())),
    }


def project_dependencies(root: Path) -> list[str]:
    """Distribution names the project declares (pyproject.toml or requirements.txt)."""
    names: list[str] = []
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError):
            data = {}
        names += data.get("project", {}).get("dependencies", [])
    requirements = root / "requirements.txt"
    if requirements.is_file():
        lines = requirements.read_text(encoding="utf-8", errors="replace").splitlines()
        names += [line for line in lines if line.strip() and not line.startswith(("#", "-"))]
    return [_requirement_name(n) for n in names if _requirement_name(n)]


def _requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return match.group(1).lower() if match else ""


def _versions(names: Iterable[str]) -> dict[str, str]:
    versions: dict[str, str] = {}
    for name in sorted(set(names)):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            continue
    return versions
