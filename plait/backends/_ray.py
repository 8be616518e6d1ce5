"""RayExecutor: plait's leaves run as Ray tasks, short ones several to a Ray task.

As with Dask, plait keeps the graph (scheduling, memo, retries, events) and Ray runs
independent tasks. Ray costs the driver ~0.5 ms of CPU per task, ten times what plait's
interpreter takes and more than a short task runs, so what the runtime submits in one
turn of its loop is cut into packs, each run as one Ray task (see ``_packing``). Ray's
own retries are off (``max_retries=0``): a pack whose worker dies fails each of its tasks
with :class:`WorkerLost` and plait retries them, so a retry shows in plait's events and
counts against its budget.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import functools
from collections.abc import Mapping
from typing import Any

from plait.backends._engine import Outbox, decode_many, lost, require, run_remote_many
from plait.backends._packing import Pack, Packer, Resources, Waiting
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

    Short tasks are packed: what the runtime submits in one turn of its loop is grouped by
    resources and cut into packs, each run as one Ray task whose worker runs its tasks one
    after another, each measured and failing on its own. How many go in a pack comes from
    the run times of the app's earlier tasks here: an app never measured, or whose tasks
    take longer than a pack should (20 ms), goes one task to a Ray task; short ones go up
    to 64 to a pack, and never so many that a CPU of the cluster (counted at start) that
    has no Ray task of this executor goes without work.

    Cancelling a task cancels its plait future; once every task of its pack is cancelled,
    the pack is cancelled with ``force=True``: a running one has its worker process killed.
    Timeouts are not supported (the clock would start when Ray queues the task, not when
    it runs), so apps with a ``timeout`` are refused here.
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
        self._remotes: dict[Resources, Any] = {}
        # On the runtime's loop: tasks submitted and on their way to Ray; the pack of each
        # task sent; how packs are cut.
        self._outbox = Outbox(label, self._send)
        self._packs: dict[int, Pack] = {}
        self._packer = Packer()
        self._ended: collections.deque[tuple[Pack, concurrent.futures.Future[Any]]] = collections.deque()
        self._wake_sent = False

    @property
    def capacity(self) -> int:
        return self._capacity

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        # Starting or joining a cluster blocks for seconds: not on the runtime's loop.
        self._packer.cpus = await self._loop.run_in_executor(None, self._connect)
        self._function = self._ray.remote(run_remote_many)
        self._remotes.clear()

    def _connect(self) -> int:
        if not self._ray.is_initialized():
            self._ray.init(address=self.address, include_dashboard=False)
            self._owns_ray = True
        return max(1, int(self._ray.cluster_resources().get("CPU", 1)))

    def submit(self, spec: TaskSpec) -> asyncio.Future[TaskResult]:
        assert self._function is not None, "RayExecutor.submit before start"
        return self._outbox.submit(spec)

    def _send(self, waiting: list[Waiting]) -> None:
        for resources, packs in self._packer.cut(waiting).items():
            for items in packs:
                self._launch(resources, items)

    def _launch(self, resources: Resources, items: list[Waiting]) -> None:
        ref = self._remote_for(resources).remote([task for _, task, _ in items])
        pack = Pack.of(ref, items)
        for spec in pack.specs:
            self._packs[spec.task_id] = pack
        ref.future().add_done_callback(functools.partial(self._ended_elsewhere, pack))

    def _remote_for(self, resources: Resources) -> Any:
        remote = self._remotes.get(resources)
        if remote is None:
            options = ray_options(dict(resources))
            remote = self._remotes[resources] = self._function.options(max_retries=0, **options)
        return remote

    def _ended_elsewhere(self, pack: Pack, done: concurrent.futures.Future[Any]) -> None:
        # On a thread of Ray's: wake the runtime's loop only when it is not collecting anyway.
        self._ended.append((pack, done))
        if not self._wake_sent:
            self._wake_sent = True
            self._loop.call_soon_threadsafe(self._settle)

    def _settle(self) -> None:
        if not self._ended:
            self._wake_sent = False  # quiet: the next result wakes the loop
            return
        while self._ended:
            pack, done = self._ended.popleft()
            results = self._results(pack, done)
            self._packer.ended(pack, results)
            for spec, future, result in zip(pack.specs, pack.futures, results, strict=True):
                self._packs.pop(spec.task_id, None)
                if not future.done():  # else cancelled meanwhile
                    future.set_result(result)
        # Busy: look again shortly instead of being woken for each result.
        self._loop.call_later(_SETTLE_AGAIN, self._settle)

    def _results(self, pack: Pack, done: concurrent.futures.Future[Any]) -> list[TaskResult]:
        try:
            ran = done.result()
        except Exception as error:  # run_remote_many never raises: this is Ray's failure, not the apps'
            return lost(pack.specs, error, "Ray", self.label)
        return decode_many(pack.specs, ran, self.label)

    def cancel(self, task_id: int) -> None:
        future = self._outbox.futures.get(task_id)
        if future is None:
            return
        future.cancel()
        pack = self._packs.pop(task_id, None)
        # Its pack-mates keep running: only a pack left with nothing to do is stopped.
        if pack is not None and pack.unwanted:
            self._ray.cancel(pack.handle, force=True)

    async def shutdown(self) -> None:
        for task_id in list(self._outbox.futures):
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
