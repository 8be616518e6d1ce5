"""How a ZMQExecutor's pools come and go: heartbeats judge them alive, a lost pool's tasks
are retried once its job has ended, and blocks scale out with the queue and in when idle.

``PoolLifecycle`` is the part of ``ZMQExecutor`` that keeps the pools (a base class, so the
executor's per-task path goes through no extra object); it reads the executor's state
declared below.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from plait.backends._encoding import AnyEncoded
from plait.backends._errors import WorkerLost
from plait.backends._task import TaskResult
from plait.backends.providers import Provider
from plait.backends.zmq._blocks import Blocks
from plait.backends.zmq._pool_table import PoolTable, RegisteredPool
from plait.backends.zmq._protocol import Drain, Heartbeat, encode
from plait.backends.zmq._router import Router
from plait.backends.zmq._scaling import blocks_to_start, pools_to_drain

__all__ = ["PoolLifecycle"]

log = logging.getLogger("plait.zmq")
T = TypeVar("T")


class PoolLifecycle:
    """Heartbeats, loss and scaling of the pools of a ZMQExecutor (its base class)."""

    # The executor's state this part reads and keeps (set in ZMQExecutor.__init__).
    label: str
    provider: Provider
    prefetch: int
    heartbeat_period: float
    heartbeat_threshold: float
    idle_timeout: float
    max_failed_blocks: int
    blocks: Blocks | None
    _drain_after: float | None
    _loop: asyncio.AbstractEventLoop | None
    _router: Router
    _table: PoolTable
    _pools: dict[bytes, RegisteredPool]
    _ticker: asyncio.TimerHandle | None
    _checking_blocks: bool
    _background: set[asyncio.Task[Any]]
    _closing: bool
    _broken: str

    if TYPE_CHECKING:

        def _schedule_flush(self) -> None: ...  # the executor's: send what waits after this turn of the loop

    def _tick(self) -> None:
        assert self._loop is not None
        # Next round first: whatever this one meets, loss detection goes on.
        self._ticker = self._loop.call_later(self.heartbeat_period, self._tick)
        # Judge silence on what has arrived: after a long turn of the loop (admitting a
        # big graph), heartbeats wait unread in the socket.
        self._router.receive_all()
        now, heartbeat = time.monotonic(), encode(Heartbeat())
        for pool in list(self._pools.values()):
            silent = now - pool.last_seen
            if silent > self.heartbeat_threshold:
                limit = self.heartbeat_threshold
                self._lose(pool, f"{pool.where()} sent nothing for {silent:.1f} s (heartbeat threshold {limit} s)")
            elif not self._router.send(pool.identity, heartbeat):
                self._lose(pool, f"{pool.where()} disconnected")
        if not self._checking_blocks and self.blocks is not None:
            self._checking_blocks = True
            check = self._loop.create_task(self._check_blocks(self.blocks))
            self._background.add(check)
            check.add_done_callback(self._background.discard)
        self._router.read_soon()

    async def _check_blocks(self, blocks: Blocks) -> None:
        """A block whose job ended loses its pool now, without waiting for the threshold."""
        try:
            ended = await asyncio.to_thread(blocks.ended)
        finally:
            self._checking_blocks = False
        by_id = {p.pool_id: p for p in self._pools.values()}
        for pool_id, state in ended.items():
            pool = by_id.get(pool_id)
            if pool is not None:
                self._lose(pool, f"{pool.where()} ended ({state.value})")
            elif not self._closing and pool_id not in blocks.registered:
                reason = blocks.failed(pool_id, state)
                log.error("%s", reason)
                if blocks.failed_in_a_row >= self.max_failed_blocks:
                    self._broken = f"{reason} ({blocks.failed_in_a_row} blocks in a row ended so)"
        if self._broken:
            self._table.fail_pending(RuntimeError(self._broken), self.label)
        elif not self._closing:
            await self._scale(blocks)

    async def _scale(self, blocks: Blocks) -> None:
        """Start blocks for waiting tasks; drain pools that have long had nothing to do."""
        per_block = self.provider.workers_per_block + self.prefetch
        starting = blocks.starting
        more = blocks_to_start(
            queued=len(self._table.waiting),
            running=len(blocks.jobs) - starting,
            starting=starting,
            per_block=per_block,
            min_blocks=self.provider.min_blocks,
            max_blocks=self.provider.max_blocks,
        )
        if more:
            log.info("%s: %d tasks wait; starting %d more blocks", self.label, len(self._table.waiting), more)
            self._checking_blocks = True  # no other check may decide to scale while this one submits
            try:
                await asyncio.to_thread(blocks.scale_out, more)
            except Exception as error:  # e.g. the scheduler refuses the job: tell the tasks, do not hang
                if self._pools:  # they still serve the queue (another host may be down for a while)
                    log.warning("%s: could not start a block: %s", self.label, error)
                    return
                self._broken = f"{self.label}: could not start a block: {error}"
                self._table.fail_pending(RuntimeError(self._broken), self.label)
                return
            finally:
                self._checking_blocks = False
        draining = pools_to_drain(
            self._pools.values(),
            now=time.monotonic(),
            drain_after=self._drain_after,
            idle_timeout=self.idle_timeout,
            queued=len(self._table.waiting),
            blocks=len(blocks.jobs),
            min_blocks=self.provider.min_blocks,
        )
        for pool, why in draining:
            log.info("%s: %s; draining it", self.label, why)
            await self.drain([pool.pool_id])

    def _lose(self, pool: RegisteredPool, reason: str) -> None:
        """The pool is gone: its tasks fail with WorkerLost (the runtime retries them) once
        its block's job has ended, so that no retry runs beside what the pool still runs."""
        if self._pools.get(pool.identity) is not pool:
            return
        self._table.remove(pool)
        log.warning("%s: lost %s: %s", self.label, pool.where(), reason)
        tasks = self._table.take_inflight(pool)
        error = WorkerLost(f"{self.label}: lost {reason}")
        if self.blocks is None or pool.pool_id not in self.blocks.jobs:
            self._fail(pool, tasks, error, ended=True)  # not our block, or over already: nothing to wait for
        else:
            stopping = self._in_background(self.blocks.stop, pool.pool_id, self.heartbeat_threshold)
            stopping.add_done_callback(lambda done: self._fail(pool, tasks, error, ended=_ended(done)))

    def _fail_inflight(self, pool: RegisteredPool, error: WorkerLost) -> None:
        """The tasks ``pool`` held fail with ``error`` now (the runtime retries them)."""
        self._fail(pool, self._table.take_inflight(pool), error, ended=True)

    def _fail(self, pool: RegisteredPool, tasks: list[AnyEncoded], error: WorkerLost, ended: bool) -> None:
        where = f"{self.label}/{pool.pool_id}"
        if not ended:
            log.warning("%s: retrying the tasks of %s, whose job is not known to have ended", self.label, where)
        for task in tasks:
            if not task.future.done():
                task.future.set_result(TaskResult(task.spec.task_id, error=error, worker=where))
        self._schedule_flush()

    def _forget(self, pool: RegisteredPool) -> None:
        """A drained pool said goodbye."""
        self._table.remove(pool)
        if self.blocks is not None and pool.pool_id in self.blocks.jobs:
            self._in_background(self.blocks.cancel, [pool.pool_id])

    def _in_background(self, call: Callable[..., T], *args: Any) -> asyncio.Task[T]:
        """``call(*args)`` on a thread, awaited by shutdown."""
        assert self._loop is not None
        job = self._loop.create_task(asyncio.to_thread(call, *args))
        self._background.add(job)
        job.add_done_callback(self._background.discard)
        return job

    async def drain(self, pool_ids: Sequence[str]) -> None:
        """Stop sending to these pools; they finish what they hold, then exit."""
        for pool in self._pools.values():
            if pool.pool_id in pool_ids:
                self._table.drain(pool)
                self._router.send(pool.identity, encode(Drain()))


def _ended(stopping: asyncio.Task[bool]) -> bool:
    """Whether a block's stop says its job has ended (a scheduler that failed to answer: no)."""
    return not stopping.cancelled() and stopping.exception() is None and stopping.result()
