"""PBSProProvider: ``#PBS`` scripts, ``qsub``/``qstat -x -f -F json``/``qdel``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from plait.backends.providers._base import JobState
from plait.backends.providers._scheduler import BatchProvider, format_walltime

__all__ = ["PBSProProvider", "parse_pbs_json"]

_LIVE = {
    "Q": JobState.PENDING,
    "W": JobState.PENDING,
    "T": JobState.PENDING,
    "M": JobState.PENDING,
    "H": JobState.HELD,
    "S": JobState.HELD,
    "U": JobState.HELD,
    "R": JobState.RUNNING,
    "E": JobState.RUNNING,
    "B": JobState.RUNNING,
}
_KILLED_BY_WALLTIME = -29  # JOB_EXEC_KILL_WALLTIME
_KILLED_BY_SIGNAL = 256  # an Exit_status above this is 256 + the signal that ended the job


def _ended(job: dict[str, Any]) -> JobState:
    """How a finished (``F``) job ended, from its ``Exit_status``.

    >>> [_ended({"Exit_status": s}).name for s in (0, 1, -29, 271)] + [_ended({}).name]
    ['COMPLETED', 'FAILED', 'TIMEOUT', 'CANCELLED', 'CANCELLED']
    """
    status = job.get("Exit_status")
    if status is None:  # deleted before it ever ran
        return JobState.CANCELLED
    if status == 0:
        return JobState.COMPLETED
    if status == _KILLED_BY_WALLTIME:
        return JobState.TIMEOUT
    if status > _KILLED_BY_SIGNAL:
        return JobState.CANCELLED
    return JobState.FAILED


def parse_pbs_json(stdout: str) -> dict[str, JobState]:
    """States from ``qstat -x -f -F json``: ``job_state``, and ``Exit_status`` once finished."""
    if not stdout.strip():
        return {}
    jobs: dict[str, dict[str, Any]] = json.loads(stdout).get("Jobs", {})
    return {job_id: _state(job) for job_id, job in jobs.items()}


def _state(job: dict[str, Any]) -> JobState:
    state = job.get("job_state", "")
    return _ended(job) if state in ("F", "X") else _LIVE.get(state, JobState.UNKNOWN)


@attrs.define(kw_only=True)
class PBSProProvider(BatchProvider):
    """Blocks as PBS Pro / OpenPBS jobs: ``select`` chunks of one node each."""

    scheduler = "pbspro"
    directive = "#PBS"
    commands = ("qsub", "qstat", "qdel")
    tolerated = ("Unknown Job Id",)
    cancel_tolerated = ("Job has finished",)
    summary_fields = ("queue", "account", "walltime")

    queue: str | None = None

    def header(self, job_name: str, stdout: Path, stderr: Path) -> list[str]:
        lines = [
            f"-N {job_name}",
            f"-o {stdout}",
            f"-e {stderr}",
            f"-l select={self.nodes_per_block}:ncpus={self.cores_per_node}",
            "-l place=scatter",
            f"-l walltime={format_walltime(self.walltime_seconds)}",
        ]
        if self.queue:
            lines.append(f"-q {self.queue}")
        if self.account:
            lines.append(f"-A {self.account}")
        return lines

    def submit_command(self, script: Path, job_name: str) -> tuple[list[str], Path | None]:
        return ["qsub", str(script)], None

    def parse_job_id(self, stdout: str) -> str:
        return stdout.strip()  # "1234.server"

    def status_command(self, job_ids: Sequence[str]) -> list[str]:
        return ["qstat", "-x", "-f", "-F", "json", *job_ids]

    parse_status = staticmethod(parse_pbs_json)

    def cancel_command(self, job_ids: Sequence[str]) -> list[str]:
        return ["qdel", *job_ids]
