"""Functor, applicative and monad laws hold for Exprs under interpretation, and results do
not depend on the executor or the number of workers."""

from __future__ import annotations

import collections.abc
import typing
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from returns.contrib.hypothesis.laws import check_all_laws

import plait as pl
from plait.testing import evaluate, exprs, returns_compares_outcomes, same_outcome
from plait.testing._palette import BINDS, MAPS

LAW_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module", autouse=True)
def runtime() -> Iterator[pl.Runtime]:
    # The laws compare what both sides compute (== compares keys), on the current runtime: this one.
    with pl.Runtime(executors=[pl.ThreadExecutor(4)]) as rt, returns_compares_outcomes():
        yield rt


def _functions(thing: Any) -> st.SearchStrategy[Callable[[Any], Any]]:
    # Deterministic, named functions: hypothesis' generated ones cannot be called from the
    # runtime's thread, where map and bind functions run.
    returns_container = "Kind" in repr(thing.__args__[-1]) or "Container" in repr(thing.__args__[-1])
    return st.sampled_from(BINDS if returns_container else MAPS)


def _containers(thing: Any) -> st.SearchStrategy[pl.Expr[Any]]:
    inner = getattr(thing, "__args__", (None,))[0]
    if typing.get_origin(inner) is collections.abc.Callable:
        return st.sampled_from(MAPS).map(pl.pure)
    return exprs(max_leaves=6)


# returns' own law checker, over graphs built from our palette (values are ints).
check_all_laws(
    pl.Expr,
    container_strategy=_containers,
    type_strategies={collections.abc.Callable: _functions, TypeVar: lambda _: st.integers(-100, 100)},  # type: ignore[dict-item]
    settings_kwargs={"max_examples": 25, "deadline": None, "suppress_health_check": [HealthCheck.too_slow]},
)


@LAW_SETTINGS
@given(st.integers(-100, 100), st.sampled_from(BINDS))
def test_bind_left_identity_with_apps(x: int, f: Callable[[int], pl.Expr[int]]) -> None:
    assert same_outcome(pl.pure(x).bind(f), f(x))


@LAW_SETTINGS
@given(exprs())
def test_bind_right_identity(expr: pl.Expr[int]) -> None:
    assert same_outcome(expr.bind(pl.pure), expr)


@LAW_SETTINGS
@given(exprs(), st.sampled_from(BINDS), st.sampled_from(BINDS))
def test_bind_associativity(expr: pl.Expr[int], f: Callable[[int], Any], g: Callable[[int], Any]) -> None:
    assert same_outcome(expr.bind(f).bind(g), expr.bind(lambda v: f(v).bind(g)))


@LAW_SETTINGS
@given(exprs(), st.sampled_from(MAPS), st.sampled_from(MAPS))
def test_map_is_bind_then_pure(expr: pl.Expr[int], f: Callable[[int], int], g: Callable[[int], int]) -> None:
    assert same_outcome(expr.map(f), expr.bind(lambda v: pl.pure(f(v))))
    assert same_outcome(expr.map(f).map(g), expr.map(lambda v: g(f(v))))


@LAW_SETTINGS
@given(exprs())
def test_interpretation_agrees_with_direct_evaluation(expr: pl.Expr[int]) -> None:
    assert pl.run(expr) == evaluate(expr)


def test_equal_outcomes_compare_failures_by_root_cause() -> None:
    @pl.app
    def fail(x: int) -> int:
        raise ValueError(f"bad {x}")

    assert same_outcome(fail(1).map(abs), fail(1))  # both fail with ValueError('bad 1') at the root
    assert not same_outcome(fail(1), fail(2))
    assert not same_outcome(fail(1), pl.pure(1))


@pytest.fixture(scope="module")
def runtimes() -> Iterator[list[pl.Runtime]]:
    chosen = [
        pl.Runtime(executors=[pl.ThreadExecutor(1)]),
        pl.Runtime(executors=[pl.ThreadExecutor(4)]),
        pl.Runtime(executors=[pl.ProcessExecutor(1)]),
        pl.Runtime(executors=[pl.ProcessExecutor(4)]),
    ]
    for rt in chosen:
        rt.start()
    yield chosen
    for rt in chosen:
        rt.shutdown()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(exprs(max_leaves=16))
def test_results_do_not_depend_on_executor_or_worker_count(runtimes: list[pl.Runtime], expr: pl.Expr[int]) -> None:
    results = {rt.run(expr) for rt in runtimes}
    assert len(results) == 1
