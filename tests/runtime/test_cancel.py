"""Cancelling a submitted future: queued work never starts, running work is killed."""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

import plait as pl
from tests.processes import children_left, gone
from tests.waiting import wait_for_line


@pl.app
def hold(started: str, gate: str) -> int:
    """Say so in ``started`` (with the pid), then wait until ``gate`` exists."""
    with open(started, "w") as f:
        f.write(f"{os.getpid()}\n")
    while not os.path.exists(gate):
        time.sleep(0.01)
    return 1


@pl.app
def sleeper(started: str) -> int:
    with open(started, "w") as f:
        f.write(f"{os.getpid()}\n")
    time.sleep(120)
    return 1


@pl.app
def mark(path: str, x: object = None) -> str:
    with open(path, "a") as f:
        f.write("ran\n")
    return "ran"


@pl.app
def after(x: int) -> int:
    return x + 1


# One worker each, holding the task it runs and the next: the same supervisor serves both.
_ONE_WORKER: dict[str, Callable[[], pl.Executor]] = {
    "processes": lambda: pl.ProcessExecutor(1, prefetch=0),
    "processes-prefetch": lambda: pl.ProcessExecutor(1, prefetch=2),
    "zmq": lambda: pl.ZMQExecutor(provider=pl.LocalProvider(workers=1), heartbeat_period=0.2, heartbeat_threshold=1.5),
}


@pytest.mark.parametrize("executor", list(_ONE_WORKER))
def test_cancelling_work_that_has_not_started_means_it_never_runs(tmp_path: Path, executor: str) -> None:
    started, gate, marker = tmp_path / "started", tmp_path / "gate", tmp_path / "marker"
    with pl.Runtime([_ONE_WORKER[executor]()]) as rt:
        blocker = rt.submit(hold(str(started), str(gate)))
        wait_for_line(started)
        queued = rt.submit(mark(str(marker)))
        time.sleep(0.5)  # long enough to be sent on to the worker, which holds it behind the blocker
        assert queued.cancel()
        # The cancel reaches the worker before it is free to start the task (one that
        # reaches it after runs, its result dropped: docs/failures.md, "Cancellation").
        time.sleep(0.5)
        gate.touch()
        assert blocker.result(timeout=30) == 1
        assert rt.run(after(1), timeout=30) == 2  # the worker went on past the cancelled task
    assert queued.cancelled()
    assert not marker.exists(), "a task cancelled before it started ran anyway"


def test_cancelling_a_running_task_kills_its_process(tmp_path: Path) -> None:
    started = tmp_path / "started"
    with pl.Runtime([pl.ProcessExecutor(1)]) as rt:
        future = rt.submit(sleeper(str(started)))
        pid = int(wait_for_line(started))
        assert future.cancel()
        assert gone(pid), "the cancelled task's process is still running"
        with pytest.raises(concurrent.futures.CancelledError):
            future.result(timeout=1)
        assert rt.run(after(1), timeout=30) == 2  # a new worker replaced the killed one


def test_dependents_of_a_cancelled_future_end_with_cancelled_error(tmp_path: Path) -> None:
    started = tmp_path / "started"
    with pl.Runtime([pl.ProcessExecutor(1)]) as rt:
        upstream = rt.submit(sleeper(str(started)))
        direct = rt.submit(after(upstream))
        deeper = rt.submit(after(after(upstream)).map(str))
        wait_for_line(started)
        upstream.cancel()
        for dependent in (direct, deeper):
            with pytest.raises(concurrent.futures.CancelledError):
                dependent.result(timeout=30)


def test_cancelling_stops_the_work_only_that_future_needed(tmp_path: Path) -> None:
    started = tmp_path / "started"
    with pl.Runtime([pl.ProcessExecutor(1)]) as rt:
        future = rt.submit(after(sleeper(str(started))))
        pid = int(wait_for_line(started))
        future.cancel()
        assert gone(pid), "the input only the cancelled future needed kept running"


