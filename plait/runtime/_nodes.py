"""The interpreter's state per node of a graph, and per user's future waiting on one.

Per node a small slotted record (a state, a pending-input counter, a result slot, who
needs it), not a coroutine: a million-node graph costs a few hundred bytes a node.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from plait.dsl import Expr

__all__ = [
    "BOUND",
    "DONE",
    "FAILED",
    "NO_INPUTS",
    "QUEUED",
    "RUNNING",
    "WAITING",
    "Joining",
    "Node",
    "QueuedCall",
    "Root",
    "node_of",
]

WAITING, QUEUED, RUNNING, BOUND, DONE, FAILED = range(6)


class Node:
    """Interpreter state for one key, of a node without inputs (a leaf: most nodes).

    ``value`` holds the result once DONE, the error once FAILED; while a call is queued,
    what its spec will be made of (see ``QueuedCall``), and the spec once it is sent.
    ``dependents`` is None, the one dependent (most nodes have one: no list for them), or
    a list. ``expr`` is kept until the node is released (the index's key is its key), a
    leaf's is the user's graph's own; ``task_id`` is its task's while it has one (an int
    of 28 B each for a million finished leaves otherwise). A leaf has no slots for inputs
    (80 B, not 96): ``Joining`` has them.

    A call without inputs has no ``Node`` until it starts (the index holds its one user as
    its mark, see ``Interpreter._new_nodes``), and a node that finished and that one
    waiting node still needs none after: the index keeps only its value (see
    ``Settling._settled``).
    """

    __slots__ = ("dependents", "expr", "state", "task_id", "users", "value")

    inputs: tuple[Expr[Any], ...] = ()  # a leaf's; a class attribute, no slot
    waiting = 0

    def __init__(self, expr: Expr[Any]) -> None:
        self.expr: Expr[Any] | None = expr
        self.state = WAITING
        self.dependents: Joining | Root | list[Joining | Root] | None = None
        self.users = 0
        self.value: Any = None
        self.task_id = 0

    @property
    def key(self) -> bytes:
        assert self.expr is not None, "a released node has no key"
        return self.expr._key

    def label(self) -> str:
        return self.expr.label() if self.expr is not None else "a released node"


class Joining(Node):
    """A node with inputs: it starts when the last of them is in (``waiting`` counts them).

    ``inputs`` are the Exprs of its inputs (its Expr's own children, or a bind's inner
    Expr), not their nodes: each input's node, or its value once it finished, is the
    index's entry for that Expr's key. So a finished input that waits for this node is no
    ``Node`` of 80 B, and a gather of a million holds no tuple of its own.
    """

    __slots__ = ("inputs", "waiting")

    def __init__(self, expr: Expr[Any]) -> None:
        super().__init__(expr)
        self.inputs = NO_INPUTS
        self.waiting = 0


def node_of(expr: Expr[Any]) -> Node:
    """A new node for ``expr``: a ``Joining`` one if it has inputs, or may get one (a bind's)."""
    return Joining(expr) if expr.children() else Node(expr)


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


NO_INPUTS: tuple[Expr[Any], ...] = ()
