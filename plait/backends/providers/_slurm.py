"""SlurmProvider: ``#SBATCH`` scripts, ``sbatch``/``squeue``/``scancel``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import attrs

from plait.backends.providers._base import JobState
from plait.backends.providers._scheduler import BatchProvider

__all__ = ["SlurmProvider", "parse_squeue"]

# squeue's and sacct's long state names; anything else (e.g. a future Slurm's) is UNKNOWN.
_STATES = {
    "PENDING": JobState.PENDING,
    "REQUEUED": JobState.PENDING,
    "CONFIGURING": JobState.RUNNING,
    "RUNNING": JobState.RUNNING,
    "COMPLETING": JobState.RUNNING,
    "SIGNALING": JobState.RUNNING,
    "RESIZING": JobState.RUNNING,
    "STAGE_OUT": JobState.RUNNING,
    "COMPLETED": JobState.COMPLETED,
    "FAILED": JobState.FAILED,
    "NODE_FAIL": JobState.FAILED,
    "BOOT_FAIL": JobState.FAILED,
    "OUT_OF_MEMORY": JobState.FAILED,
    "SPECIAL_EXIT": JobState.FAILED,
    "PREEMPTED": JobState.FAILED,
    "CANCELLED": JobState.CANCELLED,
    "REVOKED": JobState.CANCELLED,
    "TIMEOUT": JobState.TIMEOUT,
    "DEADLINE": JobState.TIMEOUT,
    "SUSPENDED": JobState.HELD,
    "STOPPED": JobState.HELD,
    "REQUEUE_HOLD": JobState.HELD,
    "REQUEUE_FED": JobState.PENDING,
    "RESV_DEL_HOLD": JobState.HELD,
}


def parse_squeue(stdout: str) -> dict[str, JobState]:
    """States from ``squeue --format=%i|%T|%r`` (or ``sacct --parsable2 --format=JobID,State``).

    A pending job whose reason is a hold is HELD.

    >>> parse_squeue("41|RUNNING|None\\n42|PENDING|JobHeldUser\\n43|CANCELLED by 0\\n")
    ... # doctest: +NORMALIZE_WHITESPACE
    {'41': <JobState.RUNNING: 'running'>, '42': <JobState.HELD: 'held'>, '43': <JobState.CANCELLED: 'cancelled'>}
    """
    states = {}
    for line in stdout.splitlines():
        fields = line.strip().split("|")
        if len(fields) < 2 or not fields[0]:
            continue
        job_id, state, reason = fields[0], fields[1].split()[0] if fields[1].strip() else "", fields[2:]
        mapped = _STATES.get(state, JobState.UNKNOWN)
        if mapped is JobState.PENDING and reason and reason[0].startswith("JobHeld"):
            mapped = JobState.HELD
        states[job_id] = mapped
    return states


@attrs.define(kw_only=True)
class SlurmProvider(BatchProvider):
    """Blocks as Slurm jobs.

    >>> print(SlurmProvider(partition="debug", walltime="00:10:00", check_commands=False)
    ...       .job_script(["python", "-c", "print(1)"], "demo"))  # doctest: +ELLIPSIS
    #!/bin/bash
    #SBATCH --job-name=demo
    #SBATCH --output=/.../demo.out
    #SBATCH --error=/.../demo.err
    #SBATCH --nodes=1
    #SBATCH --ntasks-per-node=1
    #SBATCH --cpus-per-task=1
    #SBATCH --time=00:10:00
    #SBATCH --partition=debug
    <BLANKLINE>
    python -c 'print(1)'
    <BLANKLINE>
    """

    scheduler = "slurm"
    directive = "#SBATCH"
    commands = ("sbatch", "squeue", "scancel")
    tolerated = ("Invalid job id specified",)
    summary_fields = ("partition", "account", "walltime")

    partition: str | None = None

    def header(self, job_name: str, stdout: Path, stderr: Path) -> list[str]:
        lines = [
            f"--job-name={job_name}",
            f"--output={stdout}",
            f"--error={stderr}",
            f"--nodes={self.nodes_per_block}",
            "--ntasks-per-node=1",
            f"--cpus-per-task={self.cores_per_node}",
            f"--time={self._time()}",
        ]
        if self.partition:
            lines.append(f"--partition={self.partition}")
        if self.account:
            lines.append(f"--account={self.account}")
        return lines

    def _time(self) -> str:
        days, rest = divmod(self.walltime_seconds, 86400)
        hours, rest = divmod(rest, 3600)
        clock = f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
        return f"{days}-{clock}" if days else clock

    def submit_command(self, script: Path, job_name: str) -> tuple[list[str], Path | None]:
        return ["sbatch", "--parsable", str(script)], None

    def parse_job_id(self, stdout: str) -> str:
        # --parsable prints "<id>" or "<id>;<cluster>"
        return stdout.strip().split(";")[0]

    def status_command(self, job_ids: Sequence[str]) -> list[str]:
        return ["squeue", "--noheader", "--states=all", f"--jobs={','.join(job_ids)}", "--format=%i|%T|%r"]

    parse_status = staticmethod(parse_squeue)

    def confirm_commands(self, job_ids: Sequence[str]) -> list[list[str]]:
        # Gone from the controller's memory (MinJobAge): only accounting still knows.
        jobs = ",".join(job_ids)
        return [["sacct", "--noheader", "--parsable2", "--allocations", f"--jobs={jobs}", "--format=JobID,State"]]

    def cancel_command(self, job_ids: Sequence[str]) -> list[str]:
        return ["scancel", *job_ids]
