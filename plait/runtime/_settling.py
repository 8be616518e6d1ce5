"""How a node's end reaches what depends on it: its dependents, the users' futures, the
memory it held. Through a queue of work items, not calls, so a chain of any length
settles without recursion.

``Settling`` is the interpreter's base class (no extra object on the per-task path); it
keeps the graph's index and work queues, which the interpreter fills.
"""

from __future__ import annotations

import concurrent.futures
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from returns.result import Failure

from plait.dsl._expr import Attempt, Expr
from plait.runtime._errors import DependencyError
from plait.runtime._nodes import BOUND, DONE, FAILED, NO_INPUTS, QUEUED, RUNNING, WAITING, Joining, Node, Root, node_of

__all__ = ["ABANDON", "FAIL", "FINISH", "UNLINKED", "Settling"]

UNLINKED = object()
"""The index's entry for a new call while its graph is admitted: its user marks it once linked."""

# What a work item asks of its node: finish it or fail it with a value (a bind or attempt
# whose input settled); cancel it if nothing needs it. Nodes ready to start wait apart.
FINISH, FAIL, ABANDON = range(3)


class Settling:
    """The graph's nodes by key, and how each one's end propagates (the interpreter's base)."""

    # By key: the node; or, for a call not started yet that one node needs, that node (its
    # user's mark: the call's node is made when it starts); or only the value of a
    # finished node that a single waiting node still needs. No Node of 80 B for each of a
    # gather's million, but while it runs.
    index: dict[bytes, Any]
    # Everything that settles one node because another settled goes through here, not
    # through a call: a chain of any length settles without recursion.
    work: deque[tuple[Node, int, Any]]
    # Nodes whose inputs are in, to start in the order they became ready: a node, not a
    # work item each, as a million leaves of one gather are ready at once.
    ready: deque[Node]
    unsettled: int  # nodes admitted and not yet settled: while there are any, the collector is held
    settled: Callable[[], None] | None  # told each time a user's future is resolved

    if TYPE_CHECKING:

        def _stop_task(self, node: Node) -> None: ...  # the tasks' part: a queued or running task stops

    def _link(self, child: Node, parent: Joining | Root) -> None:
        child.users += 1
        dependents = child.dependents
        if dependents is None:
            child.dependents = parent
        elif isinstance(dependents, list):
            dependents.append(parent)
        else:
            child.dependents = [dependents, parent]
        if isinstance(parent, Joining) and child.state not in (DONE, FAILED):
            parent.waiting += 1

    def _forward(self, node: Joining, inner: Node) -> None:
        # A bind's result is its inner expression's result, failure included, unchanged.
        self.work.append((node, FINISH if inner.state == DONE else FAIL, inner.value))

    def _finish(self, node: Node, value: Any) -> None:
        node.state = DONE
        node.value = value
        self._settled(node)

    def _fail(self, node: Node, error: BaseException, *, task_ended: bool = False) -> None:
        if node.state in (DONE, FAILED):
            return
        if node.state in (QUEUED, RUNNING) and not task_ended:
            self._stop_task(node)
        node.state = FAILED
        node.value = error
        self._release_inputs(node)
        self._settled(node)

    def _settled(self, node: Node) -> None:
        self.unsettled -= 1
        node.task_id = 0  # its task, if any, has ended
        dependents, node.dependents = node.dependents, None
        for dependent in dependents if isinstance(dependents, list) else () if dependents is None else (dependents,):
            if isinstance(dependent, Root):
                self._notify_root(dependent)
            elif dependent.state == BOUND:
                self._forward(dependent, node)
            elif dependent.state == WAITING:
                if node.state != DONE:
                    self._input_failed(dependent, node)
                else:  # an input in, without a call: once a task in a gathered graph
                    dependent.waiting -= 1
                    if dependent.waiting == 0:
                        self.ready.append(dependent)
        if node.users <= 0:
            self._release(node)
        elif node.users == 1 and node.state == DONE and not isinstance(node.value, Node):
            # Its one user is a node that reads it from the index when it starts: keep the value
            # only. (A value that is itself a Node, never a user's, would pass for a node.)
            expr = node.expr
            assert expr is not None, "a released node settled"
            if self.index.get(expr._key) is node:
                self.index[expr._key] = node.value

    def _node_for(self, expr: Expr[Any]) -> Node:
        """The node the index has for ``expr``'s key: made now if only its user's mark or its
        value is kept."""
        key = expr._key
        entry = self.index[key]
        if isinstance(entry, Node):
            if entry.expr is not None and entry.expr._key == key:  # not through Node.key: once a task
                return entry
            assert isinstance(entry, Joining), "a node under another's key is its user's mark"
            node = self.index[key] = Node(expr)  # a call not started yet: it still waits in unstarted
            node.dependents = entry
        else:
            node = self.index[key] = node_of(expr)
            node.state = DONE
            node.value = entry
        node.users = 1  # the node it was kept for
        return node

    def _input_failed(self, dependent: Joining, node: Node) -> None:
        if isinstance(dependent.expr, Attempt):
            self.work.append((dependent, FINISH, Failure(node.value)))
        elif isinstance(node.value, concurrent.futures.CancelledError):
            self.work.append((dependent, FAIL, node.value))
        else:
            error = DependencyError.caused_by(node.value, node.label(), dependent.label())
            self.work.append((dependent, FAIL, error))

    def _notify_root(self, root: Root) -> None:
        """Resolve the user's future; its caller lets go of the node if nothing else needs it."""
        node = root.node
        root.node.users -= 1
        if self.settled is not None:
            self.settled()
        try:
            if node.state == DONE:
                root.future.set_result(node.value)
            else:
                root.future.set_exception(node.value)
        except concurrent.futures.InvalidStateError:
            pass  # the user cancelled it first

    def _release_inputs(self, node: Node, values: list[Any] | None = None) -> None:
        """``node`` needs its inputs no more; ``values``, if given, gets their values, in order."""
        inputs = node.inputs
        if not inputs:  # a leaf, or released already
            return
        assert isinstance(node, Joining)
        node.inputs = NO_INPUTS
        index = self.index
        for expr in inputs:
            key = expr._key
            child = index[key]
            if child is node:  # its mark on a call not started yet, which nothing else needs: never start it
                assert values is None, "a node started before its inputs"
                del index[key]
                self.unsettled -= 1
                continue
            if not isinstance(child, Node):  # the value of a finished node kept only for this one
                del index[key]
                if values is not None:
                    values.append(child)
                continue
            if values is not None:
                values.append(child.value)
            child.users -= 1
            if child.users <= 0:
                if child.state in (DONE, FAILED):
                    self._release(child)
                else:  # nobody wants this unfinished work any more: cancel it, and what only it needed
                    self.work.append((child, ABANDON, None))

    def _release(self, node: Node) -> None:
        """Nothing needs this result any more: forget it (the memo keeps it if on)."""
        if node.expr is None:  # released already
            return
        key = node.expr._key
        if self.index.get(key) is node:
            del self.index[key]
        node.value = None
        node.expr = None
