"""LocalProvider: "jobs" are sessions on this machine."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence

from plait._tracebacks import user_facing
from plait.backends._reaper import session_alive
from plait.backends.providers._base import Command, JobState, argv_of
from plait.backends.providers._container import Container, in_container

__all__ = ["LocalProvider"]


@user_facing
class LocalProvider:
    """Runs each block as a local process, in a session of its own.

    A job has ended when its process has and nothing is left in its session: a pool's
    launcher, which kills what the pool's tasks started before it exits, stays there.
    Cancelling a job kills its process group: that pool; its launcher, in a group of
    its own, then cleans up. ``workers`` is how many worker processes each block runs;
    by default one per core.
    ``container`` runs each block in an image, the working directory bound in.
    Without one, a block ``shares_host`` with the driver: its pool may connect over a
    unix socket, which a container would not see.
    """

    label = "local"
    walltime_seconds = None  # a local pool may run as long as its run does

    def __init__(
        self,
        workers: int | None = None,
        *,
        init_blocks: int = 1,
        min_blocks: int = 0,
        max_blocks: int = 1,
        container: Container | None = None,
    ) -> None:
        if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
            raise ValueError(f"LocalProvider(workers={workers!r}): need a whole number of workers, at least one")
        if not 0 <= min_blocks <= max_blocks or init_blocks > max_blocks:
            raise ValueError(
                f"LocalProvider: need 0 <= min_blocks <= max_blocks and init_blocks <= max_blocks, "
                f"got init={init_blocks} min={min_blocks} max={max_blocks}"
            )
        self.workers_per_block = workers or os.cpu_count() or 1
        self.init_blocks, self.min_blocks, self.max_blocks = init_blocks, min_blocks, max_blocks
        self.container = container.installed() if container is not None else None
        self._jobs: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def shares_host(self) -> bool:
        return self.container is None

    def submit(self, command: Command, job_name: str, env: Mapping[str, str] | None = None) -> str:
        argv = in_container(self.container, argv_of("LocalProvider", command), env)
        process = subprocess.Popen(argv, env={**os.environ, **(env or {})}, start_new_session=True)
        job_id = str(process.pid)
        self._jobs[job_id] = process
        return job_id

    def status(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        states = {}
        for job_id in job_ids:
            process = self._jobs.get(job_id)
            if process is None:
                states[job_id] = JobState.UNKNOWN
                continue
            code = process.poll()
            if code is None or session_alive(process.pid):
                states[job_id] = JobState.RUNNING
            elif code == 0:
                states[job_id] = JobState.COMPLETED
            elif code < 0 and -code in (signal.SIGKILL, signal.SIGTERM):
                states[job_id] = JobState.CANCELLED
            else:
                states[job_id] = JobState.FAILED
        return states

    def cancel(self, job_ids: Sequence[str]) -> None:
        for job_id in job_ids:
            process = self._jobs.get(job_id)
            if process is not None and process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
