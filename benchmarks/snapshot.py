"""Measure shipyard as committed: extract ``src/shipyard`` at a commit and import it from there.

Other people edit ``src/shipyard`` while a benchmark runs; measuring a commit keeps their
uncommitted changes out of the figures, and the figures reproducible. The driver sets
``SHIPYARD_BENCH_SRC`` to the snapshot; each worker calls :func:`use_snapshot` first.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO_DIR = Path(__file__).resolve().parent.parent
SRC_ENV = "SHIPYARD_BENCH_SRC"


def snapshot_src(commit: str, work_dir: Path) -> Path:
    """Extract ``src/shipyard`` at ``commit`` under ``work_dir/src/`` (once) and return the
    ``src`` folder to put first on ``sys.path``."""
    target = work_dir / "src" / commit[:12]
    if not (target / "src" / "shipyard" / "__init__.py").exists():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", commit, "src/shipyard"],
            cwd=REPO_DIR,
            capture_output=True,
            check=True,
        )
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target / "src"


def use_snapshot() -> None:
    """In a worker: import shipyard from the snapshot named by ``SHIPYARD_BENCH_SRC``."""
    src = os.environ.get(SRC_ENV)
    if src:
        sys.path.insert(0, src)


def git_state(working_tree: bool = False) -> dict[str, Any]:
    """The commit measured, and whether src/shipyard had uncommitted changes."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO_DIR, capture_output=True, text=True)
        return done.stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "src_shipyard_dirty": bool(git("status", "--porcelain", "--", "src/shipyard")),
        "measured": "the working tree of src/shipyard"
        if working_tree
        else "src/shipyard as committed (a snapshot), not the working tree",
    }
