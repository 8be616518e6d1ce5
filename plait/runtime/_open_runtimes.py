"""The runtimes this process has open: which one ``plait.run`` uses (the innermost ``with``,
or a default one), and shutting down at exit those a program left open."""

from __future__ import annotations

import atexit
import importlib
import os
import sys
import threading
from collections.abc import Awaitable
from typing import TYPE_CHECKING, TypeVar

from plait._tracebacks import user_facing
from plait.dsl import Expr
from plait.dsl._expr import set_interpreter
from plait.runtime._checks import check_run_timeout, not_an_expr, refuse_in_task

if TYPE_CHECKING:
    from plait.runtime._runtime import Runtime

__all__ = ["active", "current_runtime", "forget", "run", "started", "this_process"]

T = TypeVar("T")

active: list[Runtime] = []  # entered with ``with``, the innermost last
started: dict[Runtime, int] = {}  # started and not shut down, with the process that started each
_default: list[Runtime] = []
_default_lock = threading.Lock()


_pid = [os.getpid()]  # this process's, kept up to date at each fork: asked at each submission


def this_process() -> int:
    """This process's id (a cached ``os.getpid()``)."""
    return _pid[0]


def _after_fork_in_child() -> None:
    # The parent's runtimes are copied, not their loop threads, executors or workers: none
    # of them runs here. A default one is implicit: the child starts its own when it asks.
    _pid[0] = os.getpid()
    _default.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def forget(runtime: Runtime) -> None:
    for registry in (active, _default):
        if runtime in registry:
            registry.remove(runtime)
    started.pop(runtime, None)


def current_runtime() -> Runtime:
    """The innermost runtime opened with ``with``, or a default one on local processes.

    Not inside a task: a worker that started a runtime of its own would run a second
    pool beside the first, outside its limits, its memo and its monitoring.
    """
    refuse_in_task("plait.run")
    if active:
        return active[-1]
    with _default_lock:
        if not _default:
            from plait.runtime._runtime import Runtime  # here: that module imports this one

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
    for runtime, pid in list(started.items())[::-1]:
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
    if not isinstance(expr, Expr):  # refused before a default runtime is started for it
        raise TypeError(not_an_expr(expr, "run"))
    check_run_timeout(timeout)
    return current_runtime().run(expr, timeout)


class _CurrentRuntime:
    """Lets ``awaitable()`` on Exprs use whatever runtime is current."""

    def awaitable(self, expr: Expr[T]) -> Awaitable[T]:
        return current_runtime().awaitable(expr)


set_interpreter(_CurrentRuntime())
