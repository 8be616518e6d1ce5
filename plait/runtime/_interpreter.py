"""The dataflow interpreter: turns admitted Exprs into task submissions and values.

Everything here runs on the runtime's event-loop thread. Per node it keeps a small
slotted record (a pending-input counter, a result slot, who needs it), not a coroutine:
a million-node graph costs a few hundred bytes a node. Work flows through one queue,
so long chains settle without recursion.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import itertools
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from returns.result import Failure, Success

from plait.backends import Executor, SamplingExecutor, TaskResult, TaskSpec, TaskUsage, WorkerLost
from plait.dsl import App, Expr, Retry
from plait.dsl._args import substitute
from plait.dsl._collector import Collector
from plait.dsl._expr import Attempt, Await, Bind, Call, Gather, Map, Pure
from plait.dsl._staged import staged
from plait.runtime._debug import remember_call
from plait.runtime._errors import DependencyError
from plait.runtime._hooks import MISSING, Memo, Monitor
from plait.runtime._monitor import silence
from plait.runtime._tracebacks import user_frames
from plait.staging import Staging

__all__ = ["Interpreter", "Root"]

WAITING, QUEUED, RUNNING, BOUND, DONE, FAILED = range(6)
# What a work item asks of its node: finish it or fail it with a value (a bind or attempt
# whose input settled); cancel it if nothing needs it. Nodes ready to start wait apart.
FINISH, FAIL, ABANDON = range(3)
_ENDINGS = ("done", "failed", "cached", "cancelled", "retried")  # the task events that end an attempt
_NO_INPUTS: tuple[Node, ...] = ()
_AUTO = Staging()


class Node:
    """Interpreter state for one key. ``value`` holds the result once DONE, the error
    once FAILED; while a call is queued, what its spec will be made of (see ``_Call``),
    and the spec once it is sent. ``dependents`` is None, the one dependent (most nodes
    have one: no list for them), or a list."""

    __slots__ = ("dependents", "expr", "inputs", "key", "state", "task_id", "users", "value", "waiting")

    def __init__(self, expr: Expr[Any]) -> None:
        self.expr: Expr[Any] | None = expr
        self.key = expr._key
        self.state = WAITING
        self.waiting = 0
        self.inputs = _NO_INPUTS
        self.dependents: Node | Root | list[Node | Root] | None = None
        self.users = 0
        self.value: Any = None
        self.task_id = 0

    def label(self) -> str:
        return self.expr.label() if self.expr is not None else self.key.hex()[:12]


class _Call(NamedTuple):
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


def _staging(executor: Executor) -> Staging:
    staging = getattr(executor, "staging", _AUTO)  # executors without the option stage URLs only
    return staging if isinstance(staging, Staging) else _AUTO


class Interpreter:
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
        self.keep_call = getattr(monitor, "failed_call", None)  # a monitor that keeps calls for plait debug
        self.settled: Callable[[], None] | None = getattr(monitor, "settled", None)
        self.index: dict[bytes, Node] = {}
        self.queues: dict[str, deque[Node]] = {label: deque() for label in self.executors}
        self.staging = {label: _staging(executor) for label, executor in self.executors.items()}
        self.inflight: dict[str, int] = dict.fromkeys(self.executors, 0)
        self.live = 0  # tasks queued, sent, or waiting to retry
        self.failures: dict[Node, list[BaseException]] = {}
        # Everything that settles one node because another settled goes through here, not
        # through a call: a chain of any length settles without recursion.
        self.work: deque[tuple[Node, int, Any]] = deque()
        # Nodes whose inputs are in, to start in the order they became ready: a node, not a
        # work item each, as a million leaves of one gather are ready at once.
        self.ready: deque[Node] = deque()
        self.draining = False
        self.drain_scheduled = False
        self.task_ids = itertools.count(1)
        # How many tasks ended each way, for a Runtime's display. Keys fixed up front: other
        # threads read it while this one counts.
        self.ended = dict.fromkeys(_ENDINGS, 0)
        # Nodes admitted and not yet settled: while there are any, the collector is held.
        self.unsettled = 0
        self.collector = collector or Collector(None)

    # -- admission ---------------------------------------------------------------

    def admit(self, expr: Expr[Any]) -> Node:
        """The node for ``expr``, adding every node it needs that is not known yet.

        Raises before anything is added when an app asks for an executor this
        runtime does not have.
        """
        found = self.index.get(expr._key)
        if found is not None:
            return found
        visited = self._new_nodes(expr)
        self.unsettled += len(visited)
        self.collector.busy()
        for node in visited:
            for child in node.inputs:
                self._link(child, node)
            if node.waiting == 0:
                self.ready.append(node)
        return visited[0]

    def _new_nodes(self, expr: Expr[Any]) -> list[Node]:
        """The nodes of the part of ``expr`` not known yet, indexed, their apps checked, in walk order.

        ``admit`` links and queues them once all passed; a refused graph is taken out
        of the index again, so it leaves nothing behind. Walk order is the order in
        which leaves become ready.
        """
        index = self.index
        top = index[expr._key] = Node(expr)
        visited = []
        todo = [top]
        try:
            while todo:
                node = todo.pop()
                node_expr = node.expr
                assert node_expr is not None
                visited.append(node)
                if isinstance(node_expr, Call):
                    self.check_app(node_expr.app)
                inputs = []
                for child_expr in node_expr.children():
                    key = child_expr._key
                    child = index.get(key)
                    if child is None:
                        child = index[key] = Node(child_expr)
                        todo.append(child)
                    inputs.append(child)
                if inputs:
                    node.inputs = tuple(inputs)
        except BaseException:
            for node in [*visited, *todo]:
                del index[node.key]
            raise
        return visited

    def check_app(self, app: App[Any, Any]) -> None:
        """Raise if ``app`` asks for an executor this runtime lacks, or one that cannot honour it."""
        label = app.options.executor or self.default_label
        executor = self.executors.get(label)
        if executor is None:
            raise ValueError(
                f"app {app.name} asks for executor {label!r}, which this runtime does not have "
                f"(it has {', '.join(map(repr, self.executors))})"
            )
        if app.options.timeout is not None and not executor.can_kill:
            raise ValueError(
                f"app {app.name} has timeout={app.options.timeout}, but executor {label!r} "
                f"({type(executor).__name__}) cannot stop a running task; run it on a ProcessExecutor"
            )

    def _link(self, child: Node, parent: Node | Root) -> None:
        child.users += 1
        dependents = child.dependents
        if dependents is None:
            child.dependents = parent
        elif isinstance(dependents, list):
            dependents.append(parent)
        else:
            child.dependents = [dependents, parent]
        if isinstance(parent, Node) and child.state not in (DONE, FAILED):
            parent.waiting += 1

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
        return root

    # -- running -------------------------------------------------------------------

    def drain(self) -> None:
        """Start ready nodes and propagate failures until nothing is left to do."""
        if self.draining:
            return
        self.draining = True
        work, ready = self.work, self.ready
        try:
            while True:  # settling first: a node failed or abandoned meanwhile is not started
                if work:
                    self._do(*work.popleft())
                elif ready:
                    node = ready.popleft()
                    if node.state == WAITING:
                        self._start(node)
                else:
                    break
            for label in self.queues:
                self._pump(label)
        finally:
            self.draining = False
        if self.unsettled <= 0:
            self.collector.idle()

    def drain_soon(self) -> None:
        """Drain once the loop has run what is ready: the tasks that ended together are
        settled first, and what they freed is sent in one pump."""
        if not self.drain_scheduled:
            self.drain_scheduled = True
            asyncio.get_running_loop().call_soon(self._scheduled_drain)

    def _scheduled_drain(self) -> None:
        self.drain_scheduled = False
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
        values = [i.value for i in node.inputs]
        self._release_inputs(node)
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
        if isinstance(value, Expr):  # an app called in map: its result would be the Expr itself
            problem = TypeError(
                f"{node.label()}: the function returned an Expr ({value.label()}), not a value; "
                "use .bind(fn) to run the Expr it returns"
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
        node.inputs = (child,)
        self._link(child, node)
        if child.state in (DONE, FAILED):
            self._forward(node, child)

    def _forward(self, node: Node, inner: Node) -> None:
        # A bind's result is its inner expression's result, failure included, unchanged.
        self.work.append((node, FINISH if inner.state == DONE else FAIL, inner.value))

    def _start_call(self, node: Node, expr: Call[Any], values: list[Any]) -> None:
        app = expr.app
        node.task_id = next(self.task_ids)  # before the memo: a cached task is a task in the monitor too
        if self.memo is not None and app.options.memoized:
            cached = self.memo.get(node.key)
            if cached is not MISSING:
                self._event("cached", node, app)
                self._finish(node, cached)
                return
        args, kwargs = expr.args, expr.kwargs
        if values:
            it = iter(values)
            args, kwargs = substitute(args, it), substitute(kwargs, it)
        try:
            fn = staged(app.fn, args, kwargs, self.staging[app.options.executor or self.default_label], app.name)
        except ValueError as error:
            self._fail(node, error)
            return
        node.value = _Call(args, kwargs, fn) if values or fn is not None else None
        self._queue(node, app)

    @staticmethod
    def _spec(node: Node) -> TaskSpec:
        """The spec of a queued call, made as it is sent; a retry sends the same one again."""
        if isinstance(node.value, TaskSpec):
            return node.value
        expr = node.expr
        assert isinstance(expr, Call)
        app = expr.app
        args, kwargs, fn = node.value or (expr.args, expr.kwargs, None)
        return TaskSpec(
            node.task_id,
            app.name,
            app.identity if fn is None else app.identity + b"+staged",  # workers cache functions by key
            app.fn if fn is None else fn,
            args,
            kwargs,
            timeout=app.options.timeout,
            resources=app.options.resources,
        )

    def _queue(self, node: Node, app: App[Any, Any]) -> None:
        node.state = QUEUED
        self.live += 1
        self.queues[app.options.executor or self.default_label].append(node)
        if self.monitor is not None:  # the states that end nothing are only the monitor's
            self._event("pending", node, app)

    def _pump(self, label: str) -> None:
        executor, queue = self.executors[label], self.queues[label]
        capacity = executor.capacity  # a property that may sum over pools: read once a pump
        while queue and self.inflight[label] < capacity:
            node = queue.popleft()
            if node.state != QUEUED:
                continue
            node.state = RUNNING
            self.inflight[label] += 1
            node.value = spec = self._spec(node)
            future = executor.submit(spec)
            future.add_done_callback(functools.partial(self._task_done, node, node.task_id, label))
            if self.monitor is not None:
                self._event("dispatched", node, None, executor=label)

    def _task_done(self, node: Node, task_id: int, label: str, future: asyncio.Future[TaskResult]) -> None:
        self.inflight[label] -= 1
        if node.state == RUNNING and node.task_id == task_id:
            if future.cancelled():
                self._fail(node, concurrent.futures.CancelledError())
            else:
                self._task_result(node, future.result(), label)
        self.drain_soon()

    def _task_result(self, node: Node, result: TaskResult, label: str) -> None:
        expr = node.expr
        assert isinstance(expr, Call)
        app = expr.app
        if result.started and self.monitor is not None:
            # When the worker really ran it, by its clock: a timeline needs that, not when the driver heard.
            self._event("running", node, app, executor=label, worker=result.worker, at=result.started)
        if result.error is None:
            self.live -= 1
            if self.memo is not None and app.options.memoized:
                self.memo.put(node.key, app.name, result.value)
            self._event("done", node, app, executor=label, worker=result.worker, at=result.ended, usage=result.usage)
            self.failures.pop(node, None)
            self._finish(node, result.value)
            return
        self._task_failed(node, app, result, label)

    def _task_failed(self, node: Node, app: App[Any, Any], result: TaskResult, label: str) -> None:
        error, worker, ended = result.error, result.worker, result.ended
        assert error is not None
        user_frames(error)  # before the monitor records it
        history = self.failures.setdefault(node, [])
        history.append(error)
        delay = self._retry_delay(app, error, history)
        if delay is None:
            self._keep_call(node.value, error)
            self.live -= 1
            del self.failures[node]
            self._event(
                "failed",
                node,
                app,
                executor=label,
                worker=worker,
                error=error,
                at=ended,
                attempt=len(history),
                usage=result.usage,
            )
            if len(history) > 1:
                for number, earlier in enumerate(history[:-1], 1):
                    error.add_note(f"attempt {number} failed with {type(earlier).__name__}: {earlier}")
            self._fail(node, error, task_ended=True)
            return
        self._event("retried", node, app, executor=label, worker=worker, error=error, at=ended, usage=result.usage)
        node.state = QUEUED
        if delay > 0:
            asyncio.get_running_loop().call_later(delay, self._requeue, node, app)
        else:
            self._requeue(node, app)

    def _keep_call(self, spec: TaskSpec, error: BaseException) -> None:
        """Keep the call of a task that failed for good, for ``future.debug()`` and the monitor."""
        remember_call(error, spec)
        if self.keep_call is not None:
            self.keep_call(spec)

    def _retry_delay(self, app: App[Any, Any], error: BaseException, history: list[BaseException]) -> float | None:
        if isinstance(error, concurrent.futures.CancelledError):
            return None
        lost = sum(isinstance(e, WorkerLost) for e in history)
        if isinstance(error, WorkerLost) and lost <= self.lost_retries:
            return 0.0
        policy = app.options.retries or self.retry
        # Worker losses within their own budget are free; any beyond it count against
        # the policy, or a task that always kills its worker would be retried forever.
        attempt = len(history) - min(lost, self.lost_retries) + 1
        return policy.delay(error, attempt)

    def _requeue(self, node: Node, app: App[Any, Any]) -> None:
        if node.state == QUEUED:
            self.queues[app.options.executor or self.default_label].append(node)
            self.drain()

    # -- settling --------------------------------------------------------------------

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
        dependents, node.dependents = node.dependents, None
        for dependent in dependents if isinstance(dependents, list) else () if dependents is None else (dependents,):
            if isinstance(dependent, Root):
                self._notify_root(dependent)
            elif dependent.state == BOUND:
                self._forward(dependent, node)
            elif dependent.state == WAITING:
                self._input_settled(dependent, node)
        if node.users <= 0:
            self._release(node)
        node.expr = None if node.state == DONE else node.expr  # keep labels for failures

    def _input_settled(self, dependent: Node, node: Node) -> None:
        if node.state == DONE:
            dependent.waiting -= 1
            if dependent.waiting == 0:
                self.ready.append(dependent)
        elif isinstance(dependent.expr, Attempt):
            self.work.append((dependent, FINISH, Failure(node.value)))
        elif isinstance(node.value, concurrent.futures.CancelledError):
            self.work.append((dependent, FAIL, node.value))
        else:
            error = DependencyError.caused_by(node.value, node.label(), dependent.label())
            self.work.append((dependent, FAIL, error))

    def _notify_root(self, root: Root) -> None:
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
        if node.users <= 0 and node.state in (DONE, FAILED):
            self._release(node)

    def _release_inputs(self, node: Node) -> None:
        inputs, node.inputs = node.inputs, _NO_INPUTS
        for child in inputs:
            child.users -= 1
            if child.users <= 0:
                if child.state in (DONE, FAILED):
                    self._release(child)
                else:  # nobody wants this unfinished work any more: cancel it, and what only it needed
                    self.work.append((child, ABANDON, None))

    def _release(self, node: Node) -> None:
        """Nothing needs this result any more: forget it (the memo keeps it if on)."""
        if self.index.get(node.key) is node:
            del self.index[node.key]
        node.value = None
        node.expr = None

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

    def _stop_task(self, node: Node) -> None:
        self.failures.pop(node, None)
        expr = node.expr
        if not isinstance(expr, Call):  # an Await's node: no task of ours
            return
        self.live -= 1
        if node.state == RUNNING:
            self.executors[expr.app.options.executor or self.default_label].cancel(node.task_id)
        self._event("cancelled", node, expr.app)

    def unfinished(self, root: Root) -> tuple[list[str], int, int]:
        """What ``root`` still waits for: labels of running tasks, and counts of queued
        tasks and of steps waiting on inputs. Said when a wait for it times out."""
        running: list[str] = []
        queued = waiting = 0
        seen, todo = {root.node}, [root.node]
        while todo:
            node = todo.pop()
            if node.state == RUNNING:
                running.append(node.label())
            queued += node.state == QUEUED
            waiting += node.state in (WAITING, BOUND)
            fresh = [child for child in node.inputs if child not in seen]
            seen.update(fresh)
            todo.extend(fresh)
        return running, queued, waiting

    def cancel_all(self) -> None:
        """Fail every unfinished node with CancelledError: the runtime is shutting down."""
        for node in list(self.index.values()):
            if node.state not in (DONE, FAILED):
                self._fail(node, concurrent.futures.CancelledError())
        self.drain()
        self.collector.idle()  # shutting down: whatever is left, the collector is the user's again

    def _event(
        self,
        state: str,
        node: Node,
        app: App[Any, Any] | None,
        *,
        executor: str = "",
        worker: str = "",
        error: BaseException | None = None,
        at: float = 0.0,
        usage: TaskUsage | None = None,
        attempt: int = 0,
    ) -> None:
        # Four times per task when a monitor listens: no dicts built, no lookups it can skip.
        if state in self.ended:
            self.ended[state] += 1
        monitor = self.monitor
        if monitor is None:
            return
        if app is None and isinstance(node.expr, Call):
            app = node.expr.app
        if not attempt:
            failures = self.failures
            attempt = len(failures[node]) + 1 if failures and node in failures else 1
        try:
            monitor.task_event(
                state,
                node.task_id,
                app.name if app is not None else "",
                node.key,
                executor=executor,
                worker=worker,
                attempt=attempt,
                error=error,
                at=at,
                usage=usage,
            )
        except Exception as failure:  # an observer's bug must not stop the run it watches
            self.monitor = silence(monitor, failure, state)
