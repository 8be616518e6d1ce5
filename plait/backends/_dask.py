"""DaskExecutor: plait's leaves run on a Dask distributed cluster.

plait keeps the graph: scheduling, memo, retries and events stay in its interpreter,
and Dask gets one independent task per leaf (``pure=False``, so Dask never merges two
of plait's attempts). All talk with Dask happens on the Dask client's own event loop
thread: what the runtime submits in one turn of its loop crosses there at once, and
results are gathered in batches (one round trip for every task that finished
meanwhile) and handed back to the runtime's loop, which never waits for Dask.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from plait.backends._engine import decode, encode, require, run_remote
from plait.backends._errors import WorkerLost
from plait.backends._task import TaskResult, TaskSpec
from plait.backends._worker import WireTask

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["DaskExecutor"]


class DaskExecutor:
    """Run tasks on a Dask distributed cluster.

    ``client_or_address`` is a ``distributed.Client`` (left open at shutdown), a
    scheduler address such as ``"tcp://10.0.0.5:8786"`` (connected to, then closed), or
    None: a ``LocalCluster`` of 2 single-threaded worker processes on loopback, started
    and stopped with the executor. ``capacity`` is how many tasks plait keeps submitted
    to Dask at once; the rest wait in plait. An app's ``resources=`` are Dask worker
    resources (``dask worker --resources "GPU=1"``): its tasks run only on workers that have them.

    Dask reschedules the tasks of a worker that dies by itself (its
    ``distributed.scheduler.allowed-failures``); when it gives up (``KilledWorker``) or
    loses the connection, the task fails with :class:`WorkerLost`, which plait retries.
    Cancelling a task cancels its Dask future, but a task already running on a Dask
    worker thread runs to its end, so apps with a ``timeout`` are refused here.
    """

    can_kill = False
    _runtime_loop: asyncio.AbstractEventLoop  # set by start
    _dask_loop: asyncio.AbstractEventLoop

    def __init__(
        self, client_or_address: Client | str | None = None, *, label: str = "dask", capacity: int = 512
    ) -> None:
        self._distributed: Any = require("distributed", "dask", "DaskExecutor")
        if capacity < 1:
            raise ValueError(f"DaskExecutor: capacity must be at least 1, not {capacity}")
        self.label = label
        self._capacity = capacity
        self._given = client_or_address
        # Any: distributed's own annotations are partial, and its methods untyped for mypy --strict.
        self._client: Any = None
        self._cluster: Any = None
        self._owns_client = False
        self._functions: dict[bytes, bytes] = {}
        # On the runtime's loop: what is submitted and not settled; what waits to cross to Dask.
        self._futures: dict[int, asyncio.Future[TaskResult]] = {}
        self._outbox: list[tuple[TaskSpec, WireTask, asyncio.Future[TaskResult]]] = []
        # On Dask's loop: tasks at Dask by their Dask key, and the keys by task id.
        self._by_key: dict[str, tuple[TaskSpec, Any, asyncio.Future[TaskResult]]] = {}
        self._keys: dict[int, str] = {}
        self._completed: Any = None
        self._collecting = False
        self._pending: set[asyncio.Task[Any]] = set()

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def client(self) -> Any:
        """The Dask client tasks go to (after ``start``)."""
        assert self._client is not None, "DaskExecutor.client before start"
        return self._client

    async def start(self) -> None:
        # Starting a cluster or connecting blocks for a second or more: not on the runtime's loop.
        self._runtime_loop = asyncio.get_running_loop()
        self._client = await self._runtime_loop.run_in_executor(None, self._connect)
        self._dask_loop = self._client.loop.asyncio_loop
        self._completed = self._distributed.as_completed(loop=self._client.loop)

    def _connect(self) -> Any:
        distributed = self._distributed
        if isinstance(self._given, distributed.Client):
            return self._given
        self._owns_client = True
        if self._given is None:
            self._cluster = distributed.LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
            )
            return distributed.Client(self._cluster)
        return distributed.Client(self._given)

    def submit(self, spec: TaskSpec) -> asyncio.Future[TaskResult]:
        future: asyncio.Future[TaskResult] = self._runtime_loop.create_future()
        try:
            task = encode(spec, self._functions)
        except TypeError as error:
            future.set_result(TaskResult(spec.task_id, error=error, worker=self.label))
            return future
        self._futures[spec.task_id] = future
        future.add_done_callback(lambda _: self._futures.pop(spec.task_id, None))
        # What one turn of the runtime's loop submits crosses to Dask's loop at once.
        if not self._outbox:
            self._runtime_loop.call_soon(self._send)
        self._outbox.append((spec, task, future))
        return future

    def _send(self) -> None:
        batch, self._outbox = self._outbox, []
        self._dask_loop.call_soon_threadsafe(self._submit_all, batch)

    # -- on the Dask client's loop ---------------------------------------------------

    def _submit_all(self, batch: list[tuple[TaskSpec, WireTask, asyncio.Future[TaskResult]]]) -> None:
        batch = [item for item in batch if not item[2].done()]  # cancelled on the way (a hint: read across threads)
        if not batch:
            return
        # One map call, so one graph update for the scheduler, for the whole batch. The key
        # carries the app's name for Dask's dashboard, and is unique: plait decides what is the same work.
        # An app's resources= are Dask worker resources: one map per distinct set of them.
        groups: dict[tuple[tuple[str, Any], ...], list[tuple[TaskSpec, WireTask, asyncio.Future[TaskResult]]]] = {}
        for item in batch:
            groups.setdefault(tuple(sorted(item[0].resources.items())), []).append(item)
        for resources, group in groups.items():
            keys = [f"{spec.name}-{uuid.uuid4().hex}" for spec, _, _ in group]
            tasks = [task for _, task, _ in group]
            dask_futures = self.client.map(run_remote, tasks, key=keys, pure=False, resources=dict(resources) or None)
            for (spec, _, future), key, dask_future in zip(group, keys, dask_futures, strict=True):
                self._by_key[key] = (spec, dask_future, future)
                self._keys[spec.task_id] = key
            self._completed.update(dask_futures)
        if not self._collecting:
            self._collecting = True
            self._background(self._collect())

    async def _collect(self) -> None:
        # Dask's as_completed watches the futures on this loop; whatever ended meanwhile is
        # gathered in one round trip, not one per task.
        try:
            async for first in self._completed:
                await self._gather([first, *self._completed.next_batch(block=False)])
        finally:
            self._collecting = False

    async def _gather(self, ended: list[Any]) -> None:
        tasks = [t for t in map(self._by_key.pop, [f.key for f in ended], itertools.repeat(None)) if t is not None]
        for spec, _, _ in tasks:
            del self._keys[spec.task_id]
        done = [t for t in tasks if t[1].status == "finished"]
        results = [await self._failure(spec, f) for spec, f, _ in tasks if f.status != "finished"]
        try:
            values = await self.client.gather([f for _, f, _ in done], asynchronous=True)
        except Exception as error:
            results += [self._lost(spec, error) for spec, _, _ in done]
        else:
            for (spec, _, _), (wire, where) in zip(done, values, strict=True):
                results.append(decode(spec, wire, f"{self.label}/{where}"))
        futures = {spec.task_id: future for spec, _, future in tasks}
        self._runtime_loop.call_soon_threadsafe(_settle, [(futures[r.task_id], r) for r in results])

    async def _failure(self, spec: TaskSpec, dask_future: Any) -> TaskResult:
        # run_remote never raises, so an erred or cancelled Dask future is Dask's failure, not the app's.
        error = await dask_future.exception(asynchronous=True) if dask_future.status == "error" else None
        return self._lost(spec, error or RuntimeError(f"Dask says the task is {dask_future.status}"))

    def _lost(self, spec: TaskSpec, error: BaseException) -> TaskResult:
        lost = WorkerLost(f"{spec.name}: Dask lost the task ({type(error).__name__}: {error})")
        return TaskResult(spec.task_id, error=lost, worker=self.label)

    def _background(self, work: Coroutine[Any, Any, Any]) -> None:
        task = self._dask_loop.create_task(work)
        self._pending.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(self._pending.discard)

    def _cancel_on_dask(self, task_id: int) -> None:
        key = self._keys.pop(task_id, None)
        if key is not None:
            _, dask_future, _ = self._by_key.pop(key)
            self._background(self.client.cancel([dask_future], asynchronous=True, reason="cancelled by plait"))

    # -------------------------------------------------------------------------------

    def cancel(self, task_id: int) -> None:
        future = self._futures.get(task_id)
        if future is not None:
            future.cancel()
            self._dask_loop.call_soon_threadsafe(self._cancel_on_dask, task_id)

    async def shutdown(self) -> None:
        for task_id in list(self._futures):
            self.cancel(task_id)
        if self._owns_client and self._client is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._close)

    def _close(self) -> None:
        assert self._client is not None
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


def _settle(results: list[tuple[asyncio.Future[TaskResult], TaskResult]]) -> None:
    for future, result in results:
        if not future.done():  # not cancelled meanwhile
            future.set_result(result)
