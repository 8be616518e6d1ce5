"""Combinators that build Exprs out of values and of many Exprs: ``pure``, ``as_expr``,
``gather`` and ``traverse``."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, overload

from plait.dsl._collector import collecting_less
from plait.dsl._expr import Await, Expr, Gather, Pure, key_or_fresh, ref_key
from plait.dsl._token import digest

__all__ = ["as_expr", "gather", "pure", "traverse"]

T = TypeVar("T")
U = TypeVar("U")


def as_expr(value: Any) -> Expr[Any]:
    """``value`` as an Expr: Exprs as they are, futures awaited, anything else pure."""
    if isinstance(value, Expr):
        return value
    key = ref_key(value)
    if key:
        return Await(key, value)
    return pure(value)


def pure(value: T) -> Expr[T]:
    """An Expr whose result is ``value``, available now.

    >>> pure(3).key == pure(3).key != pure(4).key
    True
    """
    return Pure(key_or_fresh(b"P", value), value)


def gather(*exprs: Any) -> Expr[list[Any]]:
    """All results as one list, in order: ``gather(a, b)`` or ``gather(iterable)``.

    Items may be Exprs, futures or plain values. Items run concurrently.
    """
    if len(exprs) == 1 and _is_iterable(exprs[0]):
        exprs = tuple(exprs[0])
    items = tuple(map(as_expr, exprs))
    return Gather(digest(b"G", *[i._key for i in items]), items)


def _is_iterable(value: object) -> bool:
    return isinstance(value, Iterable) and not isinstance(value, (str, bytes, Expr, dict))


@overload
def traverse(fn: Callable[[T], Expr[U]], items: Iterable[T]) -> Expr[list[U]]: ...


@overload
def traverse(fn: Callable[[T], Expr[U]], items: Expr[Iterable[T]]) -> Expr[list[U]]: ...


def traverse(fn: Callable[[Any], Expr[Any]], items: Any) -> Expr[list[Any]]:
    """``gather(fn(x) for x in items)``: ``fn`` is an app, or a function returning an Expr.

    ``items`` may itself be an Expr of a list: the calls are made when it is known.
    """
    if not callable(fn):
        raise TypeError(f"traverse needs an app or a function returning an Expr, not {fn!r}")
    if isinstance(items, Expr):
        return items.bind(functools.partial(_traverse_now, fn))
    return _traverse_now(fn, items)


def _traverse_now(fn: Callable[[Any], Expr[Any]], items: Iterable[Any]) -> Expr[list[Any]]:
    exprs = []
    with collecting_less():  # everything made here lives on: young collections would be wasted
        for item in items:
            expr = fn(item)
            if not isinstance(expr, Expr):
                name = getattr(fn, "__qualname__", repr(fn))
                raise TypeError(
                    f"traverse: {name}({item!r}) returned a {type(expr).__name__}, not an Expr; "
                    "decorate it with @plait.app"
                )
            exprs.append(expr)
        return gather(exprs)
