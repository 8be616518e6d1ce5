"""Drawing random graphs: which types each app, map and bind builds and how deep a graph
must be to produce each (:class:`Graphs`), and one graph being drawn (:class:`Drawing`)."""

from __future__ import annotations

import enum
import functools
import inspect
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
from hypothesis import strategies as st

from plait.dsl import App, Expr, gather, pure, traverse
from plait.testing._continuations import HOLE, CallWith, Fallback, Item
from plait.testing._signatures import (
    AppSignature,
    Param,
    TypedFunction,
    fits,
    list_item,
    name_of,
    signature_of,
    typed_function,
)

__all__ = ["INF", "Arrow", "Drawing", "Graphs"]

_SCALARS: dict[Any, st.SearchStrategy[Any]] = {
    int: st.integers(-1000, 1000),
    float: st.floats(-1e6, 1e6, allow_nan=False),
    bool: st.booleans(),
    str: st.text(max_size=8),
    bytes: st.binary(max_size=8),
    type(None): st.none(),
}


INF = 1 << 30


class Graphs:
    """What can build a value of each type, and the recursive drawing of graphs."""

    def __init__(
        self,
        *,
        apps: Sequence[App[..., Any]],
        maps: Sequence[Callable[[Any], Any]],
        binds: Sequence[Callable[[Any], Expr[Any]]],
        leaves: st.SearchStrategy[Any] | Mapping[Any, st.SearchStrategy[Any]] | None,
        returns: Any,
        max_width: int,
    ) -> None:
        self.sigs = tuple(signature_of(a) for a in apps)
        self.maps = tuple(typed_function(f, bind=False) for f in maps)
        self.binds = tuple(typed_function(f, bind=True) for f in binds)
        if not self.sigs and returns is None:
            raise ValueError("exprs: give apps=[...] (or returns=T with leaves for T)")
        roots = (returns,) if returns is not None else tuple(dict.fromkeys(s.returns for s in self.sigs))
        if isinstance(leaves, st.SearchStrategy):
            leaves = {roots[0]: leaves}
        self.leaves = dict(leaves or {})
        self.max_width = max_width
        self.roots = roots
        self._literals: dict[Any, st.SearchStrategy[Any] | None] = {}
        self.depth = self._min_depths()
        for sig in self.sigs:
            for p in sig.params:
                if self._param_depth(p) >= INF:
                    raise ValueError(
                        f"exprs: app {sig.app.name} needs argument {p.name!r} of type {name_of(p.type)}, which "
                        f"neither leaves= nor any app's result provides; pass leaves={{{name_of(p.type)}: <strategy>}}"
                    )
        for root in roots:
            if self.depth.get(root, INF) >= INF:
                raise ValueError(
                    f"exprs: nothing builds a {name_of(root)}; pass leaves={{{name_of(root)}: <strategy>}}"
                )

    # -- literals ------------------------------------------------------------------------

    def literal(self, t: Any) -> st.SearchStrategy[Any] | None:
        """Literal values of type ``t``, or None when plait does not know how to make one."""
        if t not in self._literals:
            self._literals[t] = self._make_literal(t)
        return self._literals[t]

    def _make_literal(self, t: Any) -> st.SearchStrategy[Any] | None:
        if t in self.leaves:
            chosen: st.SearchStrategy[Any] = self.leaves[t]
            return chosen
        if t in _SCALARS:
            return _SCALARS[t]
        if isinstance(t, type) and issubclass(t, enum.Enum):
            return st.sampled_from(t)
        origin, args = typing.get_origin(t), typing.get_args(t)
        if origin is typing.Literal:
            return st.sampled_from(args)
        if origin is None or not args:
            return None
        inner = [self.literal(a) for a in args if a is not Ellipsis]
        parts = [s for s in inner if s is not None]
        return self._container(origin, parts, Ellipsis in args) if len(parts) == len(inner) else None

    def _container(self, origin: Any, parts: list[st.SearchStrategy[Any]], etc: bool) -> st.SearchStrategy[Any] | None:
        if origin in (typing.Union, types.UnionType):
            return st.one_of(parts)
        if origin in (list, set, frozenset) or (origin is tuple and etc):
            return st.lists(parts[0], max_size=self.max_width).map(origin)
        if origin is tuple:
            return st.tuples(*parts)
        if origin is dict:
            return st.dictionaries(parts[0], parts[1], max_size=self.max_width)
        return None

    # -- how deep a graph must be to produce each type ----------------------------------

    def _types(self) -> set[Any]:
        found = set(self.roots)
        for sig in self.sigs:
            found.add(sig.returns)
            typed = [p.type for p in sig.params if p.type is not inspect.Parameter.empty]
            found.update(typed)
            found.update(list[t] for t in typed)  # type: ignore[valid-type]  # what a traverse over an Expr needs
        for arrow in self.maps + self.binds:
            found.update((arrow.source, arrow.target))
        for t in list(found):
            item = list_item(t)
            while item is not None:
                found.add(item)
                item = list_item(item)
        return found

    def _min_depths(self) -> dict[Any, int]:
        depth = {t: (0 if self.literal(t) is not None else INF) for t in self._types()}
        changed = True
        while changed:  # a shortest-path fixpoint over the finite set of types
            changed = False
            for t, now in depth.items():
                best = min([now, *(d for d, _ in self._producers(t, depth))])
                if best < now:
                    depth[t], changed = best, True
        return depth

    def _producers(self, t: Any, depth: Mapping[Any, int]) -> list[tuple[int, str]]:
        out = [(self._call_depth(sig, depth), "call") for sig in self.sigs if fits(sig.returns, t)]
        out += [(depth.get(a.source, INF) + 1, "map") for a in self.maps + self.binds if fits(a.target, t)]
        item = list_item(t)
        if item is not None:
            out.append((depth.get(item, INF) + 1, "gather"))
        return out

    def _call_depth(self, sig: AppSignature, depth: Mapping[Any, int] | None = None) -> int:
        return max((self._param_depth(p, depth) for p in sig.params), default=0)

    def _param_depth(self, p: Param, depth: Mapping[Any, int] | None = None) -> int:
        if p.default is not inspect.Parameter.empty or p.kind is p.VAR_POSITIONAL:
            return 0
        if self.literal(p.type) is not None:
            return 0
        below = (depth if depth is not None else self.depth).get(p.type, INF)
        return below + 1 if below < INF else INF

    # -- drawing ----------------------------------------------------------------------------

    def strategy(self, max_depth: int, max_leaves: int) -> st.SearchStrategy[Expr[Any]]:
        @st.composite
        def graphs(draw: st.DrawFn) -> Expr[Any]:
            root = draw(st.sampled_from(self.roots))
            return Drawing(self, draw, max_leaves).expr(root, max(max_depth, self.depth[root]))

        return graphs()

    def arrows(self, max_depth: int, max_leaves: int, source: Any = None) -> st.SearchStrategy[Arrow]:
        """App calls with one argument (of type ``source``, if given) left open, for laws
        about ``bind`` and ``traverse``; empty when no app has such a parameter."""
        holes = [
            (sig, p)
            for sig in self.sigs
            for p in Drawing.holes(self, sig, max_depth - 1)
            if source is None or fits(source, p.type)
        ]
        if not holes:
            return st.nothing()

        @st.composite
        def arrows(draw: st.DrawFn) -> Arrow:
            sig, hole = draw(st.sampled_from(holes))
            drawing = Drawing(self, draw, max_leaves)
            return Arrow(hole.type, drawing.call_with(sig, hole, max_depth - 1), sig.returns, drawing)

        return arrows()


