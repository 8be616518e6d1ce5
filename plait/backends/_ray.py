"""RayExecutor: plait's leaves run as Ray tasks.

As with Dask, plait keeps the graph (scheduling, memo, retries, events) and Ray runs
one independent task per leaf. Ray's own retries are off (``max_retries=0``): a task
whose worker dies fails with :class:`WorkerLost` and plait retries it, so the retry
shows in plait's events and counts against its budget.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import functools
from collections.abc import Mapping
from typing import Any

from plait.backends._engine import decode, encode, require, run_remote
from plait.backends._errors import WorkerLost
from plait.backends._task import TaskResult, TaskSpec

__all__ = ["RayExecutor", "ray_options"]

# An app's resources that Ray names as options of their own; any other is a custom resource.
_RAY_NAMED = frozenset({"num_cpus", "num_gpus", "memory"})

# While results keep coming, the runtime's loop collects them this often (s) rather than
# being woken by each: a wake-up from Ray's thread costs as much CPU as submitting a task.
_SETTLE_AGAIN = 0.001


class RayExecutor:
    """Run tasks on a Ray cluster.

    ``address`` is what ``ray.init`` takes (``"auto"``, ``"ray://head:10001"``...). When
    Ray is already initialized in this process, that connection is used and left open;
    otherwise ``ray.init(address)`` is called at start (with no address and no cluster
    around, Ray starts a local one) and ``ray.shutdown()`` at shutdown. ``capacity`` is
    how many tasks plait keeps submitted to Ray at once. An app's ``resources=`` become
    Ray task options (see :func:`ray_options`): ``@pl.app(resources={"num_gpus": 1})``.

    Cancelling a task cancels it with ``force=True``: a running one has its worker
    process killed. Timeouts are not supported (the clock would start when Ray queues
    the task, not when it runs), so apps with a ``timeout`` are refused here.
    """

    can_kill = False
    _loop: asyncio.AbstractEventLoop  # the runtime's, set by start

    def __init__(self, address: str | None = None, *, label: str = "ray", capacity: int = 512) -> None:
        self._ray: Any = require("ray", "ray", "RayExecutor")
        if capacity < 1:
            raise ValueError(f"RayExecutor: capacity must be at least 1, not {capacity}")
        self.label = label
        self.address = address
        self._capacity = capacity
        self._owns_ray = False
        self._function: Any = None
        self._remote: Any = None
        self._remotes: dict[tuple[tuple[str, Any], ...], Any] = {}  # by an app's resources
        self._functions: dict[bytes, bytes] = {}
        self._running: dict[int, tuple[Any, asyncio.Future[TaskResult]]] = {}
        self._ended: collections.deque[tuple[TaskSpec, concurrent.futures.Future[Any]]] = collections.deque()
        self._wake_sent = False

    @property
    def capacity(self) -> int:
        return self._capacity

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if not self._ray.is_initialized():
            # Starting or joining a cluster blocks for seconds: not on the runtime's loop.
            await asyncio.get_running_loop().run_in_executor(None, self._init)
            self._owns_ray = True
        self._function = self._ray.remote(run_remote)
        self._remote = self._function.options(max_retries=0)
        self._remotes.clear()

    def _init(self) -> None:
        self._ray.init(address=self.address, include_dashboard=False)

    def submit(self, spec: TaskSpec) -> asyncio.Future[TaskResult]:
        assert self._remote is not None, "RayExecutor.submit before start"
        future: asyncio.Future[TaskResult] = self._loop.create_future()
        try:
            task = encode(spec, self._functions)
        except TypeError as error:
            future.set_result(TaskResult(spec.task_id, error=error, worker=self.label))
            return future
        ref = self._remote_for(spec.resources).remote(task)
        self._running[spec.task_id] = (ref, future)
        ref.future().add_done_callback(functools.partial(self._ended_elsewhere, spec))
        return future

    def _remote_for(self, resources: Mapping[str, Any]) -> Any:
        if not resources:
            return self._remote
        wanted = tuple(sorted(resources.items()))
        remote = self._remotes.get(wanted)
        if remote is None:
            remote = self._remotes[wanted] = self._function.options(max_retries=0, **ray_options(resources))
        return remote

    def _ended_elsewhere(self, spec: TaskSpec, done: concurrent.futures.Future[Any]) -> None:
        # On a thread of Ray's: wake the runtime's loop only when it is not collecting anyway.
        self._ended.append((spec, done))
        if not self._wake_sent:
            self._wake_sent = True
            self._loop.call_soon_threadsafe(self._settle)

    def _settle(self) -> None:
        if not self._ended:
            self._wake_sent = False  # quiet: the next result wakes the loop
            return
        while self._ended:
            spec, done = self._ended.popleft()
            running = self._running.pop(spec.task_id, None)
            if running is not None and not running[1].done():  # else cancelled meanwhile
                running[1].set_result(self._result(spec, done))
        # Busy: look again shortly instead of being woken for each result.
        self._loop.call_later(_SETTLE_AGAIN, self._settle)

    def _result(self, spec: TaskSpec, done: concurrent.futures.Future[Any]) -> TaskResult:
        try:
            wire, where = done.result()
        except Exception as error:  # run_remote never raises: this is Ray's failure, not the app's
            lost = WorkerLost(f"{spec.name}: Ray lost the task ({type(error).__name__}: {error})")
            return TaskResult(spec.task_id, error=lost, worker=self.label)
        return decode(spec, wire, f"{self.label}/{where}")

    def cancel(self, task_id: int) -> None:
        running = self._running.pop(task_id, None)
        if running is not None:
            ref, future = running
            future.cancel()
            self._ray.cancel(ref, force=True)

    async def shutdown(self) -> None:
        for task_id in list(self._running):
            self.cancel(task_id)
        if self._owns_ray:
            await asyncio.get_running_loop().run_in_executor(None, self._ray.shutdown)


def ray_options(resources: Mapping[str, Any]) -> dict[str, Any]:
    """Ray's task options for an app's ``resources=``.

    ``num_cpus``, ``num_gpus`` and ``memory`` (bytes) are Ray's own options; any other key
    is a custom resource of the cluster's nodes (``ray start --resources``).

    >>> ray_options({"num_gpus": 1, "licence": 1})
    {'num_gpus': 1, 'resources': {'licence': 1}}
    """
    options = {k: v for k, v in resources.items() if k in _RAY_NAMED}
    custom = {k: v for k, v in resources.items() if k not in _RAY_NAMED}
    return options | ({"resources": custom} if custom else {})
