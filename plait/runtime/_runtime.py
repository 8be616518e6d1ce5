"""The synchronous face of the interpreter: a Runtime owns an event loop on its own thread."""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import importlib
import os
import sys
import threading
from collections import deque
from collections.abc import Awaitable, Coroutine, Generator, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from returns.result import Failure, Result, Success

from plait.backends import Executor, running_task
from plait.dsl import App, Expr, Retry
from plait.dsl._collector import DEFAULT_THRESHOLD, Collector
from plait.dsl._expr import Call, set_interpreter
from plait.runtime._debug import debug_error
from plait.runtime._display import future_repr, runtime_html, runtime_repr
from plait.runtime._hooks import Memo, Monitor
from plait.runtime._interpreter import Interpreter, Root
from plait.runtime._monitor import EventLog, combine
from plait.runtime._notebook import track
from plait.runtime._progress import progress_monitor
from plait.runtime._tracebacks import user_facing

# Imported when used, like the memo store and the process pool below: a runtime given its
# executors, with no memo file, that is never asked for a plan starts without them.
if TYPE_CHECKING:
    from plait.runtime._plan import Plan

__all__ = ["PlaitFuture", "Runtime", "current_runtime", "run"]

T = TypeVar("T")


_SHUT_DOWN = "this Runtime has been shut down; make a new one (or submit inside its with block)"
_SHOWN = 5  # running tasks named in a timeout's message
_LOOP_ANSWER = 1.0  # seconds a timeout waits for the loop to say what is unfinished


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

    def debug(self, *, post_mortem: bool = True) -> Result[T, BaseException]:
        """Call the task this future failed from again, here, under pdb's post-mortem.

        With its arguments as it got them (for a failed dependency, the task that
        started it); ``post_mortem=False`` only reproduces. ``Failure(error)`` if it
        fails again. ``plait debug run.db`` does the same from a monitoring db.
        """
        if not self.done():
            raise ValueError("debug(): the future has not finished")
        error = self.exception()
        if error is None:
            raise ValueError("debug(): the future did not fail")
        return debug_error(error, post_mortem=post_mortem)

    @user_facing
    def result(self, timeout: float | None = None) -> T:
        return super().result(timeout)

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
    when stderr is a terminal. ``gc_threshold`` is the cyclic collector's first
    threshold while this runtime has work (put back when it has none); None leaves
    the collector alone.
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
        gc_threshold: int | None = DEFAULT_THRESHOLD,
    ) -> None:
        chosen = _executors(executors)
        labels = [e.label for e in chosen]
        if len(set(labels)) != len(labels):
            raise ValueError(f"executor labels must be unique, got {labels}")
        policy = Retry.of(retries)
        assert policy is not None
        if isinstance(cache, (str, os.PathLike)):
            from plait.runtime._memo import SQLiteMemo

            cache = SQLiteMemo(cache)
        if isinstance(monitor, (str, os.PathLike)):
            monitor = EventLog(monitor)
        _check_hook("cache", cache, "get", "plait.runtime.Memo")
        _check_hook("monitor", monitor, "task_event", "plait.runtime.Monitor")
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
        self._inbox_lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> Runtime:
        """Start the loop thread and the executors (``with`` does this)."""
        _refuse_in_task("a Runtime started")
        with self._lock:
            if self._thread is not None:
                return self
            if self._closed:
                raise RuntimeError(_SHUT_DOWN)
            self._thread = threading.Thread(target=self._loop.run_forever, name="plait-runtime", daemon=True)
            self._thread.start()
            _started[self] = os.getpid()
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
        try:
            if thread is not None:
                try:
                    self._wait(self._stop())
                finally:
                    self._loop.call_soon_threadsafe(self._loop.stop)
                    thread.join()
            else:  # never started: the memo and monitor files were opened all the same
                self._close_hooks()
        finally:
            self._loop.close()
            _forget(self)

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
        """Start computing ``expr`` now; returns a future of its result at once.

        Raises here if the app called, or one called in its arguments, asks for an
        executor this runtime lacks; an error admitting the rest of the graph (such an app
        deeper in it) comes back through the future.
        """
        future = self._future(expr)
        # The seed's idiom is an app call a future, its arguments calls or futures: their apps
        # are checked here, cheaply; a graph's deeper nodes are checked when it is admitted.
        for node in (expr, *expr.children()):
            if isinstance(node, Call):
                self._interpreter.check_app(node.app)
        with self._inbox_lock:
            if self._closed:
                raise RuntimeError(_SHUT_DOWN)
            wake = not self._inbox
            self._inbox.append((expr, future))
        if wake:
            self._loop.call_soon_threadsafe(self._admit_inbox)
        return future

    def _future(self, expr: Expr[T]) -> PlaitFuture[T]:
        if not isinstance(expr, Expr):
            raise TypeError(_not_an_expr(expr))
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
            if future.cancelled():
                continue
            try:
                future._root = root = interpreter.watch(interpreter.admit(expr), future)
            except Exception as error:
                future.set_exception(error)
                continue
            if future.cancelled():  # while it was being admitted: cancel() found no root yet
                interpreter.cancel(root)
        interpreter.drain()

    @user_facing
    def run(self, expr: Expr[T], timeout: float | None = None) -> T:
        """Compute ``expr`` and return its result (or raise its error).

        After ``timeout`` seconds without a result, cancels the work and raises
        ``TimeoutError`` naming what was still running; a wait cut short otherwise
        (KeyboardInterrupt) cancels the work too: nothing else waits for it.
        """
        _check_run_timeout(timeout)
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
        running, queued, waiting = self._interpreter.unfinished(future._root)
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


