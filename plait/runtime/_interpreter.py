"""The dataflow interpreter: turns admitted Exprs into task submissions and values.

Everything here runs on the runtime's event-loop thread. Per node it keeps a small
slotted record (``_nodes``), not a coroutine: a million-node graph costs a few hundred
bytes a node. Here: admitting a graph, starting each node once its inputs are in, and
cancelling. A call's task is ``_tasks``'s, how a node's end reaches its dependents
``_settling``'s, and whether an app can run here ``_app_checks``'s: base classes of
``Interpreter``, so the per-task path goes through no extra object.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import itertools
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from returns.result import Success

from plait._collector import Collector
from plait._tracebacks import user_frames
from plait.backends import Executor, SamplingExecutor
from plait.backends._completion import BatchingExecutor, CallingExecutor
from plait.dsl import App, Expr, Retry
from plait.dsl._expr import Attempt, Await, Bind, Call, Gather, Map, Pure
from plait.runtime._app_checks import AppChecks
from plait.runtime._hooks import Memo, Monitor
from plait.runtime._nodes import BOUND, DONE, FAILED, NO_INPUTS, RUNNING, WAITING, Joining, Node, Root, node_of
from plait.runtime._settling import ABANDON, FAIL, UNLINKED
from plait.runtime._tasks import ENDINGS, Tasks, _expr_in, executor_staging

__all__ = ["Interpreter", "Root"]

# Calls not started yet are started while their executor's queue and tasks in flight are
# fewer than this many times its capacity: its next credit is always queued.
QUEUED_AHEAD = 2
# Calls started in one turn of the loop, at most: the executor sends what a drain queued
# when the drain ends, so a graph larger than this, on executors with room for all of it
# (1 024 pools of 64), starts running while the rest is started, not after.
STARTED_PER_TURN = 4096
# Calls submitted one at a time raise the collector's threshold (see plait._collector) once
# this many nodes are unsettled: a few lone calls' nodes are no work for a young collection,
# and raising and putting it back each round trip cost a lock and four calls of gc.
HELD_FROM_UNSETTLED = 64
NO_VALUES: tuple[Any, ...] = NO_INPUTS  # the values of a node without inputs


class Interpreter(Tasks, AppChecks):
    """Runs graphs of nodes on the given executors, from the loop thread only."""

    def __init__(
        self,
        executors: Mapping[str, Executor],
        *,
        retry: Retry,
        lost_retries: int,
        memo: Memo | None = None,
        monitor: Monitor | None = None,
        collector: Collector | None = None,
    ) -> None:
        self.executors = dict(executors)
        self.default_label = next(iter(self.executors))
        self.retry = retry
        self.lost_retries = lost_retries
        self.memo = memo
        self.monitor = monitor
        # Executors that sample their nodes and running tasks (zmq pools, local processes) tell the monitor.
        samples = getattr(monitor, "samples", None)
        for executor in self.executors.values():
            if samples is not None and isinstance(executor, SamplingExecutor):
                executor.on_samples = samples
        self.keep_call = getattr(monitor, "failed_call", None)
        # A monitor that takes a call's pending event when it starts, dated when it was admitted,
        # leaves calls waiting unstarted as without one (see ``admissions``).
        self.stamped = monitor is not None and getattr(monitor, "pending_at_start", False) is True
        self.settled = getattr(monitor, "settled", None)
        self.index = {}
        self.queues = {label: deque() for label in self.executors}
        self.calling = {
            label: executor.submit_calling if isinstance(executor, CallingExecutor) else None
            for label, executor in self.executors.items()
        }
        self.told = {label: functools.partial(self._tasks_ended, label) for label in self.executors}
        self.sends = {
            label: executor.send_submitted if isinstance(executor, BatchingExecutor) else None
            for label, executor in self.executors.items()
        }
        self.to_send = []
        self.staging = {label: executor_staging(executor) for label, executor in self.executors.items()}
        self.inflight = dict.fromkeys(self.executors, 0)
        self.live = 0
        self.failures = {}
        self.work = deque()
        self.ready = deque()
        self.unstarted: dict[str, deque[Call[Any]]] = {label: deque() for label in self.executors}
        self.unstarted_calls = 0  # in all of unstarted: a drain without any asks none of its executors
        # If stamped: by executor, [when, how many] of each admission's calls still in unstarted, oldest first.
        self.admissions: dict[str, deque[list[float]]] = {label: deque() for label in self.executors}
        self.draining = False
        self.drain_scheduled = False
        self.turn_share_spent = False  # STARTED_PER_TURN calls started: the rest at the scheduled drain
        self.task_ids = itertools.count(1)
        self.ended = dict.fromkeys(ENDINGS, 0)
        self.unsettled = 0
        self.collector = collector or Collector(None)

    # -- admission ---------------------------------------------------------------

    def admit(self, expr: Expr[Any]) -> Node:
        """The node for ``expr``, adding every node it needs that is not known yet.

        Raises before anything is added when an app asks for an executor this
        runtime does not have.
        """
        if expr._key in self.index:
            return self._node_for(expr)
        self.collector.busy()  # before the nodes are made: they live on, and young collections would walk them
        try:
            top, joinings, leaves = self._new_nodes(expr)
        except BaseException:
            if self.unsettled <= 0:
                self.collector.idle()
            raise
        self.unsettled += len(joinings) + leaves
        index = self.index
        for node in joinings:
            for child in node.inputs:  # each becomes ``node``'s input: in this loop, not a call a task
                key = child._key
                if index[key] is UNLINKED:  # a call not started yet: ``node`` as its one user marks it
                    index[key] = node
                    node.waiting += 1
                else:
                    self._link(self._node_for(child), node)
            if node.waiting == 0:
                self.ready.append(node)
        return top

    def _new_nodes(self, expr: Expr[Any]) -> tuple[Node, list[Joining], int]:
        """The node of ``expr`` and of the part of it not known yet, indexed, their apps checked:
        ``expr``'s node, the new nodes with inputs in walk order, and how many new leaves.

        A new call without inputs (most of a big graph) gets no node yet, unless a monitor
        that hears of calls as they are admitted listens: the index marks its key
        ``UNLINKED`` and it waits in ``unstarted`` (see ``_start_unstarted``). Other new
        leaves go to ``ready`` as they are found. So a gather of a million makes no list of
        them, nor a stack to walk them from.
        ``admit`` links the rest once all passed; a refused graph is taken out of the
        index, ``ready`` and ``unstarted`` again, so it leaves nothing behind.
        """
        index, ready, unstarted = self.index, self.ready, self.unstarted
        # A monitor that hears of every task as it is admitted (its pending event, the progress
        # bar's total) needs each one's node and task id at once: no waiting unstarted.
        later = self.monitor is None or self.stamped
        top = index[expr._key] = node_of(expr)
        joinings: list[Joining] = []
        todo: list[Joining] = []
        leaves = 0  # in ready
        added = dict.fromkeys(unstarted, 0)  # by executor: calls put in unstarted
        checked: App[Any, Any] | None = None  # the app checked last: a graph's calls are mostly of a few apps, in runs
        label = ""  # checked's executor
        try:
            if isinstance(top, Joining):
                todo.append(top)
            else:
                ready.append(top)
                leaves = 1
            self._check_call(expr, None)
            while todo:
                node = todo.pop()
                joinings.append(node)
                assert node.expr is not None
                node.inputs = children = node.expr.children()
                for child_expr in children:
                    key = child_expr._key
                    if key in index:
                        continue
                    if isinstance(child_expr, Call) and child_expr.app is not checked:
                        checked = self._check_call(child_expr, checked)
                        label = child_expr.app.options.executor or self.default_label
                    if later and isinstance(child_expr, Call) and not child_expr.deps:
                        index[key] = UNLINKED
                        unstarted[label].append(child_expr)
                        added[label] += 1
                        continue
                    child = index[key] = node_of(child_expr)
                    if isinstance(child, Joining):
                        todo.append(child)
                    else:
                        ready.append(child)
                        leaves += 1
        except BaseException:
            self._take_back([*joinings, *todo], leaves, added)
            raise
        if self.stamped:
            self._stamp(added)
        waiting = sum(added.values())
        self.unstarted_calls += waiting
        return top, joinings, leaves + waiting

    def _stamp(self, added: dict[str, int]) -> None:
        """The time now for the calls just ``added`` to unstarted, by executor: when they were admitted."""
        now = time.time()
        for label, count in added.items():
            if count:
                self.admissions[label].append([now, count])

    def _take_back(self, nodes: list[Joining], leaves: int, unstarted: dict[str, int]) -> None:
        """Undo a refused walk: its ``nodes``, the ``leaves`` it put last in ready and the
        calls it put last in unstarted, by executor, leave the index."""
        exprs: list[Expr[Any]] = [node.expr for node in nodes if node.expr is not None]
        exprs += (node.expr for node in (self.ready.pop() for _ in range(leaves)) if node.expr is not None)
        for label, count in unstarted.items():
            exprs += (self.unstarted[label].pop() for _ in range(count))
        for expr in exprs:
            del self.index[expr._key]

    def _await(self, node: Node, future: concurrent.futures.Future[Any]) -> None:
        node.state = RUNNING
        loop = asyncio.get_running_loop()
        future.add_done_callback(lambda f: loop.call_soon_threadsafe(self._awaited, node, f))

    def _awaited(self, node: Node, future: concurrent.futures.Future[Any]) -> None:
        if node.state != RUNNING:  # cancelled while it waited: settled already
            return
        if future.cancelled():
            self._fail(node, concurrent.futures.CancelledError())
        elif (error := future.exception()) is not None:
            self._fail(node, error)
        else:
            self._finish(node, future.result())
        self.drain()

    def watch(self, node: Node, future: concurrent.futures.Future[Any]) -> Root:
        """Resolve ``future`` when ``node`` ends."""
        root = Root(future, node)
        self._link(node, root)
        if node.state in (DONE, FAILED):
            self._notify_root(root)
            if node.users <= 0:
                self._release(node)
        return root

    def admit_watched(self, expr: Expr[Any], future: concurrent.futures.Future[Any]) -> Root:
        """``watch(admit(expr), future)``: a user's submission, its calls' apps checked already.

        The seed's eager idiom submits one new call without inputs at a time, thousands a
        second: its node goes straight to ``ready`` with the root its only user, without
        ``admit``'s walk (a graph of one leaf) and the link that finds no other users.
        """
        key = expr._key
        if not isinstance(expr, Call) or expr.deps or key in self.index:
            return self.watch(self.admit(expr), future)
        node = self.index[key] = Node(expr)
        self.unsettled += 1
        if self.unsettled >= HELD_FROM_UNSETTLED and not self.collector.held:
            self.collector.busy()
        self.ready.append(node)
        node.users = 1
        node.dependents = root = Root(future, node)
        return root

    # -- running -------------------------------------------------------------------

    def drain(self) -> None:
        """Start ready nodes and propagate failures until nothing is left to do."""
        if self.draining:
            return
        self.draining = True
        try:
            while True:
                self._settle_and_start()
                more = self.unstarted_calls > 0 and self._start_unstarted()
                if self.work or self.ready:  # a call started from the memo: what it settled
                    continue
                for label, queue in self.queues.items():
                    if queue:  # a pump of nothing reads the capacity for naught: once a turn of a round trip
                        self._pump(label)
                if more:  # the rest next turn, once this turn's tasks are on their way
                    self.drain_soon()
                    break
                if not self.unstarted_calls or not self._starved():
                    break
        finally:
            self.draining = False
            # Each executor that batches sends what this drain submitted to it: in this turn
            # of the loop, not after it (a lone task's latency, a chain's per link).
            to_send = self.to_send
            while to_send:
                to_send.pop()()
        if self.unsettled <= 0 and self.collector.held:
            self.collector.idle()

    def _settle_and_start(self) -> None:
        work, ready = self.work, self.ready
        while True:  # settling first: a node failed or abandoned meanwhile is not started
            if work:
                self._do(*work.popleft())
            elif ready:
                node = ready.popleft()
                if node.state == WAITING:
                    self._start(node)
            else:
                break

    def _start_unstarted(self) -> bool:
        """Start calls not started yet, of each executor whose queue is short; whether
        this turn's share (``STARTED_PER_TURN``) ran out with more to start.

        Only as many as keep its queue from running dry until the next drain (one follows
        every batch of ended tasks): a node is made for each as it starts, not for a
        million at once when they are admitted.
        """
        if self.turn_share_spent:  # a drain later in the turn (ends told): the scheduled one starts more
            return True
        share, index, stamped = STARTED_PER_TURN, self.index, self.stamped
        for label, calls in self.unstarted.items():
            if not calls:
                continue
            room = QUEUED_AHEAD * self.executors[label].capacity - len(self.queues[label]) - self.inflight[label]
            while calls and room > 0:
                if share <= 0:
                    self.turn_share_spent = True
                    return True
                call = calls.popleft()
                self.unstarted_calls -= 1
                admitted = self._admitted_at(label) if stamped else 0.0
                # Still to start: not let go since (its one user failed; then maybe admitted
                # again and finished), nor started as an equal call's node. Here, not in a
                # call of its own: once a task in a gathered graph.
                if not isinstance(index.get(call._key), Node):
                    continue
                node = self._node_for(call)  # made now if the index holds its user's mark
                if node.state == WAITING:
                    # A call without inputs: no list of their values.
                    self._start_call(node, call, NO_VALUES, admitted)
                    room -= 1
                    share -= 1
        return False

    def _admitted_at(self, label: str) -> float:
        """When the call just taken from ``label``'s unstarted was admitted (if stamped)."""
        admissions = self.admissions[label]
        oldest = admissions[0]
        oldest[1] -= 1
        if not oldest[1]:
            admissions.popleft()
        return oldest[0]

    def _starved(self) -> bool:
        """Whether an executor has room, nothing queued and calls not started yet: its queue
        held tasks let go (cancelled), which the pump dropped, and no drain may follow."""
        for label, calls in self.unstarted.items():  # a loop, not a generator: each drain asks
            if calls and not self.queues[label] and self.inflight[label] < self.executors[label].capacity:
                return True
        return False

    def drain_soon(self) -> None:
        """Drain once the loop has run what is ready: the tasks that ended together are
        settled first, and what they freed is sent in one pump."""
        if not self.drain_scheduled:
            self.drain_scheduled = True
            asyncio.get_running_loop().call_soon(self._scheduled_drain)

    def _scheduled_drain(self) -> None:
        self.drain_scheduled = False
        self.turn_share_spent = False
        self.drain()

    def _do(self, node: Node, action: int, value: Any) -> None:
        if action == FAIL:
            self._fail(node, value)
        elif action == ABANDON:
            if node.users <= 0:  # nothing has come to need it since it was abandoned
                self._fail(node, concurrent.futures.CancelledError())
        elif node.state not in (DONE, FAILED):
            self._release_inputs(node)
            self._finish(node, value)

    def _start(self, node: Node) -> None:
        expr = node.expr
        values: list[Any] = []
        if node.inputs:  # not a leaf (most nodes are)
            self._release_inputs(node, values)
        if isinstance(expr, Call):  # the most common kind first
            self._start_call(node, expr, values)
        elif isinstance(expr, Pure):
            self._finish(node, expr.value)
        elif isinstance(expr, Await):
            self._await(node, expr.future)
        elif isinstance(expr, Gather):
            self._finish(node, values)
        elif isinstance(expr, Attempt):
            self._finish(node, Success(values[0]))
        elif isinstance(expr, Map):
            self._apply(node, expr.fn, values[0], self._mapped)
        elif isinstance(expr, Bind):
            self._apply(node, expr.fn, values[0], self._continue)
        else:  # pragma: no cover - every Expr kind is handled above
            raise TypeError(f"unknown expression {expr!r}")

    def _apply(self, node: Node, fn: Callable[[Any], Any], value: Any, then: Callable[[Node, Any], None]) -> None:
        try:
            result = fn(value)
        except BaseException as error:  # user code must not take the loop down with it
            self._fail(node, user_frames(error))
            return
        then(node, result)

    def _mapped(self, node: Node, value: Any) -> None:
        if (inner := _expr_in(value)) is not None:  # an app called in map: its result would be the Expr itself
            problem = TypeError(
                f"{node.label()}: the function returned an Expr ({inner.label()}), not a value; "
                "use .bind(fn) to run the Expr it returns (.bind(lambda v: pl.gather([...])) for several)"
            )
            self._fail(node, problem)
        else:
            self._finish(node, value)

    def _continue(self, node: Node, inner: Any) -> None:
        if not isinstance(inner, Expr):
            problem = TypeError(f"{node.label()}: the function must return an Expr, not a {type(inner).__name__}")
            self._fail(node, problem)
            return
        try:
            child = self.admit(inner)
        except ValueError as error:
            self._fail(node, error)
            return
        node.state = BOUND
        assert isinstance(node, Joining)  # a bind has its source as input
        node.inputs = (inner,)
        self._link(child, node)
        if child.state in (DONE, FAILED):
            self._forward(node, child)

    # -- cancelling ------------------------------------------------------------------

    def cancel(self, root: Root) -> None:
        """The user cancelled a future: stop its work, and fail what depends on it."""
        node = root.node
        dependents = node.dependents
        if dependents is root:
            node.dependents = None
            node.users -= 1
        elif isinstance(dependents, list) and root in dependents:
            dependents.remove(root)
            node.users -= 1
        self._fail(node, concurrent.futures.CancelledError())
        if node.users <= 0:
            self._release(node)
        self.drain()

    def cancel_all(self) -> None:
        """Fail every unfinished node with CancelledError: the runtime is shutting down."""
        for node in list(self.index.values()):
            if isinstance(node, Node) and node.state not in (DONE, FAILED):  # not a finished node's value
                self._fail(node, concurrent.futures.CancelledError())
        self.drain()
        self.collector.idle()  # shutting down: whatever is left, the collector is the user's again
