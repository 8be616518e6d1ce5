"""The runtime's promises, checked with plait.testing's own tools: memo on or off, chaos or
not, the outcome is the same; cancelling leaves nothing running."""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest
from hypothesis import HealthCheck, given, settings

import plait as pl
import plait.testing as pt
from tests.waiting import wait_for

PROPERTY = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(pt.exprs(max_leaves=8))
def test_memo_on_or_off_gives_the_same_result(tmp_path_factory: pytest.TempPathFactory, expr: pl.Expr[int]) -> None:
    memo = tmp_path_factory.getbasetemp() / f"memo-{uuid.uuid4().hex}.db"
    # plain; memo filled (cold); memo served (warm); memo served under chaos
    pt.assert_equivalent(
        expr,
        pt.local_runtime(),
        pt.local_runtime(cache=memo),
        pt.local_runtime(cache=memo),
        pt.chaos_runtime(seed=5, fail_rate=0.2, cache=memo),
    )


def test_a_warm_memo_runs_nothing_and_gives_the_same_result(tmp_path: Path) -> None:
    calls: list[int] = []

    @pl.app
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    expr = pl.gather([square(i) for i in range(6)]).map(sum)
    memo = tmp_path / "memo.db"
    pt.assert_equivalent(expr, pt.local_runtime(cache=memo), pt.local_runtime(cache=memo))
    assert sorted(calls) == list(range(6))  # the second runtime was served from the memo


@PROPERTY
@given(pt.exprs(max_leaves=8))
def test_retries_under_chaos_give_the_same_result(expr: pl.Expr[int]) -> None:
    pt.assert_equivalent(
        expr, pt.local_runtime(1), pt.chaos_runtime(seed=9, fail_rate=0.3, lose_rate=0.2, delay=(0.0, 0.003))
    )


def test_cancelling_on_threads_starts_nothing_more_and_answers_every_task() -> None:
    started: list[int] = []
    gate = threading.Event()

    @pl.app(cache=False)  # its closure holds an Event, which has no content to hash
    def slow(i: int) -> int:
        started.append(i)
        gate.wait(20)
        return i

    chaos = pt.ChaosExecutor(1, delay=(0.0, 0.002), inner=pl.ThreadExecutor(2))
    with pl.Runtime(executors=[chaos]) as rt:
        future = rt.submit(pl.gather([slow(i) for i in range(20)]).map(sum))
        wait_for(lambda: len(started) == 2, "two tasks to start")
        assert future.cancel()
        gate.set()
        wait_for(lambda: chaos.in_flight == 0, "every submitted task to be answered")
        settled = len(started)
        time.sleep(0.1)  # nothing queued may start late
        assert len(started) == settled < 20
        assert rt.run(slow(100), timeout=30) == 100  # and the runtime still works


def test_cancelling_on_processes_kills_what_runs(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()

    @pl.app
    def sleeper(i: int, where: str) -> int:
        Path(where, str(os.getpid())).touch()
        time.sleep(120)
        return i

    chaos = pt.ChaosExecutor(2, inner=pl.ProcessExecutor(2))
    with pl.Runtime(executors=[chaos]) as rt:
        future = rt.submit(pl.gather([sleeper(i, str(pids)) for i in range(6)]))
        wait_for(lambda: len(list(pids.iterdir())) == 2, "two tasks to start", timeout=60)
        running = [int(p.name) for p in pids.iterdir()]
        future.cancel()
        wait_for(lambda: chaos.in_flight == 0, "the running tasks to be stopped", timeout=60)
        wait_for(lambda: not any(_alive(pid) for pid in running), "the task processes to exit", timeout=60)
    assert len(list(pids.iterdir())) == 2  # the four queued tasks never started


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pl.app
def invert(x: int) -> float:
    return round(1 / (x % 7), 6)  # ZeroDivisionError for multiples of 7


@pl.app
def nth(xs: list[float], i: int) -> float:
    return xs[i % 4]  # IndexError for short lists


@pl.app
def pair(a: float, b: int) -> list[float]:
    return [a, float(b)]


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(pt.exprs(apps=[invert, nth, pair], max_depth=3, max_width=4))
def test_graphs_with_failing_apps_agree_across_runtimes(expr: pl.Expr[Any]) -> None:
    # several calls may fail; whichever fails first is reported, and both must be real
    pt.assert_equivalent(expr, pt.local_runtime(1), pt.local_runtime(4), pt.chaos_runtime(seed=4, lose_rate=0.2))
    pt.assert_equivalent(expr, pt.local_runtime(2))  # against direct evaluation


def test_an_app_that_fails_differently_each_time_is_caught() -> None:
    @pl.app(pure=False)
    def flaky(x: int) -> int:
        raise ValueError(f"bad luck {uuid.uuid4().hex}")

    with pytest.raises(AssertionError, match=r"outcomes differ:\n.*ValueError: bad luck"):
        pt.assert_equivalent(pl.gather([flaky(1), pl.pure(2)]), pt.local_runtime(), pt.local_runtime())