_active: list[Runtime] = []
_started: dict[Runtime, int] = {}  # started and not shut down, with the process that started each
_default: list[Runtime] = []
_default_lock = threading.Lock()


def _executors(given: object) -> list[Executor]:
    """The executors a Runtime is given (none: local processes), each checked, so that the
    usual slips are named where they are made, not met as an AttributeError later."""
    where = "Runtime(executors=...)"
    if isinstance(given, Executor):
        raise TypeError(f"{where} takes a list: executors=[{type(given).__name__}(...)]")
    if isinstance(given, str) or not isinstance(given, Iterable | None):
        raise TypeError(f"{where} takes a list of executors, not {type(given).__name__}")
    chosen = list(given or ())
    for index, item in enumerate(chosen):
        if isinstance(item, type):
            raise TypeError(f"{where}[{index}] is the class {item.__name__}: make one, {item.__name__}()")
        if not isinstance(item, Executor):
            raise TypeError(
                f"{where}[{index}] is a {type(item).__name__}, not an executor "
                "(such as plait.ProcessExecutor(), plait.ThreadExecutor() or plait.ZMQExecutor(...))"
            )
    if chosen:
        return chosen
    from plait.backends import ProcessExecutor  # here: a runtime given its executors does not load the process pool

    return [ProcessExecutor()]


def _check_hook(name: str, hook: object, method: str, kind: str) -> None:
    if hook is not None and not callable(getattr(hook, method, None)):
        raise TypeError(f"Runtime({name}=...) takes a file path or a {kind}, not {type(hook).__name__}")


def _refuse_in_task(what: str) -> None:
    """Refuse to start or use a runtime on a worker, while it runs a task or imports the
    module of one: a second pool beside the first, outside its limits, its memo and its
    monitoring; and a module that runs a workflow as it is imported would start workers
    that import it in turn."""
    task = running_task()
    if task is not None:
        raise RuntimeError(
            f"{what} inside the app {task}, or in its module as a worker imports it: a task must not "
            "start or use a runtime. Compose instead: pass the Expr to the app as an argument (it gets "
            "the result), or continue with expr.bind(fn), where fn returns the next Expr. A module that "
            "runs a workflow keeps it under if __name__ == '__main__':"
        )


