"""BatchExecutor, pilot blocks and GridEngineProvider on the real single-node Grid Engine of .ci/sge-up."""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

import pytest

import plait as pl
from plait.backends.providers import JobState, SchedulerError
from tests.backends.batch.support import avg, cancel_a_pilot_mid_run, inside

pytestmark = [pytest.mark.gridengine, pytest.mark.usefixtures("gridengine"), pytest.mark.timeout(150)]


def provider(tmp_path: Path, **options: object) -> pl.GridEngineProvider:
    settings: dict[str, object] = {"queue": "all.q", "walltime": "00:05:00", "job_dir": tmp_path / "jobs"}
    return pl.GridEngineProvider(**{**settings, **options})  # type: ignore[arg-type]


def test_pi_one_job_per_dart(tmp_path: Path) -> None:
    darts = [(random.random(), random.random()) for _ in range(6)]
    executor = pl.BatchExecutor(provider(tmp_path, max_blocks=6), directory=tmp_path / "batch", poll_interval=0.2)
    with pl.Runtime([executor]) as rt:
        estimate = rt.run(avg(*[inside(x, y) for x, y in darts]))
    assert estimate == sum(4 if math.hypot(x, y) < 1 else 0 for x, y in darts) / 6


def test_qdel_of_a_pilot_mid_run_retries_its_tasks_on_a_new_block(tmp_path: Path) -> None:
    cancel_a_pilot_mid_run(provider(tmp_path, init_blocks=1, max_blocks=1), tmp_path, ["qdel"])


def test_provider_states_of_real_jobs_confirmed_by_qacct(tmp_path: Path) -> None:
    sge = provider(tmp_path)
    held = pl.GridEngineProvider(job_dir=tmp_path, scheduler_options="-h")
    commands = [["sleep", "60"], ["true"], ["false"]]
    running, done, failed = (sge.submit(argv, f"plait-test-{i}") for i, argv in enumerate(commands))
    waiting = held.submit(["true"], "plait-test-held")
    try:
        wanted = {
            running: JobState.RUNNING,
            done: JobState.COMPLETED,
            failed: JobState.FAILED,
            waiting: JobState.HELD,
            "999999": JobState.UNKNOWN,
        }
        deadline = time.monotonic() + 60
        while (states := sge.status(list(wanted))) != wanted:
            assert time.monotonic() < deadline, f"states {states}, wanted {wanted}"
            time.sleep(0.3)
        sge.cancel([running])
        while (state := sge.status([running])[running]) is not JobState.CANCELLED:
            assert time.monotonic() < deadline, f"deleted job is {state}"
            time.sleep(0.3)
    finally:
        sge.cancel([running, waiting])


def test_unknown_queue_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SchedulerError, match=r"queue='nope'.*nope"):
        provider(tmp_path, queue="nope").submit(["true"], "plait-test-queue")
