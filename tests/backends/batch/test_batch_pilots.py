"""ZMQExecutor with SlurmProvider: worker pools as pilot jobs on the real single-node Slurm."""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

import pytest

import plait as pl
from plait.backends.providers import JobState
from tests.backends.batch.support import FAST, avg, cancel_a_pilot_mid_run, in_job, inside
from tests.waiting import wait_for

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm"), pytest.mark.timeout(150)]


def provider(tmp_path: Path, **options: object) -> pl.SlurmProvider:
    settings: dict[str, object] = {"partition": "debug", "walltime": "00:05:00", "job_dir": tmp_path / "jobs"}
    return pl.SlurmProvider(**{**settings, **options})  # type: ignore[arg-type]


def test_pi_on_pilot_blocks_scales_out_on_queue_depth(tmp_path: Path) -> None:
    slurm = provider(tmp_path, init_blocks=1, max_blocks=2)
    executor = pl.ZMQExecutor(provider=slurm, **FAST)  # type: ignore[arg-type]
    darts = [(random.random(), random.random()) for _ in range(200)]
    with pl.Runtime([executor]) as rt:
        estimate = rt.run(avg(*[inside(x, y) for x, y in darts]))
        done = rt.run(pl.gather(*[in_job(0.3, i, str(tmp_path)) for i in range(16)]))
        assert executor.blocks is not None
        blocks = dict(executor.blocks.submitted)
    assert estimate == sum(4 if math.hypot(x, y) < 1 else 0 for x, y in darts) / 200
    assert [i for i, _ in done] == list(range(16))
    assert len(blocks) == 2, "one block was not enough for 16 tasks: a second was submitted"
    assert {job for _, job in done} <= set(blocks.values())


def test_scancel_of_a_pilot_mid_run_retries_its_tasks_on_a_new_block(tmp_path: Path) -> None:
    cancel_a_pilot_mid_run(provider(tmp_path, init_blocks=1, max_blocks=1), tmp_path, ["scancel"])


def test_blocks_that_never_register_fail_the_run_naming_their_output(tmp_path: Path) -> None:
    broken = provider(tmp_path, init_blocks=1, max_blocks=1, worker_init="echo cannot start >&2; exit 3")
    executor = pl.ZMQExecutor(provider=broken, max_failed_blocks=2, **FAST)  # type: ignore[arg-type]
    with pl.Runtime([executor]) as rt, pytest.raises(RuntimeError) as failure:
        rt.run(in_job(0, 0, str(tmp_path)))
    message = str(failure.value)
    assert "before its pool registered" in message and "2 blocks in a row" in message
    stderr = message.split("stderr ")[1].split(" ", maxsplit=1)[0]
    assert Path(stderr).read_text() == "cannot start\n"


def test_idle_pools_are_drained_and_their_blocks_end(tmp_path: Path) -> None:
    slurm = provider(tmp_path, init_blocks=2, min_blocks=1, max_blocks=2)
    executor = pl.ZMQExecutor(provider=slurm, idle_timeout=1.0, **FAST)  # type: ignore[arg-type]
    with pl.Runtime([executor]) as rt:
        wait_for(lambda: len(executor.pools) == 2, what="both pools to register")
        assert rt.run(in_job(0, 0, str(tmp_path)))[0] == 0
        assert executor.blocks is not None
        blocks = executor.blocks
        wait_for(lambda: len(executor.pools) == 1 and len(blocks.jobs) == 1, what="one idle pool to be drained")
        gone = set(blocks.submitted) - set(blocks.jobs)
        assert len(gone) == 1, "min_blocks=1: exactly one block stays"
        job = blocks.submitted[gone.pop()]
        wait_for(lambda: slurm.status([job])[job].finished, what="the drained block's job to end")
        assert slurm.status([job])[job] in (JobState.COMPLETED, JobState.CANCELLED)
        time.sleep(1.5)  # past idle_timeout again: the last block stays
        assert len(executor.pools) == 1


def test_a_pool_near_its_walltime_is_drained_and_replaced_without_losing_tasks(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    slurm = provider(tmp_path, walltime="00:01:00", init_blocks=1, max_blocks=1)
    executor = pl.ZMQExecutor(provider=slurm, walltime_margin=57, **FAST)  # type: ignore[arg-type]
    with pl.Runtime([executor], lost_retries=0) as rt:  # a task cut short would fail the run
        done = rt.run(pl.gather(*[in_job(0.5, i, str(marks)) for i in range(12)]))
        assert executor.blocks is not None
        blocks = list(executor.blocks.submitted.values())
    assert [i for i, _ in done] == list(range(12))
    assert len(blocks) >= 2, "the first block was drained 3 s in, before its walltime; another took over"
    assert {job for _, job in done} <= set(blocks)
    assert slurm.status(blocks[:1])[blocks[0]] in (JobState.COMPLETED, JobState.CANCELLED)


def test_pilot_blocks_on_an_unknown_partition_fail_the_run_naming_it(tmp_path: Path) -> None:
    nowhere = provider(tmp_path, partition="nope", init_blocks=0, max_blocks=1)
    executor = pl.ZMQExecutor(provider=nowhere, **FAST)  # type: ignore[arg-type]
    with pl.Runtime([executor]) as rt, pytest.raises(RuntimeError, match=r"could not start a block.*partition='nope'"):
        rt.run(in_job(0, 0, str(tmp_path)))
