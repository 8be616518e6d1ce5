"""ThreadExecutor: tasks run on threads of the driver process, nothing is pickled."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
import time

from plait.backends._task import TaskResult, TaskSpec, running

__all__ = ["ThreadExecutor"]


class ThreadExecutor:
    """Run tasks on a pool of threads in this process.

    Cheapest for I/O-bound or GIL-releasing work, and for tests. A thread cannot be
    killed, so apps with a ``timeout`` must run on a ProcessExecutor.
    """

    can_kill = False

    def __init__(self, workers: int | None = None, *, label: str = "threads") -> None:
        self.label = label
        self.workers = workers or min(32, (os.cpu_count() or 1) + 4)
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._running: dict[int, concurrent.futures.Future[TaskResult]] = {}

    @property
    def capacity(self) -> int:
        return self.workers * 2

    async def start(self) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix=f"plait-{self.label}")

    def submit(self, spec: TaskSpec) -> asyncio.Future[TaskResult]:
        assert self._pool is not None, "ThreadExecutor.submit before start"
        future = self._pool.submit(_run, spec, self.label)
        self._running[spec.task_id] = future
        future.add_done_callback(lambda _: self._running.pop(spec.task_id, None))
        return asyncio.wrap_future(future)

    def cancel(self, task_id: int) -> None:
        future = self._running.get(task_id)
        if future is not None:
            future.cancel()  # only stops a task that has not started: threads cannot be killed

    async def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


def _run(spec: TaskSpec, label: str) -> TaskResult:
    worker = f"{label}/{threading.current_thread().name}"
    started = time.time()
    try:
        with running(spec.name):
            value = spec.fn(*spec.args, **spec.kwargs)
    except BaseException as error:
        return TaskResult(spec.task_id, error=error, worker=worker, started=started, ended=time.time())
    return TaskResult(spec.task_id, value=value, worker=worker, started=started, ended=time.time())
