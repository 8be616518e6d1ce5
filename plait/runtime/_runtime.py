"""The synchronous face of the interpreter: a Runtime owns an event loop on its own thread."""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import os
import threading
from collections.abc import Awaitable, Coroutine, Generator, Sequence
from typing import Any, TypeVar

from returns.result import Failure, Result, Success

from plait.backends import Executor, ProcessExecutor
from plait.dsl import Expr, Retry, set_interpreter
from plait.runtime._display import future_repr, runtime_html, runtime_repr
from plait.runtime._hooks import Memo, Monitor
from plait.runtime._interpreter import Interpreter, Root
from plait.runtime._memo import SQLiteMemo
from plait.runtime._monitor import EventLog, combine, progress_monitor
from plait.runtime._notebook import track

__all__ = ["PlaitFuture", "Runtime", "current_runtime", "run"]

T = TypeVar("T")


class PlaitFuture(concurrent.futures.Future[T]):
    """The future of a submitted Expr. Pass it to apps like the value it will hold.

    ``cancel()`` stops the work that only this future needs, kills what of it is
    running, and fails what depends on it with ``CancelledError``.
    """

    def __init__(self, expr: Expr[T], runtime: Runtime) -> None:
        super().__init__()
        self.__plait_expr__ = expr
        self._runtime = runtime
        self._root: Root | None = None

    @property
    def expr(self) -> Expr[T]:
        return self.__plait_expr__

    def cancel(self) -> bool:
        if not super().cancel():
            return False
        root = self._root
        if root is not None:
            self._runtime._call_soon(self._runtime._interpreter.cancel, root)
        return True

    def __await__(self) -> Generator[Any, None, T]:
        """``await future`` in async code or a notebook cell, on any event loop."""
        return asyncio.wrap_future(self).__await__()

    def __repr__(self) -> str:
        return future_repr(self, self.expr.label(), self._root)


