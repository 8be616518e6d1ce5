"""Expr.to_dot: every distinct node once, literal arguments in labels, no recursion."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

import plait as pl


@pl.app
def add(a: int, b: int) -> int:
    return a + b


@pl.app
def shout(text: str) -> str:
    return text.upper()


def labels(dot: str) -> list[str]:
    return re.findall(r'\[label="((?:[^"\\]|\\.)*)"', dot)


def edges(dot: str) -> list[tuple[str, str]]:
    return re.findall(r"^  (n\d+) -> (n\d+);$", dot, re.MULTILINE)


def test_a_shared_node_is_drawn_once_with_an_edge_to_each_user() -> None:
    shared = add(1, 2)
    graph = pl.gather(add(shared, 10), add(shared, 20), shared)
    dot = graph.to_dot()
    assert sorted(labels(dot)) == sorted(["gather(3 items)", "add(·, 10)", "add(·, 20)", "add(1, 2)"])
    ids = dict((label, f"n{i}") for i, label in enumerate(labels(dot)))
    assert sorted(edges(dot)) == sorted(
        [
            (ids["add(1, 2)"], ids["add(·, 10)"]),
            (ids["add(1, 2)"], ids["add(·, 20)"]),
            (ids["add(1, 2)"], ids["gather(3 items)"]),
            (ids["add(·, 10)"], ids["gather(3 items)"]),
            (ids["add(·, 20)"], ids["gather(3 items)"]),
        ]
    )


def test_labels_are_escaped_and_shortened() -> None:
    dot = shout('say "hi"\n' + "x" * 100).to_dot("my graph")
    assert dot.startswith('digraph "my graph" {')
    (label,) = labels(dot)
    assert label.startswith('shout(\'say \\"hi\\"\\\\nxxx')  # repr's \n, then escaped for DOT
    assert label.endswith("…)")


def test_a_deep_chain_draws_without_recursion() -> None:
    expr: pl.Expr[int] = pl.pure(0)
    for i in range(20_000):
        expr = add(expr, i) if i % 2 else expr.map(abs)
    dot = expr.to_dot()
    assert len(labels(dot)) == 20_001
    assert len(edges(dot)) == 20_000


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz is not installed (.ci/run installs it)")
def test_graphviz_accepts_it() -> None:
    graph = pl.gather(*(add(i, add(1, 2)) for i in range(5))).map(sum).attempt()
    svg = subprocess.run(["dot", "-Tsvg"], input=graph.to_dot(), capture_output=True, text=True, check=True, timeout=60)
    assert "<svg" in svg.stdout
    assert "add(1, 2)" in svg.stdout
