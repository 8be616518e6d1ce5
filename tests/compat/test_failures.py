"""Retries and join apps, as Parsl documents them (walltime: test_walltime.py)."""

from __future__ import annotations

from typing import Any

import pytest

from plait.compat import parsl
from plait.compat.parsl import join_app, python_app
from plait.compat.parsl.dataflow.errors import DependencyError, JoinError

tries: list[str] = []


@python_app
def flaky(tag: str, failures: int) -> str:
    tries.append(tag)
    if tries.count(tag) <= failures:
        raise OSError(f"{tag}: transient failure {tries.count(tag)}")
    return tag


@python_app
def double(x: int) -> int:
    return 2 * x


@python_app
def fail(message: str) -> int:
    raise ValueError(message)


def test_retries_try_a_failed_task_again(load: Any) -> None:
    load(retries=2)
    tries.clear()
    assert flaky("twice", failures=2).result(timeout=10) == "twice"
    assert tries == ["twice"] * 3
    error = flaky("thrice", failures=3).exception(timeout=10)
    assert isinstance(error, OSError) and "failure 3" in str(error)
    assert tries.count("thrice") == 3


def test_a_dependency_error_is_not_retried(load: Any) -> None:
    load(retries=3)
    tries.clear()
    assert isinstance(flaky(fail("root"), failures=0).exception(timeout=10), DependencyError)
    assert tries == []


def test_retry_handler_sets_the_cost_of_each_failure(load: Any) -> None:
    seen: list[tuple[str, int]] = []

    def handler(error: BaseException, record: dict[str, Any]) -> float:
        seen.append((type(error).__name__, record["fail_count"]))
        return 2.0

    load(retries=2, retry_handler=handler)
    tries.clear()
    assert isinstance(flaky("costly", failures=5).exception(timeout=10), OSError)
    assert tries == ["costly"] * 2  # 2 <= 2: tried again; 4 > 2: given up
    assert seen == [("OSError", 1), ("OSError", 2)]


def test_a_failing_retry_handler_ends_the_task_with_its_error(load: Any) -> None:
    def handler(error: BaseException, record: dict[str, Any]) -> float:
        raise RuntimeError("handler broke")

    load(retries=5, retry_handler=handler)
    tries.clear()
    error = flaky("h", failures=1).exception(timeout=10)
    assert isinstance(error, RuntimeError) and tries == ["h"]


@join_app
def fan(n: int) -> Any:
    return [double(i) for i in range(n)]


@join_app
def chain(x: int) -> Any:
    return double(double(x))


@join_app
def fan_with_failure() -> Any:
    return [double(1), fail("inner")]


@join_app
def not_futures() -> Any:
    return 42


@join_app
def fib(n: int) -> Any:
    if n < 2:
        return double(n)  # 2 * n
    return add(fib(n - 1), fib(n - 2))


@python_app
def add(a: int, b: int) -> int:
    return a + b


def test_join_apps_return_the_value_of_their_futures(threads: parsl.DataFlowKernel) -> None:
    assert fan(4).result(timeout=10) == [0, 2, 4, 6]
    assert fan(0).result(timeout=10) == []
    assert chain(3).result(timeout=10) == 12
    assert double(chain(1)).result(timeout=10) == 8
    assert fib(7).result(timeout=20) == 2 * 13


def test_a_join_fails_with_join_error_naming_the_failed_future(threads: parsl.DataFlowKernel) -> None:
    future = fan_with_failure()
    error = future.exception(timeout=10)
    assert isinstance(error, JoinError) and error.task_id == future.tid
    assert [type(e) for e, _ in error.dependent_exceptions_tids] == [ValueError]
    assert error.dependent_exceptions_tids[0][1].startswith("task ")


def test_a_join_app_must_return_futures(threads: parsl.DataFlowKernel) -> None:
    with pytest.raises(TypeError, match="must return a Future or list of Futures"):
        not_futures().result(timeout=10)
