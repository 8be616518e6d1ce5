"""ProcessExecutor losing a worker for real (SIGKILL): what the task's WorkerLost says."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

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
