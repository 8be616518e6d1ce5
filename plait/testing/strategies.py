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

import enum
import functools
import inspect
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

import attrs
from hypothesis import strategies as st
from hypothesis.vendor.pretty import for_type_by_name

from plait.dsl import App, Expr, gather, pure, traverse
from plait.dsl._expr import Attempt, Await, Bind, Call, Gather, Map, Pure
from plait.testing._palette import APPS, BINDS, MAPS

__all__ = ["describe", "exprs"]

_SCALARS: dict[Any, st.SearchStrategy[Any]] = {
    int: st.integers(-1000, 1000),
    float: st.floats(-1e6, 1e6, allow_nan=False),
    bool: st.booleans(),
    str: st.text(max_size=8),
    bytes: st.binary(max_size=8),
    type(None): st.none(),
}
_INF = 1 << 30


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
    graphs = _Graphs(
        apps=APPS if palette else tuple(apps or ()),
        maps=MAPS if palette and maps is None else tuple(maps or ()),
        binds=BINDS if palette and binds is None else tuple(binds or ()),
        leaves=leaves,
        returns=int if palette and returns is None else returns,
        max_width=max_width,
    )
    return graphs.strategy(max_depth, max_leaves)


# -- the typed pieces a graph is made of --------------------------------------------------


@attrs.frozen
class _Param:
    name: str
    kind: inspect._ParameterKind
    type: Any
    default: Any  # inspect.Parameter.empty when required

    # inspect.Parameter's names, so a _Param reads like one
    empty: ClassVar[Any] = inspect.Parameter.empty
    POSITIONAL_OR_KEYWORD: ClassVar[Any] = inspect.Parameter.POSITIONAL_OR_KEYWORD
    VAR_POSITIONAL: ClassVar[Any] = inspect.Parameter.VAR_POSITIONAL
    KEYWORD_ONLY: ClassVar[Any] = inspect.Parameter.KEYWORD_ONLY


@attrs.frozen
class _Sig:
    app: App[..., Any]
    params: tuple[_Param, ...]
    returns: Any


@attrs.frozen
class _Arrow:
    """A typed user function for ``map`` (returns a value) or ``bind`` (returns an Expr)."""

    fn: Callable[[Any], Any]
    source: Any
    target: Any


@attrs.frozen
class _Hole:
    """Where a bind or traverse puts the value it receives."""


HOLE = _Hole()


