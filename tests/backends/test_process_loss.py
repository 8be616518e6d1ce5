"""ProcessExecutor losing a worker for real (SIGKILL): what the task's WorkerLost says."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import plait as pl
from plait.backends import TaskSpec
from tests.processes import gone


def naps(pid_file: str) -> None:
    """Say which process runs this task, then wait to be killed."""
    Path(pid_file).write_text(f"{os.getpid()}\n")
    time.sleep(60)


async def _lost(pid_file: Path) -> BaseException | None:
    """Run ``naps`` as task 7 on one worker, SIGKILL that worker; the error its task ends with."""
    executor = pl.ProcessExecutor(1, usage_interval=None)
    await executor.start()
    try:
        spec = TaskSpec(7, "naps", b"naps", naps, (str(pid_file),), {})
        future = executor.submit(spec)
        async with asyncio.timeout(30):
            while not pid_file.exists() or not pid_file.read_text().endswith("\n"):
                await asyncio.sleep(0.02)
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
            return (await future).error
    finally:
        await executor.shutdown()


def test_a_worker_killed_under_its_task_fails_it_with_a_worker_lost_naming_app_task_and_signal(tmp_path: Path) -> None:
    error = asyncio.run(_lost(tmp_path / "pid"))
    assert isinstance(error, pl.WorkerLost)
    message = str(error)
    assert "died (killed by SIGKILL) while running naps (task 7)" in message, message
    assert message.startswith("worker processes/0:"), message


def leaves_a_sleeper() -> int:
    """Start a process in this worker's session and return without waiting for it."""
    return subprocess.Popen(["sleep", "120"]).pid


async def _stopped_after(task: Callable[[], int], workers: int) -> list[int]:
    executor = pl.ProcessExecutor(workers, usage_interval=None)
    await executor.start()
    try:
        specs = [TaskSpec(i, task.__name__, task.__name__.encode(), task, (), {}) for i in range(2 * workers)]
        results = await asyncio.gather(*map(executor.submit, specs))
    finally:
        await executor.shutdown()
    return [result.value for result in results]


def test_a_shutdown_never_kills_by_the_pid_of_a_worker_it_may_have_reaped(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stopped worker's pid is free once reaped, maybe another process's by then: its reader,
    seeing the socket close, killed by it as the launcher reaped it. The launcher kills its session."""
    import plait.backends._processes as processes

    killed: list[int] = []
    kill = processes._kill
    monkeypatch.setattr(processes, "_kill", lambda pid: (killed.append(pid), kill(pid))[1])
    assert len(asyncio.run(_stopped_after(os.getpid, 2))) == 4
    assert killed == [], f"killed by pid at shutdown: {killed}"


def test_what_a_task_left_running_ends_with_its_worker_at_shutdown() -> None:
    sleepers = asyncio.run(_stopped_after(leaves_a_sleeper, 1))
    assert all(gone(pid) for pid in sleepers), "a process a task started outlived the executor"
