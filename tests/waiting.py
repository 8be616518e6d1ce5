"""Waiting in tests: for a condition, or for the line a task writes, never past a ceiling."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path


def wait_for(condition: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    """Poll ``condition`` until it is true; fail the test, naming ``what``, after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def wait_for_line(path: Path, timeout: float = 60.0) -> str:
    """The text of ``path`` once a task has written a whole line to it (never half a write)."""
    wait_for(lambda: path.exists() and path.read_text().endswith("\n"), f"a line in {path}", timeout)
    return path.read_text()
