"""Reading drawn graphs: :func:`describe` prints one as an indented tree, and hypothesis
shows a falsifying Expr that way."""

from __future__ import annotations

import functools
from typing import Any

from hypothesis.vendor.pretty import for_type_by_name

from plait.dsl import Expr
from plait.dsl._expr import Attempt, Await, Bind, Call, Gather, Map, Pure
from plait.testing._continuations import CallWith, Fallback, Item, short_arg

__all__ = ["describe"]


def _pretty(expr: Expr[Any], printer: Any, cycle: bool) -> None:
    printer.text(f"<graph\n{describe(expr)}\n>")


def _label(node: Expr[Any]) -> str:
    """The node's label, with the continuations this module builds spelled out."""
    fn = getattr(node, "fn", None)
    if isinstance(fn, CallWith):
        return f"bind({fn.label()})"
    if isinstance(fn, Item):
        return f"map(item {fn.index})"
    if isinstance(getattr(fn, "function", None), Fallback):  # what Expr.recover builds
        return f"recover(else {short_arg(fn.function.value)})"  # type: ignore[union-attr]
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


# hypothesis shows a falsifying Expr as its graph, not as the attrs fields of its root
for _kind in (Pure, Call, Map, Bind, Gather, Attempt, Await):
    for_type_by_name(_kind.__module__, _kind.__name__, _pretty)
