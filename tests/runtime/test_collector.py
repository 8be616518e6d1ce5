"""The cyclic collector while a runtime has work: first threshold raised, put back when idle."""

from __future__ import annotations

import concurrent.futures
import gc
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

import plait as pl
from plait._collector import DEFAULT_THRESHOLD
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
