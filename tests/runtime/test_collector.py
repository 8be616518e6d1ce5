"""The cyclic collector while a runtime has work: first threshold raised, put back when idle."""

from __future__ import annotations

import concurrent.futures
import gc
import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

import plait as pl
from plait._collector import DEFAULT_THRESHOLD
from plait.runtime._interpreter import HELD_FROM_UNSETTLED
from tests.waiting import wait_for


@pytest.fixture(autouse=True)
def thresholds() -> Iterator[tuple[int, int, int]]:
    """The process's thresholds before the test, put back after it whatever it did."""
    before = gc.get_threshold()
    assert before[0] < DEFAULT_THRESHOLD
    yield before
    gc.set_threshold(*before)


def _threshold_in_run(_: object) -> tuple[int, int, int]:
    return gc.get_threshold()


def _restored(before: tuple[int, int, int]) -> None:
    # The loop lets go at the end of the turn that settled the run, maybe after the caller woke.
    wait_for(lambda: gc.get_threshold() == before, f"the thresholds {before} back", timeout=5)


def test_a_run_raises_the_first_threshold_and_puts_it_back(thresholds: tuple[int, int, int]) -> None:
    with pl.Runtime([pl.ThreadExecutor(1)], progress=False) as rt:
        during = rt.run(pl.pure(0).map(_threshold_in_run))
        _restored(thresholds)
        assert rt.run(pl.pure(1).map(_threshold_in_run)) == during  # again for the next run
        _restored(thresholds)
    assert during == (DEFAULT_THRESHOLD, *thresholds[1:])


def test_gc_threshold_none_leaves_the_collector_alone(thresholds: tuple[int, int, int]) -> None:
    with pl.Runtime([pl.ThreadExecutor(1)], progress=False, gc_threshold=None) as rt:
        assert rt.run(pl.pure(0).map(_threshold_in_run)) == thresholds
    with pl.Runtime([pl.ThreadExecutor(1)], progress=False, gc_threshold=1234) as rt:
        assert rt.run(pl.pure(0).map(_threshold_in_run))[0] == 1234


def test_a_threshold_the_user_sets_during_a_run_is_kept(thresholds: tuple[int, int, int]) -> None:
    def user_sets(_: object) -> None:
        gc.set_threshold(4321)

    with pl.Runtime([pl.ThreadExecutor(1)], progress=False) as rt:
        rt.run(pl.pure(0).map(user_sets))
        rt.run(pl.pure(1))  # a turn of the loop after the run let go
    assert gc.get_threshold()[0] == 4321


def test_put_back_only_when_every_runtime_is_idle(thresholds: tuple[int, int, int]) -> None:
    gate: concurrent.futures.Future[int] = concurrent.futures.Future()
    with (
        pl.Runtime([pl.ThreadExecutor(1)], progress=False) as waiting,
        pl.Runtime([pl.ThreadExecutor(1)], progress=False) as other,
    ):
        held = waiting.submit(pl.gather(gate))
        wait_for(lambda: gc.get_threshold()[0] == DEFAULT_THRESHOLD, "the waiting runtime to hold it", timeout=5)
        assert other.run(pl.pure(0).map(_threshold_in_run))[0] == DEFAULT_THRESHOLD
        assert gc.get_threshold()[0] == DEFAULT_THRESHOLD  # the waiting runtime still has work
        gate.set_result(7)
        assert held.result(timeout=10) == [7]
        _restored(thresholds)


def test_shutting_down_with_work_left_puts_it_back(thresholds: tuple[int, int, int]) -> None:
    gate: concurrent.futures.Future[int] = concurrent.futures.Future()
    with pl.Runtime([pl.ThreadExecutor(1)], progress=False) as rt:
        left = rt.submit(pl.gather(gate))
        wait_for(lambda: gc.get_threshold()[0] == DEFAULT_THRESHOLD, "the run to hold the collector", timeout=5)
    assert left.cancelled() or isinstance(left.exception(timeout=5), concurrent.futures.CancelledError)
    assert gc.get_threshold() == thresholds


@pl.app(pure=False)
def noop(x: int) -> int:
    return x


_gate = threading.Event()


@pl.app(pure=False)
def gated(x: int) -> int:
    assert _gate.wait(10)
    return x


def _gc_calls_on_the_loop(rt: pl.Runtime, calls: Counter[str], on: bool) -> None:
    """Count (``on``) or stop counting the calls of ``gc``'s functions on the runtime's loop thread."""

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "c_call" and getattr(arg, "__module__", None) == "gc":
            calls[arg.__name__] += 1

    done = threading.Event()
    rt._loop.call_soon_threadsafe(lambda: (sys.setprofile(profile if on else None), done.set()))
    assert done.wait(10)


def test_round_trips_one_at_a_time_leave_the_collector_alone(thresholds: tuple[int, int, int]) -> None:
    trips = 100
    calls: Counter[str] = Counter()
    with pl.Runtime([pl.ThreadExecutor(1)], progress=False) as rt:
        rt.run(noop(-1))
        _gc_calls_on_the_loop(rt, calls, on=True)
        for x in range(trips):
            assert rt.run(noop(x)) == x
        _gc_calls_on_the_loop(rt, calls, on=False)
    # Main raised the threshold and put it back every round trip: a lock and two calls of
    # gc each way, for a node or two that no young collection would find work in.
    assert sum(calls.values()) == 0, calls
    assert gc.get_threshold() == thresholds


def test_calls_submitted_one_at_a_time_hold_it_once_many_are_unsettled(thresholds: tuple[int, int, int]) -> None:
    _gate.clear()
    with pl.Runtime([pl.ThreadExecutor(1)], progress=False) as rt:
        futures = [rt.submit(gated(x)) for x in range(HELD_FROM_UNSETTLED)]
        wait_for(lambda: gc.get_threshold()[0] == DEFAULT_THRESHOLD, "the submissions to hold it", timeout=5)
        _gate.set()
        assert [f.result(timeout=10) for f in futures] == list(range(HELD_FROM_UNSETTLED))
        _restored(thresholds)


@pytest.mark.parametrize("bad", [0, -5, 2.5, True, "50000"])
def test_a_bad_threshold_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="gc_threshold"):
        pl.Runtime([pl.ThreadExecutor(1)], gc_threshold=bad)  # type: ignore[arg-type]


def test_traverse_builds_with_the_threshold_raised(thresholds: tuple[int, int, int]) -> None:
    seen = []

    def call(x: int) -> pl.Expr[int]:
        seen.append(gc.get_threshold()[0])
        return pl.pure(x)

    pl.traverse(call, range(3))
    assert seen == [DEFAULT_THRESHOLD] * 3
    assert gc.get_threshold() == thresholds


def _default_under(setting: str) -> subprocess.CompletedProcess[str]:
    script = "from plait._collector import DEFAULT_THRESHOLD; print(DEFAULT_THRESHOLD)"
    env = {**os.environ, "PLAIT_GC_THRESHOLD": setting}
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False)


def test_the_environment_sets_the_default_or_turns_it_off() -> None:
    assert _default_under("off").stdout.strip() == "None"
    assert _default_under("20000").stdout.strip() == "20000"
    for bad in ("lots", "0", "-5"):
        assert f"PLAIT_GC_THRESHOLD must be a positive int or 'off', not '{bad}'" in _default_under(bad).stderr
