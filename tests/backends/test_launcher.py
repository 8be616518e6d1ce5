"""ProcessExecutor's launcher: workers forked from a small process, not from the driver."""

from __future__ import annotations

import gc
import os
import resource
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import psutil
import pytest

import plait as pl
from tests.processes import children_left, gone

MiB = 1 << 20
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux keeps a peak across vfork and exec")


@pl.app(pure=False)
def own_peak() -> int:
    """The worker's lifetime peak RSS in bytes, as the kernel keeps it."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@pl.app(pure=False)
def whose(i: int, started: str) -> tuple[int, int]:
    Path(started, str(i)).touch()
    time.sleep(0.2)
    return i, os.getpid()


@linux_only
def test_a_worker_of_a_big_driver_starts_from_its_own_small_peak() -> None:
    block = bytearray(300 * MiB)
    block[::4096] = b"x" * (len(block) // 4096)
    spawned = subprocess.run(
        [sys.executable, "-c", "import resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert int(spawned.stdout) > 300 * MiB, "a child spawned here does not keep our peak: this test tests nothing"
    with pl.Runtime([pl.ProcessExecutor(1)]) as rt:
        peak = rt.run(own_peak())
    del block
    assert peak < 150 * MiB


def test_a_launcher_that_cannot_start_is_a_clear_error_and_leaves_nothing_open(monkeypatch: pytest.MonkeyPatch) -> None:
    # As when the driver's interpreter cannot import plait in a fresh process (a broken environment).
    monkeypatch.setattr("plait.backends._launcher._MAIN", "import sys; sys.exit(3)")
    gc.collect()  # what earlier tests left to collect is theirs
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)  # a socket collected open fails this test
        with pytest.raises(RuntimeError, match=r"worker launcher .* exits as it starts, with code 3") as caught:
            pl.Runtime([pl.ProcessExecutor(1)]).start()
        del caught  # its traceback holds the frames that held the sockets
        gc.collect()
    assert not children_left(10)


def test_a_killed_launcher_takes_its_workers_and_the_run_goes_on(tmp_path: Path) -> None:
    started = tmp_path / "started"
    started.mkdir()
    executor = pl.ProcessExecutor(2)
    with pl.Runtime([executor]) as rt:
        future = rt.submit(pl.gather(*(whose(i, str(started)) for i in range(8))))
        deadline = time.monotonic() + 30
        while not any(started.iterdir()):
            assert time.monotonic() < deadline, "no task started"
            time.sleep(0.01)
        launcher = executor._launcher
        assert launcher is not None
        workers = psutil.Process(launcher.process.pid).children()
        assert len(workers) == 2
        os.kill(launcher.process.pid, signal.SIGKILL)
        assert all(gone(worker.pid) for worker in workers), "a worker outlived its launcher"
        results = future.result(timeout=60)
    assert [i for i, _ in results] == list(range(8))
    assert {pid for _, pid in results} - {w.pid for w in workers}, "no task ran on a worker of a new launcher"
    assert not children_left(10), "the runtime left processes behind"
