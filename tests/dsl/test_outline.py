"""Expr._repr_svg_: a graph drawn for a notebook, folded so a big graph stays readable."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import plait as pl
from plait.dsl._outline import MAX_BOXES, outline
from plait.dsl._svg import MAX_HEIGHT, MAX_WIDTH
from tests.backends.engine_apps import avg, inside


def size(svg: str) -> tuple[int, int]:
    root = ET.fromstring(svg)  # also checks it is well-formed XML
    return int(root.attrib["width"]), int(root.attrib["height"])


def texts(svg: str) -> list[str]:
    return [t.text or "" for t in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}text")]


def test_a_2000_leaf_fan_in_is_two_boxes_under_the_stated_size() -> None:
    fan_in = avg(*[inside(i / 2000, 0.5) for i in range(2000)])
    svg = fan_in._repr_svg_()
    width, height = size(svg)
    assert width <= MAX_WIDTH and height <= MAX_HEIGHT
    assert (MAX_WIDTH, MAX_HEIGHT) == (1104, 1556)  # the bound docs/observe.md states
    assert width < 400 and height < 200  # two boxes, not 2 000
    labels = texts(svg)
    assert "inside \N{MULTIPLICATION SIGN}2000" in labels
    assert any(label.startswith("avg(") for label in labels)
    assert labels[-1] == "2001 nodes in 2 boxes"
    assert svg.count("<line ") == 1


def test_a_small_graph_keeps_a_box_per_node_with_its_arguments() -> None:
    shared = inside(0.1, 0.2)
    graph = pl.gather(avg(shared, 1.0), avg(shared, 2.0))
    labels = texts(graph._repr_svg_())
    assert sorted(labels[:-1]) == sorted(["gather(2 items)", "avg(·, 1.0)", "avg(·, 2.0)", "inside(0.1, 0.2)"])
    assert labels[-1] == "4 nodes"


def test_folding_keeps_apart_calls_with_different_inputs() -> None:
    # Two fan-ins of the same apps over different leaves: each level folds, the levels do not.
    left = [inside(i, 0) for i in range(30)]
    right = [avg(x, 1) for x in left]
    folded = outline(pl.gather(*right))
    assert sorted((b.label, b.count) for b in folded.boxes) == [
        ("avg \N{MULTIPLICATION SIGN}30", 30),
        ("gather(30 items)", 1),
        ("inside \N{MULTIPLICATION SIGN}30", 30),
    ]
    assert len(folded.edges) == 2


def test_a_deep_chain_is_cut_to_the_boxes_nearest_the_result() -> None:
    expr: pl.Expr[int] = pl.pure(0)
    for i in range(20_000):
        expr = inside(expr, i) if i % 2 else expr.map(abs)
    cut = outline(expr)
    assert len(cut.boxes) == MAX_BOXES
    assert cut.boxes[0].label == "inside(·, 19999)"  # the result is box 0
    more = cut.boxes[-1]
    assert more.kind == "more" and more.count == 20_001 - (MAX_BOXES - 1)
    assert re.fullmatch(r"… \d+ more nodes", more.label)
    width, height = size(expr._repr_svg_())
    assert width <= MAX_WIDTH and height <= MAX_HEIGHT


def test_a_wide_layer_of_distinct_boxes_wraps_within_the_width() -> None:
    apps = []
    for n in range(MAX_BOXES * 2):

        def body(x: int) -> int:
            return x

        body.__name__ = body.__qualname__ = f"step{n}"
        apps.append(pl.app(body))
    graph = pl.gather(*[a(1) for a in apps])
    width, height = size(graph._repr_svg_())
    assert width <= MAX_WIDTH and height <= MAX_HEIGHT
