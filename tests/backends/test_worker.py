"""run_task, the one way every process-based worker runs a task: what it measures, how it fails."""

from __future__ import annotations

import os
import pickle
import resource
import select
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from plait.backends import _usage, _worker
from plait.backends._records import HEADER, Result, Run, Skip, Start, Stop, Task, frame, read_results
from plait.backends._usage import TaskMeter
from plait.backends._wire import loads_error
from plait.backends._worker import FunctionCache, _Channel, run_task, serve

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


@pytest.fixture
def fresh_meter(monkeypatch: pytest.MonkeyPatch) -> TaskMeter:
    """This process's meter, new, as in a worker whose kernel keeps no peak above its RSS
    (this process's own kept peak depends on the tests before)."""
    meter = TaskMeter()
    meter._kept, meter._checked_at = False, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    monkeypatch.setattr(_usage, "_meters", [meter])
    return meter


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the per-task peak is reset through Linux's /proc")
def test_a_task_costs_its_meter_one_reset_and_one_or_two_readings(
    monkeypatch: pytest.MonkeyPatch, fresh_meter: TaskMeter
) -> None:
    """Each task resets the peak once, as it starts, whether it follows the last one
    straight on or not (the last one's end made no reset for it to undo); one that
    follows reuses the last one's reading, one that does not takes its own."""
    calls: list[str] = []
    pwrite, getrusage = os.pwrite, _usage._getrusage
    monkeypatch.setattr(os, "pwrite", lambda fd, data, offset: calls.append("reset") or pwrite(fd, data, offset))

    def counted(who: int) -> resource.struct_rusage:
        if who == resource.RUSAGE_SELF:  # not the look at reaped children, made after a long task only
            calls.append("reading")
        return getrusage(who)

    monkeypatch.setattr(_usage, "_getrusage", counted)
    functions: FunctionCache = {}
    call = pickle.dumps(((1,), {}))
    run_task(functions, Task(1, "abs", b"k", None, pickle.dumps(abs), call))  # loads the function
    per_task = []
    for i, follows in enumerate((False, False, True, True), start=2):
        calls.clear()
        result = run_task(functions, Task(i, "abs", b"k", None, None, call), follows=follows)
        assert result.ok and result.cpu_seconds is not None and result.peak_rss and result.peak_rss > 0
        per_task.append(sorted(calls))
    assert per_task == [["reading", "reading", "reset"]] * 2 + [["reading", "reset"]] * 2


def _results(sock: socket.socket) -> list[Result]:
    (size,) = HEADER.unpack(sock.recv(HEADER.size, socket.MSG_WAITALL))
    return read_results(sock.recv(size, socket.MSG_WAITALL))


_driver_end: list[socket.socket] = []  # the driver's end of the worker's socket pair, in the test below


def _send_to_worker(data: bytes) -> None:
    """A task that sends its worker ``data`` as its driver would: it is there as the task ends."""
    _driver_end[0].sendall(data)


def _sending(task_id: int, data: bytes, *, fn: bool = False) -> Task:
    function = pickle.dumps(_send_to_worker) if fn else None
    return Task(task_id, "send", b"send", None, function, pickle.dumps(((data,), {})))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the per-task peak is reset through Linux's /proc")
@pytest.mark.usefixtures("fresh_meter")
def test_a_record_read_between_two_queued_tasks_does_not_part_them_but_a_wait_does() -> None:
    """A worker that reads a record that was there between two queued tasks measures the
    second from where the first ended (as if nothing came between); one whose record was
    still arriving opens a new window after it, so the wait is in neither task."""
    late = frame(Run([_sending(4, b"")]))
    ours, theirs = socket.socketpair()
    _driver_end.append(ours)
    try:
        worker = threading.Thread(target=serve, args=(_Channel(theirs),))
        worker.start()
        whole = frame(Run([_sending(3, b"")]))
        ours.sendall(frame(Run([_sending(1, whole, fn=True), _sending(2, late[:10])])))
        got: list[Result] = []
        while len(got) < 2:
            got += _results(ours)  # task 2's comes as the worker waits for the rest of its record
        time.sleep(0.2)
        ours.sendall(late[10:])
        while len(got) < 4:
            got += _results(ours)
        ours.sendall(frame(Stop()))
        worker.join()
    finally:
        _driver_end.clear()
        ours.close()
        theirs.close()
    first, second, third = got[:3]
    assert [r.task_id for r in got] == [1, 2, 3, 4] and all(r.ok for r in got)
    assert second.started == first.ended  # the record read between them did not part them
    assert third.started - second.ended >= 0.2  # the wait for the rest of the record is in neither


