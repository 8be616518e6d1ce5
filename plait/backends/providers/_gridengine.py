"""GridEngineProvider: ``#$`` scripts, ``qsub``/``qstat``/``qdel``, ``qacct`` for ended jobs."""

from __future__ import annotations

import getpass
import re
from collections.abc import Sequence
from pathlib import Path

import attrs

from plait.backends.providers._base import JobState
from plait.backends.providers._scheduler import BatchProvider, format_walltime

__all__ = ["GridEngineProvider", "parse_qacct", "parse_qstat"]


def _sge_state(code: str) -> JobState:
    """A job's state letters in ``qstat`` ("qw", "r", "hqw", "Eqw", "dr", ...).

    >>> [_sge_state(s).name for s in ("qw", "hqw", "r", "Eqw", "dr", "s")]
    ['PENDING', 'HELD', 'RUNNING', 'FAILED', 'CANCELLED', 'HELD']
    """
    if "E" in code:
        return JobState.FAILED
    if "d" in code:
        return JobState.CANCELLED
    if "h" in code or "s" in code or "S" in code or "T" in code:
        return JobState.HELD
    if "r" in code or "t" in code or "R" in code:
        return JobState.RUNNING
    if "q" in code or "w" in code:
        return JobState.PENDING
    return JobState.UNKNOWN


def parse_qstat(stdout: str) -> dict[str, JobState]:
    """States from plain ``qstat``: the job id is the first column, the state the fifth."""
    states = {}
    for line in stdout.splitlines():
        fields = line.split()
        if len(fields) >= 5 and fields[0].isdigit():
            states[fields[0]] = _sge_state(fields[4])
    return states


_KILLED = "100"  # qacct's "failed" code of a job ended by a signal after it started


def parse_qacct(stdout: str) -> dict[str, JobState]:
    """How ended jobs ended, from ``qacct -j``: ``failed`` and ``exit_status`` of each record.

    ``failed 100 : assumedly after job`` is a job killed while running (``qdel``).

    >>> parse_qacct("jobnumber    7\\nfailed       0\\nexit_status  0\\n"
    ...             "jobnumber    8\\nfailed       100 : assumedly after job\\nexit_status  137\\n"
    ...             "jobnumber    9\\nfailed       0\\nexit_status  1\\n")  # doctest: +NORMALIZE_WHITESPACE
    {'7': <JobState.COMPLETED: 'completed'>, '8': <JobState.CANCELLED: 'cancelled'>,
     '9': <JobState.FAILED: 'failed'>}
    """
    states: dict[str, JobState] = {}
    job_id, failed = "", "0"
    for line in stdout.splitlines():
        key, _, value = line.partition(" ")
        value = value.strip()
        if key == "jobnumber":
            job_id, failed = value, "0"
        elif key == "failed":
            failed = value.split()[0] if value else "0"
        elif key == "exit_status" and job_id:
            if failed == _KILLED:
                states[job_id] = JobState.CANCELLED
            else:
                ok = failed == "0" and value.split()[0] == "0"
                states[job_id] = JobState.COMPLETED if ok else JobState.FAILED
    return states


@attrs.define(kw_only=True)
class GridEngineProvider(BatchProvider):
    """Blocks as (Son of / Univa / Altair) Grid Engine jobs.

    ``queue`` is ``-q``; cores come from the parallel environment ``pe`` (``-pe pe N``).
    """

    scheduler = "gridengine"
    directive = "#$"
    commands = ("qsub", "qstat", "qdel")
    tolerated = ("not found",)
    cancel_tolerated = ("does not exist",)
    summary_fields = ("queue", "pe", "account", "walltime")

    queue: str | None = None
    pe: str = "smp"

    def header(self, job_name: str, stdout: Path, stderr: Path) -> list[str]:
        lines = [
            f"-N {job_name}",
            f"-o {stdout}",
            f"-e {stderr}",
            "-S /bin/bash",
            "-cwd",
            f"-l h_rt={format_walltime(self.walltime_seconds)}",
        ]
        if self.cores_per_node > 1:
            lines.append(f"-pe {self.pe} {self.cores_per_node}")
        if self.queue:
            lines.append(f"-q {self.queue}")
        if self.account:
            lines.append(f"-P {self.account}")
        return lines

    def submit_command(self, script: Path, job_name: str) -> tuple[list[str], Path | None]:
        return ["qsub", "-terse", str(script)], None

    def parse_job_id(self, stdout: str) -> str:
        # -terse prints "<id>" ("<id>.<tasks>" for an array job)
        return re.split(r"[.\s]", stdout.strip(), maxsplit=1)[0]

    def status_command(self, job_ids: Sequence[str]) -> list[str]:
        return ["qstat", "-u", getpass.getuser()]

    parse_status = staticmethod(parse_qstat)

    def confirm_commands(self, job_ids: Sequence[str]) -> list[list[str]]:
        return [["qacct", "-j", job_id] for job_id in job_ids]  # qacct answers for one job at a time

    parse_confirmed = staticmethod(parse_qacct)

    def cancel_command(self, job_ids: Sequence[str]) -> list[str]:
        return ["qdel", *job_ids]
