"""Shared by the ZMQExecutor tests: short heartbeats, and a check that no process outlives a test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.processes import children_left


@pytest.fixture(autouse=True)
def no_process_left() -> Iterator[None]:
    """Every pool and worker a test starts is gone shortly after it ends."""
    yield
    left = children_left(within=5)
    assert not left, f"processes left behind: {[(p.pid, p.name()) for p in left]}"
