"""BatchProvider: what every batch-system provider shares.

A provider renders a job script (a shebang, the scheduler's header lines, the user's own
``scheduler_options``, the environment, ``worker_init``, then the launched command), writes
it to ``job_dir`` and submits it; it polls many jobs with one command and cancels them.
Each scheduler subclass adds only its directives, its command lines and its output
parsers. Scheduler commands run as argv lists with a timeout, never through a shell.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar, Literal

import attrs

from plait.backends.providers._base import Command, JobState, argv_of, single_line
from plait.backends.providers._container import Container, in_container

__all__ = ["BatchProvider", "Launcher", "SchedulerError", "format_walltime", "parse_walltime", "single_line"]

Launcher = Literal["single", "srun", "mpiexec"]
_LAUNCHERS = ("single", "srun", "mpiexec")
_WALLTIME = re.compile(r"^(?:(\d+)-)?(\d+):(\d{2}):(\d{2})$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SchedulerError(RuntimeError):
    """A scheduler command is missing, refused a request, or did not answer in time."""

    __module__ = "plait"  # tracebacks name it as users import it, not by its private module


def parse_walltime(text: str) -> int:
    """Seconds in a ``[D-]HH:MM:SS`` walltime.

    >>> parse_walltime("01:30:00"), parse_walltime("2-00:00:05")
    (5400, 172805)
    >>> parse_walltime("90")
    Traceback (most recent call last):
    ...
    ValueError: walltime '90' is not [D-]HH:MM:SS (e.g. '01:30:00' or '2-00:00:00')
    """
    match = _WALLTIME.match(text.strip()) if isinstance(text, str) else None
    if match is None or int(match[3]) >= 60 or int(match[4]) >= 60:
        raise ValueError(f"walltime {text!r} is not [D-]HH:MM:SS (e.g. '01:30:00' or '2-00:00:00')")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def format_walltime(seconds: int) -> str:
    """``HH:MM:SS``, hours unbounded: what PBS, Grid Engine and Slurm all read.

    >>> format_walltime(172805)
    '48:00:05'
    """
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}"


def _options(value: str | Sequence[str]) -> tuple[str, ...]:
    """``scheduler_options`` given as one option or several, each stripped, without empty ones."""
    items = [value] if isinstance(value, str) else list(value)
    return tuple(item.strip() for item in items if item.strip())


def _absolute(path: str | os.PathLike[str]) -> Path:
    return Path(path).absolute()


def _positive(instance: BatchProvider, attribute: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"{type(instance).__name__}({attribute.name}={value!r}): must be a positive integer")


def _non_negative(instance: BatchProvider, attribute: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or value < 0:
        raise ValueError(f"{type(instance).__name__}({attribute.name}={value!r}): must be an integer >= 0")


@attrs.define(kw_only=True)
class BatchProvider:
    """Options every scheduler understands; subclasses add theirs and the commands.

    ``walltime`` is ``[D-]HH:MM:SS``. A block is one job of ``nodes_per_block`` nodes
    with ``cores_per_node`` cores each; ``launcher`` starts the command once per node
    (``"srun"``, ``"mpiexec"``) or once (``"single"``, one-node blocks only).
    ``scheduler_options`` are extra header lines, one per item (the directive prefix is
    added when missing); ``worker_init`` is shell run before the command, e.g. activating
    an env. Every text option but ``worker_init`` must be one line: a newline in, say, a
    partition would make the rest of it a shell line of the script. ``worker_init`` is
    the user's own shell code, lines and all, and goes in verbatim.
    Scripts and the jobs' stdout/stderr go to ``job_dir``, which must be on a file
    system the compute nodes share. ``check_commands=False`` skips looking for the
    scheduler's commands on PATH: to render and review scripts on another machine.
    ``container`` runs the command in an image, ``job_dir`` and the working directory bound in.
    """

    scheduler: ClassVar[str]  # its name, e.g. "slurm": the provider's label
    directive: ClassVar[str]  # the header prefix, e.g. "#SBATCH"
    commands: ClassVar[tuple[str, ...]]  # submit, status, cancel: checked on PATH at construction
    tolerated: ClassVar[tuple[str, ...]] = ()  # stderr of a status call that only means "no such job"
    cancel_tolerated: ClassVar[tuple[str, ...]] = ()  # ... and of a cancel of a job that already ended
    summary_fields: ClassVar[tuple[str, ...]] = ("account", "walltime")  # named when a submit is refused

    account: str | None = None
    walltime: str = attrs.field(default="01:00:00")
    nodes_per_block: int = attrs.field(default=1, validator=_positive)
    cores_per_node: int = attrs.field(default=1, validator=_positive)
    init_blocks: int = attrs.field(default=1, validator=_non_negative)
    min_blocks: int = attrs.field(default=0, validator=_non_negative)
    max_blocks: int = attrs.field(default=1, validator=_positive)
    scheduler_options: tuple[str, ...] = attrs.field(default=(), converter=_options)
    worker_init: str = ""
    launcher: Launcher = "single"
    job_dir: Path = attrs.field(default=Path(".plait/jobs"), converter=_absolute)
    command_timeout: float = 60.0
    check_commands: bool = True
    container: Container | None = None
    label: str = attrs.field(init=False)
    # The workers of one pool: a pool runs on every node of a block (the launcher starts one per node).
    workers_per_block: int = attrs.field(init=False)

    @walltime.validator
    def _check_walltime(self, attribute: attrs.Attribute[str], value: str) -> None:
        try:
            parse_walltime(value)
        except ValueError as error:
            raise ValueError(f"{type(self).__name__}(walltime={value!r}): {error}") from None

    def __attrs_post_init__(self) -> None:
        name = type(self).__name__
        self.label = self.scheduler
        self.workers_per_block = self.cores_per_node
        self._check_single_lines()
        if not self.min_blocks <= self.max_blocks or self.init_blocks > self.max_blocks:
            raise ValueError(
                f"{name}: need min_blocks <= max_blocks and init_blocks <= max_blocks, got "
                f"init_blocks={self.init_blocks} min_blocks={self.min_blocks} max_blocks={self.max_blocks}"
            )
        if self.launcher not in _LAUNCHERS:
            raise ValueError(f"{name}(launcher={self.launcher!r}): must be one of {', '.join(_LAUNCHERS)}")
        if self.launcher == "single" and self.nodes_per_block > 1:
            raise ValueError(
                f"{name}(nodes_per_block={self.nodes_per_block}): launcher='single' starts the command on "
                f"one node only; use launcher='srun' or 'mpiexec' for multi-node blocks"
            )
        for command in self.commands if self.check_commands else ():
            if shutil.which(command) is None:
                raise SchedulerError(
                    f"{name}: the scheduler command {command!r} is not on PATH; is {self.label} installed "
                    f"here (or its module loaded)?"
                )

    def _check_single_lines(self) -> None:
        name = type(self).__name__
        for field in attrs.fields(type(self)):
            value = getattr(self, field.name)
            if field.name != "worker_init" and isinstance(value, (str, Path)):
                single_line(name, field.name, str(value))
        for option in self.scheduler_options:
            single_line(name, "scheduler_options", option)

    # -- what a job is -----------------------------------------------------------------

    @property
    def walltime_seconds(self) -> int:
        """The walltime in seconds."""
        return parse_walltime(self.walltime)

    def output_paths(self, job_name: str) -> tuple[Path, Path]:
        """Where the job called ``job_name`` writes its stdout and stderr."""
        return self.job_dir / f"{job_name}.out", self.job_dir / f"{job_name}.err"

    def job_script(self, command: Command, job_name: str, env: Mapping[str, str] | None = None) -> str:
        """The script ``submit`` would submit, without submitting anything."""
        owner = type(self).__name__
        single_line(owner, "job_name", job_name)
        command = argv_of(owner, command)
        header = self.header_lines(job_name)
        exports = [f"export {_env_name(key)}={shlex.quote(value)}" for key, value in (env or {}).items()]
        init = [self.worker_init.strip("\n")] if self.worker_init.strip() else []  # verbatim: it may hold heredocs
        body = [*exports, *init, self.launch(in_container(self.container, command, env, [self.job_dir]))]
        return "\n".join(["#!/bin/bash", *header, "", *body]) + "\n"

    def header_lines(self, job_name: str) -> list[str]:
        """The script's header: the scheduler's directives, then the user's ``scheduler_options``."""
        stdout, stderr = self.output_paths(job_name)
        header = [f"{self.directive} {option}" for option in self.header(job_name, stdout, stderr)]
        return header + [self._directive_line(option) for option in self.scheduler_options]

    def launch(self, command: Sequence[str]) -> str:
        """The command line that starts ``command`` once per node of the block."""
        text = shlex.join(command)
        if self.launcher == "srun":
            return f"srun --nodes={self.nodes_per_block} --ntasks-per-node=1 {text}"
        if self.launcher == "mpiexec":
            return f"mpiexec -n {self.nodes_per_block} -ppn 1 {text}"
        return text

    def _directive_line(self, option: str) -> str:
        return option if option.startswith("#") else f"{self.directive} {option}"

    # -- talking to the scheduler ------------------------------------------------------

    def submit(self, command: Command, job_name: str, env: Mapping[str, str] | None = None) -> str:
        """Write the job's script to ``job_dir`` and submit it; the scheduler's job id."""
        self.job_dir.mkdir(parents=True, exist_ok=True)
        script = self.job_dir / f"{job_name}.sh"
        script.write_text(self.job_script(command, job_name, env))
        script.chmod(0o755)
        argv, stdin = self.submit_command(script, job_name)
        try:
            out = self._run(argv, stdin=stdin)
        except SchedulerError as error:
            raise SchedulerError(f"{self.label} refused job {job_name!r} ({self._summary()}): {error}") from None
        return self.parse_job_id(out)

    def status(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        """The state of every job, from one scheduler call (plus one to confirm vanished jobs)."""
        if not job_ids:
            return {}
        found = self.parse_status(self._run(self.status_command(job_ids), tolerate=self.tolerated))
        states = {job_id: found.get(job_id, JobState.UNKNOWN) for job_id in job_ids}
        gone = [job_id for job_id, state in states.items() if state is JobState.UNKNOWN]
        for command in self.confirm_commands(gone) if gone else ():
            try:
                confirmed = self.parse_confirmed(self._run(command, tolerate=self.tolerated))
            except SchedulerError:  # no accounting here: the job stays UNKNOWN
                continue
            states.update({job_id: confirmed[job_id] for job_id in gone if job_id in confirmed})
        return states

    def cancel(self, job_ids: Sequence[str]) -> None:
        """Ask the scheduler to stop these jobs (ones that already ended are ignored)."""
        if job_ids:
            self._run(self.cancel_command(job_ids), tolerate=(*self.tolerated, *self.cancel_tolerated))

    def _run(self, argv: Sequence[str], *, stdin: Path | None = None, tolerate: Sequence[str] = ()) -> str:
        """The command's stdout; SchedulerError when it fails, unless its stderr is tolerated."""
        try:
            with open(stdin) if stdin is not None else open(os.devnull) as source:
                done = subprocess.run(
                    list(argv), stdin=source, capture_output=True, text=True, timeout=self.command_timeout, check=False
                )
        except subprocess.TimeoutExpired:
            raise SchedulerError(f"`{shlex.join(argv)}` did not answer within {self.command_timeout} s") from None
        except OSError as error:
            raise SchedulerError(f"`{shlex.join(argv)}` could not run: {error}") from None
        said = done.stderr + done.stdout  # qdel, for one, says "does not exist" on stdout
        if done.returncode != 0 and not any(text in said for text in tolerate):
            detail = done.stderr.strip() or done.stdout.strip() or "no output"
            raise SchedulerError(f"`{shlex.join(argv)}` failed with exit code {done.returncode}: {detail}")
        return done.stdout

    def _summary(self) -> str:
        return ", ".join(
            f"{field.name}={getattr(self, field.name)!r}"
            for field in attrs.fields(type(self))
            if field.name in self.summary_fields and getattr(self, field.name) is not None
        )

    # -- what each scheduler adds ------------------------------------------------------

    def header(self, job_name: str, stdout: Path, stderr: Path) -> list[str]:
        """The scheduler's own directives, without the prefix."""
        raise NotImplementedError

    def submit_command(self, script: Path, job_name: str) -> tuple[list[str], Path | None]:
        """The submit argv, and a file to feed on its stdin (LSF reads scripts there)."""
        raise NotImplementedError

    def parse_job_id(self, stdout: str) -> str:
        raise NotImplementedError

    def status_command(self, job_ids: Sequence[str]) -> list[str]:
        raise NotImplementedError

    def parse_status(self, stdout: str) -> dict[str, JobState]:
        raise NotImplementedError

    def confirm_commands(self, job_ids: Sequence[str]) -> list[list[str]]:
        """Commands that tell how jobs gone from the queue ended (accounting), if any."""
        return []

    def parse_confirmed(self, stdout: str) -> dict[str, JobState]:
        """What ``confirm_commands`` said; the same format as the status call by default."""
        return self.parse_status(stdout)

    def cancel_command(self, job_ids: Sequence[str]) -> list[str]:
        raise NotImplementedError


def _env_name(key: str) -> str:
    if not _ENV_NAME.match(key):
        raise ValueError(f"environment variable name {key!r} is not a valid shell name")
    return key
