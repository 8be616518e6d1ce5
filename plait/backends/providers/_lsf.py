"""LSFProvider: ``#BSUB`` scripts fed to ``bsub`` on stdin, ``bjobs``/``bkill``."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

import attrs

from plait.backends.providers._base import JobState
from plait.backends.providers._scheduler import BatchProvider

__all__ = ["LSFProvider", "parse_bjobs"]

_STATES = {
    "PEND": JobState.PENDING,
    "WAIT": JobState.PENDING,
    "PROV": JobState.PENDING,
    "RUN": JobState.RUNNING,
    "DONE": JobState.COMPLETED,
    "EXIT": JobState.FAILED,
    "ZOMBI": JobState.FAILED,
    "PSUSP": JobState.HELD,
    "USUSP": JobState.HELD,
    "SSUSP": JobState.HELD,
    "UNKWN": JobState.UNKNOWN,
}
_SUBMITTED = re.compile(r"Job <(\d+)> is submitted")
# bjobs' exit reasons for a job killed by bkill, and for one past its run limit (-W)
_CANCELLED = ("TERM_OWNER", "TERM_ADMIN", "TERM_FORCE_OWNER", "TERM_FORCE_ADMIN")
_TIMEOUT = ("TERM_RUNLIMIT",)


def parse_bjobs(stdout: str) -> dict[str, JobState]:
    """States from ``bjobs -o "jobid stat exit_reason delimiter='|'" -noheader``.

    >>> parse_bjobs("7|RUN|-\\n8|EXIT|TERM_RUNLIMIT: job killed after reaching LSF run time limit\\n")
    {'7': <JobState.RUNNING: 'running'>, '8': <JobState.TIMEOUT: 'timeout'>}
    """
    states = {}
    for line in stdout.splitlines():
        fields = line.strip().split("|")
        if len(fields) < 2 or not fields[0].isdigit():
            continue
        state = _STATES.get(fields[1], JobState.UNKNOWN)
        reason = fields[2] if len(fields) > 2 else ""
        if state is JobState.FAILED and reason.startswith(_CANCELLED):
            state = JobState.CANCELLED
        elif state is JobState.FAILED and reason.startswith(_TIMEOUT):
            state = JobState.TIMEOUT
        states[fields[0]] = state
    return states


@attrs.define(kw_only=True)
class LSFProvider(BatchProvider):
    """Blocks as IBM Spectrum LSF jobs: ``nodes_per_block * cores_per_node`` slots, ``ptile`` per host."""

    scheduler = "lsf"
    directive = "#BSUB"
    commands = ("bsub", "bjobs", "bkill")
    tolerated = ("is not found",)
    cancel_tolerated = ("Job has already finished",)
    summary_fields = ("queue", "account", "walltime")

    queue: str | None = None

    def header(self, job_name: str, stdout: Path, stderr: Path) -> list[str]:
        lines = [
            f"-J {job_name}",
            f"-o {stdout}",
            f"-e {stderr}",
            f"-n {self.nodes_per_block * self.cores_per_node}",
            f'-R "span[ptile={self.cores_per_node}]"',
            f"-W {math.ceil(self.walltime_seconds / 60)}",  # minutes
        ]
        if self.queue:
            lines.append(f"-q {self.queue}")
        if self.account:
            lines.append(f"-P {self.account}")
        return lines

    def submit_command(self, script: Path, job_name: str) -> tuple[list[str], Path | None]:
        return ["bsub"], script  # bsub reads #BSUB lines only from a script on its stdin

    def parse_job_id(self, stdout: str) -> str:
        match = _SUBMITTED.search(stdout)
        if match is None:
            raise ValueError(f"bsub printed no job id: {stdout.strip()!r}")
        return match[1]

    def status_command(self, job_ids: Sequence[str]) -> list[str]:
        return ["bjobs", "-a", "-noheader", "-o", "jobid stat exit_reason delimiter='|'", *job_ids]

    parse_status = staticmethod(parse_bjobs)

    def cancel_command(self, job_ids: Sequence[str]) -> list[str]:
        return ["bkill", *job_ids]
