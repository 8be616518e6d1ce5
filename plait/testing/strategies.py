"""hypothesis strategies that build random workflows over your apps.

>>> from hypothesis import given
>>> @given(exprs())
... def test_runs(expr): ...

``exprs(apps=[...])`` reads each app's signature and type hints: an argument of type
``P`` is a literal (from ``leaves`` or a default for plain data types), an Expr whose
type is ``P`` (another app's result, a map, a bind, a gather...), or a sibling argument
drawn just before (so graphs share work). Graphs shrink towards a single ``pure`` or a
call with literal arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from hypothesis import strategies as st

from plait.dsl import App, Expr
from plait.testing._describe import describe
from plait.testing._drawing import Graphs
from plait.testing._palette import APPS, BINDS, MAPS

__all__ = ["describe", "exprs"]


def exprs(
    leaves: st.SearchStrategy[Any] | Mapping[Any, st.SearchStrategy[Any]] | None = None,
    *,
    apps: Iterable[App[..., Any]] | None = None,
    maps: Iterable[Callable[[Any], Any]] | None = None,
    binds: Iterable[Callable[[Any], Expr[Any]]] | None = None,
    returns: Any = None,
    max_depth: int = 3,
    max_width: int = 3,
    max_leaves: int = 12,
) -> st.SearchStrategy[Expr[Any]]:
    """Random graphs of pure, call, map, bind, gather and traverse nodes over ``apps``.

    Without ``apps``, a palette of small integer apps builds ``Expr[int]`` graphs.
    ``leaves`` gives literal values: a mapping from types to strategies, or one strategy
    for the result type. ``maps`` and ``binds`` are extra typed functions for ``.map``
    and ``.bind`` (a bind's function returns an Expr). ``returns`` fixes the result type
    (default: any app's return type). ``max_depth`` bounds the nesting of Exprs,
    ``max_width`` the items of a gather or traverse, ``max_leaves`` (softly) the leaves.

    >>> from hypothesis import given
    >>> import plait as pl
    >>> @pl.app
    ... def double(x: int) -> int:
    ...     return 2 * x
    >>> strategy = exprs(apps=[double], max_depth=2)
    """
    if max_depth < 0 or max_width < 1 or max_leaves < 1:
        raise ValueError("exprs: max_depth must be >= 0, max_width and max_leaves >= 1")
    palette = apps is None
    graphs = Graphs(
        apps=APPS if palette else tuple(apps or ()),
        maps=MAPS if palette and maps is None else tuple(maps or ()),
        binds=BINDS if palette and binds is None else tuple(binds or ()),
        leaves=leaves,
        returns=int if palette and returns is None else returns,
        max_width=max_width,
    )
    return graphs.strategy(max_depth, max_leaves)
