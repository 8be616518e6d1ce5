"""Walltime of Python apps, as Parsl documents it: AppTimeout sent into the app's thread
(``PyThreadState_SetAsyncExc``, as Parsl does), in this process among the other tests.

What it must never leave behind: an exception still to be raised in a thread that runs the
next task, or CPython's "async exception pending" signal set with nothing to deliver. On
CPython 3.11 that signal, once stuck, makes the first Python call under a trace function
(a debugger, coverage, hypothesis explaining a failure) spin forever at 100 % CPU.
"""

from __future__ import annotations

import ctypes
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plait.compat import parsl
from plait.compat.parsl import python_app
from plait.compat.parsl.app.errors import AppTimeout
from plait.compat.parsl.executors import ThreadPoolExecutor


@python_app
def spin(seconds: float, walltime: float | None = None) -> int:
    """Busy for ``seconds`` in Python bytecode; the thread it ran in."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    return threading.get_ident()


class Woken(Exception):
    """Sent into a thread stuck in a traced call, which resets the stuck signal."""


def returns_within(seconds: float, call: Callable[[], Any]) -> bool:
    """Whether ``call()`` returns within ``seconds`` in a thread of its own (what it raises, raised here).

    A thread still stuck is woken by an async exception of its own: consuming one clears the
    signal, so a failing test leaves neither a spinning thread nor a poisoned process.
    """
    raised: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as error:  # raised in the test's thread below
            raised.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if not thread.is_alive():
        if raised:
            raise raised[0]
        return True
    assert thread.ident is not None
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(Woken))
    thread.join(seconds)
    return False


def nothing() -> None:
    return None


def traced_call() -> None:
    """A Python function called under a trace function, as a debugger or coverage calls it."""
    sys.settrace(lambda *_: None)
    try:
        nothing()
    finally:
        sys.settrace(None)


def test_walltime_raises_app_timeout_in_the_app(threads: parsl.DataFlowKernel) -> None:
    started = time.monotonic()
    error = spin(5, walltime=0.2).exception(timeout=10)
    assert isinstance(error, AppTimeout) and "spin exceeded walltime: 0.2" in str(error)
    assert time.monotonic() - started < 3
    assert spin(0.01, walltime=5).exception(timeout=10) is None


def test_an_app_within_its_walltime_is_not_hit_later(threads: parsl.DataFlowKernel) -> None:
    # The timer of a finished call must not fire into the thread's next task.
    assert [f.exception(timeout=10) for f in [spin(0.0, walltime=0.05) for _ in range(8)]] == [None] * 8
    time.sleep(0.1)
    assert [f.exception(timeout=10) for f in [spin(0.0) for _ in range(8)]] == [None] * 8


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
    assert returns_within(5, traced_call)


def test_a_walltime_that_never_expired_leaves_traced_calls_working(threads: parsl.DataFlowKernel) -> None:
    assert spin(0.0, walltime=5).exception(timeout=10) is None
    assert returns_within(5, traced_call), "a traced call spun after an app with walltime= finished in time"


def test_a_failing_hypothesis_test_after_an_expired_walltime_is_reported_not_spun_on(
    threads: parsl.DataFlowKernel,
) -> None:
    # The hang first seen: hypothesis traces its test to explain a failure, and spun there.
    assert isinstance(spin(5, walltime=0.1).exception(timeout=10), AppTimeout)

    @settings(max_examples=20, database=None, deadline=None)
    @given(st.integers())
    def small(x: int) -> None:
        assert x < 10

    def fails() -> None:
        with pytest.raises(AssertionError):
            small()

    assert returns_within(10, fails), "hypothesis spun explaining its failure"


def test_the_thread_of_an_expired_app_runs_later_tasks_unharmed(
    load: Callable[..., parsl.DataFlowKernel],
) -> None:
    load(executors=[ThreadPoolExecutor(max_threads=1)])
    expired = spin(5, walltime=0.1)
    assert isinstance(expired.exception(timeout=10), AppTimeout)
    later = [spin(0.02, walltime=5) for _ in range(5)] + [spin(0.02) for _ in range(5)]
    assert len({f.result(timeout=10) for f in later}) == 1  # one thread, reused: no stray AppTimeout
    assert returns_within(5, traced_call), "a traced call spun after an app's walltime expired"
