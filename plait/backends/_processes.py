"""ProcessExecutor: worker processes on this machine, fed batches over socket pairs."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import pickle
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence

import attrs

from plait.backends._encoding import EncodedTask, TaskEncoder
from plait.backends._errors import TaskTimeout, WorkerLost
from plait.backends._launcher import Launcher
from plait.backends._reaper import kill_tree
from plait.backends._sampling import NodeSample, NodeSampler, Sample, TaskSample, TaskSampler, last_seen
from plait.backends._task import TaskResult, TaskSpec
from plait.backends._wire import HEADER, WireResult, WireTask, decode_result, frame

__all__ = ["ProcessExecutor"]


@attrs.define(eq=False)
class _Worker:
    index: int
    pid: int
    writer: asyncio.StreamWriter
    reader_task: asyncio.Task[None] | None = None
    inflight: deque[EncodedTask] = attrs.field(factory=deque)
    functions: set[bytes] = attrs.field(factory=set)
    deadline: asyncio.TimerHandle | None = None
    alive: bool = True
    ready: bool = False  # it has said so: only then do timeouts of its tasks run
    last_look: TaskSample | None = None  # at its running task, to say how big it was if it dies

    @property
    def name(self) -> str:
        return f"{self.index}:{self.pid}"


class ProcessExecutor:
    """Run tasks in ``workers`` processes on this machine.

    Functions and arguments travel with cloudpickle, so lambdas, closures and functions
    defined in ``__main__`` work; each function is sent to a worker once. A worker runs
    one task at a time and holds ``prefetch`` more so it never waits for the driver.
    A task past its timeout, or cancelled while running, is stopped by killing its
    worker and every process its task started (``_reaper.kill_tree``), before its
    failure is reported; the worker is replaced. Workers are forked by a small
    launcher process (``_launcher``), so they start in milliseconds and each task's
    peak memory is measured from the worker's own.

    It samples this node (CPU, memory, load) every ``usage_interval`` seconds (None:
    never) and once more at shutdown, for ``on_samples``, which a runtime with a
    monitoring db sets.
    """

    can_kill = True

    def __init__(
        self,
        workers: int | None = None,
        *,
        label: str = "processes",
        prefetch: int = 2,
        usage_interval: float | None = 5.0,
    ) -> None:
        if workers is not None and workers < 1:
            raise ValueError(f"ProcessExecutor(workers={workers}): need at least one worker")
        if usage_interval is not None and usage_interval <= 0:
            raise ValueError(f"ProcessExecutor(usage_interval={usage_interval}): must be > 0, or None for none")
        self.label = label
        self.workers = workers or os.cpu_count() or 1
        self.prefetch = prefetch
        self._pool: list[_Worker] = []
        self._launcher: Launcher | None = None
        self._pending: deque[EncodedTask] = deque()
        self._encoder = TaskEncoder(label)
        self._flush_scheduled = False
        self._closing = False
        self._replacing: set[asyncio.Task[None]] = set()
        self.usage_interval = usage_interval
        self.on_samples: Callable[[Sequence[Sample]], None] | None = None
        self._sampler: NodeSampler | None = None
        self._task_sampler: TaskSampler | None = None
        self._next_sample: asyncio.TimerHandle | None = None

    @property
    def capacity(self) -> int:
        return self.workers * (1 + self.prefetch)

    async def start(self) -> None:
        self._pool = list(await asyncio.gather(*(self._spawn(i) for i in range(self.workers))))
        if self.on_samples is not None and self.usage_interval is not None:
            self._sampler, self._task_sampler = NodeSampler(), TaskSampler()
            self._next_sample = asyncio.get_running_loop().call_later(self.usage_interval, self._sample)

    def _sample(self) -> None:
        """Look at this node (the workers' and the driver's) and its running tasks; hand it all on."""
        if self._sampler is None or self._task_sampler is None or self.on_samples is None:
            return
        tasks = self._task_sampler.look({w.inflight[0].spec.task_id: w for w in self._pool if w.inflight and w.alive})
        self.on_samples([NodeSample.of(socket.gethostname(), self.label, self._sampler.row()), *tasks])
        if self.usage_interval is not None and not self._closing:
            self._next_sample = asyncio.get_running_loop().call_later(self.usage_interval, self._sample)

    async def _spawn(self, index: int) -> _Worker:
        ours, theirs = socket.socketpair()
        with theirs:
            pid = await self._fork(theirs)
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        writer.write(frame(pickle.dumps(sys.path)))
        worker = _Worker(index, pid, writer)
        worker.reader_task = asyncio.create_task(self._read(worker, reader))
        return worker

    def submit(self, spec: TaskSpec) -> asyncio.Future[TaskResult]:
        task = self._encoder.encode(spec)
        if task.future.done():
            return task.future
        self._pending.append(task)
        self._schedule_flush()
        return task.future

    def _schedule_flush(self) -> None:
        # Everything submitted in one turn of the loop goes out as one batch per worker.
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        batches: dict[int, list[WireTask]] = {}
        # Level by level, so every idle worker gets a task before any gets a prefetched one.
        for depth in range(1 + self.prefetch):
            for worker in self._pool:
                if not self._pending:
                    break
                if worker.alive and len(worker.inflight) == depth:
                    self._assign(worker, batches.setdefault(worker.index, []))
        for index, batch in batches.items():
            if batch:
                self._pool[index].writer.write(frame(pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)))

    def _assign(self, worker: _Worker, batch: list[WireTask]) -> None:
        while self._pending:
            task = self._pending.popleft()
            if task.future.done():
                continue
            if not worker.inflight:
                self._arm_deadline(worker, task)
            worker.inflight.append(task)
            spec = task.spec
            send_fn = spec.fn_key not in worker.functions
            worker.functions.add(spec.fn_key)
            batch.append((spec.task_id, spec.name, spec.fn_key, task.fn if send_fn else None, task.call))
            return

    async def _read(self, worker: _Worker, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                (size,) = HEADER.unpack(await reader.readexactly(HEADER.size))
                self._complete(worker, pickle.loads(await reader.readexactly(size)))
        except (asyncio.IncompleteReadError, ConnectionError):
            size = last_seen(worker.last_look, worker.inflight[0].spec.task_id, time.time()) if worker.inflight else ""
            self._lose(worker, WorkerLost(f"{self.label} worker {worker.name} died while running this task{size}"))

    def _complete(self, worker: _Worker, results: list[WireResult]) -> None:
        if not worker.alive:  # results still buffered from a worker we have given up on
            return
        worker.ready = True  # its first message, maybe an empty batch, says it has started
        for result in results:
            task = worker.inflight.popleft()
            assert task.spec.task_id == result[0], "a worker runs its tasks in order"
            if not task.future.done():
                task.future.set_result(decode_result(task.spec, result, f"{self.label}/{worker.name}"))
        self._disarm(worker)
        if worker.inflight:
            self._arm_deadline(worker, worker.inflight[0])
        self._schedule_flush()

    def _arm_deadline(self, worker: _Worker, task: EncodedTask) -> None:
        if task.spec.timeout is not None and worker.ready:
            loop = asyncio.get_running_loop()
            worker.deadline = loop.call_later(task.spec.timeout, self._expire, worker, task)

    def _disarm(self, worker: _Worker) -> None:
        if worker.deadline is not None:
            worker.deadline.cancel()
            worker.deadline = None

    def _expire(self, worker: _Worker, task: EncodedTask) -> None:
        if worker.alive and worker.inflight and worker.inflight[0] is task:
            error = TaskTimeout(
                f"{task.spec.name} ran longer than its timeout of {task.spec.timeout} s; its process was killed"
            )
            self._lose(worker, error)

    def cancel(self, task_id: int) -> None:
        for task in self._pending:
            if task.spec.task_id == task_id:
                task.future.cancel()
                return
        for worker in self._pool:
            for position, task in enumerate(worker.inflight):
                if task.spec.task_id != task_id:
                    continue
                if position == 0:  # running: stop it by killing its worker
                    self._lose(worker, concurrent.futures.CancelledError())
                else:  # sent but not started: the worker skips it
                    task.future.cancel()
                    worker.writer.write(frame(pickle.dumps(frozenset((task_id,)))))
                return

    def _lose(self, worker: _Worker, error: BaseException) -> None:
        """The worker is gone: fail its running task with ``error``, requeue the rest."""
        if not worker.alive:
            return
        worker.alive = False
        self._disarm(worker)
        _kill(worker.pid)
        if worker.inflight:
            head = worker.inflight.popleft()
            if not head.future.done():
                head.future.set_result(TaskResult(head.spec.task_id, error=error, worker=f"{self.label}/{worker.name}"))
            self._pending.extendleft(reversed(worker.inflight))
            worker.inflight.clear()
        worker.writer.close()
        if not self._closing:
            replacement = asyncio.get_running_loop().create_task(self._replace(worker))
            self._replacing.add(replacement)
            replacement.add_done_callback(self._replacing.discard)

    async def _fork(self, worker_end: socket.socket) -> int:
        # The launcher may have died since we looked (its workers with it): then a fresh one
        # gets a try. If that one dies too, it cannot start here.
        for _ in range(2):
            launcher = self._live_launcher()
            try:
                return await asyncio.to_thread(launcher.fork, worker_end)
            except (OSError, EOFError) as error:
                await asyncio.to_thread(launcher.close)
                failure = error
        raise RuntimeError(
            f"ProcessExecutor {self.label!r}: its worker launcher ({sys.executable}) exits as it starts, "
            f"with code {launcher.process.returncode}: its error output is above"
        ) from failure

    def _live_launcher(self) -> Launcher:
        # On the runtime's loop thread: a launcher dies with the thread that started it.
        if self._launcher is not None and not self._launcher.alive():
            self._launcher.close()  # someone killed it; its workers died with it
            self._launcher = None
        if self._launcher is None:
            self._launcher = Launcher.spawned()
        return self._launcher

    async def _replace(self, worker: _Worker) -> None:
        await self._reaped(worker)
        fresh = await self._spawn(worker.index)
        self._pool[worker.index] = fresh
        if self._closing:
            await self._stop(fresh)
        self._schedule_flush()

    async def _reaped(self, worker: _Worker) -> None:
        """Until the worker has ended (told to stop, or killed); a dead launcher took it along."""
        launcher = self._launcher
        if launcher is not None:
            with contextlib.suppress(OSError, EOFError):
                await asyncio.to_thread(launcher.reap, worker.pid)

    async def shutdown(self) -> None:
        self._closing = True
        if self._next_sample is not None:
            self._next_sample.cancel()
            self._sample()  # the last stretch of the run, however short
        for task in self._pending:
            task.future.cancel()
        self._pending.clear()
        await asyncio.gather(*self._replacing, return_exceptions=True)  # each stops its fresh worker
        await asyncio.gather(*(self._stop(w) for w in self._pool))
        if self._launcher is not None:
            await asyncio.to_thread(self._launcher.close)

    async def _stop(self, worker: _Worker) -> None:
        with contextlib.suppress(Exception):
            worker.writer.write(frame(pickle.dumps(None)))
            worker.writer.close()
        reaped = asyncio.ensure_future(self._reaped(worker))
        try:
            await asyncio.wait_for(asyncio.shield(reaped), 2.0)
        except TimeoutError:
            _kill(worker.pid)
            await reaped
        worker.alive = False
        if worker.reader_task is not None:
            worker.reader_task.cancel()
        for task in worker.inflight:
            task.future.cancel()


def _kill(pid: int) -> None:
    # Safe until the worker is reaped: its pid, and so its session, stays its own.
    kill_tree(pid)
