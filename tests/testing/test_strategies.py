"""exprs(apps=...): random typed graphs over a user's apps, that run, shrink, and explain misuse."""

from __future__ import annotations

import collections
from typing import Any

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

import plait as pl
import plait.testing as pt


class Frame:
    """A user type plait cannot invent: graphs get Frames from apps or from leaves=."""

    def __init__(self, pixels: list[int]) -> None:
        self.pixels = pixels


pl.register_token(Frame, lambda f: f.pixels)


@pl.app
def load(n: int) -> Frame:
    return Frame([(n * 7 + i) % 11 for i in range(n % 5)])


@pl.app
def brightness(frame: Frame, gain: float = 1.0) -> float:
    return round(sum(frame.pixels) * gain, 6)


@pl.app
def stack(*values: float) -> list[float]:
    return sorted(values)


@pl.app
def median(values: list[float]) -> float:
    return values[len(values) // 2] if values else 0.0


APPS = [load, brightness, stack, median]


def kinds(expr: pl.Expr[Any]) -> collections.Counter[str]:
    seen: dict[bytes, str] = {}
    todo = [expr]
    while todo:
        e = todo.pop()
        if e._key not in seen:
            seen[e._key] = e.kind
            todo.extend(e.children())
    return collections.Counter(seen.values())


@pytest.fixture(scope="module")
def runtime() -> Any:
    with pt.local_runtime() as rt:
        yield rt


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pt.exprs(apps=APPS, max_depth=3))
def test_graphs_over_user_apps_run_and_agree_with_direct_evaluation(runtime: pl.Runtime, expr: pl.Expr[Any]) -> None:
    pt.assert_equivalent(expr, runtime)


def test_graphs_use_every_kind_of_node_and_share_work() -> None:
    seen: collections.Counter[str] = collections.Counter()
    shared = 0

    @settings(max_examples=150, derandomize=True, deadline=None)
    @given(pt.exprs(apps=APPS))
    def draw(expr: pl.Expr[Any]) -> None:
        nonlocal shared
        seen.update(kinds(expr))
        shared += "(shared, above)" in pt.describe(expr)

    draw()
    assert {"pure", "call", "map", "bind", "gather", "attempt"} <= set(seen), seen
    assert shared > 0


def test_graphs_shrink_to_small_ones() -> None:
    smallest = find(
        pt.exprs(apps=APPS), lambda e: kinds(e)["bind"] > 0, settings=settings(database=None, max_examples=500)
    )
    assert sum(kinds(smallest).values()) <= 4, pt.describe(smallest)
    call = find(pt.exprs(apps=APPS, returns=float), lambda e: kinds(e)["call"] >= 2, settings=settings(database=None))
    assert sum(kinds(call).values()) <= 3, pt.describe(call)


def test_no_argument_exprs_are_int_graphs_over_the_palette() -> None:
    @settings(max_examples=30, deadline=None)
    @given(pt.exprs())
    def check(expr: pl.Expr[int]) -> None:
        assert isinstance(pt.evaluate(expr), int)

    check()


def test_leaves_give_values_for_types_plait_cannot_invent() -> None:
    @pl.app
    def width(frame: Frame) -> int:
        return len(frame.pixels)

    with pytest.raises(ValueError, match=r"app .*width needs argument 'frame' of type Frame.*leaves=\{Frame"):
        pt.exprs(apps=[width])
    frames = st.builds(Frame, st.lists(st.integers(0, 9), max_size=3))
    value = find(pt.exprs(apps=[width], leaves={Frame: frames}), lambda e: pt.evaluate(e) == 2)
    assert pt.evaluate(value) == 2


def test_apps_without_type_hints_are_refused_by_name() -> None:
    @pl.app
    def untyped(x) -> int:  # type: ignore[no-untyped-def]
        return x

    @pl.app
    def no_result(x: int):  # type: ignore[no-untyped-def]
        return x

    with pytest.raises(TypeError, match=r"app .*untyped, parameter 'x' has no type hint"):
        pt.exprs(apps=[untyped])
    with pytest.raises(TypeError, match=r"app .*no_result has no return type hint"):
        pt.exprs(apps=[no_result])
    with pytest.raises(TypeError, match="takes plait apps"):
        pt.exprs(apps=[len])  # type: ignore[list-item]
