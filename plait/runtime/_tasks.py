"""A call's life as a task: queued, sent to its executor when it has room, its result
settling the node, its failure retried or final, all told to the monitor.

``Tasks`` is the interpreter's base class (no extra object on the per-task path).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import itertools
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from plait._tracebacks import user_frames
from plait.backends import Executor, TaskResult, TaskSpec, TaskUsage, WorkerLost
from plait.backends._completion import Done, Ended
from plait.dsl import App, Retry
from plait.dsl._args import ATOMS, substitute
from plait.dsl._expr import Call, Expr
from plait.dsl._staged import staged
from plait.runtime._debug import remember_call
from plait.runtime._hooks import MISSING, Memo, Monitor
from plait.runtime._monitor import silence
from plait.runtime._nodes import QUEUED, RUNNING, Node, QueuedCall
from plait.runtime._settling import Settling
from plait.staging import Staging

__all__ = ["ENDINGS", "Tasks", "executor_staging"]

ENDINGS = ("done", "failed", "cached", "cancelled", "retried")  # the task events that end an attempt
_AUTO = Staging()


def executor_staging(executor: Executor) -> Staging:
    """What ``executor`` says of its hosts' filesystems, for the calls it runs."""
    staging = getattr(executor, "staging", _AUTO)  # executors without the option stage URLs only
    return staging if isinstance(staging, Staging) else _AUTO


