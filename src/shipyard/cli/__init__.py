"""The ``shipyard`` command line: thin over the public API.

Exit codes: 0 success, 1 the run (or check) failed, 2 usage or configuration error.
"""

from __future__ import annotations

from shipyard.cli._app import main

__all__ = ["main"]
