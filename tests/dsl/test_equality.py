"""``==`` and ``hash`` compare keys (the same work) and never run anything."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import plait as pl
from plait.testing import same_outcome

runs: list[int] = []


@pl.app
def add(x: int, y: int) -> int:
    runs.append(x)
    return x + y


@pytest.fixture(autouse=True)
def threads() -> Iterator[pl.Runtime]:
    runs.clear()
    with pl.Runtime(executors=[pl.ThreadExecutor(2)]) as rt:
        yield rt


def test_equal_exprs_are_the_same_work_and_comparing_runs_nothing() -> None:
    assert add(1, 2) == add(1, 2) and hash(add(1, 2)) == hash(add(1, 2))
    assert add(1, 2) != add(2, 1)
    assert pl.pure(3) != add(1, 2)  # the same value, but not the same work
    assert runs == []


def test_membership_and_dict_lookups_run_nothing() -> None:
    assert add(1, 2) in [add(3, 4), add(1, 2)]
    assert add(5, 6) not in [add(3, 4), pl.pure(11)]
    table = {add(1, 2): "a", add(3, 4): "b"}
    assert table[add(3, 4)] == "b" and table.get(pl.pure(3)) is None
    assert len({add(1, 2), add(1, 2), add(2, 1)}) == 2
    assert runs == []


def test_comparing_an_expr_with_a_value_is_an_error_that_says_how() -> None:
    with pytest.raises(TypeError, match=r"add\(1, 2\) == 2.0: an Expr.*plait.run\(expr\) == value"):
        assert add(1, 2) == 2.0
    with pytest.raises(TypeError, match="compares only with other Exprs"):
        assert 3 in [add(1, 2)]
    assert runs == []


def test_an_expr_compared_with_a_future_is_an_error_too(threads: pl.Runtime) -> None:
    future = threads.submit(add(1, 2))
    with pytest.raises(TypeError, match="compares only with other Exprs"):
        assert add(1, 2) == future
    assert future.expr == add(1, 2)


def test_same_outcome_runs_both_sides() -> None:
    assert same_outcome(pl.pure(3), add(1, 2)) and not same_outcome(pl.pure(4), add(1, 2))
    assert sorted(runs) == [1, 1]
