"""Nothing a task starts outlives it: not its worker's kill, its pool's, nor its driver's.

Each test runs a shell command that escapes what a process-group kill reaches (its own
session or process group) or outlives a killed parent, leaves the pid of a ``sleep 300``
in a file, and checks that pid is gone after the kill.
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

import plait as pl
from plait.backends._reaper import kill_tree
from plait.backends.providers import JobState
from tests.backends.zmq.zmq_apps import FAST
from tests.processes import gone
from tests.waiting import wait_for

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the kill reaches that far on Linux only")

# Commands that leave the worker's process group: the pid of their sleep is written to {pid}.
ESCAPES = {
    "setsid": "echo $$ > {pid}; exec setsid sleep 300",  # a session of its own
    "timeout": "exec timeout 300 sh -c 'echo $$ > {pid}; exec sleep 300'",  # a process group of its own
}


def executor(kind: str) -> pl.ProcessExecutor | pl.ZMQExecutor:
    if kind == "processes":
        return pl.ProcessExecutor(1, usage_interval=None)
    return pl.ZMQExecutor(provider=pl.LocalProvider(workers=1), usage_interval=None, **FAST)


def pid_in(file: Path) -> int:
    wait_for(lambda: file.exists() and file.read_text().endswith("\n"), timeout=30, what=f"a pid in {file}")
    return int(file.read_text())


@pytest.mark.parametrize(
    ("kind", "escape", "stop"),
    [
        ("processes", "setsid", "timeout"),
        ("processes", "timeout", "cancel"),
        ("zmq", "timeout", "timeout"),
        ("zmq", "setsid", "cancel"),
    ],
)
def test_a_command_in_a_session_or_group_of_its_own_dies_with_its_task(
    tmp_path: Path, kind: str, escape: str, stop: str
) -> None:
    pidfile = tmp_path / "pid"

    @pl.shell(timeout=2 if stop == "timeout" else None)
    def escaping() -> str:
        return ESCAPES[escape].format(pid=pidfile)

    with pl.Runtime([executor(kind)], progress=False) as rt:
        future = rt.submit(escaping())
        sleeper = pid_in(pidfile)
        if stop == "cancel":
            future.cancel()
        with pytest.raises((pl.TaskTimeout, concurrent.futures.CancelledError)):
            future.result(30)
        assert gone(sleeper, within=5), f"the {escape} command outlived its task's {stop}"


DRIVER = """
import sys, time
import plait as pl

@pl.shell
def hold(directory: str) -> str:
    # One sleep in the worker's session, one in a session of its own.
    return f"sleep 300 & echo $! > {directory}/plain; setsid sleep 300 & echo $! > {directory}/own; wait"

runtime = pl.Runtime([pl.ProcessExecutor(1, usage_interval=None)], progress=False).start()
runtime.submit(hold(sys.argv[1]))
time.sleep(300)
"""


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_the_commands_of_a_killed_driver_die_with_it(tmp_path: Path, signum: int) -> None:
    driver = subprocess.Popen([sys.executable, "-c", textwrap.dedent(DRIVER), str(tmp_path)])
    try:
        sleepers = [pid_in(tmp_path / "plain"), pid_in(tmp_path / "own")]
    finally:
        driver.send_signal(signum)
        driver.wait(30)
    assert [gone(pid, within=5) for pid in sleepers] == [True, True], f"commands outlived a driver killed by {signum}"


def test_a_killed_pools_command_dies_with_it_and_its_retry_never_runs_beside_it(tmp_path: Path) -> None:
    first, log = tmp_path / "first", tmp_path / "log"

    @pl.shell(retries=1)
    def once() -> str:
        # The first attempt sleeps; its retry says whether the first is still running.
        return (
            f"if [ -e {first} ]; then kill -0 $(cat {first}) 2>/dev/null && echo overlap >> {log}; "
            f"echo retry >> {log}; else echo $$ > {first}; exec sleep 300; fi"
        )

    zmq = executor("zmq")
    with pl.Runtime([zmq], progress=False) as rt:
        future = rt.submit(once())
        sleeper = pid_in(first)
        assert zmq.blocks is not None
        os.kill(int(zmq.blocks.jobs["zmq-0"]), signal.SIGKILL)  # a LocalProvider job id is the pool's pid
        started = time.monotonic()
        assert future.result(60).returncode == 0
    assert log.read_text() == "retry\n", "the retry ran while the first attempt's command still did"
    assert gone(sleeper, within=5), f"the command outlived its pool by {time.monotonic() - started:.1f} s and more"


def test_a_local_job_runs_until_nothing_is_left_in_its_session(tmp_path: Path) -> None:
    provider = pl.LocalProvider(workers=1)
    pidfile = tmp_path / "pid"
    job = provider.submit(["sh", "-c", f"sleep 300 & echo $! > {pidfile}"], job_name="left")
    sleeper = pid_in(pidfile)
    wait_for(lambda: provider._jobs[job].poll() is not None, what="the job's own process to exit")
    assert provider.status([job]) == {job: JobState.RUNNING}, "a job with a process left is over"
    os.kill(sleeper, signal.SIGKILL)
    wait_for(lambda: provider.status([job]) == {job: JobState.COMPLETED}, timeout=5, what="the job to end")


class HeldProvider(pl.LocalProvider):
    """A LocalProvider whose jobs do not end, as its scheduler sees them, until ``release``."""

    def __init__(self) -> None:
        super().__init__(workers=1, init_blocks=2, max_blocks=2)
        self.release = threading.Event()

    def status(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        held = not self.release.is_set()
        return {job: JobState.RUNNING if held else state for job, state in super().status(job_ids).items()}


def test_a_lost_pools_tasks_are_retried_only_once_its_job_has_ended(tmp_path: Path) -> None:
    first, log = tmp_path / "first", tmp_path / "log"

    @pl.shell(retries=1)
    def once() -> str:
        return f"if [ -e {first} ]; then echo retry >> {log}; else echo $$ > {first}; exec sleep 300; fi"

    provider = HeldProvider()
    zmq = pl.ZMQExecutor(provider=provider, usage_interval=None, heartbeat_period=0.2, heartbeat_threshold=10)
    with pl.Runtime([zmq], progress=False) as rt:
        wait_for(lambda: len(zmq.pools) == 2, what="both pools to register")
        future = rt.submit(once())
        pid_in(first)
        (victim,) = [pool.pool_id for pool in list(zmq._pools.values()) if pool.inflight]
        assert zmq.blocks is not None
        os.kill(int(zmq.blocks.jobs[victim]), signal.SIGKILL)
        wait_for(lambda: victim not in zmq.pools, what="the pool to be lost")
        time.sleep(0.5)
        assert not log.exists(), "the task was retried while its lost pool's job had not ended"
        provider.release.set()
        assert future.result(30).returncode == 0
    assert log.read_text() == "retry\n"


@pytest.mark.parametrize("pid", [0, 1, -5])
def test_kill_tree_refuses_what_cannot_be_a_worker(pid: int) -> None:
    with pytest.raises(ValueError, match="not a worker's pid"):
        kill_tree(pid)
