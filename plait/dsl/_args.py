"""Finding the Exprs and futures inside call arguments, putting values in their place,
and copying the containers a call keeps.

The walks visit the same containers in the same order (list, tuple, dict values, set
and frozenset members), so the n-th reference found is replaced by the n-th value.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from plait.dsl._expr import Expr, ref_key

__all__ = ["ATOMS", "find_refs", "snapshot", "substitute"]

_CONTAINERS = (list, tuple, dict, set, frozenset)
# Values that are never references and hold none (no Expr, future or File), told apart by
# one set lookup: most arguments, and most results.
ATOMS = frozenset({int, float, str, bytes, bool, type(None)})


def find_refs(value: Any, found: list[Any], apps: list[Any] | None = None) -> None:
    """Append every Expr or future inside ``value`` to ``found``, depth first, and every
    app (not a call of it) to ``apps`` when given.

    >>> from plait.dsl._combinators import pure
    >>> found = []
    >>> find_refs([1, {"a": pure(2)}, (pure(3),)], found)
    >>> [f.value for f in found]
    [2, 3]
    """
    cls = type(value)
    if cls in ATOMS:
        return
    if cls in _CONTAINERS:
        for item in value.values() if cls is dict else value:
            find_refs(item, found, apps)
    elif isinstance(value, Expr) or ref_key(value):
        found.append(value)
    elif apps is not None and hasattr(cls, "__plait_identity__"):
        apps.append(value)


def substitute(value: Any, values: Iterator[Any]) -> Any:
    """``value`` with each reference replaced by the next of ``values``.

    >>> from plait.dsl._combinators import pure
    >>> substitute([1, {"a": pure(2)}, (pure(3),)], iter(["two", "three"]))
    [1, {'a': 'two'}, ('three',)]
    """
    cls = type(value)
    if cls is list:
        return [substitute(v, values) for v in value]
    if cls is tuple:
        return tuple(substitute(v, values) for v in value)
    if cls is dict:
        return {k: substitute(v, values) for k, v in value.items()}
    if cls in (set, frozenset):
        return cls(substitute(v, values) for v in value)
    if isinstance(value, Expr) or ref_key(value):
        return next(values)
    return value


def snapshot(value: Any) -> Any:
    """``value`` with each list, dict and set in it copied, at any depth (a tuple or
    frozenset holding one is rebuilt around the copy).

    A call is keyed on its arguments when it is made; a list the caller goes on to fill or
    clear must not change what the call computes, nor what the memo keeps under that key.

    >>> batch = [1, (2, [3])]
    >>> kept = snapshot(batch)
    >>> batch[1][1].append(4)
    >>> kept
    [1, (2, [3])]
    """
    cls = type(value)
    if cls in ATOMS or cls not in _CONTAINERS:
        return value
    if cls is dict:
        return {k: snapshot(v) for k, v in value.items()}
    copied = [v if type(v) in ATOMS else snapshot(v) for v in value]
    return copied if cls is list else cls(copied)
