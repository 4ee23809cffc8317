"""Helpers shared by the tests."""

from __future__ import annotations

import os
import shutil
import sys

import pytest

#: The ``shipyard`` command, run by the interpreter under test.
CLI = [sys.executable, "-c", "from shipyard.cli import main; main()"]


def without_write_permission() -> list[str]:
    """A command prefix under which even root obeys file permissions (setpriv drops the
    capability that lets root write anywhere)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("root ignores permissions and setpriv (util-linux) is not installed")
    drop = "-dac_override"
    return [setpriv, f"--inh-caps={drop}", f"--bounding-set={drop}", f"--ambient-caps={drop}"]
