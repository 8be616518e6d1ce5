"""How futures and runtimes show themselves: state as the seed's AppFutures did, counts by state."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator

import pytest

import plait as pl

release = threading.Event()


@pl.app(cache=False)
def held(x: int) -> int:
    release.wait(30)
    return x


@pl.app
def div(a: float, b: float) -> float:
    return a / b


@pytest.fixture
def rt() -> Iterator[pl.Runtime]:
    release.clear()
    with pl.Runtime(executors=[pl.ThreadExecutor(1)]) as runtime:
        yield runtime
    release.set()


def state(future: object) -> str:
    match = re.fullmatch(r"<PlaitFuture at 0x[0-9a-f]+ for (.+) state=(.+)>", repr(future))
    assert match, repr(future)
    return match[2]


def test_a_future_shows_pending_running_and_finished_with_the_type(rt: pl.Runtime) -> None:
    # One thread, which takes a second task ahead (prefetch): the third waits in the runtime.
    first, second, third = rt.submit(held(1)), rt.submit(held(2)), rt.submit(held(0))
    both = rt.submit(pl.gather(first, second))
    rt.run(pl.pure(None))  # submit returns at once: this waits until the loop has admitted the rest
    assert state(first) == "running"
    assert state(third) == "pending"
    assert state(both) == "pending on 2 inputs"
    assert "for held(1) " in repr(first)
    release.set()
    assert both.result(10) == [1, 2]
    assert state(first) == "finished returned int"
    assert state(both) == "finished returned list"


def test_a_failed_future_shows_the_error_and_a_cancelled_one_says_so(rt: pl.Runtime) -> None:
    failed = rt.submit(div(1, 0))
    with pytest.raises(ZeroDivisionError):
        failed.result(10)
    assert state(failed) == "failed raised ZeroDivisionError: division by zero"
    blocker, waiting = rt.submit(held(3)), rt.submit(held(4))
    assert waiting.cancel()
    assert state(waiting) == "cancelled"
    release.set()
    blocker.result(10)


def test_a_gathers_calls_not_started_yet_show_as_queued(rt: pl.Runtime) -> None:
    # The interpreter starts a gather's calls only as its executor's queue needs them.
    both = rt.submit(pl.gather([held(n) for n in range(10, 20)]))
    wait_until = time.monotonic() + 10
    while "1 running" not in repr(rt) and time.monotonic() < wait_until:
        time.sleep(0.01)
    assert repr(rt).endswith("tasks 1 running, 9 queued, 0 done>")
    release.set()
    assert both.result(10) == list(range(10, 20))


def test_a_runtime_shows_its_executors_and_tasks_by_state(rt: pl.Runtime) -> None:
    assert repr(rt) == "<Runtime running on threads (ThreadExecutor, 1 workers): tasks 0 running, 0 done>"
    futures = [rt.submit(held(n)) for n in range(3)]
    rt.run(pl.pure(None))  # submit returns at once: this waits until the loop has admitted the rest
    assert repr(rt).endswith("tasks 1 running, 2 queued, 0 done>")  # one held ahead by the executor
    release.set()
    for future in futures:
        future.result(10)
    with pytest.raises(ZeroDivisionError):
        rt.run(div(2, 0))
    assert repr(rt).endswith("tasks 0 running, 3 done, 1 failed>")
    page = rt._repr_html_()
    assert "<th>executor threads</th><td>threads (ThreadExecutor, 1 workers)</td>" in page
    assert "<th>done</th><td>3</td>" in page and "<th>failed</th><td>1</td>" in page


def test_memo_hits_are_counted(tmp_path: object) -> None:
    cache = f"{tmp_path}/memo.db"
    for _ in range(2):
        with pl.Runtime(executors=[pl.ThreadExecutor(1)], cache=cache) as rt:
            assert rt.run(div(1, 4)) == 0.25
    assert repr(rt) == (
        "<Runtime shut down on threads (ThreadExecutor, 1 workers): tasks 0 running, 0 done, 1 memo hits>"
    )
    assert "<th>memo hits</th><td>1</td>" in rt._repr_html_()


def test_a_run_whose_wait_times_out_cancels_its_work(rt: pl.Runtime) -> None:
    with pytest.raises(TimeoutError):
        rt.run(held(7), timeout=0.2)
    deadline = time.monotonic() + 10  # the cancel reaches the runtime's loop just after
    while "1 cancelled" not in repr(rt) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert repr(rt).endswith(", 0 done, 1 cancelled>")  # a thread cannot be killed: it still counts as running
    release.set()
    assert rt.run(held(8), timeout=10) == 8
