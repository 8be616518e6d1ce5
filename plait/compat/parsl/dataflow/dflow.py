"""The loaded configuration (Parsl's DataFlowKernel): a plait Runtime, and the task ids.

``parsl.load(config)`` makes one, module-wide, as Parsl does; apps submit to it until
``cleanup()`` (or leaving ``with parsl.load(config):``) shuts it down.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import itertools
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import plait as pl
from plait.compat.parsl.app.futures import DataFuture
from plait.compat.parsl.config import Config
from plait.compat.parsl.data_provider.files import File
from plait.compat.parsl.dataflow import _calls
from plait.compat.parsl.dataflow.futures import AppFuture
from plait.compat.parsl.errors import ConfigurationError, NoDataFlowKernelError
from plait.runtime import MISSING

__all__ = ["INTERNAL", "DataFlowKernel", "DataFlowKernelLoader", "clear", "dfk", "load", "wait_for_current_tasks"]

INTERNAL = "_parsl_internal"  # the threads join apps and lifted futures run on
AUTO_LOGNAME = -1
_STREAMS = ("stdout", "stderr")


class _App(_calls.Tried, Protocol):
    __name__: str
    func: Callable[..., Any]


class DataFlowKernel:
    """A loaded configuration: its plait Runtime, task ids, and the tasks not yet finished."""

    def __init__(self, config: Config | None = None) -> None:
        self.config = config = config or Config()
        self.run_dir = _new_run_dir(config.run_dir)
        executors = [e.to_plait() for e in config.executors]
        executors.append(pl.ThreadExecutor(config.internal_tasks_max_threads, label=INTERNAL))
        self._runtime = pl.Runtime(executors, cache=_RunMemo(), progress=False)
        self._runtime.start()
        self._tids = itertools.count()
        self._unfinished: set[AppFuture] = set()
        self._lock = threading.Lock()
        self.cleanup_called = False
        atexit.register(self.cleanup)

    @property
    def executors(self) -> dict[str, Any]:
        return {e.label: e for e in self.config.executors}

    def submit(self, app: _App, args: Sequence[Any], kwargs: dict[str, Any]) -> AppFuture:
        """Start one call of ``app``; its errors, even in its arguments, come through the future."""
        if self.cleanup_called:
            raise NoDataFlowKernelError("this configuration has been cleaned up; load a new one")
        tid = next(self._tids)
        record = {
            "id": tid, "func_name": app.__name__, "func": app.func, "args": args, "kwargs": kwargs, "try_id": 0,
            "fail_count": 0, "fail_cost": 0.0, "fail_history": [],
            "retries": self.config.retries, "retry_handler": self.config.retry_handler,
        }  # fmt: skip
        record["kwargs"] = kwargs = self._std_paths(record, kwargs)  # its errors are the caller's, as in Parsl
        future = AppFuture(tid, kwargs, record)
        try:
            future._outputs = _data_futures(future, tid, kwargs.get("outputs"))
            future._streams = {k: DataFuture(future, v, tid) for k in _STREAMS if isinstance(v := kwargs.get(k), File)}
            source = self._runtime.submit(_calls.call_expr(app, record, args, kwargs))
        except Exception as error:
            future.set_exception(error)
            return future
        with self._lock:
            self._unfinished.add(future)
        future.add_done_callback(self._finished)
        future._follow(source)
        return future

    def _finished(self, future: Any) -> None:
        with self._lock:
            self._unfinished.discard(future)

    def _std_paths(self, record: dict[str, Any], kwargs: dict[str, Any]) -> dict[str, Any]:
        """``stdout=parsl.AUTO_LOGNAME``: the path ``Config(std_autopath=...)`` makes, else one under the run dir."""
        auto = [k for k in _STREAMS if isinstance(kwargs.get(k), int) and kwargs[k] == AUTO_LOGNAME]
        if not auto:
            return kwargs
        make = self.config.std_autopath or self._default_std_path
        return {**kwargs, **{k: make(record, k) for k in auto}}

    def _default_std_path(self, record: dict[str, Any], stream: str) -> str:
        tid, label = record["id"], record["kwargs"].get("label")
        name = f"task_{tid:04d}_{record['func_name']}{'' if label is None else f'_{label}'}.{stream}"
        return os.path.join(self.run_dir, "task_logs", f"{tid // 10000:04d}", name)

    def wait_for_current_tasks(self) -> None:
        """Wait until every task submitted so far has finished."""
        while True:
            with self._lock:
                waiting = list(self._unfinished)
            if not waiting:
                return
            concurrent.futures.wait(waiting)

    def cleanup(self) -> None:
        """Stop the runtime and its executors; unfinished tasks are cancelled."""
        if self.cleanup_called:
            return
        self.cleanup_called = True
        atexit.unregister(self.cleanup)
        self._runtime.shutdown()
        if DataFlowKernelLoader._dfk is self:
            DataFlowKernelLoader.clear()

    def __enter__(self) -> DataFlowKernel:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        mode = self.config.exit_mode
        if mode == "wait" and exc_type is None:
            self.wait_for_current_tasks()
        if mode != "skip":
            self.cleanup()


def _new_run_dir(parent: str) -> str:
    """A directory of this run's own under ``parent``, numbered after the last: ``runinfo/003``."""
    os.makedirs(parent, exist_ok=True)
    numbers = [int(name) for name in os.listdir(parent) if name.isdigit()]
    while True:
        path = os.path.abspath(os.path.join(parent, f"{max(numbers, default=-1) + 1:03d}"))
        try:
            os.mkdir(path)
            return path
        except FileExistsError:  # another run took it
            numbers.append(max(numbers, default=-1) + 1)


def _data_futures(future: AppFuture, tid: int, outputs: object) -> list[DataFuture]:
    if outputs is None:
        return []
    if not isinstance(outputs, (list, tuple)) or not all(isinstance(f, File) for f in outputs):
        raise TypeError(f"outputs= must be a list of File, not {outputs!r}")
    return [DataFuture(future, f, tid) for f in outputs]


class _RunMemo:
    """Results of ``cache=True`` apps, kept for the run (Parsl's in-run memoization)."""

    def __init__(self) -> None:
        self._values: dict[bytes, Any] = {}

    def get(self, key: bytes) -> Any:
        return self._values.get(key, MISSING)

    def put(self, key: bytes, name: str, value: Any) -> None:
        self._values[key] = value

    def close(self) -> None:
        self._values.clear()


class DataFlowKernelLoader:
    """Holds the loaded configuration, as Parsl's loader does: ``parsl.load`` is its ``load``."""

    _dfk: DataFlowKernel | None = None

    @classmethod
    def load(cls, config: Config | None = None) -> DataFlowKernel:
        """Load a configuration: from now on, apps run on it."""
        if cls._dfk is not None:
            raise ConfigurationError("Config has already been loaded")
        cls._dfk = DataFlowKernel(config)
        return cls._dfk

    @classmethod
    def dfk(cls) -> DataFlowKernel:
        """The loaded configuration."""
        if cls._dfk is None:
            raise NoDataFlowKernelError("Must first load config")
        return cls._dfk

    @classmethod
    def clear(cls) -> None:
        """Forget the loaded configuration, so that another can be loaded."""
        cls._dfk = None

    @classmethod
    def wait_for_current_tasks(cls) -> None:
        cls.dfk().wait_for_current_tasks()


load = DataFlowKernelLoader.load
dfk = DataFlowKernelLoader.dfk
clear = DataFlowKernelLoader.clear
wait_for_current_tasks = DataFlowKernelLoader.wait_for_current_tasks
