"""check_laws: functor, applicative and monad laws for Expr, over your own apps.

``returns``' law checker generates its own values and pure functions; we give it
graphs over the user's apps as containers, and pure functions that do not need
hypothesis while they run (the runtime calls map and bind functions on its own
thread, where hypothesis' generated functions refuse to draw). The laws it cannot
generate, those that need real apps as bind functions, are added here.
"""

from __future__ import annotations

import functools
import sys
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from returns.primitives.hkt import KindN

from plait.dsl import App, Expr, gather, pure, traverse
from plait.dsl._token import Untokenizable, digest, token_of
from plait.runtime import Runtime
from plait.testing._describe import describe
from plait.testing._drawing import Arrow, Graphs
from plait.testing._equivalence import (
    assert_equivalent,
    local_runtime,
    returns_compares_outcomes,
    same_outcome,
    schedule_independent,
)
from plait.testing._palette import APPS, BINDS, MAPS

__all__ = ["check_laws"]


@attrs.frozen
class Table:
    """A pure function of any arguments: one of ``values``, chosen by a hash of them.

    >>> f = Table((10, 20, 30))
    >>> f("a") == f("a"), {f(x) for x in range(50)} == {10, 20, 30}
    (True, True)
    """

    values: tuple[Any, ...]

    def __call__(self, *args: Any) -> Any:
        try:
            token = token_of(args)
        except Untokenizable:
            token = repr(args).encode()
        return self.values[int.from_bytes(digest(token)[:4], "little") % len(self.values)]


def _pure_functions(containers: st.SearchStrategy[Expr[Any]]) -> Callable[[Any], st.SearchStrategy[Table]]:
    def factory(thing: Any) -> st.SearchStrategy[Table]:
        result = thing.__args__[-1]
        if result is KindN or typing.get_origin(result) is KindN:
            values: st.SearchStrategy[Any] = containers
        else:
            values = st.from_type(type(None) if result is None else result)
        return st.lists(values, min_size=1, max_size=4).map(lambda vs: Table(tuple(vs)))

    return factory


def check_laws(
    apps: Iterable[App[..., Any]] | None = None,
    *,
    leaves: st.SearchStrategy[Any] | Mapping[Any, st.SearchStrategy[Any]] | None = None,
    max_examples: int = 25,
    max_depth: int = 2,
    runtime: Callable[[], Runtime] = local_runtime,
) -> None:
    """Add law tests to the calling test module; call it at module level.

    The functor, applicative and monad laws from ``returns`` over random graphs of
    ``apps`` (the integer palette by default), then the laws that need real apps:
    left identity and associativity of ``bind`` with app calls, ``traverse`` as a
    ``gather`` of calls, interpretation agreeing with direct evaluation, and results
    independent of the schedule. Each test runs its examples on a fresh ``runtime()``.
    """
    from returns.contrib.hypothesis.laws import check_all_laws

    chosen = tuple(apps) if apps is not None else APPS
    palette = apps is None
    graphs = Graphs(
        apps=chosen,
        maps=MAPS if palette else (),
        binds=BINDS if palette else (),
        leaves=leaves,
        returns=int if palette else None,
        max_width=3,
    )
    containers = graphs.strategy(max_depth, 8)
    kwargs: dict[str, Any] = {
        "max_examples": max_examples,
        "deadline": None,
        "suppress_health_check": [HealthCheck.too_slow],
    }
    app_laws = _app_laws(graphs, max_depth)  # raises first if no app can be bound
    here = sys.modules[__name__]
    before = set(vars(here))
    # check_all_laws puts its tests into the module that calls it, which is this one.
    check_all_laws(
        Expr,
        container_strategy=lambda _: containers,
        settings_kwargs=kwargs,
        type_strategies={Callable: _pure_functions(containers)},  # type: ignore[dict-item]
    )
    caller = sys._getframe(1).f_globals
    for name in set(vars(here)) - before:
        caller[name] = _in_runtime(vars(here).pop(name), runtime)
    for test in app_laws:
        caller[test.__name__] = _in_runtime(settings(**kwargs)(test), runtime)


def _in_runtime(test: Callable[[], None], runtime: Callable[[], Runtime]) -> Callable[[], None]:
    @functools.wraps(test)
    def run() -> None:
        with runtime(), returns_compares_outcomes():  # the laws compare what both sides compute
            test()

    return run


def _app_laws(graphs: Graphs, depth: int) -> list[Callable[[], None]]:
    arrows = graphs.arrows(depth, 8)
    if arrows.is_empty:
        names = ", ".join(s.app.name for s in graphs.sigs)
        raise ValueError(f"check_laws: none of {names} has a typed parameter a bind could fill")

    def value(data: st.DataObject, f: Arrow) -> Any:
        literal = f.literal(f.source)
        return data.draw(literal) if literal is not None else _current().run(f.expr(f.source, depth), timeout=60)

    @given(st.data())
    def test_expr_bind_left_identity_with_apps(data: st.DataObject) -> None:
        f = data.draw(arrows)
        x = value(data, f)
        assert same_outcome(pure(x).bind(f.fn), f.fn(x)), describe(f.fn(x))

    @given(st.data())
    def test_expr_bind_associativity_with_apps(data: st.DataObject) -> None:
        f = data.draw(arrows)
        m = f.expr(f.source, depth)
        then = graphs.arrows(depth, 8, source=f.target)
        g = pure if then.is_empty or not data.draw(st.booleans()) else data.draw(then).fn
        left, right = m.bind(f.fn).bind(g), m.bind(_Then(f.fn, g))
        assert same_outcome(left, right), describe(left)

    @given(st.data())
    def test_expr_traverse_is_a_gather_of_calls(data: st.DataObject) -> None:
        f = data.draw(arrows)
        items = [value(data, f) for _ in range(data.draw(st.integers(0, 3)))]
        expected = gather([f.fn(x) for x in items])
        assert same_outcome(traverse(f.fn, items), expected)
        assert same_outcome(traverse(f.fn, pure(items)), expected)

    @given(st.data())
    def test_expr_interpretation_agrees_with_direct_evaluation(data: st.DataObject) -> None:
        f = data.draw(arrows)
        assert_equivalent(f.expr(f.source, depth).bind(f.fn), _current())

    @given(st.data())
    def test_expr_result_is_schedule_independent(data: st.DataObject) -> None:
        f = data.draw(arrows)
        expr = f.expr(f.source, depth).bind(f.fn)
        assert schedule_independent(expr, seeds=(data.draw(st.integers(0, 2**16)),)), describe(expr)

    return [
        test_expr_bind_left_identity_with_apps,
        test_expr_bind_associativity_with_apps,
        test_expr_traverse_is_a_gather_of_calls,
        test_expr_interpretation_agrees_with_direct_evaluation,
        test_expr_result_is_schedule_independent,
    ]


@attrs.frozen
class _Then:
    """``v -> f(v).bind(g)``: the right side of associativity, as a value with a key."""

    f: Callable[[Any], Expr[Any]]
    g: Callable[[Any], Expr[Any]]

    def __call__(self, value: Any) -> Expr[Any]:
        return self.f(value).bind(self.g)


def _current() -> Runtime:
    from plait.runtime import current_runtime

    return current_runtime()
