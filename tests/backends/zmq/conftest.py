"""Shared by the ZMQExecutor tests: short heartbeats, and a check that no process outlives a test."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psutil
import pytest


@pytest.fixture(autouse=True)
def no_process_left() -> Iterator[None]:
    """Every pool and worker a test starts is gone shortly after it ends."""
    yield
    deadline = time.monotonic() + 5
    while (left := psutil.Process().children(recursive=True)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"processes left behind: {[(p.pid, p.name()) for p in left]}"
