"""Blocks: the worker pools a ZMQExecutor starts through a provider, one job per block.

This is the one place that talks to the provider, so scaling policies (scale out on
queue depth, scale in idle pools) extend this class and nothing else. Its methods are
synchronous: a batch provider runs a command line, so the executor calls them in a
thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from plait.backends._python import python_starting
from plait.backends.providers import JobState, Provider
from plait.backends.providers._base import KEY_FILE_OPTION
from plait.backends.zmq._pool_start import NO_TASK_USAGE_OPTION

if TYPE_CHECKING:  # imported when an environment is packed: it costs start-up ~10 ms otherwise
    from plait.backends._environment import Packed

__all__ = ["Blocks", "pool_command", "pool_in"]

log = logging.getLogger("plait.zmq")


def pool_command(
    url: str, pool_id: str, workers: int, key_file: Path | None = None, *, task_usage: bool = True
) -> list[str]:
    """The argv of ``plait worker`` for one pool, with this Python (so the same venv); it
    runs the pool's own command, not the ``plait`` command (which would import click).

    It names the key file, never a key: a command line is visible to every user.

    >>> pool_command("tcp://127.0.0.1:5000", "zmq-0", 2, Path("/run/k.keys"))[-7:]
    ['--url', 'tcp://127.0.0.1:5000', '--pool-id', 'zmq-0', '--workers=2', '--key-file', '/run/k.keys']
    >>> pool_command("tcp://127.0.0.1:5000", "zmq-0", 2, task_usage=False)[-1]
    '--no-task-usage'
    """
    run_pool = python_starting("from plait.backends.zmq._pool_start import command; command()")
    keys = [] if key_file is None else [KEY_FILE_OPTION, str(key_file)]
    unmeasured = [] if task_usage else [NO_TASK_USAGE_OPTION]
    return [*run_pool, "--url", url, "--pool-id", pool_id, f"--workers={workers}", *keys, *unmeasured]


def pool_in(
    packed: Packed | None, url: str, workers: int, key_file: Path | None, pool_id: str, *, task_usage: bool = True
) -> list[str]:
    """``pool_command``, run in the environment ``packed`` if one was."""
    command = pool_command(url, pool_id, workers, key_file, task_usage=task_usage)
    return command if packed is None else packed.command(command)


class Blocks:
    """The pools started for one executor, by pool id, and the provider jobs behind them.

    ``command(pool_id)`` is the argv of the pool a block runs.
    """

    def __init__(self, provider: Provider, label: str, command: Callable[[str], Sequence[str]]) -> None:
        self.provider = provider
        self.label = label
        self.command = command
        self.jobs: dict[str, str] = {}  # pool id -> job id, for blocks not known to be over
        self.submitted: dict[str, str] = {}  # pool id -> job id, of every block ever started
        self.registered: set[str] = set()  # blocks whose pool has registered
        self.failed_in_a_row = 0  # blocks that ended without registering since the last pool that did
        self._count = 0
        self._submitting = 0
        self._lock = threading.Lock()  # the executor calls in from worker threads

    @property
    def workers_per_block(self) -> int:
        return self.provider.workers_per_block

    def scale_out(self, blocks: int) -> list[str]:
        """Start ``blocks`` more pools (never beyond ``max_blocks``); their pool ids."""
        started = []
        for _ in range(blocks):
            with self._lock:
                # Count submissions under way too: two callers must not both take the last slot.
                if len(self.jobs) + self._submitting >= self.provider.max_blocks:
                    break
                pool_id = f"{self.label}-{self._count}"
                self._count += 1
                self._submitting += 1
            try:
                job_id = self.provider.submit(self.command(pool_id), job_name=f"plait-{pool_id}")
            finally:
                with self._lock:
                    self._submitting -= 1
            with self._lock:
                self.jobs[pool_id] = job_id
                self.submitted[pool_id] = job_id
            started.append(pool_id)
        return started

    @property
    def starting(self) -> int:
        """Blocks submitted whose pool has not registered yet."""
        with self._lock:
            return sum(pool_id not in self.registered for pool_id in self.jobs)

    def register(self, pool_id: str) -> None:
        """The block's pool connected: blocks work again, whatever failed before."""
        with self._lock:
            self.registered.add(pool_id)
            self.failed_in_a_row = 0

    def failed(self, pool_id: str, state: JobState) -> str:
        """Count a block that ended before its pool registered; what to tell the user about it."""
        with self._lock:
            self.failed_in_a_row += 1
        job_id = self.submitted.get(pool_id, "?")
        where = "see its output"
        output_paths = getattr(self.provider, "output_paths", None)  # batch providers know their files
        if output_paths is not None:
            stdout, stderr = output_paths(f"plait-{pool_id}")
            where = f"see its stdout {stdout} and stderr {stderr}"
        return (
            f"{self.label}: block {pool_id} ({self.provider.label} job {job_id}) ended ({state.value}) "
            f"before its pool registered; {where}"
        )

    def ended(self) -> dict[str, JobState]:
        """The blocks whose jobs have finished since last asked, with how they ended."""
        with self._lock:
            jobs = dict(self.jobs)
        if not jobs:
            return {}
        states = self.provider.status(list(jobs.values()))
        over = {p: states[j] for p, j in jobs.items() if states.get(j, JobState.UNKNOWN).finished}
        with self._lock:
            for pool_id in over:
                self.jobs.pop(pool_id, None)
        return over

    def cancel(self, pool_ids: Sequence[str]) -> None:
        """Stop these blocks' jobs (a lost or drained pool)."""
        with self._lock:
            job_ids = [self.jobs.pop(p) for p in pool_ids if p in self.jobs]
        if job_ids:
            self.provider.cancel(job_ids)

    def stop(self, pool_id: str, within: float) -> bool:
        """Cancel this block's job and wait, up to ``within`` seconds, until the provider
        says it has ended: whether it has (a lost pool's tasks wait for this to retry)."""
        with self._lock:
            job_id = self.jobs.pop(pool_id, None)
        if job_id is None:
            return True  # ended already, and ``ended`` said so
        self.provider.cancel([job_id])
        deadline, pause = time.monotonic() + within, 0.02
        while not self.provider.status([job_id]).get(job_id, JobState.UNKNOWN).finished:
            if time.monotonic() + pause > deadline:
                return False
            time.sleep(pause)
            pause = min(2 * pause, 1.0)  # a batch scheduler's status is a command: not too often
        return True

    def cancel_all(self) -> None:
        self.cancel(list(self.jobs))

    def end_all(self, grace: float = 2.0) -> None:
        """Cancel every job, after ``grace`` seconds for the pools told to shut down to exit."""
        deadline = time.monotonic() + grace
        while self.jobs and time.monotonic() < deadline:
            self.ended()
            time.sleep(0.02)
        self.cancel_all()
