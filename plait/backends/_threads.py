"""ThreadExecutor: tasks run on threads of the driver process, nothing is pickled."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import queue
import threading
import time

from plait._tracebacks import user_facing
from plait.backends._task import TaskResult, TaskSpec, running, task_error

__all__ = ["ThreadExecutor"]


@user_facing
class ThreadExecutor:
    """Run tasks on a pool of threads in this process.

    Cheapest for I/O-bound or GIL-releasing work, and for tests. A thread cannot be
    killed, so apps with a ``timeout`` must run on a ProcessExecutor.
    """

    can_kill = False

    def __init__(self, workers: int | None = None, *, label: str = "threads") -> None:
        if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
            raise ValueError(f"ThreadExecutor(workers={workers!r}): need a whole number of threads, at least one")
        self.label = label
        self.workers = workers or min(32, (os.cpu_count() or 1) + 4)
        self._queue: _Queue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._running: dict[int, concurrent.futures.Future[TaskResult]] = {}

    @property
    def capacity(self) -> int:
        return self.workers * 2

    async def start(self) -> None:
        # Daemon threads of its own, not a concurrent.futures pool: Python joins that pool's
        # threads when the interpreter exits, so a run stopped by Ctrl-C waited for every
        # task still running, which a thread cannot be made to stop. A queue of their own:
        # threads of a previous start may still be finishing a task.
        self._queue = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=_serve, args=(self._queue, self.label), name=f"plait-{self.label}_{i}", daemon=True)
            for i in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, spec: TaskSpec) -> asyncio.Future[TaskResult]:
        assert self._threads, "ThreadExecutor.submit before start"
        future: concurrent.futures.Future[TaskResult] = concurrent.futures.Future()
        self._running[spec.task_id] = future
        future.add_done_callback(lambda _: self._running.pop(spec.task_id, None))
        self._queue.put((future, spec))
        return asyncio.wrap_future(future)

    def cancel(self, task_id: int) -> None:
        future = self._running.get(task_id)
        if future is not None:
            future.cancel()  # only stops a task that has not started: threads cannot be killed

    async def shutdown(self) -> None:
        for future in list(self._running.values()):
            future.cancel()
        for _ in self._threads:
            self._queue.put(None)


# Tasks to run, each with the future of its result; None stops the thread that takes it.
_Queue = queue.SimpleQueue[tuple[concurrent.futures.Future[TaskResult], TaskSpec] | None]


def _serve(tasks: _Queue, label: str) -> None:
    while (item := tasks.get()) is not None:
        future, spec = item
        if future.set_running_or_notify_cancel():  # False: cancelled before it started
            future.set_result(_run(spec, label))
        del item, future, spec  # else an idle thread keeps its last task's arguments and result alive


def _run(spec: TaskSpec, label: str) -> TaskResult:
    worker = f"{label}/{threading.current_thread().name}"
    started = time.time()
    try:
        with running(spec.name):
            value = spec.fn(*spec.args, **spec.kwargs)
    except BaseException as error:
        failure = task_error(error, spec.name)
        return TaskResult(spec.task_id, error=failure, worker=worker, started=started, ended=time.time())
    return TaskResult(spec.task_id, value=value, worker=worker, started=started, ended=time.time())