def test_a_worker_asks_for_more_records_between_queued_tasks_not_after_a_read_that_emptied_its_socket(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A lone task runs straight after the read that brought it: that read found the
    socket empty, so a look for more (a select, a system call on every round trip) can
    only find nothing. Between two queued tasks the worker still looks, for a skip."""
    looks: list[int] = []
    real_select = select.select

    def counted(*args: Any) -> Any:
        looks.append(1)
        return real_select(*args)

    monkeypatch.setattr(select, "select", counted)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        worker = threading.Thread(target=serve, args=(_Channel(theirs),))
        worker.start()
        call = pickle.dumps(((1,), {}))
        looked = []
        for run in (
            Run([Task(1, "abs", b"k", None, pickle.dumps(abs), call)]),
            Run([Task(2, "abs", b"k", None, None, call)]),
        ):
            looks.clear()
            ours.sendall(frame(run))
            assert [result.ok for result in _results(ours)] == [True]
            looked.append(len(looks))
        looks.clear()
        ours.sendall(frame(Run([Task(3, "abs", b"k", None, None, call), Task(4, "abs", b"k", None, None, call)])))
        got = _results(ours)
        while len(got) < 2:
            got += _results(ours)
        looked.append(len(looks))
        ours.sendall(frame(Stop()))
        worker.join()
    assert looked == [0, 0, 1]


def _serving(runs: list[Run]) -> list[list[Result]]:
    """What a worker sends for ``runs``, message by message, sent to it at once."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        worker = threading.Thread(target=serve, args=(_Channel(theirs),))
        worker.start()
        ours.sendall(b"".join(frame(run) for run in runs))
        messages: list[list[Result]] = []
        while sum(map(len, messages)) < sum(len(run.tasks) for run in runs):
            messages.append(_results(ours))
        ours.sendall(frame(Stop()))
        worker.join()
    return messages


def _naps(ids: range, seconds: float) -> list[Task]:
    call = pickle.dumps(((seconds,), {}))
    return [Task(i, "nap", b"nap", None, pickle.dumps(time.sleep) if i == ids[0] else None, call) for i in ids]


def test_a_worker_sends_the_results_of_a_queued_batch_together_not_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Results of tasks with more queued behind them wait for the batch's end (at most
    ``_HOLD``, here longer than the batch on any machine): one message for the batch.
    Each nap lets the worker's sending thread in, which sent what had ended so far: a
    message a task, each a system call in the worker and a message for its pool and
    driver to take in."""
    monkeypatch.setattr(_worker, "_HOLD", 60.0, raising=False)
    messages = _serving([Run(_naps(range(1, 11), 0.002))])
    assert [[result.task_id for result in message] for message in messages] == [list(range(1, 11))]


def test_a_result_held_behind_a_long_task_goes_back_while_that_task_runs() -> None:
    """A long task never holds back the result of a short one before it: the hold ends
    after ``_HOLD`` whatever the worker is running."""
    messages = _serving([Run(_naps(range(1, 2), 0.0) + _naps(range(2, 3), 0.5))])
    assert [[result.task_id for result in message] for message in messages] == [[1], [2]]


def test_a_worker_runs_a_lone_task_in_few_python_calls() -> None:
    """Every call of a worker's round trip runs cold on a busy node: counted per lone task on
    the worker's thread, from the read that brings it to the send of its result."""
    trips, calls, counting = 100, [0], [False]

    def count(frame: Any, event: str, arg: Any) -> None:
        if counting[0] and event in ("call", "c_call"):
            calls[0] += 1

    def profiled(channel: _Channel) -> None:
        sys.setprofile(count)
        try:
            serve(channel)
        finally:
            sys.setprofile(None)

    ours, theirs = socket.socketpair()
    with ours, theirs:
        worker = threading.Thread(target=profiled, args=(_Channel(theirs),))
        worker.start()
        call = pickle.dumps(((-1,), {}))
        for task_id in range(5 + trips):
            counting[0] = task_id >= 5  # after the function is loaded, and the loop warm
            ours.sendall(
                frame(Run([Task(task_id, "abs", b"k", None, pickle.dumps(abs) if task_id == 0 else None, call)]))
            )
            assert [result.ok for result in _results(ours)] == [True]
        counting[0] = False
        ours.sendall(frame(Stop()))
        worker.join()
    # 61 on round seven's main: ``running`` a generator-based context manager (seven calls a task),
    # the outbox's condition entered in Python, a look for a whole record before each read.
    # 48 on round eight's: ``contextlib.suppress`` around the send (three), a lone record copied to
    # be kept and looked for, ``loads_call`` and the records' decoders each a function around a call.
    assert calls[0] / trips <= 42, calls[0] / trips
