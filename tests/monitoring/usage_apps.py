"""Apps for the monitoring tests, in a module so that workers import them by name."""

from __future__ import annotations

import os
import signal
import time

from plait import app

MiB = 1 << 20


@app(pure=False)
def allocate(mib: int, tag: int = 0) -> int:
    """Hold ``mib`` MiB, every page touched (so resident), then let it go."""
    block = bytearray(mib * MiB)
    block[::4096] = b"x" * (len(block) // 4096)
    return len(block) // MiB


@app(pure=False)
def burn(cpu_seconds: float) -> int:
    """Spend ``cpu_seconds`` of CPU time, however busy the machine is."""
    start, spins = time.process_time(), 0
    while time.process_time() - start < cpu_seconds:
        spins += 1
    return spins


@app(pure=False)
def idle(seconds: float) -> float:
    """Wait without using the CPU: a task with a low CPU efficiency."""
    time.sleep(seconds)
    return seconds


@app(pure=False)
def broken(message: str) -> int:
    raise ValueError(message)


@app(pure=False)
def swell_and_die(mib: int, seconds: float) -> int:
    """Hold ``mib`` MiB for ``seconds``, then die as the OOM killer would end it."""
    block = bytearray(mib * MiB)
    block[::4096] = b"x" * (len(block) // 4096)
    time.sleep(seconds)
    os.kill(os.getpid(), signal.SIGKILL)
    return len(block)


@app(pure=False)
def grow(steps: int, mib: int, seconds: float) -> int:
    """Keep the CPU busy for ``steps`` stretches of ``seconds``, holding ``mib`` MiB more after each."""
    blocks = []
    for _ in range(steps):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass
        block = bytearray(mib * MiB)
        block[::4096] = b"x" * (len(block) // 4096)
        blocks.append(block)
    return sum(len(block) for block in blocks) // MiB
