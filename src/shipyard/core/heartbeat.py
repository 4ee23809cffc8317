"""Telling a live run from a crashed one: heartbeats, and checking on running runs.

A running run refreshes its heartbeat every ``HEARTBEAT_SECONDS``. Any command
that reads runs first calls ``detect_crashed``: a run whose process on this host
is gone is crashed at once; one elsewhere when its heartbeat is older than
``CRASH_AFTER_SECONDS``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shipyard.storage.metadata import MetadataStore

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
CRASH_AFTER_SECONDS = 60.0


class Heartbeat:
    """Refreshes the run's heartbeat until stopped, so crashes can be told from slowness."""

    def __init__(self, store: MetadataStore, run_id: str) -> None:
        self._store = store
        self._run_id = run_id
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="shipyard-heartbeat")
        self._thread.start()

    def _beat(self) -> None:
        while not self._stopped.wait(HEARTBEAT_SECONDS):
            try:
                self._store.update_run(self._run_id, heartbeat_at=time.time())
            except Exception:  # a missed beat is retried; it must never kill the run
                logger.debug("heartbeat of run %s failed", self._run_id, exc_info=True)

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()


def detect_crashed(store: MetadataStore) -> list[str]:
    """Mark runs crashed whose process is gone; returns their ids.

    A run on this host whose process no longer exists is crashed at once; any
    other run is crashed when its heartbeat is older than ``CRASH_AFTER_SECONDS``.
    """
    host = socket.gethostname()
    now = time.time()
    crashed = []
    for run in store.running_runs():
        gone = run["host"] == host and run["pid"] and not _alive(run["pid"])
        silent = now - (run["heartbeat_at"] or run["started_at"]) > CRASH_AFTER_SECONDS
        if gone or silent:
            reason = (
                f"process {run['pid']} on {run['host']} ended without finishing the run"
                if gone
                else f"no heartbeat for {now - (run['heartbeat_at'] or 0):.0f} s"
            )
            if store.mark_crashed(run["id"], f"crashed: {reason}"):
                crashed.append(run["id"])
    return crashed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has exited; only its parent has not collected it yet
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
