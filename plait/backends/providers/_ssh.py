"""SSHProvider: one pool per host, started with the system's ``ssh``, no scheduler.

A job is an ``ssh`` client process on this machine running the pool on its host, in a
session of its own there; the client lives as long as the pool and what it left behind
hold the channel. The run's key file never reaches the host as a file nor appears in any
command line: its content goes down ssh's stdin, which the pool reads (``--key-file -``).
Cancelling ends the remote process group (the pool; its launcher, in a group of its own,
then kills the workers and what their tasks started) through a second ``ssh``.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from plait.backends.providers._base import Command, JobState, argv_of, move_key_file, single_line
from plait.backends.providers._scheduler import SchedulerError

__all__ = ["SSHProvider"]

# What the remote shell runs: a new session whose leader says its pid (the group to end on
# cancel), then becomes the pool, its output on stderr (stdout carried only that pid).
_SESSION = 'exec setsid -w sh -c \'echo "$$"; exec "$@" >&2\' plait-pool'
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CANCEL_SECONDS = 15.0


class _Job:
    def __init__(self, host: str, process: subprocess.Popen[bytes], group: int, stderr: Path) -> None:
        self.host, self.process, self.group, self.stderr = host, process, group, stderr
        self.cancelled = False
        self.unreached = False  # cancelled over a link that was down: whether it ended, nobody knows


class SSHProvider:
    """Starts one pool on each of ``hosts`` (Linux, with ``setsid``) with ``ssh``
    (``BatchMode=yes``: never a prompt).

    ``user`` logs in as that user (default: ssh's, from its config or yours); ``python``
    is the interpreter on the hosts, with plait installed (a name on the login PATH or a
    path; None: the driver's own path, for hosts that share its installation);
    ``worker_init`` is shell run on the host before the pool (``source env/bin/activate``);
    ``ssh_options`` are extra ssh arguments (``["-i", "~/.ssh/cluster", "-p", "2222"]``).
    ``workers`` is how many worker processes each host runs. ``log_dir`` keeps each
    pool's output after the run (default: a private directory made at the first submit).
    A host ssh cannot reach is a SchedulerError naming it, with ssh's own message; it is not tried again for
    ``retry_after`` seconds (``max_blocks`` counts the other hosts meanwhile), so one host
    down costs a run its pool there, not the run.
    """

    label = "ssh"
    walltime_seconds = None  # a pool on a host of one's own may run as long as its run does

    def __init__(
        self,
        hosts: Sequence[str],
        *,
        user: str | None = None,
        python: str | None = "python3",
        worker_init: str = "",
        ssh_options: Sequence[str] = (),
        workers: int = 1,
        log_dir: str | os.PathLike[str] | None = None,
        connect_timeout: float = 15.0,
        retry_after: float = 60.0,
    ) -> None:
        if isinstance(hosts, str) or not hosts:
            raise ValueError(f"SSHProvider(hosts={hosts!r}): need a list of one host or more")
        for field, value in [*(("hosts", h) for h in hosts), ("user", user or ""), ("python", python or "")]:
            single_line("SSHProvider", field, value)
            if value.startswith("-"):  # ssh would take it for an option
                raise ValueError(f"SSHProvider: {field}={value!r} must not start with '-'")
        if len(set(hosts)) != len(hosts):
            raise ValueError(f"SSHProvider(hosts={list(hosts)!r}): a host is listed twice; one pool per host")
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"SSHProvider(workers={workers!r}): need at least one worker")
        self.hosts = tuple(hosts)
        self.user, self.python, self.worker_init = user, python, worker_init
        self.ssh_options = tuple(ssh_options)
        self.workers_per_block = workers
        self.init_blocks = self.max_blocks = len(self.hosts)
        self.min_blocks = 0
        self.connect_timeout, self.retry_after = connect_timeout, retry_after
        self._unreachable: dict[str, float] = {}  # host -> when ssh last failed to reach it
        self.log_dir = Path(log_dir) if log_dir is not None else None  # made at the first submit
        self._jobs: dict[str, _Job] = {}

    def ssh(self, host: str, remote_command: str) -> list[str]:
        """The argv that runs ``remote_command`` (shell) on ``host``.

        >>> SSHProvider(["h"], user="me", ssh_options=["-p", "2222"]).ssh("h", "true")
        ['ssh', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=15', '-p', '2222', '-l', 'me', '--', 'h', 'true']
        """
        login = [] if self.user is None else ["-l", self.user]
        timeout = f"ConnectTimeout={max(1, round(self.connect_timeout))}"
        return ["ssh", "-o", "BatchMode=yes", "-o", timeout, *self.ssh_options, *login, "--", host, remote_command]

    def remote_command(self, command: Command, env: Mapping[str, str] | None = None) -> str:
        """The shell line the host runs for ``command``: ``worker_init``, the environment, the
        pool in a session of its own. The driver's interpreter becomes ``python``.

        >>> SSHProvider(["h1"]).remote_command([sys.executable, "-m", "x"], {"A": "b c"})
        'export A=\\'b c\\'\\nexec setsid -w sh -c \\'echo "$$"; exec "$@" >&2\\' plait-pool python3 -m x'
        """
        argv = argv_of("SSHProvider", command)
        if argv[0] == sys.executable and self.python is not None:
            argv[0] = self.python
        lines = [self.worker_init] if self.worker_init.strip() else []
        for name, value in (env or {}).items():
            if not _ENV_NAME.match(name):
                raise ValueError(f"SSHProvider: environment variable name {name!r} is not a shell name")
            lines.append(f"export {name}={shlex.quote(value)}")
        lines.append(f"{_SESSION} {shlex.join(argv)}")
        return "\n".join(lines)

    def submit(self, command: Command, job_name: str, env: Mapping[str, str] | None = None) -> str:
        host = self._free_host()
        command, keys = _keys_on_stdin(argv_of("SSHProvider", command))
        stderr, _ = self.output_paths(job_name)
        with stderr.open("wb") as log:
            process = subprocess.Popen(
                self.ssh(host, self.remote_command(command, env)),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, start_new_session=True,
            )  # fmt: skip
        assert process.stdin is not None and process.stdout is not None
        with contextlib.suppress(BrokenPipeError):  # ssh failed already: its message says why
            process.stdin.write(keys)
            process.stdin.close()
        group = self._remote_group(host, process, stderr)
        job_id = f"{host}:{group}"
        self._jobs[job_id] = _Job(host, process, group, stderr)
        return job_id

    def output_paths(self, job_name: str) -> tuple[Path, Path]:
        """Where a job's output goes: one file, the pool's stdout sent to its stderr."""
        if self.log_dir is None:
            self.log_dir = Path(tempfile.mkdtemp(prefix="plait-ssh-"))
        return self.log_dir / f"{job_name}.log", self.log_dir / f"{job_name}.log"

    def _free_host(self) -> str:
        """A host with no pool (one being cancelled counts as gone) that is not known unreachable."""
        busy = {job.host for job in self._jobs.values() if job.process.poll() is None and not job.cancelled}
        self._forget_unreachable()
        for host in self.hosts:
            if host not in busy and host not in self._unreachable:
                return host
        raise SchedulerError(f"SSHProvider: every host runs a pool or was unreachable ({', '.join(self.hosts)})")

    def _forget_unreachable(self) -> None:
        """Hosts unreachable for longer than ``retry_after`` are tried again."""
        now = time.monotonic()
        self._unreachable = {h: t for h, t in self._unreachable.items() if now - t < self.retry_after}
        self.max_blocks = len(self.hosts) - len(self._unreachable)

    def _remote_group(self, host: str, process: subprocess.Popen[bytes], stderr: Path) -> int:
        """The pid the remote session's leader printed, or a SchedulerError with ssh's message."""
        assert process.stdout is not None
        fd = process.stdout.fileno()
        line, deadline = b"", time.monotonic() + self.connect_timeout + 5
        while not line.endswith(b"\n") and time.monotonic() < deadline:
            if select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
                chunk = os.read(fd, 64)
                if not chunk:
                    break
                line += chunk
        process.stdout.close()  # the pool writes its output to stderr: nothing more comes
        if line.strip().isdigit():
            return int(line)
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait()
        self._unreachable[host] = time.monotonic()
        self._forget_unreachable()
        message = " ".join(stderr.read_text(errors="replace").split()) or f"ssh exited with code {process.returncode}"
        raise SchedulerError(f"SSHProvider: could not start a pool on host {host!r}: {message}")

    def status(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        self._forget_unreachable()
        return {job_id: self._state(self._jobs.get(job_id)) for job_id in job_ids}

    @staticmethod
    def _state(job: _Job | None) -> JobState:
        if job is None:
            return JobState.UNKNOWN
        code = job.process.poll()
        if code is None:
            return JobState.RUNNING
        if job.unreached:
            return JobState.UNKNOWN
        if job.cancelled:
            return JobState.CANCELLED
        return JobState.COMPLETED if code == 0 else JobState.FAILED

    def cancel(self, job_ids: Sequence[str]) -> None:
        """End each job's remote process group (all hosts at once), then its ssh client.

        A host that cannot be reached within the timeout is left to its pool, which exits
        on its own once it has not heard from the executor for the heartbeat threshold;
        its job's state is UNKNOWN from then on, never "ended".
        """
        jobs = [job for job in map(self._jobs.get, job_ids) if job is not None and job.process.poll() is None]
        killers = []
        for job in jobs:
            job.cancelled = True
            argv = self.ssh(job.host, f"kill -KILL -- -{job.group}")
            quiet = subprocess.DEVNULL
            killers.append(subprocess.Popen(argv, stdin=quiet, stdout=quiet, stderr=quiet))
        deadline = time.monotonic() + _CANCEL_SECONDS
        for job, killer in zip(jobs, killers, strict=True):
            try:
                reached = killer.wait(max(0.0, deadline - time.monotonic())) == 0
            except subprocess.TimeoutExpired:
                killer.kill()
                killer.wait()
                reached = False
            job.unreached = not reached
            try:  # once the group is gone, the channel closes; over a cut link it never does
                job.process.wait(max(0.0, deadline - time.monotonic()) if reached else 0.0)
            except subprocess.TimeoutExpired:
                job.process.kill()
                job.process.wait()


def _keys_on_stdin(command: Sequence[str]) -> tuple[list[str], bytes]:
    """``command`` reading its key file from stdin instead, and the file's content for stdin."""
    argv, key_file = move_key_file("SSHProvider", command, "-")
    return argv, b"" if key_file is None else Path(key_file).read_bytes()
