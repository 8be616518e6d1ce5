"""Nothing in the interpreter recurses on graph depth: deep chains fail, cancel and shut down."""

from __future__ import annotations

import concurrent.futures
import time
from pathlib import Path
from typing import Any

import pytest

import plait as pl
from tests.processes import children_left
from tests.runtime.test_cancel import sleeper
from tests.waiting import wait_for_line


@pl.app
def broken() -> int:
    raise ValueError("the root cause")


@pl.app
def step(x: int) -> int:
    return x + 1


def chain(first: pl.Expr[int], depth: int) -> pl.Expr[int]:
    expr = first
    for _ in range(depth):
        expr = step(expr)
    return expr


def test_a_100_000_deep_chain_over_a_failing_task_fails_fast_naming_the_root_cause() -> None:
    top = chain(broken(), 100_000)
    begun = time.monotonic()
    with pl.Runtime([pl.ThreadExecutor(1)]) as rt, pytest.raises(pl.DependencyError) as info:
        rt.run(top, timeout=60)
    assert time.monotonic() - begun < 30
    error = info.value
    assert isinstance(error.root, ValueError) and str(error.root) == "the root cause"
    assert str(error).startswith("broken() failed with ValueError: the root cause")
    assert len(str(error)) < 1000


def test_labels_and_reprs_of_deep_chains_are_short() -> None:
    top = chain(step(0), 100_000)
    assert top.label().startswith("step(step(") and len(top.label()) < 100
    nested: pl.Expr[Any] = step(0)
    for _ in range(10_000):
        nested = step([nested])  # type: ignore[arg-type]
    assert len(repr(nested)) < 100


@pytest.mark.parametrize("how", ["cancel", "shutdown"])
def test_a_1000_deep_unfinished_chain_cancels_and_shuts_down_leaving_no_process(tmp_path: Path, how: str) -> None:
    marker = tmp_path / "started"
    assert not children_left(0), "children left over from an earlier test"
    with pl.Runtime([pl.ProcessExecutor(1)]) as rt:
        future = rt.submit(chain(sleeper(str(marker)), 1000))
        wait_for_line(marker)
        if how == "cancel":
            assert future.cancel()
            assert rt.run(step(1), timeout=30) == 2  # the runtime goes on
    with pytest.raises(concurrent.futures.CancelledError):
        future.result(timeout=1)
    assert not children_left(10), "the runtime left processes behind"


def test_shutdown_stops_the_executors_even_when_cancelling_the_graph_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "started"
    assert not children_left(0), "children left over from an earlier test"
    runtime = pl.Runtime([pl.ProcessExecutor(1)])

    def broken_cancel() -> None:  # something before the executors' shutdown raises
        raise RuntimeError("cancelling broke")

    monkeypatch.setattr(runtime._interpreter, "cancel_all", broken_cancel)
    with pytest.raises(RuntimeError, match="cancelling broke"), runtime as rt:
        rt.submit(sleeper(str(marker)))
        wait_for_line(marker)
    assert not children_left(10), "the launcher and workers outlived the runtime"


def countdown(n: int) -> pl.Expr[int]:
    """A bind whose inner expression is the next bind, ``n`` deep."""
    return pl.pure(0) if n == 0 else pl.pure(n - 1).bind(countdown)


def test_5000_nested_binds_settle_without_recursion() -> None:
    with pl.Runtime([pl.ThreadExecutor(1)]) as rt:
        assert rt.run(countdown(5000), timeout=60) == 0
        with pytest.raises(pl.DependencyError, match="the root cause"):
            rt.run(pl.pure(5000).bind(countdown).bind(lambda _: chain(broken(), 3)), timeout=60)
