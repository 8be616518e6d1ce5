"""The synchronous face of the interpreter: a Runtime owns an event loop on its own thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import threading
from collections import deque
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from returns.result import Failure, Result, Success

from plait._collector import DEFAULT_THRESHOLD, Collector
from plait._tracebacks import user_facing, user_frames
from plait.backends import Executor
from plait.dsl import Expr, Retry
from plait.runtime._checks import (
    check_hook,
    check_progress,
    check_run_timeout,
    chosen_executors,
    not_an_expr,
    refuse_in_task,
    retry_policy,
)
from plait.runtime._display import runtime_html, runtime_repr, unfinished
from plait.runtime._doorbell import Doorbell
from plait.runtime._future import PlaitFuture
from plait.runtime._hooks import Memo, Monitor
from plait.runtime._interpreter import Interpreter
from plait.runtime._monitor import EventLog, combine
from plait.runtime._notebook import track
from plait.runtime._open_runtimes import active, forget, started, this_process
from plait.runtime._progress import progress_monitor

# Imported when used, like the memo store and the process pool below: a runtime given its
# executors, with no memo file, that is never asked for a plan starts without them.
if TYPE_CHECKING:
    from plait.runtime._plan import Plan

__all__ = ["Runtime"]

T = TypeVar("T")


_SHUT_DOWN = "this Runtime has been shut down; make a new one (or submit inside its with block)"
_FORKED = (
    "this Runtime was started in process {pid}, of which this process is a fork: its loop thread"
    " and workers run there, not here; start a Runtime in this process (plait.run starts one)"
)
_SHOWN = 5  # running tasks named in a timeout's message
_LOOP_ANSWER = 1.0  # seconds a timeout waits for the loop to say what is unfinished


class Runtime:
    """Interprets Exprs on a set of executors; use it as a context manager.

    ``executors`` are tried by label (an app's ``executor=``); the first is the
    default. ``retries`` is the policy for apps that set none; ``lost_retries`` how
    often a task whose worker died is tried again, on top of that. ``cache`` is a
    memo store (a path to a SQLite file, or a :class:`Memo`); ``monitor`` receives
    every task's state changes (a path: record them in that SQLite file, for
    ``plait report``). ``progress`` draws a bar on stderr: True, False, or None for
    when stderr is a terminal. ``gc_threshold`` is the cyclic collector's first
    threshold while this runtime has work (put back when it has none); None leaves
    the collector alone.
    """

    @user_facing
    def __init__(
        self,
        executors: Sequence[Executor] | None = None,
        *,
        retries: int | Retry = 0,
        lost_retries: int = 3,
        cache: Memo | str | os.PathLike[str] | None = None,
        monitor: Monitor | str | os.PathLike[str] | None = None,
        progress: bool | None = None,
        gc_threshold: int | None = DEFAULT_THRESHOLD,
    ) -> None:
        chosen = chosen_executors(executors)
        policy = retry_policy(retries)
        check_progress(progress)
        if not isinstance(lost_retries, int) or isinstance(lost_retries, bool) or lost_retries < 0:
            raise ValueError(f"Runtime(lost_retries={lost_retries!r}): need a whole number of retries, 0 or more")
        if isinstance(cache, (str, os.PathLike)):
            from plait.runtime._memo import SQLiteMemo

            cache = SQLiteMemo(cache)
        if isinstance(monitor, (str, os.PathLike)):
            monitor = EventLog(monitor)
        check_hook("cache", cache, "get", "plait.runtime.Memo")
        check_hook("monitor", monitor, "task_event", "plait.runtime.Monitor")
        for executor in chosen:  # only a monitor reads what workers measure of each task
            if hasattr(executor, "task_usage"):
                executor.task_usage = monitor is not None
        monitor = combine([monitor, progress_monitor(progress)])
        self._executors = chosen
        self._interpreter = Interpreter(
            {e.label: e for e in chosen},
            retry=policy,
            lost_retries=lost_retries,
            memo=cache,
            monitor=monitor,
            collector=Collector(gc_threshold),
        )
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        # Submissions not yet admitted: the caller returns at once, and all that came in
        # between two turns of the loop are admitted and dispatched together.
        self._inbox: deque[tuple[Expr[Any], PlaitFuture[Any]]] = deque()
        self._inbox_lock = threading.Lock()  # rings and closes the doorbell too
        self._doorbell: Doorbell | None = None  # rung into an empty inbox, while the loop runs

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> Runtime:
        """Start the loop thread and the executors (``with`` does this)."""
        refuse_in_task("a Runtime started")
        with self._lock:
            if self._thread is not None:
                return self
            if self._closed:
                raise RuntimeError(_SHUT_DOWN)
            self._doorbell = Doorbell(self._loop, self._admit_inbox)
            self._thread = threading.Thread(target=self._loop.run_forever, name="plait-runtime", daemon=True)
            self._thread.start()
            started[self] = os.getpid()
        try:
            self._wait(self._start_executors())
        except BaseException:
            self.shutdown()
            raise
        return self

    async def _start_executors(self) -> None:
        await asyncio.gather(*(e.start() for e in self._executors))

    def shutdown(self) -> None:
        """Cancel unfinished work, stop the executors and their workers, end the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        if started.get(self, this_process()) != this_process():
            forget(self)  # a fork's copy: what it would stop runs in the parent, which stops it
            return
        try:
            if thread is not None:
                try:
                    self._wait(self._stop())
                finally:
                    self._loop.call_soon_threadsafe(self._loop.stop)
                    thread.join()
                    self._close_doorbell()
            else:  # never started: the memo and monitor files were opened all the same
                self._close_hooks()
        finally:
            self._loop.close()
            forget(self)

    def _close_doorbell(self) -> None:
        with self._inbox_lock:  # no submission rings it once closed: they see _closed first
            if self._doorbell is not None:
                self._doorbell.close()
                self._doorbell = None

    async def _stop(self) -> None:
        for _, future in self._take_inbox():
            future.cancel()
        # Whatever cancelling the graph meets, the executors (and their workers) stop.
        try:
            self._interpreter.cancel_all()
        finally:
            try:
                await asyncio.gather(*(e.shutdown() for e in self._executors), return_exceptions=True)
            finally:
                self._close_hooks()

    def _close_hooks(self) -> None:
        for hook in (self._interpreter.memo, self._interpreter.monitor):
            if hook is not None:
                hook.close()

    def __enter__(self) -> Runtime:
        self.start()
        active.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def _state(self) -> str:
        return "shut down" if self._closed else "running" if self._thread is not None else "not started"

    def __repr__(self) -> str:
        return runtime_repr(self._state(), self._executors, self._interpreter)

    def _repr_html_(self) -> str:
        return runtime_html(self._state(), self._executors, self._interpreter)

    # -- use ---------------------------------------------------------------------

    def submit(self, expr: Expr[T]) -> PlaitFuture[T]:
        """Start computing ``expr`` now; returns a future of its result at once.

        Raises here if the app called, or one called in its arguments, asks for an
        executor this runtime lacks; an error admitting the rest of the graph (such an app
        deeper in it) comes back through the future.
        """
        try:  # cut inline, as App.__call__ does: user_facing would cost each eager submission 0.2 µs
            future = self._future(expr)
            # The seed's idiom is an app call a future, its arguments calls or futures: their apps
            # are checked here, cheaply; a graph's deeper nodes are checked when it is admitted.
            self._interpreter.check_submitted(expr)
            with self._inbox_lock:
                if self._closed or self._doorbell is None:
                    raise RuntimeError(_SHUT_DOWN)
                if started.get(self) != this_process():
                    raise RuntimeError(_FORKED.format(pid=started.get(self)))
                self._inbox.append((expr, future))
                if len(self._inbox) == 1:  # else the loop is woken already, and takes them all
                    self._doorbell.ring()
            return future
        except BaseException as error:
            user_frames(error)  # a wrong Expr, a runtime shut down: the user's line, as run() shows it
            raise

    def _future(self, expr: Expr[T]) -> PlaitFuture[T]:
        if not isinstance(expr, Expr):
            raise TypeError(not_an_expr(expr))
        if threading.current_thread() is self._thread:
            raise RuntimeError("submit() inside a map or bind function would deadlock: return an Expr from bind")
        if self._closed:
            raise RuntimeError(_SHUT_DOWN)
        if self._thread is None:
            self.start()
        future = PlaitFuture(expr, self)
        track(future)  # in a notebook: interrupting the cell cancels it
        return future

    def _take_inbox(self) -> list[tuple[Expr[Any], PlaitFuture[Any]]]:
        with self._inbox_lock:
            taken = list(self._inbox)
            self._inbox.clear()
        return taken

    def _admit_inbox(self) -> None:
        interpreter = self._interpreter
        for expr, future in self._take_inbox():
            if future._cancelling:
                continue
            try:
                future._root = root = interpreter.admit_watched(expr, future)
            except Exception as error:
                # Cancelled while its admission failed: it has ended, and the rest of the inbox still waits.
                with contextlib.suppress(concurrent.futures.InvalidStateError):
                    future.set_exception(error)
                continue
            # Cancelled while it was admitted: cancel() set the flag, then found no root yet.
            if future._cancelling:
                interpreter.cancel(root)
        interpreter.drain()

    @user_facing
    def run(self, expr: Expr[T], timeout: float | None = None) -> T:
        """Compute ``expr`` and return its result (or raise its error).

        After ``timeout`` seconds without a result, cancels the work and raises
        ``TimeoutError`` naming what was still running; a wait cut short otherwise
        (KeyboardInterrupt) cancels the work too: nothing else waits for it.
        """
        check_run_timeout(timeout)
        if not isinstance(expr, Expr):
            raise TypeError(not_an_expr(expr, "run"))
        future = self.submit(expr)
        try:
            return future.result(timeout)
        except TimeoutError:
            if future.done():
                raise  # the app's own TimeoutError
            unfinished = self._describe_unfinished(future)
            if not future.cancel():  # it ended meanwhile
                return future.result()
            message = f"run(timeout={timeout}): no result in time, so it was cancelled; {unfinished}"
            raise TimeoutError(message) from None
        except BaseException:  # KeyboardInterrupt: nobody else waits for this work
            future.cancel()
            raise

    def _describe_unfinished(self, future: PlaitFuture[Any]) -> str:
        asked = asyncio.run_coroutine_threadsafe(self._unfinished(future), self._loop)
        try:
            return asked.result(_LOOP_ANSWER)
        except TimeoutError:  # the timeout must not wait for what it is about
            asked.cancel()
            return "the runtime's loop did not answer: a map or bind function may be blocking it"

    async def _unfinished(self, future: PlaitFuture[Any]) -> str:
        if future._root is None:
            return "its graph was not even admitted yet (the runtime's loop is busy)"
        running, queued, waiting = unfinished(self._interpreter, future._root)
        shown = ", ".join(running[:_SHOWN]) + (f" and {len(running) - _SHOWN} more" if len(running) > _SHOWN else "")
        return f"still running: {shown or 'nothing'}; {queued} tasks queued, {waiting} steps waiting on inputs"

    def _wait(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if self._closed and self._thread is None:
            coroutine.close()
            raise RuntimeError(_SHUT_DOWN)
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def _call_soon(self, fn: Any, *args: Any) -> None:
        if not self._closed:
            self._loop.call_soon_threadsafe(fn, *args)

    def plan(self, expr: Expr[Any], *, history: str | os.PathLike[str] | None = None) -> Plan:
        """What running ``expr`` here would do, without running any of it (see :class:`Plan`).

        Tasks are looked up in this runtime's memo; times come from ``history``, a
        monitoring db of earlier runs (default: the one this runtime writes, if any).
        """
        from plait.runtime._plan import history_of, make_plan, median_seconds

        interpreter = self._interpreter
        seconds = median_seconds(history if history is not None else history_of(interpreter.monitor))
        workers = sum(getattr(e, "workers", None) or e.capacity for e in self._executors)
        return make_plan(expr, interpreter.memo, seconds, workers)

    # -- what plait.testing and Expr.awaitable need -------------------------------------

    def outcome(self, expr: Expr[Any]) -> Result[Any, BaseException]:
        """``Success(value)`` or ``Failure(error)`` of ``expr``, computed here."""
        try:
            return Success(self.run(expr))
        except Exception as error:
            return Failure(error)

    async def awaitable(self, expr: Expr[T]) -> T:
        return await asyncio.wrap_future(self.submit(expr))