def _check_run_timeout(timeout: object) -> None:
    if isinstance(timeout, Expr):  # run(a, b), as if run took several
        raise TypeError(
            "run(expr, timeout): the second argument is the timeout in seconds, not an Expr; "
            "to run several, run plait.gather(a, b)"
        )
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0):
        raise ValueError(f"run(timeout={timeout!r}): a timeout is a number of seconds >= 0, or None")


def _not_an_expr(value: object) -> str:
    text = f"submit takes an Expr (the result of calling an app), not {type(value).__name__}"
    if isinstance(value, App):  # the app itself, where its call was meant
        return f"{text}: call it, {value.name}(...), to get the Expr of that call"
    if isinstance(value, list | tuple | set) and any(isinstance(item, Expr) for item in value):
        return f"{text} of Exprs: plait.gather(*exprs) is the Expr of all their results, as a list"
    return text


def _forget(runtime: Runtime) -> None:
    for registry in (_active, _default):
        if runtime in registry:
            registry.remove(runtime)
    _started.pop(runtime, None)


def current_runtime() -> Runtime:
    """The innermost runtime opened with ``with``, or a default one on local processes.

    Not inside a task: a worker that started a runtime of its own would run a second
    pool beside the first, outside its limits, its memo and its monitoring.
    """
    _refuse_in_task("plait.run")
    if _active:
        return _active[-1]
    with _default_lock:
        if not _default:
            runtime = Runtime()
            runtime.start()
            _default.append(runtime)
        return _default[0]


def _shut_down_left_open() -> None:
    """Shut down, as the interpreter exits, each runtime started and never shut down (the
    default one, or a script's ``Runtime(...).start()``): its executors stop their workers,
    and its memo and monitor write what they hold (a run's tasks were missing from both).

    First among threading's exit hooks, while thread pools still take work (executors reap
    workers through ``asyncio.to_thread``; at ``atexit`` time every pool is closed). Those
    hooks run the last registered first: after concurrent.futures' own, which
    ``_register_exit_hooks`` has it register already. But while a thread of the
    program's own may still be using a runtime, that waits for ``atexit``, which Python
    runs once those threads have ended.
    """
    if _program_threads_running():
        return
    for runtime, pid in list(_started.items())[::-1]:
        if pid == os.getpid():  # a forked child has the registry, not the runtime's thread
            runtime.shutdown()


def _program_threads_running() -> bool:
    """Whether a thread the interpreter will wait for is running, other than this one and
    the workers of thread pools (which wait for work until their own exit hook)."""
    pools = getattr(sys.modules.get("concurrent.futures.thread"), "_threads_queues", {})
    current = threading.current_thread()
    return any(not t.daemon and t is not current and t not in pools for t in threading.enumerate())


def _register_exit_hooks() -> None:
    atexit.register(_shut_down_left_open)  # what a thread of the program kept in use
    try:
        importlib.import_module("concurrent.futures.thread")  # registers its hook, to run after ours
        threading._register_atexit(_shut_down_left_open)  # type: ignore[attr-defined]
    except RuntimeError:  # plait imported as the interpreter exits (by a thread): atexit alone
        pass


_register_exit_hooks()


@user_facing
def run(expr: Expr[T], timeout: float | None = None) -> T:
    """Compute ``expr`` on the current runtime and return its result.

    Inside ``with plait.Runtime(...)`` that runtime is used; otherwise a default one
    with a process per core, started once and kept for the rest of the program.
    """
    return current_runtime().run(expr, timeout)


class _CurrentRuntime:
    """Lets ``awaitable()`` on Exprs use whatever runtime is current."""

    def awaitable(self, expr: Expr[T]) -> Awaitable[T]:
        return current_runtime().awaitable(expr)


set_interpreter(_CurrentRuntime())
