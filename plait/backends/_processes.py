"""ProcessExecutor: worker processes on this machine, fed batches over socket pairs."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import socket
import sys
import time
from collections.abc import Callable, Sequence

import attrs

from plait._tracebacks import user_facing
from plait.backends._completion import NextTurn
from plait.backends._encoding import EncodedTask, TaskEncoder
from plait.backends._errors import TaskTimeout, WorkerLost
from plait.backends._launcher import Launcher, how_it_ended
from plait.backends._measuring import unmeasured
from plait.backends._reaper import kill_tree
from plait.backends._records import HEADER, Result, Run, Skip, Start, Stop, frame, read_results
from plait.backends._sampling import NodeSample, NodeSampler, Sample, TaskSample, TaskSampler, last_seen
from plait.backends._supervisor import Slot, Supervisor
from plait.backends._task import TaskResult, TaskSpec
from plait.backends._wire import decode_result

__all__ = ["ProcessExecutor"]


@attrs.define(eq=False)
class _Worker:
    """A worker's process and the driver's end of its socket pair; what it holds is its slot's."""

    pid: int
    writer: asyncio.StreamWriter
    slot: Slot[EncodedTask]
    reader_task: asyncio.Task[None] | None = None
    last_look: TaskSample | None = None  # at its running task, to say how big it was if it dies
    stopping: bool = False  # told to stop: its reap kills what it left, and may free its pid at any time

    @property
    def name(self) -> str:
        return f"{self.slot.index}:{self.pid}"


