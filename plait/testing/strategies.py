"""hypothesis strategies that build random workflows.

>>> from hypothesis import given
>>> @given(exprs())
... def test_runs(expr): ...
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from plait.dsl import Expr, gather, pure
from plait.testing._palette import BINDS, MAPS, add, neg, scale, total

__all__ = ["evaluate", "exprs"]


def exprs(
    leaves: st.SearchStrategy[int] | None = None,
    *,
    max_leaves: int = 12,
    max_width: int = 4,
) -> st.SearchStrategy[Expr[int]]:
    """Random ``Expr[int]`` graphs of pure, call, map, bind and gather nodes.

    Graphs share subexpressions (a drawn child may appear twice), so deduplication is
    exercised too. They shrink towards a single ``pure``.
    """
    base = (leaves or st.integers(-1000, 1000)).map(pure)

    def extend(children: st.SearchStrategy[Expr[int]]) -> st.SearchStrategy[Expr[int]]:
        many = st.lists(children, min_size=1, max_size=max_width)
        return st.one_of(
            st.tuples(st.sampled_from(MAPS), children).map(lambda t: t[1].map(t[0])),
            st.tuples(st.sampled_from(BINDS), children).map(lambda t: t[1].bind(t[0])),
            st.tuples(children, children).map(lambda t: add(*t)),
            children.map(neg),
            st.tuples(children, st.integers(1, 5)).map(lambda t: scale(t[0], k=t[1])),
            many.map(lambda xs: total(*xs)),
            many.map(lambda xs: gather(xs).map(sum)),
            children.map(lambda e: add(e, e)),
        )

    return st.recursive(base, extend, max_leaves=max_leaves)


def evaluate(expr: Expr[Any]) -> Any:
    """The value of a palette graph computed directly, without any runtime: the oracle."""
    from plait.dsl import Bind, Call, Gather, Map, Pure

    if isinstance(expr, Pure):
        return expr.value
    if isinstance(expr, Map):
        return expr.fn(evaluate(expr.src))
    if isinstance(expr, Bind):
        return evaluate(expr.fn(evaluate(expr.src)))
    if isinstance(expr, Gather):
        return [evaluate(e) for e in expr.items]
    if isinstance(expr, Call):
        from plait.dsl import substitute

        values = iter([evaluate(d) for d in expr.deps])
        return expr.app.fn(*substitute(expr.args, values), **substitute(expr.kwargs, values))
    raise TypeError(f"cannot evaluate {expr!r} without a runtime")
