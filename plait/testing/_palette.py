"""A default palette of small deterministic integer apps and functions for random graphs.

They live in a module (not a test) so worker processes import them by name.
"""

from __future__ import annotations

from plait.dsl import App, Expr, app

__all__ = ["APPS", "BINDS", "MAPS", "add", "bind_add", "bind_neg", "halve", "inc", "neg", "scale", "total"]


@app
def add(x: int, y: int) -> int:
    """The sum of two ints."""
    return x + y


@app
def neg(x: int) -> int:
    """``-x``."""
    return -x


@app
def scale(x: int, k: int = 3) -> int:
    """``x * k`` reduced modulo a prime, so values stay small."""
    return (x * k) % 1_000_003


@app
def total(*xs: int) -> int:
    """The sum of any number of ints."""
    return sum(xs)


def inc(x: int) -> int:
    """``x + 1``, for ``map``."""
    return x + 1


def halve(x: int) -> int:
    """``x // 2``, for ``map``."""
    return x // 2


def bind_add(x: int) -> Expr[int]:
    """``add(x, 7)``, for ``bind``: a graph that grows while running."""
    return add(x, 7)


def bind_neg(x: int) -> Expr[int]:
    """``neg(x)``, for ``bind``."""
    return neg(x)


APPS: tuple[App[..., int], ...] = (add, neg, scale, total)
MAPS = (inc, halve)
BINDS = (bind_add, bind_neg)
