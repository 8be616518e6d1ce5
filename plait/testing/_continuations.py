"""The functions drawn graphs carry (bind and traverse continuations, a pick out of a
gather, a recovery's fallback), as attrs values: each has a deterministic key and a label."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import attrs

from plait.dsl import App, Expr

__all__ = ["HOLE", "CallWith", "Fallback", "Hole", "Item", "short_arg"]


@attrs.frozen
class Hole:
    """Where a bind or traverse puts the value it receives."""


HOLE = Hole()


@attrs.frozen
class CallWith:
    """``value -> app(*args, **kwargs)`` with the hole filled by ``value``: a bind or
    traverse continuation that is a plain value, so it has a deterministic key."""

    app: App[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    def label(self) -> str:
        """The call with its hole as ``_``, e.g. ``scale(_, 3)``."""
        shown = [short_arg(a) for a in self.args] + [f"{k}={short_arg(v)}" for k, v in self.kwargs.items()]
        return f"{self.app.name}({', '.join(shown)})"

    def __call__(self, value: Any) -> Expr[Any]:
        fill = functools.partial(_fill, value)
        return self.app(*map(fill, self.args), **{k: fill(v) for k, v in self.kwargs.items()})


@attrs.frozen
class Fallback:
    """``error -> value``: what ``recover`` gives when its source failed."""

    value: Any

    def __call__(self, error: BaseException) -> Any:
        return self.value


def short_arg(value: Any, limit: int = 24) -> str:
    text = "_" if isinstance(value, Hole) else value.label() if isinstance(value, Expr) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fill(value: Any, slot: Any) -> Any:
    return value if isinstance(slot, Hole) else slot


@attrs.frozen
class Item:
    """``xs -> xs[index]``: picks one result out of a gather."""

    index: int

    def __call__(self, items: Sequence[Any]) -> Any:
        return items[self.index]
