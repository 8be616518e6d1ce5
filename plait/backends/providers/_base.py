"""What a provider is: something that starts, watches and stops jobs that run a command.

A provider knows nothing about tasks. The ZeroMQ executor asks it to start worker
pools (``plait worker ...``) as jobs in blocks; the batch executor asks it to start
one job per task.
"""

from __future__ import annotations

import enum
import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

__all__ = ["KEY_FILE_OPTION", "Command", "JobState", "Provider", "argv_of", "move_key_file", "single_line"]

# A job's command: an argument list, or one shell-style line, split as a shell would split it.
Command = str | Sequence[str]

# How a pool's command names its key file (``--keys`` is its older name). A provider whose
# hosts may not share the driver's file system finds the file by it and hands it over itself.
KEY_FILE_OPTION = "--key-file"
_KEY_FILE_OPTIONS = (KEY_FILE_OPTION, "--keys")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def single_line(owner: str, field: str, value: str) -> None:
    """Refuse ``value`` if it holds a newline or another control character: written into a
    job script it would end its line, and the rest would run as a shell command.

    >>> single_line("SlurmProvider", "partition", "debug\\nrm -rf ~")
    Traceback (most recent call last):
    ...
    ValueError: SlurmProvider: partition='debug\\nrm -rf ~' holds a control character (a newline?); it must be one line
    """
    if _CONTROL.search(value):
        raise ValueError(f"{owner}: {field}={value!r} holds a control character (a newline?); it must be one line")


def argv_of(owner: str, command: Command) -> list[str]:
    """``command`` as an argument list: a string is one command line, split as a shell would.

    Taking a string as a sequence would make each character an argument.

    >>> argv_of("P", "python -m plait.pool --key-file '/tmp/a b.keys'")
    ['python', '-m', 'plait.pool', '--key-file', '/tmp/a b.keys']
    >>> argv_of("P", ("true",))
    ['true']
    >>> argv_of("P", "  ")
    Traceback (most recent call last):
    ...
    ValueError: P: the command is empty
    """
    argv = shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]
    if not argv:
        raise ValueError(f"{owner}: the command is empty")
    return argv


class JobState(enum.Enum):
    """Where a job is in its life, in words every scheduler maps to."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    HELD = "held"
    UNKNOWN = "unknown"

    @property
    def finished(self) -> bool:
        """The job will not run (again)."""
        return self in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED, JobState.TIMEOUT)


@runtime_checkable
class Provider(Protocol):
    """Starts jobs that run ``command`` and reports on them, in batches.

    ``submit`` returns the job id; ``status`` answers for many jobs in one call (a job
    the scheduler no longer knows is UNKNOWN until confirmed); ``cancel`` stops jobs.
    ``init_blocks``/``min_blocks``/``max_blocks`` bound how many jobs an executor keeps;
    ``workers_per_block`` is how many worker processes one job runs.
    ``walltime_seconds`` is how long a job may run (None: no limit): an executor
    drains a block's pools before its job is ended.

    Executors pass ``command`` as an argument list; plait's own providers take one line too.
    A provider whose jobs run on the driver's host and see its files may say so with a
    ``shares_host`` attribute that is true (LocalProvider's, without a container): a
    ZMQExecutor's pools then connect over a unix socket rather than TCP.
    """

    label: str
    init_blocks: int
    min_blocks: int
    max_blocks: int
    workers_per_block: int

    @property
    def walltime_seconds(self) -> int | None: ...

    def submit(self, command: Sequence[str], job_name: str, env: Mapping[str, str] | None = None) -> str: ...

    def status(self, job_ids: Sequence[str]) -> dict[str, JobState]: ...

    def cancel(self, job_ids: Sequence[str]) -> None: ...


def move_key_file(owner: str, command: Sequence[str], there: str) -> tuple[list[str], str | None]:
    """``command`` with the key file it names replaced by ``there`` (where the pool will
    read it), and the file's path here, or None if it names none.

    >>> move_key_file("P", ["plait", "worker", "--key-file", "/tmp/run.keys"], "-")
    (['plait', 'worker', '--key-file', '-'], '/tmp/run.keys')
    >>> move_key_file("P", ["plait", "worker", "--keys=/tmp/run.keys"], "/mnt/k")
    (['plait', 'worker', '--keys=/mnt/k'], '/tmp/run.keys')
    """
    argv, found = list(command), []
    for i, arg in enumerate(argv):
        option, equals, value = arg.partition("=")
        if option not in _KEY_FILE_OPTIONS:
            continue
        if equals:
            found.append(value)
            argv[i] = f"{option}={there}"
        elif i + 1 < len(argv):
            found.append(argv[i + 1])
            argv[i + 1] = there
    if len(found) > 1:
        raise ValueError(f"{owner}: the command names {len(found)} key files ({KEY_FILE_OPTION}): {found}")
    return argv, found[0] if found else None
