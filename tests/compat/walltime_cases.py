"""Walltime of Python apps, as Parsl documents it: run by test_walltime.py in an interpreter
of its own, because the timeout is an exception sent into the app's thread
(``PyThreadState_SetAsyncExc``, as Parsl does) and must not share a process with other tests."""

from __future__ import annotations

import time

import pytest

from plait.compat import parsl
from plait.compat.parsl import python_app
from plait.compat.parsl.app.errors import AppTimeout


@python_app
def spin(seconds: float, walltime: float | None = None) -> str:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    return "done"


def test_walltime_raises_app_timeout_in_the_app(threads: parsl.DataFlowKernel) -> None:
    started = time.monotonic()
    error = spin(5, walltime=0.2).exception(timeout=10)
    assert isinstance(error, AppTimeout) and "spin exceeded walltime: 0.2" in str(error)
    assert time.monotonic() - started < 3
    assert spin(0.01, walltime=5).result() == "done"


def test_an_app_within_its_walltime_is_not_hit_later(threads: parsl.DataFlowKernel) -> None:
    # The timer of a finished call must not fire into the thread's next task.
    assert [f.result() for f in [spin(0.0, walltime=0.05) for _ in range(8)]] == ["done"] * 8
    time.sleep(0.1)
    assert [f.result() for f in [spin(0.0) for _ in range(8)]] == ["done"] * 8


def test_the_timeout_wrapper_stops_its_timer_when_the_function_returns_or_raises() -> None:
    from plait.compat.parsl.app.python import timeout

    def quick(fail: bool = False) -> str:
        if fail:
            raise KeyError("own")
        return "quick"

    assert timeout(quick, 0.05)() == "quick"
    with pytest.raises(KeyError):
        timeout(quick, 0.05)(True)
    time.sleep(0.1)  # an AppTimeout from either timer would be raised here
    with pytest.raises(AppTimeout):
        timeout(lambda: spin.func(2), 0.1)()
