"""DaskExecutor: plait's leaves run on a Dask distributed cluster, short ones several to a Dask task.

plait keeps the graph: scheduling, memo, retries and events stay in its interpreter,
and Dask gets independent tasks (``pure=False``, so Dask never merges two of plait's
attempts). Dask costs the driver ~1.3 ms of CPU per task, far more than a short task
runs, so what the runtime submits in one turn of its loop is cut into packs, each run as
one Dask task (see ``_packing``). All talk with Dask happens on the Dask client's own
event loop thread: what the runtime submits in one turn of its loop crosses there at
once, and results are gathered in batches (one round trip for every pack that finished
meanwhile) and handed back to the runtime's loop, which never waits for Dask.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from plait.backends._engine import Outbox, decode_many, lost, require, run_remote_many
from plait.backends._packing import Pack, Packer, Resources, Waiting
from plait.backends._task import TaskResult, TaskSpec

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["DaskExecutor"]

# Loopback is not a trust boundary: any user of a shared node who finds an open scheduler's
# port can run code in its workers as us. The cluster an executor starts for itself
# therefore speaks mutual TLS with credentials made in memory for it alone
# (``security=True``, handed to the workers by their nannies), and serves none of Dask's
# HTTP pages (its info pages show workers' logs and stacks; its proxy forwards requests).
_NO_HTTP_ROUTES: dict[str, list[str]] = {"distributed.scheduler.http.routes": [], "distributed.worker.http.routes": []}


class DaskExecutor:
    """Run tasks on a Dask distributed cluster.

    ``client_or_address`` is a ``distributed.Client`` (left open at shutdown), a
    scheduler address such as ``"tcp://10.0.0.5:8786"`` (connected to, then closed), or
    None: a ``LocalCluster`` of 2 single-threaded worker processes on loopback, started
    and stopped with the executor. ``capacity`` is how many tasks plait keeps submitted
    to Dask at once; the rest wait in plait. An app's ``resources=`` are Dask worker
    resources (``dask worker --resources "GPU=1"``): its tasks run only on workers that have them.

    Short tasks are packed: what the runtime submits in one turn of its loop is grouped by
    resources and cut into packs, each run as one Dask task whose worker runs its tasks one
    after another, each measured and failing on its own. How many go in a pack comes from
    the run times of the app's earlier tasks here: an app never measured, or whose tasks
    take longer than a pack should (20 ms), goes one task to a Dask task; short ones go up
    to 64 to a pack, and never so many that a worker thread of the cluster (counted at
    start) that has no Dask task of this executor goes without work.

    Dask reschedules the tasks of a worker that dies by itself (its
    ``distributed.scheduler.allowed-failures``); when it gives up (``KilledWorker``) or
    loses the connection, each task of the pack fails with :class:`WorkerLost`, which
    plait retries. Cancelling a task cancels its plait future; once every task of its pack
    is cancelled, so is the pack's Dask future. A Dask task already running on a worker
    thread runs to its end, so apps with a ``timeout`` are refused here.
    """

    can_kill = False
    _runtime_loop: asyncio.AbstractEventLoop  # set by start
    _dask_loop: asyncio.AbstractEventLoop

    def __init__(
        self, client_or_address: Client | str | None = None, *, label: str = "dask", capacity: int = 512
    ) -> None:
        self._distributed: Any = require("distributed", "dask", "DaskExecutor")
        if client_or_address is None:
            require("cryptography", "dask", "DaskExecutor")  # its own cluster's TLS credentials
        if capacity < 1:
            raise ValueError(f"DaskExecutor: capacity must be at least 1, not {capacity}")
        self.label = label
        self._capacity = capacity
        self._given = client_or_address
        # Any: distributed's own annotations are partial, and its methods untyped for mypy --strict.
        self._client: Any = None
        self._cluster: Any = None
        self._owns_client = False
        # On the runtime's loop: tasks submitted and on their way to Dask.
        self._outbox = Outbox(label, self._send)
        # On Dask's loop: packs at Dask by their Dask key, and by the task id of each of their
        # tasks not cancelled; how packs are cut.
        self._by_key: dict[str, Pack] = {}
        self._packs: dict[int, Pack] = {}
        self._packer = Packer()
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
        self._packer.cpus = await self._runtime_loop.run_in_executor(None, self._threads)
        self._dask_loop = self._client.loop.asyncio_loop
        self._completed = self._distributed.as_completed(loop=self._client.loop)

    def _connect(self) -> Any:
        distributed = self._distributed
        if isinstance(self._given, distributed.Client):
            return self._given
        self._owns_client = True
        if self._given is None:
            import dask.config  # distributed's own dependency, loaded with it

            with dask.config.set(_NO_HTTP_ROUTES):
                try:
                    self._cluster = distributed.LocalCluster(
                        n_workers=2,
                        threads_per_worker=1,
                        processes=True,
                        host="127.0.0.1",
                        dashboard_address=None,
                        security=True,
                    )
                except RuntimeError as error:
                    raise RuntimeError(_cluster_failed(error)) from error
            return distributed.Client(self._cluster)
        return distributed.Client(self._given)

    def _threads(self) -> int:
        # Each worker thread runs one Dask task at a time: as many packs keep the cluster busy.
        threads: dict[str, int] = self.client.nthreads()
        return max(1, sum(threads.values()))

    def submit(self, spec: TaskSpec) -> asyncio.Future[TaskResult]:
        return self._outbox.submit(spec)

    def _send(self, batch: list[Waiting]) -> None:
        # What one turn of the runtime's loop submits crosses to Dask's loop at once.
        self._dask_loop.call_soon_threadsafe(self._submit_all, batch)

    # -- on the Dask client's loop ---------------------------------------------------

    def _submit_all(self, batch: list[Waiting]) -> None:
        # The packer skips what was cancelled on the way (a hint: futures read across threads).
        groups = self._packer.cut(batch)
        for resources, packs in groups.items():
            self._map(resources, packs)
        if groups and not self._collecting:
            self._collecting = True
            self._background(self._collect())

    def _map(self, resources: Resources, packs: list[list[Waiting]]) -> None:
        # One map call, so one graph update for the scheduler, for the whole group. The key
        # carries an app's name for Dask's dashboard, and is unique: plait decides what is the same work.
        # An app's resources= are Dask worker resources: one map per distinct set of them.
        keys = [f"{items[0][0].name}-{uuid.uuid4().hex}" for items in packs]
        tasks = [[task for _, task, _ in items] for items in packs]
        dask_futures = self.client.map(run_remote_many, tasks, key=keys, pure=False, resources=dict(resources) or None)
        for items, key, dask_future in zip(packs, keys, dask_futures, strict=True):
            pack = self._by_key[key] = Pack.of(dask_future, items)
            for spec in pack.specs:
                self._packs[spec.task_id] = pack
        self._completed.update(dask_futures)

    async def _collect(self) -> None:
        # Dask's as_completed watches the futures on this loop; whatever ended meanwhile is
        # gathered in one round trip, not one per task.
        try:
            async for first in self._completed:
                await self._gather([first, *self._completed.next_batch(block=False)])
        finally:
            self._collecting = False

    async def _gather(self, ended: list[Any]) -> None:
        # A pack stays in _by_key until it ends, even when all of it was cancelled: the packer counts it till then.
        done: list[Pack] = []
        failed: list[Pack] = []
        for dask_future in ended:
            (done if dask_future.status == "finished" else failed).append(self._by_key.pop(dask_future.key))
        outcomes = [(pack, await self._failure(pack)) for pack in failed]
        try:
            values = await self.client.gather([pack.handle for pack in done], asynchronous=True)
        except Exception as error:
            outcomes += [(pack, lost(pack.specs, error, "Dask", self.label)) for pack in done]
        else:
            ran = zip(done, values, strict=True)
            outcomes += [(pack, decode_many(pack.specs, value, self.label)) for pack, value in ran]
        settled: list[tuple[asyncio.Future[TaskResult], TaskResult]] = []
        for pack, results in outcomes:
            self._packer.ended(pack, results)
            for spec in pack.specs:
                self._packs.pop(spec.task_id, None)
            settled += zip(pack.futures, results, strict=True)
        self._runtime_loop.call_soon_threadsafe(_settle, settled)

    async def _failure(self, pack: Pack) -> list[TaskResult]:
        # run_remote_many never raises, so an erred or cancelled Dask future is Dask's failure, not the apps'.
        dask_future = pack.handle
        error = await dask_future.exception(asynchronous=True) if dask_future.status == "error" else None
        error = error or RuntimeError(f"Dask says the task is {dask_future.status}")
        return lost(pack.specs, error, "Dask", self.label)

    def _background(self, work: Coroutine[Any, Any, Any]) -> None:
        task = self._dask_loop.create_task(work)
        self._pending.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(self._pending.discard)

    def _cancel_on_dask(self, task_id: int) -> None:
        pack = self._packs.pop(task_id, None)
        # Its pack-mates keep running: only a pack left with nothing to do is cancelled.
        if pack is not None and pack.unwanted:
            self._background(self.client.cancel([pack.handle], asynchronous=True, reason="cancelled by plait"))

    # -------------------------------------------------------------------------------

    def cancel(self, task_id: int) -> None:
        future = self._outbox.futures.get(task_id)
        if future is not None:
            future.cancel()
            self._dask_loop.call_soon_threadsafe(self._cancel_on_dask, task_id)

    async def shutdown(self) -> None:
        for task_id in list(self._outbox.futures):
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


def _cluster_failed(error: RuntimeError) -> str:
    """What to tell a user whose own cluster did not start (``error`` is Dask's).

    Its workers are spawned: each new Python imports the user's script again, as
    ``__mp_main__``, and a script that starts its run at its top level starts another
    cluster there, which multiprocessing refuses. Dask's own report is hundreds of lines of
    its frames, with the reason in the children's output.
    """
    script = getattr(sys.modules.get("__main__"), "__file__", None)
    why = f"DaskExecutor(): the workers of its own LocalCluster failed to start ({error})."
    if script is None:
        return why
    return (
        f"{why} Its workers are new Python processes that import your script {script} again: if the script"
        f' starts its run at its top level, put that under `if __name__ == "__main__":`'
    )
