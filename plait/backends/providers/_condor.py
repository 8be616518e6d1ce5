"""CondorProvider: an HTCondor submit description beside the job's script, ``condor_submit``/``condor_q``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import attrs

from plait.backends.providers._base import JobState
from plait.backends.providers._scheduler import BatchProvider

__all__ = ["CondorProvider", "parse_condor"]

# JobStatus codes of the job ClassAd
_STATES = {
    "1": JobState.PENDING,  # Idle
    "2": JobState.RUNNING,
    "3": JobState.CANCELLED,  # Removed
    "4": JobState.COMPLETED,
    "5": JobState.HELD,
    "6": JobState.RUNNING,  # Transferring output
    "7": JobState.HELD,  # Suspended
}


def parse_condor(stdout: str) -> dict[str, JobState]:
    """States from ``condor_q``/``condor_history -af:j JobStatus ExitCode``; a non-zero exit is FAILED.

    >>> parse_condor("12.0 2 undefined\\n13.0 4 0\\n14.0 4 1\\n")
    ... # doctest: +NORMALIZE_WHITESPACE
    {'12.0': <JobState.RUNNING: 'running'>, '13.0': <JobState.COMPLETED: 'completed'>,
     '14.0': <JobState.FAILED: 'failed'>}
    """
    states = {}
    for line in stdout.splitlines():
        fields = line.split()
        if len(fields) < 2 or "." not in fields[0]:
            continue
        state = _STATES.get(fields[1], JobState.UNKNOWN)
        if state is JobState.COMPLETED and len(fields) > 2 and fields[2] != "0":
            state = JobState.FAILED
        states[fields[0]] = state
    return states


@attrs.define(kw_only=True)
class CondorProvider(BatchProvider):
    """Blocks as HTCondor vanilla-universe jobs (one node each).

    HTCondor has no header lines: ``job_script`` is the executable script, and
    ``submit_description`` the submit file, to which ``scheduler_options`` lines (e.g.
    ``'requirements = (OpSysMajorVer == 9)'``) are added. The walltime becomes a
    ``periodic_remove`` expression, so a job past it ends as CANCELLED.
    """

    scheduler = "htcondor"
    directive = ""
    commands = ("condor_submit", "condor_q", "condor_rm")
    tolerated = ("matched no jobs", "Couldn't find")

    def __attrs_post_init__(self) -> None:
        if self.nodes_per_block != 1:
            raise ValueError(f"CondorProvider(nodes_per_block={self.nodes_per_block}): HTCondor jobs run on one node")
        super().__attrs_post_init__()

    def header_lines(self, job_name: str) -> list[str]:
        return []  # everything goes in the submit description

    def submit_description(self, job_name: str) -> str:
        """The submit file for the job called ``job_name`` (its script is ``<job_dir>/<job_name>.sh``)."""
        stdout, stderr = self.output_paths(job_name)
        lines = [
            "universe = vanilla",
            f"executable = {self.job_dir / f'{job_name}.sh'}",
            f"batch_name = {job_name}",
            f"output = {stdout}",
            f"error = {stderr}",
            f"log = {self.job_dir / f'{job_name}.log'}",
            f"request_cpus = {self.cores_per_node}",
            f"periodic_remove = (JobStatus == 2) && ((time() - EnteredCurrentStatus) > {self.walltime_seconds})",
        ]
        if self.account:
            lines.append(f"accounting_group = {self.account}")
        return "\n".join([*lines, *self.scheduler_options, "queue 1"]) + "\n"

    def submit_command(self, script: Path, job_name: str) -> tuple[list[str], Path | None]:
        description = script.with_suffix(".sub")
        description.write_text(self.submit_description(job_name))
        return ["condor_submit", "-terse", str(description)], None

    def parse_job_id(self, stdout: str) -> str:
        return stdout.split(maxsplit=1)[0]  # "-terse" prints "<first id> - <last id>"

    def status_command(self, job_ids: Sequence[str]) -> list[str]:
        return ["condor_q", *job_ids, "-af:j", "JobStatus", "ExitCode"]

    parse_status = staticmethod(parse_condor)

    def confirm_commands(self, job_ids: Sequence[str]) -> list[list[str]]:
        return [["condor_history", *job_ids, "-af:j", "JobStatus", "ExitCode"]]

    def cancel_command(self, job_ids: Sequence[str]) -> list[str]:
        return ["condor_rm", *job_ids]
