"""The interpreter's state per node of a graph, and per user's future waiting on one.

Per node a small slotted record (a state, a pending-input counter, a result slot, who
needs it), not a coroutine: a million-node graph costs a few hundred bytes a node.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from plait.dsl import Expr

__all__ = ["BOUND", "DONE", "FAILED", "NO_INPUTS", "QUEUED", "RUNNING", "WAITING", "Node", "QueuedCall", "Root"]

WAITING, QUEUED, RUNNING, BOUND, DONE, FAILED = range(6)


class Node:
    """Interpreter state for one key. ``value`` holds the result once DONE, the error
    once FAILED; while a call is queued, what its spec will be made of (see ``QueuedCall``),
    and the spec once it is sent. ``dependents`` is None, the one dependent (most nodes
    have one: no list for them), or a list."""

    __slots__ = ("dependents", "expr", "inputs", "key", "state", "task_id", "users", "value", "waiting")

    def __init__(self, expr: Expr[Any]) -> None:
        self.expr: Expr[Any] | None = expr
        self.key = expr._key
        self.state = WAITING
        self.waiting = 0
        self.inputs = NO_INPUTS
        self.dependents: Node | Root | list[Node | Root] | None = None
        self.users = 0
        self.value: Any = None
        self.task_id = 0

    def label(self) -> str:
        return self.expr.label() if self.expr is not None else self.key.hex()[:12]


class QueuedCall(NamedTuple):
    """A queued call's arguments with its inputs' values in, and the function to send
    (None: the app's own). Queued calls that have neither keep nothing: their spec is
    made when they are sent, so a million queued tasks hold no million specs."""

    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    fn: Callable[..., Any] | None


class Root:
    """A user's future waiting on a node."""

    __slots__ = ("future", "node")

    def __init__(self, future: concurrent.futures.Future[Any], node: Node) -> None:
        self.future = future
        self.node = node


NO_INPUTS: tuple[Node, ...] = ()
