"""The worker supervisor: which forked worker holds which task, in what order, until when.

ProcessExecutor and each zmq pool run the same local workers (``_worker``) over socket
pairs and supervise them the same way, through this state machine. It has no I/O of its
own: its driver (asyncio in ProcessExecutor, the pool's poller) tells it what happened
and does what it says — writes a batch, tells a worker to skip a task,
kills a worker and forks another.

- ``submit`` queues a task; ``assign`` hands queued tasks to workers, idle ones first,
  each with its function only if that worker has not had it yet.
- A worker runs its tasks in order: the first it holds runs, the others wait in it.
  ``complete`` takes their results back; a worker's first message (maybe no results)
  says it has started, and only then does the timeout of its running task count, on
  the clock the driver gives (read only for a task with a timeout: tests give their own).
- ``expired`` names the workers whose running task is past its timeout; ``lose`` gives
  up on a worker (killed, or died): its running task is returned to be failed, the
  others go back to the front of the queue; ``replace`` puts a fresh worker in its place.
- ``cancel``: a queued task is dropped, a task a worker holds but has not started is
  skipped by it (never run), a running one is stopped by losing its worker.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Generic, Protocol, TypeVar

import attrs

__all__ = ["Cancelled", "Slot", "Supervised", "Supervisor"]


class Supervised(Protocol):
    """What the supervisor needs to know of a task; the rest is its driver's."""

    @property
    def task_id(self) -> int: ...

    @property
    def fn_key(self) -> bytes: ...

    @property
    def timeout(self) -> float | None: ...


T = TypeVar("T", bound=Supervised)


@attrs.define(eq=False)
class Slot(Generic[T]):
    """One worker as the supervisor sees it. A replaced worker's slot stays dead, so
    whatever its driver still hears from it is known to be stale."""

    index: int
    inflight: deque[T] = attrs.field(factory=deque)  # the first one runs
    functions: set[bytes] = attrs.field(factory=set)  # sent to it already
    skipping: set[int] = attrs.field(factory=set)  # tasks it holds that it was told to skip
    ready: bool = False  # it has said so: only then does a timeout run
    alive: bool = True
    deadline: float | None = None  # of its running task, on its driver's clock


@attrs.frozen
class Cancelled(Generic[T]):
    """What cancelling some tasks takes: ``queued`` ones were dropped; the worker of each
    slot index in ``skip`` must be told to skip those tasks; ``running`` slots' workers
    must be killed (then ``lose`` them)."""

    queued: list[T]
    skip: dict[int, list[T]]
    running: list[Slot[T]]


class Supervisor(Generic[T]):
    """Tasks of type ``T`` on ``workers`` forked workers."""

    def __init__(self, workers: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.queue: deque[T] = deque()
        self.slots: list[Slot[T]] = [Slot(index) for index in range(workers)]
        self.timed = False  # whether a task with a timeout has run: until then there is no deadline to look for

    def submit(self, task: T) -> None:
        self.queue.append(task)

    def assign(self, rooms: Iterable[int]) -> dict[int, list[tuple[T, bool]]]:
        """Queued tasks for workers, by slot index: each with whether to send its function.

        For each room in ``rooms``, every live worker in turn is given tasks until it
        holds that many: with rooms ``(1, 2)`` every idle worker gets a task before any
        gets a second.
        """
        batches: dict[int, list[tuple[T, bool]]] = {}
        queue = self.queue
        if not queue:
            return batches
        for room in rooms:
            for slot in self.slots:
                inflight = slot.inflight
                held = len(inflight)
                if held >= room or not slot.alive:
                    continue
                batch = batches.get(slot.index)
                if batch is None:
                    batch = batches[slot.index] = []
                functions = slot.functions
                while held < room:
                    task = queue.popleft()
                    fn_key = task.fn_key
                    send_function = fn_key not in functions
                    if send_function:
                        functions.add(fn_key)
                    inflight.append(task)
                    held += 1
                    if held == 1 and task.timeout is not None:  # an idle worker's slot has no deadline to clear
                        self._arm(slot)
                    batch.append((task, send_function))
                    if not queue:
                        return batches
        return batches

    def complete(self, slot: Slot[T], task_ids: Sequence[int]) -> list[T | None]:
        """The tasks ``slot``'s worker has finished, in order; None for one it was told to
        skip (its result says nothing). Nothing if the slot was given up on."""
        if not slot.alive:
            return []
        slot.ready = True
        inflight, skipping = slot.inflight, slot.skipping
        done: list[T | None] = []
        for task_id in task_ids:
            task = inflight.popleft()
            assert task.task_id == task_id, "a worker runs its tasks in order"
            if skipping and task_id in skipping:
                skipping.discard(task_id)
                done.append(None)
            else:
                done.append(task)
        # Only a deadline to move or clear, or a next task with a timeout, needs arming: not a lone task's end.
        if slot.deadline is not None or (inflight and inflight[0].timeout is not None):
            self._arm(slot)
        return done

    def _arm(self, slot: Slot[T]) -> None:
        timeout = slot.inflight[0].timeout if slot.inflight and slot.ready else None
        if timeout is None:
            slot.deadline = None
        else:
            slot.deadline = self.clock() + timeout
            self.timed = True

    def next_deadline(self) -> float | None:
        """The first deadline of a running task, if any (asked after every change: cheap until one has a timeout)."""
        if not self.timed:
            return None
        deadlines = [slot.deadline for slot in self.slots if slot.deadline is not None]
        return min(deadlines, default=None)

    def expired(self) -> list[Slot[T]]:
        """The live workers whose running task is past its timeout: kill each, then ``lose`` it."""
        if not self.timed:
            return []
        now = self.clock()
        return [slot for slot in self.slots if slot.alive and slot.deadline is not None and now >= slot.deadline]

    def cancel(self, ids: Collection[int]) -> Cancelled[T]:
        queued = [task for task in self.queue if task.task_id in ids]
        if queued:
            self.queue = deque(task for task in self.queue if task.task_id not in ids)
        skip: dict[int, list[T]] = {}
        running: list[Slot[T]] = []
        for slot in self.slots:
            if not slot.alive:
                continue
            for position, task in enumerate(slot.inflight):
                if task.task_id not in ids or task.task_id in slot.skipping:
                    continue
                if position == 0:
                    running.append(slot)
                else:
                    slot.skipping.add(task.task_id)
                    skip.setdefault(slot.index, []).append(task)
        return Cancelled(queued, skip, running)

    def lose(self, slot: Slot[T]) -> T | None:
        """Give up on ``slot``'s worker (killed, or dead): its running task, to fail (None if
        it ran none, or was cancelled); the tasks waiting in it go back to the front of the queue."""
        slot.alive = False
        slot.deadline = None
        if not slot.inflight:
            return None
        head = slot.inflight.popleft()
        self.queue.extendleft(reversed([task for task in slot.inflight if task.task_id not in slot.skipping]))
        slot.inflight.clear()
        return None if head.task_id in slot.skipping else head

    def replace(self, slot: Slot[T]) -> Slot[T]:
        """A fresh worker's slot in place of ``slot``'s (lost)."""
        fresh: Slot[T] = Slot(slot.index)
        self.slots[slot.index] = fresh
        return fresh

    def running(self) -> dict[int, Slot[T]]:
        """The running tasks by id, with their slots."""
        return {slot.inflight[0].task_id: slot for slot in self.slots if slot.alive and slot.inflight}

    def idle(self) -> bool:
        """Nothing queued, nothing held by a worker."""
        return not self.queue and not any(slot.inflight for slot in self.slots)
