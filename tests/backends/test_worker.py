"""run_task, the one way every process-based worker runs a task: what it measures, how it fails."""

from __future__ import annotations

import os
import pickle
import socket
import sys
import time
from pathlib import Path

import pytest

from plait.backends._records import Skip, Start, Stop, Task, frame
from plait.backends._wire import loads_error
from plait.backends._worker import FunctionCache, _Channel, run_task

SLOW_MODULE = """
import time
time.sleep(0.4)

def quick(x):
    return x + 1
"""


@pytest.fixture
def slow_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> bytes:
    """A function by reference, pickled, whose module takes 0.4 s to import and is not imported."""
    (tmp_path / "slow_to_import.py").write_text(SLOW_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import slow_to_import  # type: ignore[import-not-found]

    payload = pickle.dumps(slow_to_import.quick)
    del sys.modules["slow_to_import"]  # the worker's loading imports it again
    return payload


def test_loading_a_function_is_not_part_of_its_first_tasks_measurement(slow_import: bytes) -> None:
    functions: FunctionCache = {}
    before = time.time()
    result = run_task(functions, Task(1, "quick", b"k", None, slow_import, pickle.dumps(((1,), {}))))
    assert (result.task_id, result.ok, pickle.loads(result.value)) == (1, True, 2)
    assert result.started - before >= 0.4  # the import happened, before the task's window
    assert result.ended - result.started < 0.1
    assert result.cpu_seconds is not None and result.cpu_seconds < 0.1


def test_a_function_that_cannot_be_loaded_fails_its_tasks_and_every_later_one() -> None:
    functions: FunctionCache = {}
    call = pickle.dumps(((1,), {}))
    first = run_task(functions, Task(1, "broken", b"k", None, b"not a pickle", call))
    later = run_task(functions, Task(2, "broken", b"k", None, None, call), follows=True)  # later ones come without it
    for result in (first, later):
        assert not result.ok and isinstance(loads_error(result.value), pickle.UnpicklingError)


class _CountingReads:
    """A socket that counts the reads made of it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reads = 0

    def fileno(self) -> int:
        return self.sock.fileno()

    def recv(self, size: int) -> bytes:
        self.reads += 1
        return self.sock.recv(size)

    def recv_into(self, buffer: memoryview) -> int:
        self.reads += 1
        return self.sock.recv_into(buffer)


def test_a_worker_reads_records_that_arrived_together_in_one_system_call() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.sendall(frame(Start(["/a"])) + frame(Skip([1, 2])) + frame(Stop()))
        counting = _CountingReads(theirs)
        channel = _Channel(counting)  # type: ignore[arg-type]
        got = [channel.recv()]
        while channel.readable():
            got.append(channel.recv())
        assert got == [Start(["/a"]), Skip([1, 2]), Stop()]
        assert counting.reads == 1
        ours.close()
        with pytest.raises(EOFError):
            channel.recv()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the per-task peak is reset through Linux's /proc")
def test_a_task_nothing_follows_resets_the_peak_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker told no task follows straight on (nothing is queued) opens no window for
    one: one reset of the peak per task, not two, and the same usage reported."""
    resets = []
    pwrite = os.pwrite
    monkeypatch.setattr(os, "pwrite", lambda fd, data, offset: resets.append(data) or pwrite(fd, data, offset))
    functions: FunctionCache = {}
    call = pickle.dumps(((1,), {}))
    fn = pickle.dumps(abs)
    run_task(functions, Task(1, "abs", b"k", None, fn, call))  # loads the function: its own reset
    resets.clear()
    results = [run_task(functions, Task(i, "abs", b"k", None, None, call), more=False) for i in (2, 3)]
    assert resets == [b"5", b"5"]
    for result in results:
        assert result.ok and result.cpu_seconds is not None and result.peak_rss and result.peak_rss > 0