@attrs.frozen
class CallWith:
    """``value -> app(*args, **kwargs)`` with the hole filled by ``value``: a bind or
    traverse continuation that is a plain value, so it has a deterministic key."""

    app: App[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    def label(self) -> str:
        """The call with its hole as ``_``, e.g. ``scale(_, 3)``."""
        shown = [_short_arg(a) for a in self.args] + [f"{k}={_short_arg(v)}" for k, v in self.kwargs.items()]
        return f"{self.app.name}({', '.join(shown)})"

    def __call__(self, value: Any) -> Expr[Any]:
        fill = functools.partial(_fill, value)
        return self.app(*map(fill, self.args), **{k: fill(v) for k, v in self.kwargs.items()})


@attrs.frozen
class Fallback:
    """``error -> value``: what ``recover`` gives when its source failed."""

    value: Any

    def __call__(self, error: BaseException) -> Any:
        return self.value


def _short_arg(value: Any, limit: int = 24) -> str:
    text = "_" if isinstance(value, _Hole) else value.label() if isinstance(value, Expr) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fill(value: Any, slot: Any) -> Any:
    return value if isinstance(slot, _Hole) else slot


@attrs.frozen
class Item:
    """``xs -> xs[index]``: picks one result out of a gather."""

    index: int

    def __call__(self, items: Sequence[Any]) -> Any:
        return items[self.index]


def _hints(fn: Callable[..., Any], what: str) -> inspect.Signature:
    try:
        return inspect.signature(fn, eval_str=True)
    except (NameError, TypeError) as error:
        raise TypeError(f"exprs: cannot read the type hints of {what}: {error}") from None


def _sig(app: App[..., Any]) -> _Sig:
    if not isinstance(app, App):
        raise TypeError(f"exprs(apps=...) takes plait apps, not {app!r}")
    sig = _hints(app.fn, f"app {app.name}")
    if sig.return_annotation is inspect.Signature.empty:
        raise TypeError(f"exprs: app {app.name} has no return type hint; annotate it (-> T)")
    params = []
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            continue
        required = p.default is p.empty and p.kind is not p.VAR_POSITIONAL
        if p.annotation is p.empty and (required or p.kind is p.VAR_POSITIONAL):
            raise TypeError(f"exprs: app {app.name}, parameter {p.name!r} has no type hint; annotate it")
        params.append(_Param(p.name, p.kind, p.annotation, p.default))
    return _Sig(app, tuple(params), sig.return_annotation)


def _arrow(fn: Callable[[Any], Any], bind: bool) -> _Arrow:
    what = f"{'bind' if bind else 'map'} function {getattr(fn, '__qualname__', fn)!r}"
    sig = _hints(fn, what)
    params = list(sig.parameters.values())
    if not params or params[0].annotation is params[0].empty or sig.return_annotation is sig.empty:
        raise TypeError(f"exprs: {what} needs type hints for its argument and its result")
    target = sig.return_annotation
    if bind:
        if typing.get_origin(target) is not Expr:
            raise TypeError(f"exprs: {what} must be annotated to return Expr[T], not {target!r}")
        target = typing.get_args(target)[0]
    return _Arrow(fn, params[0].annotation, target)


def _fits(provided: Any, wanted: Any) -> bool:
    """Whether a value of type ``provided`` may be passed where ``wanted`` is expected.

    >>> _fits(bool, int), _fits(int, float), _fits(list[int], list[int]), _fits(str, Any)
    (True, False, True, True)
    """
    if wanted is Any or provided == wanted:
        return True
    return isinstance(provided, type) and isinstance(wanted, type) and issubclass(provided, wanted)


def _list_item(t: Any) -> Any:
    """``X`` when ``t`` is ``list[X]``, else None."""
    if typing.get_origin(t) is list:
        args = typing.get_args(t)
        return args[0] if args else None
    return None


class _Graphs:
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
        self.sigs = tuple(_sig(a) for a in apps)
        self.maps = tuple(_arrow(f, bind=False) for f in maps)
        self.binds = tuple(_arrow(f, bind=True) for f in binds)
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
                if self._param_depth(p) >= _INF:
                    raise ValueError(
                        f"exprs: app {sig.app.name} needs argument {p.name!r} of type {_name(p.type)}, which "
                        f"neither leaves= nor any app's result provides; pass leaves={{{_name(p.type)}: <strategy>}}"
                    )
        for root in roots:
            if self.depth.get(root, _INF) >= _INF:
                raise ValueError(f"exprs: nothing builds a {_name(root)}; pass leaves={{{_name(root)}: <strategy>}}")

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
            item = _list_item(t)
            while item is not None:
                found.add(item)
                item = _list_item(item)
        return found

    def _min_depths(self) -> dict[Any, int]:
        depth = {t: (0 if self.literal(t) is not None else _INF) for t in self._types()}
        changed = True
        while changed:  # a shortest-path fixpoint over the finite set of types
            changed = False
            for t, now in depth.items():
                best = min([now, *(d for d, _ in self._producers(t, depth))])
                if best < now:
                    depth[t], changed = best, True
        return depth

    def _producers(self, t: Any, depth: Mapping[Any, int]) -> list[tuple[int, str]]:
        out = [(self._call_depth(sig, depth), "call") for sig in self.sigs if _fits(sig.returns, t)]
        out += [(depth.get(a.source, _INF) + 1, "map") for a in self.maps + self.binds if _fits(a.target, t)]
        item = _list_item(t)
        if item is not None:
            out.append((depth.get(item, _INF) + 1, "gather"))
        return out

    def _call_depth(self, sig: _Sig, depth: Mapping[Any, int] | None = None) -> int:
        return max((self._param_depth(p, depth) for p in sig.params), default=0)

    def _param_depth(self, p: _Param, depth: Mapping[Any, int] | None = None) -> int:
        if p.default is not inspect.Parameter.empty or p.kind is p.VAR_POSITIONAL:
            return 0
        if self.literal(p.type) is not None:
            return 0
        below = (depth if depth is not None else self.depth).get(p.type, _INF)
        return below + 1 if below < _INF else _INF

    # -- drawing ----------------------------------------------------------------------------

    def strategy(self, max_depth: int, max_leaves: int) -> st.SearchStrategy[Expr[Any]]:
        @st.composite
        def graphs(draw: st.DrawFn) -> Expr[Any]:
            root = draw(st.sampled_from(self.roots))
            return _Draw(self, draw, max_leaves).expr(root, max(max_depth, self.depth[root]))

        return graphs()

    def arrows(self, max_depth: int, max_leaves: int, source: Any = None) -> st.SearchStrategy[Arrow]:
        """App calls with one argument (of type ``source``, if given) left open, for laws
        about ``bind`` and ``traverse``; empty when no app has such a parameter."""
        holes = [
            (sig, p)
            for sig in self.sigs
            for p in _Draw.holes(self, sig, max_depth - 1)
            if source is None or _fits(source, p.type)
        ]
        if not holes:
            return st.nothing()

        @st.composite
        def arrows(draw: st.DrawFn) -> Arrow:
            sig, hole = draw(st.sampled_from(holes))
            drawing = _Draw(self, draw, max_leaves)
            return Arrow(hole.type, drawing.call_with(sig, hole, max_depth - 1), sig.returns, drawing)

        return arrows()


@attrs.frozen
class Arrow:
    """``fn: source -> Expr[target]``, and what draws more graphs of the same example."""

    source: Any
    fn: CallWith
    target: Any
    drawing: _Draw = attrs.field(repr=False)

    def expr(self, t: Any, depth: int) -> Expr[Any]:
        """A graph of type ``t``, drawn in the same example."""
        return self.drawing.expr(t, depth)

    def literal(self, t: Any) -> st.SearchStrategy[Any] | None:
        return self.drawing.g.literal(t)


class _Draw:
    """One graph being drawn: the hypothesis draw function and the leaves left."""

    def __init__(self, graphs: _Graphs, draw: st.DrawFn, leaves: int) -> None:
        self.g = graphs
        self.draw = draw
        self.leaves = leaves

    def expr(self, t: Any, depth: int) -> Expr[Any]:
        """An Expr of type ``t`` at most ``depth`` deep (more only if ``t`` needs it)."""
        g = self.g
        if self.leaves <= 0:
            depth = min(depth, g.depth.get(t, _INF))
        options: list[Callable[[], Expr[Any]]] = []
        literal = g.literal(t)
        if literal is not None:
            options.append(lambda: pure(self.draw(literal)))
        for sig in g.sigs:
            if _fits(sig.returns, t) and g._call_depth(sig) <= depth:
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
            if _fits(arrow.target, t) and g.depth.get(arrow.source, _INF) <= below:
                out.append(functools.partial(self.arrow, arrow, arrow in g.binds, below))
        for sig in g.sigs:
            if _fits(sig.returns, t):
                out += [functools.partial(self.bind_app, sig, hole, below) for hole in self.holes(g, sig, below)]
        if g.depth.get(t, _INF) <= below:
            out.append(functools.partial(self.pick, t, below))
            if g.literal(t) is not None:
                out.append(functools.partial(self.recover, t, below))
        item = _list_item(t)
        if item is not None:
            if g.depth.get(item, _INF) <= below:
                out.append(functools.partial(self.gather, item, below))
            for sig in (s for s in g.sigs if _fits(s.returns, item)):
                out += [functools.partial(self.traverse, sig, hole, below) for hole in self.holes(g, sig, below)]
        return out

    def arrow(self, arrow: _Arrow, bind: bool, below: int) -> Expr[Any]:
        src = self.expr(arrow.source, below)
        return src.bind(arrow.fn) if bind else src.map(arrow.fn)

    def bind_app(self, sig: _Sig, hole: _Param, below: int) -> Expr[Any]:
        return self.expr(hole.type, below).bind(self.call_with(sig, hole, below))

    def gather(self, item: Any, below: int) -> Expr[Any]:
        return gather(self.many(functools.partial(self.expr, item, below)))

    @staticmethod
    def holes(g: _Graphs, sig: _Sig, below: int) -> list[_Param]:
        """Parameters a bind or traverse can fill, when the rest can be drawn at ``below``."""
        fixed = [p for p in sig.params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        return [
            p
            for p in fixed
            if g.depth.get(p.type, _INF) <= below and all(g._param_depth(q) <= below for q in sig.params if q is not p)
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

    def traverse(self, sig: _Sig, hole: _Param, below: int) -> Expr[Any]:
        """``traverse`` over literal values, over Exprs of them, or over an Expr of a list."""
        g, fn, item = self.g, self.call_with(sig, hole, below), hole.type
        options: list[Callable[[], Any]] = []
        literal = g.literal(item)
        if literal is not None:
            options.append(lambda: self.draw(st.lists(literal, min_size=1, max_size=g.max_width)))
        if g.depth.get(item, _INF) <= below:
            options.append(functools.partial(self.many, functools.partial(self.expr, item, below)))
        if g.depth.get(list[item], _INF) <= below:  # type: ignore[valid-type]
            options.append(functools.partial(self.expr, list[item], below))  # type: ignore[valid-type]
        return traverse(fn, self.draw(st.sampled_from(options))())

    def call(self, sig: _Sig, depth: int) -> Expr[Any]:
        args, kwargs = self.arguments(sig, None, depth - 1)
        return sig.app(*args, **kwargs)

    def call_with(self, sig: _Sig, hole: _Param, below: int) -> CallWith:
        args, kwargs = self.arguments(sig, hole, below)
        return CallWith(sig.app, tuple(args), kwargs)

    def arguments(self, sig: _Sig, hole: _Param | None, below: int) -> tuple[list[Any], dict[str, Any]]:
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
        return g.literal(t) is not None or g.depth.get(t, _INF) <= below or any(_fits(s, t) for s, _ in siblings)

    def argument(self, t: Any, below: int, siblings: list[tuple[Any, Expr[Any]]]) -> Any:
        g = self.g
        options: list[Callable[[], Any]] = []
        literal = g.literal(t)
        if literal is not None:
            options.append(lambda: self.draw(literal))
        if below >= 0 and g.depth.get(t, _INF) <= below:
            options.append(lambda: self.expr(t, below))
        shared = [e for s, e in siblings if _fits(s, t)]
        if shared:
            options.append(lambda: self.draw(st.sampled_from(shared)))
        value = self.draw(st.sampled_from(options))()
        if isinstance(value, Expr):
            siblings.append((t, value))
        return value


def _name(t: Any) -> str:
    return getattr(t, "__qualname__", None) or repr(t)


# -- reading graphs ----------------------------------------------------------------------------


def _pretty(expr: Expr[Any], printer: Any, cycle: bool) -> None:
    printer.text(f"<graph\n{describe(expr)}\n>")


# hypothesis shows a falsifying Expr as its graph, not as the attrs fields of its root
for _kind in (Pure, Call, Map, Bind, Gather, Attempt, Await):
    for_type_by_name(_kind.__module__, _kind.__name__, _pretty)


def _label(node: Expr[Any]) -> str:
    """The node's label, with the continuations this module builds spelled out."""
    fn = getattr(node, "fn", None)
    if isinstance(fn, CallWith):
        return f"bind({fn.label()})"
    if isinstance(fn, Item):
        return f"map(item {fn.index})"
    if isinstance(getattr(fn, "function", None), Fallback):  # what Expr.recover builds
        return f"recover(else {_short_arg(fn.function.value)})"  # type: ignore[union-attr]
    if isinstance(fn, functools.partial) and isinstance(next(iter(fn.args), None), CallWith):
        return f"traverse({fn.args[0].label()})"  # a traverse over an Expr of a list
    return node.label()


def describe(expr: Expr[Any]) -> str:
    """The graph as an indented tree; work shared by several parents is shown once.

    >>> from plait.testing._palette import add, neg
    >>> x = neg(2)
    >>> print(describe(add(x, x)))
    add(neg(2), neg(2))
      neg(2)
      neg(2)  (shared, above)
    """
    lines: list[str] = []
    seen: set[bytes] = set()
    todo: list[tuple[Expr[Any], int]] = [(expr, 0)]
    while todo:
        node, level = todo.pop()
        pad = "  " * level
        if node._key in seen:
            lines.append(f"{pad}{_label(node)}  (shared, above)")
            continue
        seen.add(node._key)
        lines.append(pad + _label(node))
        todo.extend((child, level + 1) for child in reversed(node.children()))
    return "\n".join(lines)