class Runtime:
    """Interprets Exprs on a set of executors; use it as a context manager.

    ``executors`` are tried by label (an app's ``executor=``); the first is the
    default. ``retries`` is the policy for apps that set none; ``lost_retries`` how
    often a task whose worker died is tried again, on top of that. ``cache`` is a
    memo store (a path to a SQLite file, or a :class:`Memo`); ``monitor`` receives
    every task's state changes (a path: record them in that SQLite file, for
    ``plait report``). ``progress`` draws a bar on stderr: True, False, or None for
    when stderr is a terminal.
    """

    def __init__(
        self,
        executors: Sequence[Executor] | None = None,
        *,
        retries: int | Retry = 0,
        lost_retries: int = 3,
        cache: Memo | str | os.PathLike[str] | None = None,
        monitor: Monitor | str | os.PathLike[str] | None = None,
        progress: bool | None = None,
    ) -> None:
        chosen = list(executors) if executors else [ProcessExecutor()]
        labels = [e.label for e in chosen]
        if len(set(labels)) != len(labels):
            raise ValueError(f"executor labels must be unique, got {labels}")
        policy = Retry.of(retries)
        assert policy is not None
        if isinstance(cache, (str, os.PathLike)):
            cache = SQLiteMemo(cache)
        if isinstance(monitor, (str, os.PathLike)):
            monitor = EventLog(monitor)
        monitor = combine([monitor, progress_monitor(progress)])
        self._executors = chosen
        self._interpreter = Interpreter(
            {e.label: e for e in chosen}, retry=policy, lost_retries=lost_retries, memo=cache, monitor=monitor
        )
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> Runtime:
        """Start the loop thread and the executors (``with`` does this)."""
        with self._lock:
            if self._thread is not None:
                return self
            if self._closed:
                raise RuntimeError("this Runtime has been shut down; make a new one")
            self._thread = threading.Thread(target=self._loop.run_forever, name="plait-runtime", daemon=True)
            self._thread.start()
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
        if thread is not None:
            self._wait(self._stop())
            self._loop.call_soon_threadsafe(self._loop.stop)
            thread.join()
        else:  # never started: the memo and monitor files were opened all the same
            self._close_hooks()
        self._loop.close()
        _forget(self)

    async def _stop(self) -> None:
        self._interpreter.cancel_all()
        await asyncio.gather(*(e.shutdown() for e in self._executors), return_exceptions=True)
        self._close_hooks()

    def _close_hooks(self) -> None:
        for hook in (self._interpreter.memo, self._interpreter.monitor):
            if hook is not None:
                hook.close()

    def __enter__(self) -> Runtime:
        self.start()
        _active.append(self)
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
        """Start computing ``expr`` now; returns a future of its result.

        Raises at once if the graph asks for an executor this runtime lacks.
        """
        future = self._future(expr)
        self._wait(self._admit(expr, future))
        return future

    def _future(self, expr: Expr[T]) -> PlaitFuture[T]:
        if not isinstance(expr, Expr):
            raise TypeError(f"submit takes an Expr (the result of calling an app), not {type(expr).__name__}")
        if threading.current_thread() is self._thread:
            raise RuntimeError("submit() inside a map or bind function would deadlock: return an Expr from bind")
        if self._thread is None:
            self.start()
        future = PlaitFuture(expr, self)
        track(future)  # in a notebook: interrupting the cell cancels it
        return future

    async def _admit(self, expr: Expr[Any], future: PlaitFuture[Any]) -> None:
        self._admit_now(expr, future)

    def _admit_now(self, expr: Expr[Any], future: PlaitFuture[Any]) -> None:
        interpreter = self._interpreter
        node = interpreter.admit(expr)
        future._root = interpreter.watch(node, future)
        if future.cancelled():  # before it was admitted (an interrupted run)
            interpreter.cancel(future._root)
        interpreter.drain()

    def _admit_or_fail(self, expr: Expr[Any], future: PlaitFuture[Any]) -> None:
        try:
            self._admit_now(expr, future)
        except Exception as error:
            future.set_exception(error)

    def run(self, expr: Expr[T], timeout: float | None = None) -> T:
        """Compute ``expr`` and return its result (or raise its error).

        A wait cut short (KeyboardInterrupt, ``timeout``) cancels the work: nothing else waits for it.
        """
        # One hand-off to the loop thread where submit() needs two (admit, then wait):
        # an error admitting the graph comes back through the future, as run raises it anyway.
        future = self._future(expr)
        if self._closed:
            raise RuntimeError("this Runtime has been shut down")
        self._loop.call_soon_threadsafe(self._admit_or_fail, expr, future)
        try:
            return future.result(timeout)
        except BaseException:  # KeyboardInterrupt, a timeout: nobody else waits for this work
            future.cancel()
            raise

    def _wait(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if self._closed and self._thread is None:
            raise RuntimeError("this Runtime has been shut down")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def _call_soon(self, fn: Any, *args: Any) -> None:
        if not self._closed:
            self._loop.call_soon_threadsafe(fn, *args)

    # -- what Expr.__eq__ and Expr.awaitable need -------------------------------------

    def outcome(self, expr: Expr[Any]) -> Result[Any, BaseException]:
        """``Success(value)`` or ``Failure(error)`` of ``expr``, computed here."""
        try:
            return Success(self.run(expr))
        except Exception as error:
            return Failure(error)

    async def awaitable(self, expr: Expr[T]) -> T:
        return await asyncio.wrap_future(self.submit(expr))


_active: list[Runtime] = []
_default: list[Runtime] = []
_default_lock = threading.Lock()


def _forget(runtime: Runtime) -> None:
    for registry in (_active, _default):
        if runtime in registry:
            registry.remove(runtime)


def current_runtime() -> Runtime:
    """The innermost runtime opened with ``with``, or a default one on local processes."""
    if _active:
        return _active[-1]
    with _default_lock:
        if not _default:
            runtime = Runtime()
            runtime.start()
            _default.append(runtime)
            atexit.register(runtime.shutdown)
        return _default[0]


def run(expr: Expr[T], timeout: float | None = None) -> T:
    """Compute ``expr`` on the current runtime and return its result.

    Inside ``with plait.Runtime(...)`` that runtime is used; otherwise a default one
    with a process per core, started once and kept for the rest of the program.
    """
    return current_runtime().run(expr, timeout)


class _CurrentRuntime:
    """Lets ``==`` and ``awaitable()`` on Exprs use whatever runtime is current."""

    def outcome(self, expr: Expr[Any]) -> Result[Any, BaseException]:
        return current_runtime().outcome(expr)

    def awaitable(self, expr: Expr[T]) -> Awaitable[T]:
        return current_runtime().awaitable(expr)


set_interpreter(_CurrentRuntime())
