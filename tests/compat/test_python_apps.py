"""Python apps as Parsl documents them: eager, impure, futures in, futures out."""

from __future__ import annotations

import concurrent.futures
import re
import threading
import time
from typing import Any

import pytest

from plait.compat import parsl
from plait.compat.parsl import python_app
from plait.compat.parsl.config import Config
from plait.compat.parsl.dataflow.errors import DependencyError
from plait.compat.parsl.errors import ConfigurationError, NoDataFlowKernelError

calls: list[Any] = []


@python_app
def plus(x: int, y: int = 0) -> int:
    return x + y


@python_app
def total(*xs: int, inputs: list[int] = []) -> int:  # noqa: B006 - Parsl's idiom
    return sum(xs) + sum(inputs)


@python_app
def tick(tag: str) -> int:
    calls.append(tag)
    return len(calls)


@python_app(cache=True)
def cached_tick(tag: str) -> int:
    calls.append(tag)
    return len(calls)


@python_app
def fail(message: str) -> int:
    raise ValueError(message)


@python_app
def gate(event: threading.Event) -> str:
    event.wait(10)
    return "opened"


def test_a_call_has_started_when_it_returns(threads: parsl.DataFlowKernel) -> None:
    event = threading.Event()
    future = gate(event)
    assert isinstance(future, concurrent.futures.Future)
    assert not future.done()
    event.set()
    assert future.result(timeout=10) == "opened" and future.done()


def test_future_repr_tid_and_callbacks(threads: parsl.DataFlowKernel) -> None:
    seen: list[concurrent.futures.Future[Any]] = []
    first, second = plus(1, 2), plus(3)
    second.add_done_callback(seen.append)
    assert (first.result(), second.result()) == (3, 3)
    assert second.tid == first.tid + 1
    assert re.fullmatch(r"<AppFuture at 0x[0-9a-f]+ state=finished returned int>", repr(first))
    assert seen == [second]
    assert first.exception() is None


def test_every_call_runs_even_with_equal_arguments(threads: parsl.DataFlowKernel) -> None:
    calls.clear()
    results = sorted(f.result() for f in [tick("same"), tick("same"), tick("same")])
    assert results == [1, 2, 3] and calls == ["same"] * 3


def test_cache_true_shares_equal_calls_in_a_run(threads: parsl.DataFlowKernel) -> None:
    calls.clear()
    first = cached_tick("a").result()
    assert cached_tick("a").result() == first  # served from the run's memo, after it finished
    assert cached_tick("b").result() != first
    assert calls == ["a", "b"]


def test_futures_as_arguments_keywords_and_inputs_resolve(threads: parsl.DataFlowKernel) -> None:
    standard: concurrent.futures.Future[int] = concurrent.futures.Future()
    later = total(plus(1), y := plus(2), inputs=[plus(3), standard, 4])
    standard.set_result(5)
    assert later.result(timeout=10) == 1 + 2 + 3 + 5 + 4
    assert plus(x=plus(1), y=y).result() == 3


def test_result_timeout_raises_while_running(threads: parsl.DataFlowKernel) -> None:
    event = threading.Event()
    future = gate(event)
    with pytest.raises(concurrent.futures.TimeoutError):
        future.result(timeout=0.05)
    event.set()
    assert future.result(timeout=10) == "opened"


def test_an_apps_exception_is_the_futures(threads: parsl.DataFlowKernel) -> None:
    future = fail("boom")
    with pytest.raises(ValueError, match="boom"):
        future.result()
    assert isinstance(future.exception(), ValueError)