@user_facing
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
        if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
            raise ValueError(f"ProcessExecutor(workers={workers!r}): need a whole number of workers, at least one")
        if usage_interval is not None and usage_interval <= 0:
            raise ValueError(f"ProcessExecutor(usage_interval={usage_interval}): must be > 0, or None for none")
        self.label = label
        self.workers = workers or os.cpu_count() or 1
        self.prefetch = prefetch
        self._supervisor: Supervisor[EncodedTask] = Supervisor(self.workers)  # on time.monotonic, asyncio's clock
        self._rooms = range(1, 2 + prefetch)  # a task each, then a prefetched one each, ...
        self._pool: list[_Worker] = []  # by slot index
        self._launcher: Launcher | None = None
        self._timer: asyncio.TimerHandle | None = None  # at the first deadline of a running task
        self._encoder = TaskEncoder(label)
        self._flush_soon = NextTurn(self._flush)
        self._closing = False
        self._replacing: set[asyncio.Task[None]] = set()
        self.usage_interval = usage_interval
        self.on_samples: Callable[[Sequence[Sample]], None] | None = None
        self.task_usage = True  # a runtime without a monitor sets it False before start
        self._sampler: NodeSampler | None = None
        self._task_sampler: TaskSampler | None = None
        self._next_sample: asyncio.TimerHandle | None = None

    @property
    def capacity(self) -> int:
        return self.workers * (1 + self.prefetch)

    async def start(self) -> None:
        slots = self._supervisor.slots
        started = await asyncio.gather(*(self._process() for _ in slots))
        self._pool = [self._serve(slot, *process) for slot, process in zip(slots, started, strict=True)]
        if self.on_samples is not None and self.usage_interval is not None:
            self._sampler, self._task_sampler = NodeSampler(), TaskSampler()
            self._next_sample = asyncio.get_running_loop().call_later(self.usage_interval, self._sample)

    def _sample(self) -> None:
        """Look at this node (the workers' and the driver's) and its running tasks; hand it all on."""
        if self._sampler is None or self._task_sampler is None or self.on_samples is None:
            return
        running = self._supervisor.running()
        tasks = self._task_sampler.look({task_id: self._pool[slot.index] for task_id, slot in running.items()})
        self.on_samples([NodeSample.of(socket.gethostname(), self.label, self._sampler.row()), *tasks])
        if self.usage_interval is not None and not self._closing:
            self._next_sample = asyncio.get_running_loop().call_later(self.usage_interval, self._sample)

    async def _process(self) -> tuple[int, asyncio.StreamReader, asyncio.StreamWriter]:
        """A new worker process: its pid and our end of its socket pair."""
        ours, theirs = socket.socketpair()
        try:
            with theirs:
                pid = await self._fork(theirs)
        except BaseException:
            ours.close()  # no worker holds the other end: nothing will
            raise
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        return pid, reader, writer

    def _serve(
        self, slot: Slot[EncodedTask], pid: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> _Worker:
        """Put the worker process ``pid`` to work in ``slot``."""
        writer.write(frame(Start(sys.path)))
        worker = _Worker(pid, writer, slot)
        worker.reader_task = asyncio.create_task(self._read(worker, reader))
        return worker

    def submit(self, spec: TaskSpec) -> asyncio.Future[TaskResult]:
        task = self._encoder.encode(spec)
        if task.future.done():
            return task.future
        self._supervisor.submit(task)
        self._schedule_flush()
        return task.future

    def _schedule_flush(self) -> None:
        # Everything submitted in one turn of the loop goes out as one batch per worker, unless
        # the runtime's drain that submitted it says so sooner (send_submitted).
        self._flush_soon.schedule(asyncio.get_running_loop())

    def send_submitted(self) -> None:
        """Send now what waits: the drain that submitted it is over (see BatchingExecutor)."""
        self._flush_soon.now()

    def _flush(self) -> None:
        for index, batch in self._supervisor.assign(self._rooms).items():
            tasks = [task.for_worker(with_function=send_fn) for task, send_fn in batch]
            self._pool[index].writer.write(frame(Run(tasks)))
        self._watch_deadlines()

    async def _read(self, worker: _Worker, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                (size,) = HEADER.unpack(await reader.readexactly(HEADER.size))
                self._complete(worker, read_results(await reader.readexactly(size)))
        except (asyncio.IncompleteReadError, ConnectionError):
            self._lose(worker, None)  # it died, or was killed and lost already

    def _complete(self, worker: _Worker, results: list[Result]) -> None:
        # Its first message, maybe an empty batch, says it has started.
        done = self._supervisor.complete(worker.slot, [result.task_id for result in results])
        for task, result in zip(done, results, strict=False):  # none when given up on: results still buffered
            if task is not None and not task.future.done():
                task.future.set_result(decode_result(task.spec, result, result.value, f"{self.label}/{worker.name}"))
        self._schedule_flush()

    def _watch_deadlines(self) -> None:
        """Have the timer go off at the first deadline of a running task, if any."""
        deadline = self._supervisor.next_deadline()
        if self._timer is not None and self._timer.when() != deadline:
            self._timer.cancel()
            self._timer = None
        if self._timer is None and deadline is not None:
            self._timer = asyncio.get_running_loop().call_at(deadline, self._expire)

    def _expire(self) -> None:
        self._timer = None
        for slot in self._supervisor.expired():
            spec = slot.inflight[0].spec
            self._lose(self._pool[slot.index], TaskTimeout.killed(spec.name, spec.timeout))
        self._watch_deadlines()

    def cancel(self, task_id: int) -> None:
        cancelled = self._supervisor.cancel((task_id,))
        for task in cancelled.queued:
            task.future.cancel()
        for index, held in cancelled.skip.items():  # sent but not started: the worker skips them
            for task in held:
                task.future.cancel()
            self._pool[index].writer.write(frame(Skip([task.spec.task_id for task in held])))
        for slot in cancelled.running:  # stopped by killing its worker
            self._lose(self._pool[slot.index], concurrent.futures.CancelledError())

    def _lose(self, worker: _Worker, error: BaseException | None) -> None:
        """The worker is gone: fail its running task with ``error``, requeue the rest.

        ``error`` None: it died by itself, and its task fails with a WorkerLost that says
        how it ended, once it is reaped.
        """
        if not worker.slot.alive:
            return
        if not worker.stopping:  # else the launcher kills its session as it reaps it
            _kill(worker.pid)
        held = worker.slot.inflight
        seen = last_seen(worker.last_look, held[0].spec.task_id, time.time()) if held else ""
        head = self._supervisor.lose(worker.slot)
        worker.writer.close()
        died = head if error is None else None
        if head is not None and error is not None:
            self._fail(worker, head, error)
        if self._closing:  # its stop reaps it
            if died is not None:
                self._fail(worker, died, self._worker_lost(worker, died, "exit status unknown", seen))
            return
        replacement = asyncio.get_running_loop().create_task(self._replace(worker, died, seen))
        self._replacing.add(replacement)
        replacement.add_done_callback(self._replacing.discard)
        self._schedule_flush()  # what it held may go to another worker

    def _worker_lost(self, worker: _Worker, task: EncodedTask, how: str, seen: str) -> WorkerLost:
        where = f"{self.label}/{worker.name} on {socket.gethostname()}"
        return WorkerLost.died(where, how, task.spec.name, task.spec.task_id, seen)

    def _fail(self, worker: _Worker, task: EncodedTask, error: BaseException) -> None:
        if not task.future.done():
            task.future.set_result(TaskResult(task.spec.task_id, error=error, worker=f"{self.label}/{worker.name}"))

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
            self._launcher = Launcher.spawned(None if self.task_usage else unmeasured(os.environ))
        return self._launcher

    async def _replace(self, worker: _Worker, died: EncodedTask | None, seen: str) -> None:
        """Fork a worker in ``worker``'s place, once it is reaped; fail ``died``, the task it
        died running, with how it ended (``seen``: what was seen of it last)."""
        status = -1
        try:
            status = await self._reaped(worker)
        finally:  # reaped or not, the task it ran ends: nothing waits on it for ever
            if died is not None:
                self._fail(worker, died, self._worker_lost(worker, died, how_it_ended(status), seen))
        process = await self._process()
        fresh = self._pool[worker.slot.index] = self._serve(self._supervisor.replace(worker.slot), *process)
        if self._closing:
            await self._stop(fresh)
        self._schedule_flush()

    async def _reaped(self, worker: _Worker) -> int:
        """Until the worker has ended (told to stop, or killed); its wait status, -1 if not
        known (a dead launcher took it along)."""
        launcher = self._launcher
        if launcher is not None:
            with contextlib.suppress(OSError, EOFError):
                return await asyncio.to_thread(launcher.reap, worker.pid)
        return -1

    async def shutdown(self) -> None:
        self._closing = True
        if self._next_sample is not None:
            self._next_sample.cancel()
            self._sample()  # the last stretch of the run, however short
        if self._timer is not None:
            self._timer.cancel()
        self._cancel_queued()
        await asyncio.gather(*self._replacing, return_exceptions=True)  # each stops its fresh worker
        await asyncio.gather(*(self._stop(w) for w in self._pool))
        self._cancel_queued()  # what the stopped workers held
        if self._launcher is not None:
            await asyncio.to_thread(self._launcher.close)

    async def _stop(self, worker: _Worker) -> None:
        worker.stopping = True
        with contextlib.suppress(Exception):
            worker.writer.write(frame(Stop()))
            worker.writer.close()
        reaped = asyncio.ensure_future(self._reaped(worker))
        try:
            await asyncio.wait_for(asyncio.shield(reaped), 2.0)
        except TimeoutError:
            _kill(worker.pid)
            await reaped
        if worker.reader_task is not None:
            worker.reader_task.cancel()
        if worker.slot.alive and (head := self._supervisor.lose(worker.slot)) is not None:
            head.future.cancel()

    def _cancel_queued(self) -> None:
        for task in self._supervisor.queue:
            task.future.cancel()
        self._supervisor.queue.clear()


def _kill(pid: int) -> None:
    # Safe until the worker is reaped: its pid, and so its session, stays its own.
    kill_tree(pid)
