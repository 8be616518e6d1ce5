"""Which processes this test process has started and not yet reaped."""

from __future__ import annotations

import time

import psutil


def is_resource_tracker(process: psutil.Process) -> bool:
    # multiprocessing starts one per interpreter (Dask's LocalCluster does, for one) and it
    # lives as long as the interpreter: it is not something a test left behind.
    try:
        return "multiprocessing.resource_tracker" in " ".join(process.cmdline())
    except psutil.Error:
        return False


def children_left(within: float = 5.0) -> list[psutil.Process]:
    """This process's descendants still alive after waiting up to ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        left = [p for p in psutil.Process().children(recursive=True) if not is_resource_tracker(p)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


def gone(pid: int, within: float = 10.0) -> bool:
    """Whether process ``pid`` has ended (a zombie counts) within ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.02)
    return False
