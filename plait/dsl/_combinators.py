"""Combinators that build Exprs out of values and of many Exprs: ``pure``, ``as_expr`` and
``gather`` (``traverse``, which calls an app on each item, is in ``_app``)."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any, TypeVar

from plait._tracebacks import user_facing
from plait.dsl._args import find_refs, snapshot, substitute
from plait.dsl._expr import Await, Expr, Gather, Pure, key_or_fresh, ref_key
from plait.dsl._token import digest_chunked

__all__ = ["as_expr", "gather", "pure"]

T = TypeVar("T")


def as_expr(value: Any) -> Expr[Any]:
    """``value`` as an Expr: Exprs as they are, futures awaited, anything else pure."""
    if isinstance(value, Expr):
        return value
    key = ref_key(value)
    if key:
        return Await(key, value)
    return pure(value)


@user_facing
def pure(value: T) -> Expr[T]:
    """An Expr whose result is ``value``, available now (its lists, dicts and sets as they
    are now: copied, as a call's arguments are).

    >>> pure(3).key == pure(3).key != pure(4).key
    True
    """
    value = snapshot(value)
    return Pure(key_or_fresh(b"P", value), value)


@user_facing
def gather(*exprs: Any) -> Expr[list[Any]]:
    """All results as one list, in order: ``gather(a, b)`` or ``gather(iterable)``.

    Items may be Exprs, futures or plain values, and lists, tuples, dicts and sets that
    hold them at any depth, as an app's arguments may. Items run concurrently.
    """
    items = tuple(map(_item, exprs[0] if len(exprs) == 1 and _is_iterable(exprs[0]) else exprs))
    return Gather(digest_chunked((b"G", *(i._key for i in items))), items)  # no copies of a million beside items


def _item(value: Any) -> Expr[Any]:
    """A gathered item as an Expr; one holding Exprs or futures has them replaced by their
    results (left in place, the caller would get work not done instead of its result)."""
    if isinstance(value, Expr):
        return value
    refs: list[Any] = []
    find_refs(value, refs)
    if not refs or refs[0] is value:
        return as_expr(value)
    return gather(refs).map(functools.partial(_filled, snapshot(value)))


def _filled(template: Any, values: list[Any]) -> Any:
    return substitute(template, iter(values))


def _is_iterable(value: object) -> bool:
    return isinstance(value, Iterable) and not isinstance(value, (str, bytes, Expr, dict))
