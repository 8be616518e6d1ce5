"""Suite-wide: no process a test module started outlives it (the product's promise that nothing a
task started outlives it, checked everywhere, not only where a test looks)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psutil
import pytest

from tests.processes import is_resource_tracker


@pytest.fixture(scope="module", autouse=True)
def no_process_outlives_its_module() -> Iterator[None]:
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    yield
    left = _started_since(before, within=10)
    assert not left, f"processes this module started are still running: {[_described(p) for p in left]}"


def _started_since(before: set[int], within: float) -> list[psutil.Process]:
    deadline = time.monotonic() + within
    while True:
        left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before and _running(p)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


def _running(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE and not is_resource_tracker(process)
    except psutil.NoSuchProcess:
        return False


def _described(process: psutil.Process) -> str:
    try:
        return f"{process.pid} {' '.join(process.cmdline())[:200]}"
    except psutil.Error:
        return str(process.pid)
