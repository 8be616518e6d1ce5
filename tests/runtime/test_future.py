"""PlaitFuture makes its Condition only when something waits on it, and stays a concurrent.futures.Future
whose fields are the base class's own, made by it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import plait as pl
from plait.runtime._future import PlaitFuture

GATE = threading.Event()


@pl.app(pure=False)
def noop(x: int) -> int:
    return x


@pl.app(pure=False)
def gated(x: int) -> int:
    GATE.wait(10)
    return x


@pl.app
def fails(x: int) -> int:
    raise KeyError(x)


@pytest.fixture
def threads() -> Iterator[pl.Runtime]:
    GATE.clear()
    with pl.Runtime([pl.ThreadExecutor(2)], progress=False) as rt:
        yield rt
    GATE.set()


def _conditions(futures: list[PlaitFuture[Any]]) -> int:
    return sum(isinstance(value, threading.Condition) for f in futures for value in vars(f).values())


def test_a_future_that_ends_before_anyone_waits_makes_no_condition(threads: pl.Runtime) -> None:
    futures = [threads.submit(noop(x)) for x in range(200)]
    deadline = time.monotonic() + 10
    while not all(f.done() for f in futures) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [f.result() for f in futures] == list(range(200))
    # Each made a threading.Condition (most of a future's cost), and took it to end and to be read.
    assert _conditions(futures) == 0


# As a later Python might: a field its Future's __init__ makes and its methods read.
ANOTHER_PYTHON = """
import concurrent.futures
base = concurrent.futures.Future
init, add_done_callback = base.__init__, base.add_done_callback

def init_more(self):
    init(self)
    self._added = []

def reading_it(self, fn):
    self._added.append(1)
    add_done_callback(self, fn)

base.__init__, base.add_done_callback = init_more, reading_it

import threading
import plait as pl

gate = threading.Event()

@pl.app(pure=False)
def gated(x: int) -> int:
    gate.wait(10)
    return x

with pl.Runtime([pl.ThreadExecutor(2)]) as rt:
    ended, waited = rt.submit(gated(1)), rt.submit(gated(2))
    gate.set()
    called = []
    assert ended.result(10) == 1
    for future in (ended, waited):
        future.add_done_callback(lambda f: called.append(f.result()))
    assert concurrent.futures.wait([ended, waited], timeout=10).not_done == set()
    assert sorted(called) == [1, 2] and ended._added == waited._added == [1]
"""


def test_a_future_reads_none_of_the_base_class_fields_so_a_python_that_adds_one_works() -> None:
    done = subprocess.run(
        [sys.executable, "-c", ANOTHER_PYTHON], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr


def test_a_result_waited_for_before_the_end_arrives(threads: pl.Runtime) -> None:
    futures = [threads.submit(gated(x)) for x in range(20)]
    got: list[int] = []
    waiter = threading.Thread(target=lambda: got.extend(f.result(10) for f in futures))
    waiter.start()
    time.sleep(0.05)
    GATE.set()
    waiter.join(10)
    assert got == list(range(20))


def test_wait_as_completed_and_callbacks_before_and_after_the_end(threads: pl.Runtime) -> None:
    early = [threads.submit(gated(x)) for x in range(5)]
    called: list[int] = []
    for f in early:
        f.add_done_callback(lambda f: called.append(f.result()))
    done, pending = concurrent.futures.wait(early, timeout=0.01)
    assert (done, len(pending)) == (set(), 5)
    GATE.set()
    assert sorted(f.result() for f in concurrent.futures.as_completed(early, timeout=10)) == list(range(5))
    assert sorted(called) == list(range(5))
    late = threads.submit(noop(7))
    while not late.done():
        time.sleep(0.001)
    late.add_done_callback(lambda f: called.append(f.result()))  # ended without a Condition: called at once
    assert called[-1] == 7
    assert concurrent.futures.wait([late], timeout=0).done == {late}
    assert asyncio.run(_awaited(late)) == 7


async def _awaited(future: PlaitFuture[int]) -> int:
    return await future


def test_cancel_and_failure_end_a_future_as_before(threads: pl.Runtime) -> None:
    held = threads.submit(gated(1))
    assert held.cancel() and held.cancelled() and held.done()
    with pytest.raises(concurrent.futures.CancelledError):
        held.result(10)
    failed = threads.submit(fails(2))
    with pytest.raises(KeyError):
        failed.result(10)
    assert isinstance(failed.exception(), KeyError)
    ended = threads.submit(noop(3))
    assert ended.result(10) == 3
    assert not ended.cancel()
    with pytest.raises(concurrent.futures.InvalidStateError):
        ended.set_result(4)
    assert ended.result() == 3


def _waiting(future: PlaitFuture[int], got: list[Any]) -> threading.Thread:
    def wait() -> None:
        try:
            got.append(future.result(10))
        except BaseException as error:
            got.append(type(error))

    thread = threading.Thread(target=wait)
    thread.start()
    return thread


def test_a_result_waited_for_by_many_is_told_to_each_even_once_something_else_watches(threads: pl.Runtime) -> None:
    future = threads.submit(gated(5))
    got: list[Any] = []
    first, second = _waiting(future, got), _waiting(future, got)
    time.sleep(0.05)  # both wait on the future's own lock
    called: list[int] = []
    future.add_done_callback(lambda f: called.append(f.result()))  # the base made while they wait
    third = _waiting(future, got)  # waits on the base's Condition
    GATE.set()
    for thread in (first, second, third):
        thread.join(10)
    assert got == [5, 5, 5] and called == [5]


def test_a_result_not_in_time_raises_timeout_error_in_time(threads: pl.Runtime) -> None:
    future = threads.submit(gated(1))
    for timeout in (0.1, 0, -1):
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            future.result(timeout)
        assert time.monotonic() - started < 0.1 + 0.5
    GATE.set()
    assert future.result(10) == 1


def test_a_cancel_wakes_whoever_waits_for_the_result(threads: pl.Runtime) -> None:
    future = threads.submit(gated(1))
    got: list[Any] = []
    waiter = _waiting(future, got)
    time.sleep(0.05)
    assert future.cancel()
    waiter.join(10)
    assert got == [concurrent.futures.CancelledError]


def test_a_failure_waited_for_is_raised_to_the_waiter(threads: pl.Runtime) -> None:
    @pl.app
    def gated_failure(x: int) -> int:
        GATE.wait(10)
        raise KeyError(x)

    future = threads.submit(gated_failure(3))
    got: list[Any] = []
    waiter = _waiting(future, got)
    time.sleep(0.05)
    GATE.set()
    waiter.join(10)
    assert got == [KeyError] and isinstance(future.exception(), KeyError)
