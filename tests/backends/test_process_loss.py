"""ProcessExecutor losing a worker for real (SIGKILL): what the task's WorkerLost says."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import plait as pl
from plait.backends import TaskSpec


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


async def _shut_down_after_work() -> list[int]:
    executor = pl.ProcessExecutor(2, usage_interval=None)
    await executor.start()
    try:
        specs = [TaskSpec(i, "getpid", b"getpid", os.getpid, (), {}) for i in range(20)]
        results = await asyncio.gather(*map(executor.submit, specs))
    finally:
        await executor.shutdown()
    return [result.value for result in results]


def test_a_shutdown_never_kills_by_the_pid_of_a_worker_it_may_have_reaped(monkeypatch: Any) -> None:
    """A stopped worker's pid is free once reaped, and may be another process's by then:
    its reader seeing the socket close must not kill by it (it did, racing the reap)."""
    import plait.backends._processes as processes

    killed: list[int] = []
    monkeypatch.setattr(processes, "_kill", killed.append)
    pids = asyncio.run(_shut_down_after_work())
    assert len(pids) == 20
    assert killed == [], f"killed by pid at shutdown: {killed}"
