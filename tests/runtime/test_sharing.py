"""The sharing rule: equal calls share one run while it is in the runtime's hands; the memo
serves them after. pure=False calls never share. Eager and lazy submission alike."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import plait as pl

RUNS: list[int] = []
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
