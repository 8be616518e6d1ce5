"""An outline drawn as SVG, for notebooks: no Graphviz needed, and a size with a bound.

Boxes stand in rows by depth, inputs at the top and the result at the bottom, at most
``PER_ROW`` to a row (a wider layer wraps). An outline has at most ``MAX_BOXES`` boxes,
so a drawing is never wider than ``MAX_WIDTH`` nor taller than ``MAX_HEIGHT`` pixels,
however big the graph.
"""

from __future__ import annotations

import html
from typing import Any

from plait.dsl._expr import Expr
from plait.dsl._outline import MAX_BOXES, Box, Outline, outline

__all__ = ["MAX_HEIGHT", "MAX_WIDTH", "draw", "to_svg"]

BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 168, 34, 16, 30, 8
PER_ROW = 6
MAX_WIDTH = 2 * MARGIN + PER_ROW * BOX_W + (PER_ROW - 1) * GAP_X
MAX_HEIGHT = 2 * MARGIN + MAX_BOXES * BOX_H + (MAX_BOXES - 1) * GAP_Y + BOX_H  # + the caption line

_FILL = {"call": "#dbe8f7", "more": "#eeeeee", "pure": "#ffffff", "await": "#fdf0d5"}


def draw(expr: Expr[Any]) -> str:
    """The graph under ``expr`` as SVG, folded to an outline first."""
    return to_svg(outline(expr))


def to_svg(graph: Outline) -> str:
    """The outline as an SVG document: boxes, edges from each input to its users, a caption."""
    rows = _rows(graph)
    width = 2 * MARGIN + max(len(r) for r in rows) * (BOX_W + GAP_X) - GAP_X
    height = 2 * MARGIN + len(rows) * (BOX_H + GAP_Y) - GAP_Y + BOX_H
    at: dict[int, tuple[int, int]] = {}
    for r, row in enumerate(rows):
        for c, box in enumerate(row):
            at[box] = (MARGIN + c * (BOX_W + GAP_X), MARGIN + r * (BOX_H + GAP_Y))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" font-size="11">',
        '<defs><marker id="arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="6" markerHeight="6" '
        'orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#666"/></marker></defs>',
    ]
    for source, user in graph.edges:
        (x1, y1), (x2, y2) = at[source], at[user]
        parts.append(
            f'<line x1="{x1 + BOX_W // 2}" y1="{y1 + BOX_H}" x2="{x2 + BOX_W // 2}" y2="{y2}" '
            'stroke="#666" marker-end="url(#arrow)"/>'
        )
    parts += [_box(graph.boxes[i], *at[i]) for i in at]
    boxes = len(graph.boxes)
    caption = f"{graph.nodes} nodes" + (f" in {boxes} boxes" if boxes < graph.nodes else "")
    parts.append(f'<text x="{MARGIN}" y="{height - MARGIN}" fill="#666">{caption}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _rows(graph: Outline) -> list[list[int]]:
    """Boxes by depth (longest path from an input), each layer wrapped at PER_ROW."""
    depth = [0] * len(graph.boxes)
    # An outline's boxes come inputs-first except the result at 0 and "more" last, so relax
    # until nothing changes: at most a pass per box, and outlines are small.
    for _ in graph.boxes:
        changed = False
        for source, user in graph.edges:
            if depth[user] < depth[source] + 1:
                depth[user] = depth[source] + 1
                changed = True
        if not changed:
            break
    layers: dict[int, list[int]] = {}
    for box, d in enumerate(depth):
        layers.setdefault(d, []).append(box)
    rows = []
    for d in sorted(layers):
        layer = layers[d]
        rows += [layer[i : i + PER_ROW] for i in range(0, len(layer), PER_ROW)]
    return rows


def _box(box: Box, x: int, y: int) -> str:
    label = box.label if len(box.label) <= 26 else box.label[:25] + "…"
    fill = _FILL.get(box.kind, "#e8f3e8")
    return (
        f"<g><title>{html.escape(box.label)}</title>"
        f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="4" fill="{fill}" stroke="#456"/>'
        f'<text x="{x + BOX_W // 2}" y="{y + BOX_H // 2 + 4}" text-anchor="middle">{html.escape(label)}</text></g>'
    )
