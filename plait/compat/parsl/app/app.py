"""Parsl's app decorators (``parsl.app.app``): ``python_app``, ``bash_app``, ``join_app``.

Calling an app submits it at once to the loaded configuration's plait runtime and
returns an :class:`AppFuture`. Apps are impure, as in Parsl: every call runs (a plait
app with ``pure=False``). ``cache=True`` makes equal calls share one result (a pure plait
app, memoized for the run).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import plait as pl
from plait.compat.parsl.app._tasks import BashTask, JoinTask, PythonTask
from plait.compat.parsl.dataflow import dflow
from plait.compat.parsl.dataflow.futures import AppFuture

__all__ = ["AppBase", "BashApp", "JoinApp", "PythonApp", "bash_app", "join_app", "python_app"]

# Keyword arguments that Parsl fills from the function's defaults when the caller leaves them out.
_SPECIAL = ("stdout", "stderr", "walltime", "parsl_resource_specification", "outputs", "inputs")


class AppBase:
    """An app: a function whose calls are tasks of the loaded configuration."""

    task_class: type[PythonTask | BashTask | JoinTask] = PythonTask
    joins = False

    def __init__(
        self,
        func: Callable[..., Any],
        data_flow_kernel: dflow.DataFlowKernel | None = None,
        cache: bool = False,
        executors: str | Sequence[str] = "all",
        ignore_for_cache: Sequence[str] | None = None,
    ) -> None:
        if not callable(func):
            raise TypeError(f"an app decorates a function, not {func!r}")
        self.__name__ = getattr(func, "__name__", "app")
        self.__doc__ = func.__doc__
        self.func = func
        self.data_flow_kernel = data_flow_kernel
        self.cache = cache
        self.executors = executors
        self.ignore_for_cache = tuple(ignore_for_cache or ())
        params = inspect.signature(func).parameters
        self.kwargs = {name: params[name].default for name in _SPECIAL if name in params}
        self._task = self.task_class(func)
        self._plait_apps: dict[tuple[str | None, bool], pl.App[..., Any]] = {}

    def __call__(self, *args: Any, **kwargs: Any) -> AppFuture:
        kernel = self.data_flow_kernel or dflow.dfk()
        future = kernel.submit(self, args, {**self.kwargs, **kwargs})
        future._lift = _lift
        return future

    def executor_label(self) -> str | None:
        """Where this app's tasks run: its first executor, or the configuration's first for 'all'."""
        if isinstance(self.executors, str):
            return None if self.executors == "all" else self.executors
        return self.executors[0] if self.executors else None

    def plait_call(self, record: dict[str, Any], args: Sequence[Any], kwargs: dict[str, Any]) -> pl.Expr[Any]:
        """One try of this call as a plait call: shared only for ``cache=True``, never on a retry."""
        shared = self.cache and record["try_id"] == 0
        label = self.executor_label()
        found = self._plait_apps.get((label, shared))
        if found is None:
            options: dict[str, Any] = {"pure": False}
            if shared:
                options = {"pure": True, "ignore_for_cache": self.ignore_for_cache}
            found = self._plait_apps[label, shared] = pl.app(executor=label, **options)(self._task)
        return found(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.__name__}>"


class PythonApp(AppBase):
    """A Python function run as a task; ``walltime=`` raises AppTimeout in it."""


class BashApp(AppBase):
    """A function returning a bash command line, which runs as a task; the result is its exit code 0."""

    task_class = BashTask


class JoinApp(AppBase):
    """A function that calls apps and returns their future(s): the task's value is theirs."""

    task_class = JoinTask
    joins = True

    def __init__(
        self,
        func: Callable[..., Any],
        data_flow_kernel: dflow.DataFlowKernel | None = None,
        cache: bool = False,
        ignore_for_cache: Sequence[str] | None = None,
    ) -> None:
        super().__init__(func, data_flow_kernel, cache, "all", ignore_for_cache)

    def executor_label(self) -> str | None:
        return dflow.INTERNAL


def _apply(get: Callable[[Any], Any], value: Any) -> Any:
    return get(value)


# future[key] and future.name: a task on the internal threads, which waits for the future
_GET = PythonApp(_apply, executors=[dflow.INTERNAL])


def _lift(future: AppFuture, get: Callable[[Any], Any]) -> AppFuture:
    return _GET(get, future)


def _decorator(cls: type[AppBase], doc: str) -> Callable[..., Any]:
    """Parsl's decorator for ``cls``: bare (``@python_app``) or with options (``@python_app(cache=True)``).

    The options are those of ``cls`` (``data_flow_kernel``, ``cache``, ``executors``,
    ``ignore_for_cache``); any other is a TypeError where the app is defined.
    """

    def decorate(function: Callable[..., Any] | None = None, /, **options: Any) -> Any:
        if function is not None:
            return cls(function, **options)
        cls(_check_options, **options)
        return lambda func: cls(func, **options)

    decorate.__doc__ = doc
    return decorate


def _check_options() -> None:
    """Stands for the function while the decorator's options are checked."""


python_app = _decorator(PythonApp, "Make a function a Python app: its calls run as tasks and return AppFutures.")
bash_app = _decorator(BashApp, "Make a function that returns a command line a bash app.")
join_app = _decorator(JoinApp, "Make a function that launches apps and returns their future(s) a join app.")