def test_work_another_future_still_needs_keeps_running(tmp_path: Path) -> None:
    started, gate = tmp_path / "started", tmp_path / "gate"
    with pl.Runtime([pl.ProcessExecutor(1)]) as rt:
        shared = hold(str(started), str(gate))
        keep = rt.submit(after(shared))
        drop = rt.submit(after(after(shared)))
        wait_for_line(started)
        drop.cancel()
        gate.touch()
        assert keep.result(timeout=30) == 2


def test_cancel_after_the_result_is_in_does_nothing(tmp_path: Path) -> None:
    with pl.Runtime([pl.ThreadExecutor(1)]) as rt:
        future = rt.submit(after(1))
        assert future.result(timeout=30) == 2
        assert not future.cancel()
        assert rt.run(after(after(1)), timeout=30) == 3


def test_shutting_down_leaves_no_child_processes(tmp_path: Path) -> None:
    started, grandchild = tmp_path / "started", tmp_path / "grandchild"

    @pl.app
    def spawns() -> None:
        child = subprocess.Popen(["sleep", "120"])
        grandchild.write_text(f"{child.pid}\n")
        child.wait()

    assert not children_left(0), "children left over from an earlier test"
    with pl.Runtime([pl.ProcessExecutor(2)]) as rt:
        running = [rt.submit(spawns()), rt.submit(sleeper(str(started)))]
        pid = int(wait_for_line(grandchild))
        wait_for_line(started)
        assert len(psutil.Process().children(recursive=True)) >= 3
    assert not children_left(10), "the runtime left worker processes behind"
    assert gone(pid), "a process started by a task outlived the runtime"
    for future in running:
        with pytest.raises(concurrent.futures.CancelledError):
            future.result(timeout=1)


def test_work_cut_short_by_a_shutdown_says_so_to_its_future_and_to_what_awaits_it() -> None:
    gate: concurrent.futures.Future[int] = concurrent.futures.Future()  # never set: after(gate) waits for it
    with pl.Runtime([pl.ThreadExecutor(1)], progress=False) as first:
        left = first.submit(after(gate))
    said = r"the Runtime running after\(.*\) was shut down before it finished"
    with pytest.raises(concurrent.futures.CancelledError, match=said):
        left.result(timeout=5)
    # An app of another runtime that takes it as an argument ends with the same words.
    with (
        pl.Runtime([pl.ThreadExecutor(1)], progress=False) as second,
        pytest.raises(concurrent.futures.CancelledError, match=said),
    ):
        second.run(after(left), timeout=30)


def test_shutting_down_right_after_a_kill_leaves_no_child_processes(tmp_path: Path) -> None:
    # A killed worker is replaced in the background; shutdown must not race that.
    started = tmp_path / "started"
    with pl.Runtime([pl.ProcessExecutor(1)]) as rt:
        future = rt.submit(sleeper(str(started)))
        wait_for_line(started)
        future.cancel()
    assert not children_left(10), "a replacement worker outlived the runtime"


def test_a_submission_cancelled_while_its_admission_fails_ends_cancelled_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pl.Runtime(executors=[pl.ThreadExecutor(1)], progress=False) as rt:
        assert rt.run(after(0)) == 1
        entered, cancelled = threading.Event(), threading.Event()
        admit = rt._interpreter.admit_watched

        def admit_then_fail(expr: Any, future: Any) -> Any:
            if expr.label() == "after(1)":
                entered.set()
                cancelled.wait(10)
                raise ValueError("admission failed")
            return admit(expr, future)

        rt._interpreter.admit_watched = admit_then_fail  # type: ignore[method-assign]
        future = rt.submit(after(1))
        assert entered.wait(10)
        assert future.cancel()
        cancelled.set()
        assert rt.run(after(2), timeout=10) == 3
    assert future.cancelled()
    assert not [r for r in caplog.records if r.levelname == "ERROR"], [r.getMessage() for r in caplog.records]
