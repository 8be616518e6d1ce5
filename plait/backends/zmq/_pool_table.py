"""Which pools a ZMQExecutor has, what each holds and which has room: dispatch state, no I/O.

The executor drives it: it queues and cancels tasks, asks for the batches to send, hands
over the results that came back, and removes pools it lost. Nothing here reads a socket,
a clock or a provider, so every decision is testable with plain values.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Iterable

import attrs

from plait.backends._encoding import AnyEncoded
from plait.backends._task import TaskResult
from plait.backends._wire import decode_result
from plait.backends.zmq._protocol import ResultRow, TaskRow

__all__ = ["Batch", "PoolTable", "RegisteredPool"]

# Beyond one task per worker, a pool is sent about this much work per worker (at most
# ``prefetch`` tasks): enough that short tasks flow in batches while results travel back.
_QUEUED_SECONDS = 0.005

Batch = tuple[list[TaskRow], list[bytes]]  # a Tasks message's rows, and its payloads in order


@attrs.define(eq=False)
class RegisteredPool:
    """A registered pool, as the executor sees it."""

    identity: bytes
    pool_id: str
    host: str
    limit: int  # its workers plus prefetch: how many tasks it may hold
    last_seen: float
    inflight: dict[int, AnyEncoded] = attrs.field(factory=dict)
    functions: set[bytes] = attrs.field(factory=set)
    draining: bool = False
    idle_since: float | None = None  # when it last ran out of tasks, for scaling in
    joined: float = attrs.field(factory=time.monotonic)  # about when its block started: walltime counts from here
    workers: int = 1
    task_seconds: float = 1.0  # a moving average of how long its tasks run; long until measured

    def where(self) -> str:
        return f"pool {self.pool_id} on {self.host}"


class PoolTable:
    """The registered pools and the tasks waiting for them, with indexes kept up to date as
    tasks and pools come and go, so that nothing walks every pool per task or per turn of
    the loop (with a thousand pools, that was the driver's cost)."""

    __slots__ = ("idle", "limits", "pending", "placed", "pools", "prefetch", "room", "waiting")

    def __init__(self, prefetch: int) -> None:
        self.prefetch = prefetch
        self.pools: dict[bytes, RegisteredPool] = {}  # by identity
        self.pending: deque[AnyEncoded] = deque()  # in submission order; cancelled ones are skipped
        self.room: dict[bytes, RegisteredPool] = {}  # pools that may be sent more, as they got room
        self.idle: dict[bytes, RegisteredPool] = {}  # those of them with a worker that holds no task
        self.limits = 0  # the sum of the registered pools' limits
        self.waiting: dict[int, AnyEncoded] = {}  # the pending tasks, by id
        self.placed: dict[int, RegisteredPool] = {}  # the pool each task in flight was sent to

    # -- pools -------------------------------------------------------------------------

    def add(self, identity: bytes, pool_id: str, host: str, workers: int, now: float) -> RegisteredPool:
        """Register a pool of ``workers`` workers (its identity must not be registered)."""
        pool = RegisteredPool(identity, pool_id, host, 0, now, workers=workers)
        self.pools[identity] = pool
        self._set_limit(pool, self.limit(pool))
        return pool

    def remove(self, pool: RegisteredPool) -> None:
        """``pool`` is registered no more: it neither counts in the capacity nor gets tasks."""
        del self.pools[pool.identity]
        self.limits -= pool.limit
        self.room.pop(pool.identity, None)
        self.idle.pop(pool.identity, None)

    def drain(self, pool: RegisteredPool) -> None:
        """Send ``pool`` nothing more."""
        pool.draining = True
        self._update_room(pool)

    def limit(self, pool: RegisteredPool) -> int:
        """How many tasks ``pool`` may hold: one per worker and ~_QUEUED_SECONDS of work more."""
        per_worker = math.ceil(_QUEUED_SECONDS / max(pool.task_seconds, 1e-6))
        return pool.workers + min(self.prefetch, pool.workers * per_worker)

    def take_inflight(self, pool: RegisteredPool) -> list[AnyEncoded]:
        """The tasks ``pool`` holds, which it holds no more."""
        tasks = list(pool.inflight.values())
        for task_id in pool.inflight:
            del self.placed[task_id]
        pool.inflight.clear()
        self._update_room(pool)
        return tasks

    def unsend(self, pool: RegisteredPool, rows: list[TaskRow]) -> None:
        """The tasks of ``rows``, batched for ``pool``, never reached it: they wait again,
        first in line, as if never batched (an attempt they did not make is not counted)."""
        for row in reversed(rows):
            task = pool.inflight.pop(row.task_id)
            del self.placed[row.task_id]
            self.pending.appendleft(task)
            self.waiting[row.task_id] = task
        self._update_room(pool)

    # -- tasks -------------------------------------------------------------------------

    def queue(self, task: AnyEncoded) -> None:
        self.pending.append(task)
        self.waiting[task.spec.task_id] = task

    def cancel(self, task_id: int) -> RegisteredPool | None:
        """Cancel the task's future; the pool it was sent to, if it was (to tell it)."""
        pool = self.placed.pop(task_id, None)
        if pool is not None:
            pool.inflight.pop(task_id).future.cancel()
            self._update_room(pool)
            return pool
        task = self.waiting.pop(task_id, None)
        if task is not None:
            task.future.cancel()  # skipped when its turn comes
        return None

    def fail_pending(self, error: BaseException, worker: str) -> None:
        """Every task not sent yet fails with ``error``."""
        self.waiting.clear()
        while self.pending:
            task = self.pending.popleft()
            task.end(TaskResult(task.spec.task_id, error=error, worker=worker))

    def cancel_all(self) -> None:
        """Cancel every task, sent or not (the executor shuts down)."""
        for task in self.pending:
            task.future.cancel()
        self.pending.clear()
        self.waiting.clear()
        for pool in self.pools.values():
            for task in pool.inflight.values():
                task.future.cancel()

    def batches(self) -> dict[RegisteredPool, Batch]:
        """Move pending tasks to the pools with room: one batch per pool, to send."""
        batches: dict[RegisteredPool, Batch] = {}
        if not self.pending:
            return batches
        # Idle workers first, wherever they are; then each pool's prefetch room. So two
        # long tasks go to two idle pools, not one running and one waiting in the other.
        # Each pass visits only pools it can fill: a pool it fills but for the last.
        for pools, fill_prefetch in ((self.idle, False), (self.room, True)):
            for pool in pools.values():
                if not self.pending:
                    break
                holds = pool.limit if fill_prefetch else pool.workers
                self._fill(pool, holds, *batches.setdefault(pool, ([], [])))
        for pool in batches:
            self._update_room(pool)
        return batches

    def _fill(self, pool: RegisteredPool, holds: int, rows: list[TaskRow], payloads: list[bytes]) -> None:
        """Move pending tasks to ``pool`` until it holds ``holds``: a row and payloads each."""
        while self.pending and len(pool.inflight) < holds:
            task = self.pending.popleft()
            spec = task.spec
            if self.waiting.pop(spec.task_id, None) is None or task.done():
                continue  # cancelled, or failed already
            pool.inflight[spec.task_id] = task
            self.placed[spec.task_id] = pool
            fn_size = 0
            if spec.fn_key not in pool.functions:  # its first task there carries the function
                pool.functions.add(spec.fn_key)
                fn_size = len(task.fn)
                payloads.append(task.fn)
            rows.append(TaskRow(spec.task_id, spec.name, spec.fn_key, spec.timeout, fn_size, len(task.call)))
            payloads.append(task.call)

    def complete(self, pool: RegisteredPool, rows: list[ResultRow], values: Iterable[memoryview], label: str) -> None:
        """Results from ``pool``: each one's task ends with it (``label``/worker ran it)."""
        inflight, placed, seconds, ran_on = pool.inflight, self.placed, pool.task_seconds, f"{label}/"
        for row, value in zip(rows, values, strict=True):
            seconds += 0.2 * (row.ended - row.started - seconds)
            task = inflight.pop(row.task_id, None)
            if task is None:  # cancelled, or a pool confused about ids: nothing waits for it
                continue
            del placed[row.task_id]
            task.end(decode_result(task.spec, row, value, ran_on + row.worker))
        pool.task_seconds = seconds
        limit = self.limit(pool)
        if limit != pool.limit:  # mostly it is not: no call to say so
            self._set_limit(pool, limit)
        else:
            self._update_room(pool)

    # -- indexes -----------------------------------------------------------------------

    def _update_room(self, pool: RegisteredPool) -> None:
        """Keep ``room`` and ``idle`` true for ``pool``: in ``room`` while registered, not
        draining and under its limit; in ``idle`` too while under its number of workers."""
        identity, holds = pool.identity, len(pool.inflight)
        if not pool.draining and holds < pool.limit and self.pools.get(identity) is pool:
            self.room.setdefault(identity, pool)
            if holds < pool.workers:
                self.idle.setdefault(identity, pool)
            elif self.idle.get(identity) is pool:
                del self.idle[identity]
            return
        if self.room.get(identity) is pool:
            del self.room[identity]
        if self.idle.get(identity) is pool:
            del self.idle[identity]

    def _set_limit(self, pool: RegisteredPool, limit: int) -> None:
        self.limits += limit - pool.limit
        pool.limit = limit
        self._update_room(pool)
