"""Drawing an expression graph as Graphviz DOT text: a pure function of the Expr.

Each distinct node (by key) is drawn once however many times it is used, and the
graph is walked with an explicit stack, so a chain a hundred thousand deep draws
without recursion. Edges point the way data flows: from an input to its user.
"""

from __future__ import annotations

from typing import Any

from plait.dsl._args import find_refs
from plait.dsl._expr import Attempt, Await, Bind, Call, Expr, Gather, Map, Pure

__all__ = ["to_dot"]

_SHAPES: dict[type[Any], str] = {
    Call: "box",
    Pure: "plaintext",
    Map: "cds",
    Bind: "cds",
    Gather: "invtrapezium",
    Attempt: "octagon",
    Await: "doublecircle",
}


def to_dot(root: Expr[Any], name: str = "plait") -> str:
    """The graph under ``root`` as DOT text, for ``dot -Tsvg``.

    >>> from plait.dsl import pure, gather
    >>> one = pure(1)
    >>> print(to_dot(gather(one, one)), end="")
    digraph plait {
      rankdir=BT;
      node [fontname="Helvetica", fontsize=10];
      n0 [label="gather(2 items)", shape=invtrapezium];
      n1 [label="1", shape=plaintext];
      n1 -> n0;
    }
    """
    ids: dict[bytes, str] = {}
    nodes: list[str] = []
    edges: list[tuple[bytes, bytes]] = []
    todo = [root]
    while todo:
        expr = todo.pop()
        if expr._key in ids:
            continue
        ids[expr._key] = node_id = f"n{len(ids)}"
        nodes.append(f'  {node_id} [label="{_escape(summary(expr))}", shape={_SHAPES.get(type(expr), "ellipse")}];')
        children = expr.children()
        edges.extend((child._key, expr._key) for child in dict.fromkeys(children))
        todo.extend(reversed(children))  # reversed: the first argument is drawn first
    lines = [f"digraph {_identifier(name)} {{", "  rankdir=BT;", '  node [fontname="Helvetica", fontsize=10];']
    lines += nodes
    lines += [f"  {ids[child]} -> {ids[parent]};" for child, parent in dict.fromkeys(edges)]
    lines.append("}")
    return "\n".join(lines) + "\n"


def summary(expr: Expr[Any]) -> str:
    """A node's label: the app and its literal arguments; inputs from other nodes are ``·``.

    >>> from plait.dsl import pure
    >>> summary(pure("hello"))
    "'hello'"
    """
    if isinstance(expr, Call):
        parts = [_argument(a) for a in expr.args] + [f"{k}={_argument(v)}" for k, v in expr.kwargs.items()]
        return f"{expr.app.name}({', '.join(parts)})"
    if isinstance(expr, Pure):
        return _short(repr(expr.value))
    if isinstance(expr, Attempt):
        return "attempt"
    return expr.label()


def _argument(value: Any) -> str:
    """How an argument shows in a label: literals as short reprs, Exprs as ``·``.

    >>> from plait.dsl import pure
    >>> _argument(pure(1)), _argument([pure(1), pure(2)]), _argument(3.5)
    ('·', 'list(2 inputs)', '3.5')
    """
    refs: list[Any] = []
    find_refs(value, refs)
    if not refs:
        return _short(repr(value))
    if len(refs) == 1 and refs[0] is value:
        return "·"
    return f"{type(value).__name__}({len(refs)} inputs)"


def _short(text: str, limit: int = 32) -> str:
    """
    >>> _short("x" * 40, 8)
    'xxxxxxx…'
    """
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _escape(text: str) -> str:
    r"""Text safe inside a DOT double-quoted string.

    >>> _escape('say "hi"\n')
    'say \\"hi\\"\\n'
    """
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _identifier(name: str) -> str:
    """A DOT graph name: ``name`` if it is a plain identifier, else quoted.

    >>> _identifier("pi"), _identifier("my graph")
    ('pi', '"my graph"')
    """
    return name if name.isidentifier() else f'"{_escape(name)}"'