def test_dependents_of_a_failure_fail_with_dependency_error_without_running(threads: parsl.DataFlowKernel) -> None:
    calls.clear()
    broken = fail("root")
    child = tick(broken)
    grandchild = plus(child, plus(1))
    error = grandchild.exception(timeout=10)
    assert isinstance(error, DependencyError)
    assert error.task_id == grandchild.tid
    assert [d for _, d in error.dependent_exceptions_tids] == [f"task {child.tid}"]
    inner = error.dependent_exceptions_tids[0][0]
    assert isinstance(inner, DependencyError) and inner.dependent_exceptions_tids[0][1] == f"task {broken.tid}"
    assert isinstance(error.__cause__, ValueError) and str(error.__cause__) == "root"
    assert f"task {child.tid} <- task {broken.tid}" in str(error)
    assert calls == []


def test_a_dependency_error_lists_every_failed_input(threads: parsl.DataFlowKernel) -> None:
    one, two = fail("one"), fail("two")
    error = total(one, plus(1), inputs=[two]).exception(timeout=10)
    assert isinstance(error, DependencyError)
    assert sorted(str(e) for e, _ in error.dependent_exceptions_tids) == ["one", "two"]


def test_lifted_item_and_attribute(threads: parsl.DataFlowKernel) -> None:
    @python_app
    def make() -> dict[str, Any]:
        return {"xs": [10, 20], "n": 3}

    made = make()
    assert made["xs"][1].result() == 20
    assert plus(made["n"], 1).result() == 4
    assert made["missing"].exception(timeout=10) is not None
    assert plus(1).real.result() == 1


def test_a_bad_call_fails_its_future(threads: parsl.DataFlowKernel) -> None:
    future = plus(1, 2, 3)
    assert isinstance(future.exception(timeout=10), TypeError)


def test_apps_need_a_loaded_config_and_only_one() -> None:
    with pytest.raises(NoDataFlowKernelError):
        plus(1)
    with parsl.load(Config()) as kernel:
        with pytest.raises(ConfigurationError, match="already been loaded"):
            parsl.load(Config())
        assert parsl.dfk() is kernel and plus(2).result() == 2
    with pytest.raises(NoDataFlowKernelError):  # leaving the with block cleaned up and cleared
        parsl.dfk()


def test_exit_mode_wait_waits_for_tasks(load: Any) -> None:
    @python_app
    def slow() -> int:
        time.sleep(0.2)
        return 1

    with load(exit_mode="wait"):
        future = slow()
    assert future.result(timeout=0) == 1


def test_wait_for_current_tasks(threads: parsl.DataFlowKernel) -> None:
    futures = [plus(i) for i in range(20)]
    parsl.wait_for_current_tasks()
    assert all(f.done() for f in futures)


def test_a_decorator_option_parsl_does_not_have_is_refused_where_the_app_is_defined() -> None:
    with pytest.raises(TypeError, match="walltime"):
        python_app(walltime=1)  # walltime is an argument of the call, not of the decorator
    with pytest.raises(TypeError, match="executors"):
        parsl.join_app(executors=["threads"])  # join apps run on the internal threads


@python_app
def times(left: int, right: int) -> int:
    return left * right


@python_app
def released(event: threading.Event, value: int) -> int:
    event.wait(10)
    return value


def test_calls_waiting_on_the_same_pending_future_stay_apart(threads: parsl.DataFlowKernel) -> None:
    # b and c both wait for a, which has not finished when they are made: each is its own work.
    event = threading.Event()
    a = released(event, 2)
    b, c = times(a, 3), times(a, 5)
    d = times(b, c)
    event.set()
    assert (b.result(timeout=10), c.result(timeout=10), d.result(timeout=10)) == (6, 10, 60)


def test_exit_modes_skip_keeps_the_config_loaded_and_a_wrong_one_is_refused() -> None:
    from plait.compat.parsl.dataflow.dflow import DataFlowKernelLoader

    config = Config()
    config.exit_mode = "skip"
    with parsl.load(config) as kernel:
        future = plus(1)
    assert parsl.dfk() is kernel and future.result(timeout=10) == 1 and not kernel.cleanup_called
    kernel.cleanup()
    assert kernel.cleanup_called and DataFlowKernelLoader._dfk is None
    with pytest.raises(TypeError, match="exit_mode"):
        Config(exit_mode="wrongmode")
