"""BatchExecutor: one batch job per task, the call and its result as files.

The driver pickles each call into ``<directory>/<name>.task`` and submits a job that runs
``python -m plait.backends._batch_job <task file>``; the job writes ``<name>.result`` (to a
temporary name first, then renames it, so a half-written file is never read). The driver
polls: one status call to the provider for every job in flight, then a look for result
files. Nothing connects back to the driver, so no port needs to be open on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import shutil
import sys
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import attrs

from plait.backends._environment import Packed, PackedEnvironment, in_environment
from plait.backends._errors import WorkerLost
from plait.backends._python import python
from plait.backends._records import Result, Task
from plait.backends._task import TaskResult, TaskSpec
from plait.backends._wire import decode_result, dumps_call, dumps_function
from plait.backends.providers._base import JobState, Provider, single_line

__all__ = ["BatchExecutor"]

# A job that ended is given this many more polls for its result file to appear: a shared
# file system may show a file to other hosts a little after its writer closed it.
_GRACE_POLLS = 2


@attrs.define(eq=False)
class _Job:
    spec: TaskSpec
    future: asyncio.Future[TaskResult]
    name: str
    result: Path
    job_id: str | None = None
    ended_polls: int = 0


class BatchExecutor:
    """Run each task as its own batch job of ``provider`` (a SlurmProvider, ...).

    For long tasks, where a job's queueing and start-up cost little beside the work.
    At most ``max_jobs`` jobs are queued or running at once (default: the provider's
    ``max_blocks``). ``directory`` holds the task and result files and must be on a file
    system the compute nodes share (default: ``.plait/batch`` in the working directory).
    A task's ``timeout`` is enforced inside its job; a job that ends without a result
    fails its task with WorkerLost, naming the job's stdout and stderr files.
    ``environment`` packs the driver's packages at start for nodes that lack them.
    """

    can_kill = True

    def __init__(
        self,
        provider: Provider,
        *,
        label: str = "batch",
        max_jobs: int | None = None,
        directory: str | os.PathLike[str] = ".plait/batch",
        poll_interval: float = 1.0,
        environment: PackedEnvironment | None = None,
    ) -> None:
        if max_jobs is not None and max_jobs < 1:
            raise ValueError(f"BatchExecutor(max_jobs={max_jobs}): need at least one job")
        if poll_interval <= 0:
            raise ValueError(f"BatchExecutor(poll_interval={poll_interval}): must be positive")
        single_line(f"BatchExecutor({label!r})", "label", label)  # it names the provider's jobs
        self.label = label
        self.provider = provider
        self.max_jobs = max_jobs or provider.max_blocks
        self.poll_interval = poll_interval
        self.environment = environment
        self._packed: Packed | None = None
        self.directory = Path(directory).absolute() / f"{label}-{uuid.uuid4().hex[:8]}"
        self._jobs: dict[int, _Job] = {}
        self._count = 0
        self._poller: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()

    @property
    def capacity(self) -> int:
        return self.max_jobs

    async def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.environment is not None:
            self._packed = await asyncio.to_thread(self.environment.pack)
        self._poller = asyncio.get_running_loop().create_task(self._poll())

    def submit(self, spec: TaskSpec) -> asyncio.Future[TaskResult]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[TaskResult] = loop.create_future()
        try:
            wire = Task(spec.task_id, spec.name, spec.fn_key, spec.timeout, dumps_function(spec), dumps_call(spec))
        except TypeError as error:
            future.set_result(TaskResult(spec.task_id, error=error, worker=self.label))
            return future
        self._count += 1
        name = f"plait-{self.label}-{self.directory.name[-8:]}-{self._count}"
        task_file = self.directory / f"{name}.task"
        task_file.write_bytes(pickle.dumps((sys.path, spec.timeout, wire), protocol=pickle.HIGHEST_PROTOCOL))
        job = _Job(spec, future, name, self.directory / f"{name}.result")
        self._jobs[spec.task_id] = job
        self._spawn(self._submit(job, task_file))
        return future

    async def _submit(self, job: _Job, task_file: Path) -> None:
        command = in_environment(self._packed, python("-m", "plait.backends._batch_job", str(task_file)))
        try:
            job_id = await asyncio.to_thread(self.provider.submit, command, job.name, None)
        except Exception as error:  # the scheduler refused it: that is the task's answer, not a lost worker
            self._finish(job, TaskResult(job.spec.task_id, error=error, worker=self.label))
            return
        if job.future.done():  # cancelled while sbatch ran
            await asyncio.to_thread(self.provider.cancel, [job_id])
        job.job_id = job_id

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            waiting = []
            for job in list(self._jobs.values()):
                if job.job_id is None or job.future.done():
                    continue
                if job.result.exists():
                    self._finish(job, self._read(job))
                else:
                    waiting.append(job)
            if waiting:
                await self._check(waiting)

    async def _check(self, jobs: list[_Job]) -> None:
        """Ask the provider about jobs with no result yet, in one call; fail those that ended without one."""
        try:
            states = await asyncio.to_thread(self.provider.status, [job.job_id for job in jobs if job.job_id])
        except Exception:  # a scheduler hiccup: ask again next time
            return
        for job in jobs:
            state = states.get(job.job_id or "", JobState.UNKNOWN)
            if job.future.done() or not (state.finished or state is JobState.UNKNOWN):
                continue
            if job.result.exists():  # written between our look and the job's end
                self._finish(job, self._read(job))
                continue
            job.ended_polls += 1
            if job.ended_polls > _GRACE_POLLS:
                self._finish(job, self._lost(job, state))

    def _read(self, job: _Job) -> TaskResult:
        worker = f"{self.label}/{self.provider.label}:{job.job_id}"
        try:
            wire: Result = pickle.loads(job.result.read_bytes())
        except Exception as failure:  # a truncated or foreign file: the task's failure
            problem = TypeError(f"{job.spec.name}: its result in {job.result} could not be read: {failure}")
            return TaskResult(job.spec.task_id, error=problem, worker=worker)
        return decode_result(job.spec, wire, wire.value, worker)

    def _lost(self, job: _Job, state: JobState) -> TaskResult:
        where = ""
        output_paths = getattr(self.provider, "output_paths", None)
        if output_paths is not None:
            stdout, stderr = output_paths(job.name)
            where = f"; see its stdout {stdout} and stderr {stderr}"
        error = WorkerLost(
            f"{job.spec.name}: batch job {job.job_id} ({self.provider.label}) ended as {state.name} "
            f"without writing a result{where}"
        )
        return TaskResult(job.spec.task_id, error=error, worker=f"{self.label}/{self.provider.label}:{job.job_id}")

    def _finish(self, job: _Job, result: TaskResult) -> None:
        self._jobs.pop(job.spec.task_id, None)
        for suffix in (".task", ".result"):
            with contextlib.suppress(OSError):
                (self.directory / f"{job.name}{suffix}").unlink()
        if not job.future.done():
            job.future.set_result(result)

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        # The loop keeps only weak references to tasks: hold them until they end.
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def cancel(self, task_id: int) -> None:
        job = self._jobs.pop(task_id, None)
        if job is None:
            return
        job.future.cancel()
        if job.job_id is not None:
            self._spawn(asyncio.to_thread(self.provider.cancel, [job.job_id]))

    async def shutdown(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        running = [job.job_id for job in self._jobs.values() if job.job_id is not None]
        for job in self._jobs.values():
            job.future.cancel()
        self._jobs.clear()
        if running:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.provider.cancel, running)
        shutil.rmtree(self.directory, ignore_errors=True)
