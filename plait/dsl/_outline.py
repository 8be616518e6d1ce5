"""A graph's outline: its nodes folded into a few boxes, so a big graph stays readable.

A small graph keeps one box per distinct node. A bigger one folds the nodes that play the
same part into one box with a count: same kind, same app (or function), and inputs from
the same boxes. The 2 000 ``inside(x, y)`` calls of a fan-in become one box, "inside
times 2000", with one edge to their ``avg``. What is still too big after folding keeps the
boxes nearest the result and one box saying how many were left out. Everything is a walk
with an explicit stack: a chain a hundred thousand deep outlines without recursion.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import attrs

from plait.dsl._dot import _short, summary
from plait.dsl._expr import Call, Expr, Map

__all__ = ["Box", "Outline", "outline"]

MAX_BOXES = 24  # boxes in a drawing, the "… more" box included


@attrs.frozen
class Box:
    """One box: ``count`` nodes of one kind (``kind`` is the Expr kind: call, map, gather...)."""

    label: str
    kind: str
    count: int


@attrs.frozen
class Outline:
    """Boxes, and edges between them as (input box, user box) indexes; the result is box 0."""

    boxes: tuple[Box, ...]
    edges: tuple[tuple[int, int], ...]
    nodes: int  # distinct nodes in the graph


def outline(root: Expr[Any], max_boxes: int = MAX_BOXES) -> Outline:
    """Fold the graph under ``root`` into at most ``max_boxes`` boxes.

    >>> from plait.dsl import gather, pure
    >>> o = outline(gather(*[pure(i) for i in range(100)]))
    >>> [(b.kind, b.count) for b in o.boxes], o.edges, o.nodes
    ([('gather', 1), ('pure', 100)], ((1, 0),), 101)
    """
    order = _post_order(root)
    fold = len(order) > max_boxes
    group_of: dict[bytes, int] = {}
    groups: dict[Any, int] = {}
    members: list[list[Expr[Any]]] = []
    edges: dict[tuple[int, int], None] = {}
    for expr in order:
        inputs = sorted({group_of[c._key] for c in expr.children()})
        sort = (type(expr), _role(expr), tuple(inputs)) if fold else expr._key
        group = groups.setdefault(sort, len(groups))
        if group == len(members):
            members.append([])
        members[group].append(expr)
        group_of[expr._key] = group
        edges.update(((i, group), None) for i in inputs)
    boxes = [_box(m) for m in members]
    return _trim(boxes, list(edges), group_of[root._key], max_boxes, len(order))


def _post_order(root: Expr[Any]) -> list[Expr[Any]]:
    """Each distinct node once, after all its inputs."""
    seen: set[bytes] = set()
    order: list[Expr[Any]] = []
    todo: list[tuple[Expr[Any], bool]] = [(root, False)]
    while todo:
        expr, expanded = todo.pop()
        if expanded:
            order.append(expr)
            continue
        if expr._key in seen:
            continue
        seen.add(expr._key)
        todo.append((expr, True))
        todo.extend((c, False) for c in reversed(expr.children()) if c._key not in seen)
    return order


def _role(expr: Expr[Any]) -> str:
    """What nodes must share to fold together, besides kind and inputs."""
    if isinstance(expr, Call):
        return str(expr.app.name)
    if isinstance(expr, Map):
        return expr.label()
    return ""


def _box(members: list[Expr[Any]]) -> Box:
    first = members[0]
    if len(members) == 1:
        return Box(_short(summary(first), 60), first.kind, 1)
    name = first.app.name if isinstance(first, Call) else first.label() if isinstance(first, Map) else first.kind
    return Box(f"{name} \N{MULTIPLICATION SIGN}{len(members)}", first.kind, len(members))


def _trim(boxes: list[Box], edges: list[tuple[int, int]], root: int, max_boxes: int, nodes: int) -> Outline:
    """Keep the ``max_boxes - 1`` boxes nearest the result (breadth first), and a box for the rest."""
    inputs: dict[int, list[int]] = {}
    for source, user in edges:
        inputs.setdefault(user, []).append(source)
    kept = {root: 0}
    queue = deque([root])
    limit = len(boxes) if len(boxes) <= max_boxes else max_boxes - 1
    while queue and len(kept) < limit:
        for source in inputs.get(queue.popleft(), ()):
            if source not in kept and len(kept) < limit:
                kept[source] = len(kept)
                queue.append(source)
    new_boxes = [boxes[b] for b in kept]
    new_edges = [(kept[s], kept[u]) for s, u in edges if s in kept and u in kept]
    if len(kept) < len(boxes):
        left = sum(b.count for i, b in enumerate(boxes) if i not in kept)
        more = len(new_boxes)
        new_boxes.append(Box(f"… {left} more nodes", "more", left))
        cut = dict.fromkeys(u for s, u in edges if s not in kept and u in kept)
        new_edges += [(more, kept[u]) for u in cut]
    return Outline(tuple(new_boxes), tuple(new_edges), nodes)
