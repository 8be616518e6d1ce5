"""The reference evaluator (plait.testing.evaluate): the oracle runs are compared with."""

from __future__ import annotations

import pytest

import plait as pl
import plait.testing as pt
from plait.testing._palette import add, inc, neg
from plait.testing._reference import possible_failures

DEEPER_THAN_THE_STACK = 5_000  # Python's default recursion limit is 1,000 frames


def count_down(n: int) -> pl.Expr[int]:
    """A bind whose next graph is another such bind, ``n`` levels down."""
    return pl.pure(0) if n == 0 else pl.pure(n - 1).bind(count_down)


def test_a_graph_deeper_than_the_stack_evaluates_without_recursion() -> None:
    chain = pl.pure(0)
    for _ in range(DEEPER_THAN_THE_STACK):
        chain = chain.map(inc)
    assert pt.evaluate(chain) == DEEPER_THAN_THE_STACK
    assert pt.evaluate(count_down(DEEPER_THAN_THE_STACK)) == 0
    assert possible_failures(chain.map(lambda x: 1 // (x - x))) != []


def test_shared_work_runs_once_and_a_failure_raises_what_the_app_raised() -> None:
    calls = []
    x = pl.pure(2).map(lambda v: calls.append(v) or v)
    assert pt.evaluate(add(neg(x), x)) == 0
    assert calls == [2]
    with pytest.raises(ZeroDivisionError):
        pt.evaluate(add(pl.pure(1).map(lambda v: v // 0), 1))
    recovered = pl.pure(1).map(lambda v: v // 0).recover(lambda error: type(error).__name__)
    assert pt.evaluate(recovered) == "ZeroDivisionError"


def test_a_bind_that_returns_no_expr_fails_as_it_does_in_a_run() -> None:
    with pytest.raises(TypeError, match="must return an Expr, not a int"):
        pt.evaluate(pl.pure(1).bind(lambda v: v))  # type: ignore[arg-type, return-value]
