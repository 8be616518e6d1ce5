"""The sharing rule: equal calls share one run while it is in the runtime's hands; the memo
serves them after. pure=False calls never share. Eager and lazy submission alike."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import plait as pl
from tests.waiting import wait_for

RUNS: list[object] = []
GATE = threading.Event()


@pl.app(pure=True)
def gated(x: int) -> int:
    RUNS.append(x)
    GATE.wait(10)
    return x


@pl.app(pure=False)
def gated_impure(x: int) -> int:
    RUNS.append(x)
    GATE.wait(10)
    return x


@pytest.fixture(autouse=True)
def fresh() -> None:
    RUNS.clear()
    GATE.clear()


@pytest.mark.parametrize(("app", "runs"), [(gated, 1), (gated_impure, 20)])
def test_lazy_equal_calls_in_one_graph(app: pl.App[[int], int], runs: int) -> None:
    GATE.set()
    with pl.Runtime([pl.ThreadExecutor(4)]) as rt:
        assert rt.run(pl.gather([app(1) for _ in range(20)]), timeout=30) == [1] * 20
    assert len(RUNS) == runs


@pytest.mark.parametrize(("app", "runs"), [(gated, 1), (gated_impure, 20)])
def test_eager_equal_calls_while_the_first_runs(app: pl.App[[int], int], runs: int) -> None:
    with pl.Runtime([pl.ThreadExecutor(20)]) as rt:
        futures = [rt.submit(app(1)) for _ in range(20)]
        GATE.set()
        assert [f.result(30) for f in futures] == [1] * 20
    assert len(RUNS) == runs


@pytest.mark.parametrize(("cache", "runs"), [(False, 3), (True, 1)])
def test_after_a_call_finished_the_memo_serves_it_or_it_runs_again(tmp_path: Path, cache: bool, runs: int) -> None:
    GATE.set()
    with pl.Runtime([pl.ThreadExecutor(1)], cache=tmp_path / "memo.db" if cache else None) as rt:
        assert rt.submit(gated(1)).result(30) == 1
        assert rt.submit(gated(1)).result(30) == 1  # eager, after the first finished
        assert rt.run(gated(1), timeout=30) == 1  # lazy, after both finished
    assert len(RUNS) == runs


@pl.app(pure=True)
def echo(x: object) -> object:
    RUNS.append(x)
    return x


@pl.app(pure=True)
def held(x: int) -> int:
    GATE.wait(10)
    return x


def _first_waits_for_its_gather(rt: pl.Runtime, value: object) -> pl.PlaitFuture[list[object]]:
    """A gather of ``echo(value)``, finished, and of ``held(0)``, running: the runtime keeps
    only the echo's value for the gather (no node), which is what these tests share."""
    first = rt.submit(pl.gather(echo(value), held(0)))
    wait_for(lambda: rt._interpreter.ended["done"] == 1, "echo to finish")
    return first


@pytest.mark.parametrize("value", [7, None, 0])
def test_a_result_kept_for_its_gather_is_shared_with_an_equal_call_admitted_meanwhile(value: object) -> None:
    # None and 0 too: a kept value is the index's entry, and no falsy one may pass for "not there".
    with pl.Runtime([pl.ThreadExecutor(2)], progress=False) as rt:
        first = _first_waits_for_its_gather(rt, value)
        assert rt.submit(pl.gather(echo(value), echo(value))).result(10) == [value, value]
        assert rt.submit(echo(value)).result(10) == value
        GATE.set()
        assert first.result(10) == [value, 0]
        assert rt._interpreter.index == {}
    assert [value] == RUNS


def test_a_result_kept_for_a_cancelled_gather_is_let_go() -> None:
    with pl.Runtime([pl.ThreadExecutor(2)], progress=False) as rt:
        first = _first_waits_for_its_gather(rt, 7)
        first.cancel()
        GATE.set()
        wait_for(lambda: rt._interpreter.index == {}, "the index to be empty")
        assert rt.run(echo(7), timeout=10) == 7  # not shared: it had been let go
    assert RUNS == [7, 7]


def _most_not_started(rt: pl.Runtime) -> pl.PlaitFuture[list[object]]:
    """A gather of ``held(0)`` and 49 echoes on one held worker (capacity 2: it holds
    ``echo(1)`` too): the runtime starts only the few calls that keep its queue full, the
    rest wait without a node."""
    first = rt.submit(pl.gather(held(0), *(echo(i) for i in range(1, 50))))
    wait_for(lambda: rt._interpreter.inflight["threads"] == 2, "held(0) and echo(1) to be sent", timeout=10)
    assert len(rt._interpreter.unstarted["threads"]) > 40
    return first


def test_a_call_not_started_yet_is_shared_with_equal_calls_admitted_meanwhile() -> None:
    with pl.Runtime([pl.ThreadExecutor(1)], progress=False) as rt:
        first = _most_not_started(rt)
        second = rt.submit(pl.gather(echo(49), echo(49), echo(48)))
        third = rt.submit(echo(47))
        GATE.set()
        assert first.result(10) == list(range(50))
        assert second.result(10) == [49, 49, 48]
        assert third.result(10) == 47
        assert rt._interpreter.index == {}
        assert rt._interpreter.unsettled == 0
    assert sorted(RUNS) == list(range(1, 50))  # type: ignore[type-var]


def test_calls_not_started_yet_of_a_cancelled_gather_never_start() -> None:
    with pl.Runtime([pl.ThreadExecutor(1)], progress=False) as rt:
        first = _most_not_started(rt)
        first.cancel()
        GATE.set()
        assert rt.run(echo(-1), timeout=10) == -1
        wait_for(lambda: rt._interpreter.index == {}, "the index to be empty")
        assert not rt._interpreter.unstarted["threads"]
        assert rt._interpreter.unsettled == 0
    # echo(1) had been sent to the executor (which may still run it); none of the others started.
    assert not set(RUNS) & set(range(2, 50)), RUNS
