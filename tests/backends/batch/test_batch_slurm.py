"""BatchExecutor and SlurmProvider on the real single-node Slurm of .ci/slurm-up."""

from __future__ import annotations

import math
import os
import random
import subprocess
import time
from pathlib import Path

import pytest

import plait as pl
from plait.backends import TaskTimeout, WorkerLost
from plait.backends._batch import BatchExecutor
from plait.backends.providers import JobState, SchedulerError, SlurmProvider
from tests.backends.batch.support import avg, inside
from tests.waiting import wait_for_line

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm"), pytest.mark.timeout(120)]


@pl.app
def where() -> str:
    return os.environ.get("SLURM_JOB_ID", "not in a Slurm job")


@pl.app
def broken(x: int) -> int:
    raise ValueError(f"no good: {x}")


@pl.app(timeout=1)
def sleepy(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@pl.app
def first_attempt_hangs(marker: str) -> str:
    """Writes its job id and hangs the first time; returns its job id the second."""
    job = os.environ["SLURM_JOB_ID"]
    if not os.path.exists(marker):
        Path(marker).write_text(f"{job}\n")
        time.sleep(100)
    return job


def executor(tmp_path: Path, **options: object) -> BatchExecutor:
    provider = SlurmProvider(partition="debug", walltime="00:05:00", max_blocks=4, job_dir=tmp_path / "jobs", **options)
    return BatchExecutor(provider, directory=tmp_path / "batch", poll_interval=0.2)


def test_pi_one_job_per_dart(tmp_path: Path) -> None:
    darts = [(random.random(), random.random()) for _ in range(8)]
    with pl.Runtime(executors=[executor(tmp_path)]) as rt:
        estimate = rt.run(avg(*[inside(x, y) for x, y in darts]))
        job = rt.run(where())
    assert estimate == sum(4 if math.hypot(x, y) < 1 else 0 for x, y in darts) / 8
    assert job.isdigit()  # it ran inside a Slurm job, not in this process
    assert not any((tmp_path / "batch").rglob("*.task")), "task files are removed once read"


def test_a_task_error_comes_back_with_its_type(tmp_path: Path) -> None:
    with pl.Runtime(executors=[executor(tmp_path)]) as rt, pytest.raises(ValueError, match="no good: 3"):
        rt.run(broken(3))


def test_a_task_past_its_timeout_is_ended_in_its_job(tmp_path: Path) -> None:
    with pl.Runtime(executors=[executor(tmp_path)]) as rt, pytest.raises(TaskTimeout, match="timeout of 1 s"):
        rt.run(sleepy(30))


def test_unknown_partition_is_a_clear_error_not_a_hang(tmp_path: Path) -> None:
    provider = SlurmProvider(partition="nope", job_dir=tmp_path / "jobs")
    refused = r"partition='nope'.*invalid partition specified: nope"
    with (
        pl.Runtime(executors=[BatchExecutor(provider, directory=tmp_path)]) as rt,
        pytest.raises(SchedulerError, match=refused),
    ):
        rt.run(where())


def test_scancel_mid_run_reruns_the_task_in_a_new_job(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    with pl.Runtime(executors=[executor(tmp_path)], lost_retries=1) as rt:
        future = rt.submit(first_attempt_hangs(str(marker)))
        killed = wait_for_line(marker).strip()
        subprocess.run(["scancel", killed], check=True, timeout=30)
        rerun = future.result(timeout=60)
    assert rerun.isdigit() and rerun != killed


def test_a_job_killed_without_retries_names_its_output_files(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    with pl.Runtime(executors=[executor(tmp_path)], lost_retries=0) as rt:
        future = rt.submit(first_attempt_hangs(str(marker)))
        killed = wait_for_line(marker).strip()
        subprocess.run(["scancel", killed], check=True, timeout=30)
        with pytest.raises(WorkerLost) as lost:
            future.result(timeout=60)
    message = str(lost.value)
    assert f"batch job {killed} (slurm) ended as CANCELLED" in message
    assert str(tmp_path / "jobs") in message and ".out" in message and ".err" in message


def test_provider_states_of_real_jobs(tmp_path: Path) -> None:
    provider = SlurmProvider(job_dir=tmp_path)
    running = provider.submit(["sleep", "60"], "plait-test-running")
    done = provider.submit(["true"], "plait-test-done")
    failed = provider.submit(["false"], "plait-test-failed")
    deadline = time.monotonic() + 60
    wanted = {running: JobState.RUNNING, done: JobState.COMPLETED, failed: JobState.FAILED, "999999": JobState.UNKNOWN}
    while (states := provider.status(list(wanted))) != wanted:
        assert time.monotonic() < deadline, f"states {states}, wanted {wanted}"
        time.sleep(0.2)
    provider.cancel([running])
    while (state := provider.status([running])[running]) is not JobState.CANCELLED:
        assert time.monotonic() < deadline, f"cancelled job is {state}"
        time.sleep(0.2)
    assert provider.output_paths("plait-test-done")[0].exists()
