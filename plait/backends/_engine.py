"""What the Dask and Ray executors share: a task as bytes for another engine's worker, and back.

The engine only moves task records (``_records.Task``: ids, names and bytes) and runs
:func:`run_remote_many` on a pack of them (see ``_packing``); plait's own wire format does
the rest, as for its own workers: the function is pickled once per run and cached on each
worker process, an app's exception
comes back as a value with its traceback, and an unpicklable result is an error that
names the app. So an error the engine itself raises is never the app's: it is the
engine's (a lost worker, a cancelled future), and each task of the pack is :func:`lost`.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import socket
from collections.abc import Callable, Sequence
from types import ModuleType

import msgspec

from plait.backends._encoding import TaskEncoder
from plait.backends._errors import WorkerLost
from plait.backends._packing import Waiting
from plait.backends._records import Result, Task
from plait.backends._task import TaskResult, TaskSpec
from plait.backends._wire import decode_result
from plait.backends._worker import FunctionCache, run_task

__all__ = ["Outbox", "decode_many", "lost", "require", "run_remote_many"]

# On an engine's worker process: every function it has unpickled, by fn_key.
_FUNCTIONS: FunctionCache = {}


def require(module: str, extra: str, executor: str) -> ModuleType:
    """Import an optional engine, or say which extra brings it.

    >>> require("os", "none", "X").sep == os.sep
    True
    >>> require("no_such_engine_here", "dask", "DaskExecutor")
    Traceback (most recent call last):
    ImportError: DaskExecutor needs the no_such_engine_here package: pip install plait[dask]
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(f"{executor} needs the {module} package: pip install plait[{extra}]") from error


def run_remote_many(tasks: list[Task]) -> tuple[list[Result], str]:
    """On the engine's worker: run a pack of tasks one after another; never raises.

    Each task is measured and fails on its own, as if it ran alone. Also says which process ran them.
    """
    return [_run(task, follows=i > 0) for i, task in enumerate(tasks)], f"{socket.gethostname()}:{os.getpid()}"


def _run(task: Task, *, follows: bool) -> Result:
    # The function comes with every task: a process that has it already skips unpickling it.
    if task.fn_key in _FUNCTIONS:
        task = msgspec.structs.replace(task, fn=None)
    return run_task(_FUNCTIONS, task, follows=follows)


def decode_many(specs: Sequence[TaskSpec], ran: tuple[list[Result], str], label: str) -> list[TaskResult]:
    """The TaskResult of each task of a pack, from what :func:`run_remote_many` sent back.

    ``label`` is the executor's: the worker is named as that, then the process that ran the pack.
    """
    results, where = ran
    worker = f"{label}/{where}"
    return [decode_result(spec, result, result.value, worker) for spec, result in zip(specs, results, strict=True)]


def lost(specs: Sequence[TaskSpec], error: BaseException, engine: str, label: str) -> list[TaskResult]:
    """A :class:`WorkerLost` for each task of a pack that ``engine`` failed to run, naming its error.

    :func:`run_remote_many` never raises, so any error the engine reports is the engine's,
    not the apps': plait retries each task.
    """
    return [
        TaskResult(
            spec.task_id,
            error=WorkerLost(f"{spec.name}: {engine} lost the task ({type(error).__name__}: {error})"),
            worker=label,
        )
        for spec in specs
    ]


class Outbox:
    """Where an engine executor's ``submit`` puts tasks, on the runtime's loop.

    Each task is encoded as it comes (an argument that cannot be pickled fails that task
    at once, naming it), and what one turn of the loop submits goes to ``hand_on`` together
    when the turn ends, so it can be packed. ``futures`` holds each task submitted and not
    yet settled or cancelled, by task id.
    """

    def __init__(self, label: str, hand_on: Callable[[list[Waiting]], None]) -> None:
        self.label = label
        self.futures: dict[int, asyncio.Future[TaskResult]] = {}
        self._hand_on = hand_on
        self._waiting: list[Waiting] = []
        self._encoder = TaskEncoder(label)

    def submit(self, spec: TaskSpec) -> asyncio.Future[TaskResult]:
        encoded = self._encoder.encode(spec)
        future = encoded.future
        if future.done():  # it could not be pickled
            return future
        self.futures[spec.task_id] = future
        future.add_done_callback(lambda _: self.futures.pop(spec.task_id, None))
        if not self._waiting:
            asyncio.get_running_loop().call_soon(self._flush)
        # The function goes with every task, as the engine picks the worker: a worker that
        # has it already skips unpickling it.
        self._waiting.append((spec, encoded.for_worker(with_function=True), future))
        return future

    def _flush(self) -> None:
        waiting, self._waiting = self._waiting, []
        self._hand_on(waiting)