class Tasks(Settling):
    """The calls' tasks on their executors (the interpreter's base class)."""

    executors: dict[str, Executor]
    default_label: str
    retry: Retry
    lost_retries: int
    memo: Memo | None
    monitor: Monitor | None
    keep_call: Callable[[TaskSpec], None] | None  # a monitor that keeps calls for plait debug
    queues: dict[str, deque[Node]]
    calling: dict[str, Callable[[TaskSpec, Done, Node], None] | None]  # an executor's submit_calling, if it has one
    told: dict[str, Done]  # what each executor tells its tasks' ends to (by submit_calling)
    sends: dict[str, Callable[[], None] | None]  # an executor's send_submitted, if it batches
    to_send: list[Callable[[], None]]  # those to call when this drain ends: they were submitted to
    staging: dict[str, Staging]
    inflight: dict[str, int]
    live: int  # tasks queued, sent, or waiting to retry
    failures: dict[Node, list[BaseException]]
    task_ids: itertools.count[int]
    # How many tasks ended each way, for a Runtime's display. Keys fixed up front: other
    # threads read it while this one counts.
    ended: dict[str, int]

    if TYPE_CHECKING:

        def drain(self) -> None: ...  # the interpreter's: start what is ready, send what has room

        def drain_soon(self) -> None: ...

    def _start_call(self, node: Node, expr: Call[Any], values: Sequence[Any], admitted: float = 0.0) -> None:
        """Start ``node``'s call: from the memo, or queued for its executor. ``admitted``: when it
        was admitted, if it waited unstarted since (its pending event's time; 0: now)."""
        app = expr.app
        if self.memo is not None and app.options.memoized:
            cached = self.memo.get(node.key)
            if cached is not MISSING:
                node.task_id = next(self.task_ids)  # a cached task is a task in the monitor too
                self._event("cached", node, app)
                self._finish(node, cached)
                return
        args, kwargs = expr.args, expr.kwargs
        if values:
            it = iter(values)
            args, kwargs = substitute(args, it), substitute(kwargs, it)
        label = app.options.executor or self.default_label
        try:
            fn = staged(app.fn, args, kwargs, self.staging[label], app.name)
        except ValueError as error:
            self._fail(node, error)
            return
        node.value = QueuedCall(args, kwargs, fn) if values or fn is not None else None
        node.state = QUEUED
        self.live += 1
        self.queues[label].append(node)
        if self.monitor is not None:  # the states that end nothing are only the monitor's
            node.task_id = next(self.task_ids)
            self._event("pending", node, app, at=admitted)

    @staticmethod
    def _spec(node: Node) -> TaskSpec:
        """The spec of a queued call, made as it is sent; a retry sends the same one again."""
        queued = node.value
        if type(queued) is TaskSpec:
            return queued
        expr = node.expr
        assert isinstance(expr, Call)
        app = expr.app
        if queued is None:
            args, kwargs, fn = expr.args, expr.kwargs, None
        else:
            args, kwargs, fn = queued
        return TaskSpec(
            node.task_id,
            app.name,
            app.identity if fn is None else app.identity + b"+staged",  # workers cache functions by key
            app.fn if fn is None else fn,
            args,
            kwargs,
            app.options.timeout,
            app.options.resources,
        )

    def _pump(self, label: str) -> None:
        executor, queue = self.executors[label], self.queues[label]
        calling, told, monitor = self.calling[label], self.told[label], self.monitor
        capacity = executor.capacity  # a property that may sum over pools: read once a pump
        inflight = before = self.inflight[label]
        try:
            while queue and inflight < capacity:
                node = queue.popleft()
                if node.state != QUEUED:
                    continue
                node.state = RUNNING
                inflight += 1
                # A task's id is made when first needed (the monitor's pending event, else here):
                # a million queued calls hold no million ints. A retry keeps its id.
                if not node.task_id:
                    node.task_id = next(self.task_ids)
                node.value = spec = self._spec(node)
                if calling is not None:  # no future per task: see backends/_completion.py
                    calling(spec, told, node)
                else:
                    executor.submit(spec).add_done_callback(functools.partial(self._task_done, label, node))
                if monitor is not None:
                    self._event("dispatched", node, None, executor=label)
        finally:  # counted here, once a pump: a task's end is told at a later turn, never during it
            self.inflight[label] = inflight
            send = self.sends[label]
            if send is not None and inflight > before and send not in self.to_send:
                self.to_send.append(send)

    def _task_done(self, label: str, node: Node, future: asyncio.Future[TaskResult]) -> None:
        self._settle_ended(label, [(node, None if future.cancelled() else future.result())])
        self.drain_soon()  # each future that ended this turn calls here: one drain after them all

    def _tasks_ended(self, label: str, ended: Ended) -> None:
        """What a calling executor tells: its tasks that ended in one turn, all at once. So they
        are drained at once too: what they freed goes out in this turn, not the next."""
        self._settle_ended(label, ended)
        self.drain()

    def _settle_ended(self, label: str, ended: Ended) -> None:
        """Tasks on ``label`` ended: each node with its result (None: it was cancelled).

        Only a running node's task counts: one cancelled or failed meanwhile has settled
        (and a retry is sent only once the attempt before it has ended).
        """
        self.inflight[label] -= len(ended)
        for node, result in ended:
            if node.state != RUNNING:
                continue
            try:
                if result is None:
                    self._fail(node, concurrent.futures.CancelledError())
                else:
                    self._task_result(node, result, label)
            except Exception as error:  # a bug of ours with one task: reported, the others still told
                asyncio.get_running_loop().call_exception_handler(
                    {"message": f"settling {node.label()} raised", "exception": error}
                )

    def _task_result(self, node: Node, result: TaskResult, label: str) -> None:
        expr = node.expr
        assert isinstance(expr, Call)
        app = expr.app
        monitor = self.monitor
        if result.started and monitor is not None:
            # When the worker really ran it, by its clock: a timeline needs that, not when the driver heard.
            self._event("running", node, app, executor=label, worker=result.worker, at=result.started)
        value = result.value
        if result.error is None and type(value) not in ATOMS and (inner := _expr_in(value)) is not None:
            result = msgspec.structs.replace(result, value=None, error=_returned_an_expr(app, inner))
        if result.error is None:
            self.live -= 1
            if self.memo is not None and app.options.memoized:
                self.memo.put(node.key, app.name, value)
            if monitor is None:  # the common end, counted without _event's keyword call
                self.ended["done"] += 1
            else:
                worker, ended, usage = result.worker, result.ended, result.usage
                self._event("done", node, app, executor=label, worker=worker, at=ended, usage=usage)
            if self.failures:
                self.failures.pop(node, None)
            self._finish(node, value)
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
        else:  # the drain that follows every settling sends it, with the others retried now
            self._enqueue(node, app)

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
            self._enqueue(node, app)
            self.drain()

    def _enqueue(self, node: Node, app: App[Any, Any]) -> None:
        self.queues[app.options.executor or self.default_label].append(node)

    def _stop_task(self, node: Node) -> None:
        self.failures.pop(node, None)
        expr = node.expr
        if not isinstance(expr, Call):  # an Await's node: no task of ours
            return
        self.live -= 1
        if node.state == RUNNING:
            self.executors[expr.app.options.executor or self.default_label].cancel(node.task_id)
        self._event("cancelled", node, expr.app)

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


def _expr_in(value: Any) -> Expr[Any] | None:
    """An Expr that ``value`` is, or holds as an item: what an app returns when it calls
    another app (a habit from Parsl), where the value it stands for was meant."""
    if isinstance(value, Expr):
        return value
    # One level down: cheap beside sending the container, and where the habit puts them.
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple, set)) else ()
    return next((item for item in items if isinstance(item, Expr)), None)


def _returned_an_expr(app: App[Any, Any], inner: Expr[Any]) -> TypeError:
    return TypeError(
        f"app {app.name} returned an Expr ({inner.label()}), not a value: calling an app inside an app only "
        "builds that call. Call it in the workflow and pass its result to this app as an argument, "
        "or continue with expr.bind(fn), where fn returns the Expr to run next"
    )