@attrs.frozen
class Arrow:
    """``fn: source -> Expr[target]``, and what draws more graphs of the same example."""

    source: Any
    fn: CallWith
    target: Any
    drawing: Drawing = attrs.field(repr=False)

    def expr(self, t: Any, depth: int) -> Expr[Any]:
        """A graph of type ``t``, drawn in the same example."""
        return self.drawing.expr(t, depth)

    def literal(self, t: Any) -> st.SearchStrategy[Any] | None:
        return self.drawing.g.literal(t)


class Drawing:
    """One graph being drawn: the hypothesis draw function and the leaves left."""

    def __init__(self, graphs: Graphs, draw: st.DrawFn, leaves: int) -> None:
        self.g = graphs
        self.draw = draw
        self.leaves = leaves

    def expr(self, t: Any, depth: int) -> Expr[Any]:
        """An Expr of type ``t`` at most ``depth`` deep (more only if ``t`` needs it)."""
        g = self.g
        if self.leaves <= 0:
            depth = min(depth, g.depth.get(t, INF))
        options: list[Callable[[], Expr[Any]]] = []
        literal = g.literal(t)
        if literal is not None:
            options.append(lambda: pure(self.draw(literal)))
        for sig in g.sigs:
            if fits(sig.returns, t) and g._call_depth(sig) <= depth:
                options.append(functools.partial(self.call, sig, depth))
        if depth > 0:
            options += self._composites(t, depth)
        expr: Expr[Any] = self.draw(st.sampled_from(options))()
        if not expr.children():
            self.leaves -= 1
        return expr

    def _composites(self, t: Any, depth: int) -> list[Callable[[], Expr[Any]]]:
        g, below = self.g, depth - 1
        out: list[Callable[[], Expr[Any]]] = []
        for arrow in g.maps + g.binds:
            if fits(arrow.target, t) and g.depth.get(arrow.source, INF) <= below:
                out.append(functools.partial(self.arrow, arrow, arrow in g.binds, below))
        for sig in g.sigs:
            if fits(sig.returns, t):
                out += [functools.partial(self.bind_app, sig, hole, below) for hole in self.holes(g, sig, below)]
        if g.depth.get(t, INF) <= below:
            out.append(functools.partial(self.pick, t, below))
            if g.literal(t) is not None:
                out.append(functools.partial(self.recover, t, below))
        item = list_item(t)
        if item is not None:
            if g.depth.get(item, INF) <= below:
                out.append(functools.partial(self.gather, item, below))
            for sig in (s for s in g.sigs if fits(s.returns, item)):
                out += [functools.partial(self.traverse, sig, hole, below) for hole in self.holes(g, sig, below)]
        return out

    def arrow(self, arrow: TypedFunction, bind: bool, below: int) -> Expr[Any]:
        src = self.expr(arrow.source, below)
        return src.bind(arrow.fn) if bind else src.map(arrow.fn)

    def bind_app(self, sig: AppSignature, hole: Param, below: int) -> Expr[Any]:
        return self.expr(hole.type, below).bind(self.call_with(sig, hole, below))

    def gather(self, item: Any, below: int) -> Expr[Any]:
        return gather(self.many(functools.partial(self.expr, item, below)))

    @staticmethod
    def holes(g: Graphs, sig: AppSignature, below: int) -> list[Param]:
        """Parameters a bind or traverse can fill, when the rest can be drawn at ``below``."""
        fixed = [p for p in sig.params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        return [
            p
            for p in fixed
            if g.depth.get(p.type, INF) <= below and all(g._param_depth(q) <= below for q in sig.params if q is not p)
        ]

    def many(self, item: Callable[[], Expr[Any]]) -> list[Expr[Any]]:
        n = self.draw(st.integers(1, self.g.max_width))
        return [item() for _ in range(n)]

    def pick(self, t: Any, below: int) -> Expr[Any]:
        items = self.many(functools.partial(self.expr, t, below))
        return gather(items).map(Item(self.draw(st.integers(0, len(items) - 1))))

    def recover(self, t: Any, below: int) -> Expr[Any]:
        literal = self.g.literal(t)
        assert literal is not None
        return self.expr(t, below).recover(Fallback(self.draw(literal)))

    def traverse(self, sig: AppSignature, hole: Param, below: int) -> Expr[Any]:
        """``traverse`` over literal values, over Exprs of them, or over an Expr of a list."""
        g, fn, item = self.g, self.call_with(sig, hole, below), hole.type
        options: list[Callable[[], Any]] = []
        literal = g.literal(item)
        if literal is not None:
            options.append(lambda: self.draw(st.lists(literal, min_size=1, max_size=g.max_width)))
        if g.depth.get(item, INF) <= below:
            options.append(functools.partial(self.many, functools.partial(self.expr, item, below)))
        if g.depth.get(list[item], INF) <= below:  # type: ignore[valid-type]
            options.append(functools.partial(self.expr, list[item], below))  # type: ignore[valid-type]
        return traverse(fn, self.draw(st.sampled_from(options))())

    def call(self, sig: AppSignature, depth: int) -> Expr[Any]:
        args, kwargs = self.arguments(sig, None, depth - 1)
        return sig.app(*args, **kwargs)

    def call_with(self, sig: AppSignature, hole: Param, below: int) -> CallWith:
        args, kwargs = self.arguments(sig, hole, below)
        return CallWith(sig.app, tuple(args), kwargs)

    def arguments(self, sig: AppSignature, hole: Param | None, below: int) -> tuple[list[Any], dict[str, Any]]:
        """Arguments for every parameter (defaults included, as the key would), the hole
        left as :data:`HOLE`. A parameter gets a literal, a fresh child Expr or a sibling."""
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        siblings: list[tuple[Any, Expr[Any]]] = []
        for p in sig.params:
            drawable = p.type is not p.empty and self._drawable(p.type, below, siblings)
            if p is hole:
                value: Any = HOLE
            elif p.kind is p.VAR_POSITIONAL:
                n = self.draw(st.integers(0, self.g.max_width)) if drawable else 0
                args.extend(self.argument(p.type, below, siblings) for _ in range(n))
                continue
            elif p.default is not p.empty and not (drawable and self.draw(st.booleans())):
                value = p.default
            else:
                value = self.argument(p.type, below, siblings)
            if p.kind is p.KEYWORD_ONLY:
                kwargs[p.name] = value
            else:
                args.append(value)
        return args, kwargs

    def _drawable(self, t: Any, below: int, siblings: list[tuple[Any, Expr[Any]]]) -> bool:
        g = self.g
        return g.literal(t) is not None or g.depth.get(t, INF) <= below or any(fits(s, t) for s, _ in siblings)

    def argument(self, t: Any, below: int, siblings: list[tuple[Any, Expr[Any]]]) -> Any:
        g = self.g
        options: list[Callable[[], Any]] = []
        literal = g.literal(t)
        if literal is not None:
            options.append(lambda: self.draw(literal))
        if below >= 0 and g.depth.get(t, INF) <= below:
            options.append(lambda: self.expr(t, below))
        shared = [e for s, e in siblings if fits(s, t)]
        if shared:
            options.append(lambda: self.draw(st.sampled_from(shared)))
        value = self.draw(st.sampled_from(options))()
        if isinstance(value, Expr):
            siblings.append((t, value))
        return value
