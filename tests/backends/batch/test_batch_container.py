"""Pilot and task jobs on the real Slurm that run inside a Charliecloud image."""

from __future__ import annotations

import os
from pathlib import Path

import attrs
import pytest

import plait as pl
from tests.backends.batch.support import FAST
from tests.backends.conftest import charliecloud, from_the_image, host_without_plait, packed, with_image_library
from tests.backends.environment_apps import where_plait_is

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm"), pytest.mark.timeout(120)]


@pl.app(pure=False)  # what it reads depends on where it runs
def where() -> tuple[str, str]:
    """The image's token (only the image has the file) and the Slurm job that ran the task."""
    return Path("/plait-image").read_text(), os.environ.get("SLURM_JOB_ID", "none")


def test_a_slurm_block_runs_its_pool_in_the_container(tmp_path: Path, charliecloud_image: tuple[Path, str]) -> None:
    image, token = charliecloud_image
    slurm = pl.SlurmProvider(
        partition="debug", walltime="00:05:00", job_dir=tmp_path / "jobs", container=charliecloud(image)
    )
    executor = pl.ZMQExecutor(provider=slurm, **FAST)  # type: ignore[arg-type]
    with pl.Runtime([executor]) as rt:
        seen, job = rt.run(where())
        assert executor.blocks is not None
        blocks = set(executor.blocks.submitted.values())
    assert seen == token
    assert job in blocks
    launch = (tmp_path / "jobs" / "plait-zmq-0.sh").read_text().splitlines()[-1]
    assert launch.startswith("ch-run ") and f" -b {tmp_path / 'jobs'} " in launch


def test_a_task_job_runs_in_the_container(tmp_path: Path, charliecloud_image: tuple[Path, str]) -> None:
    image, token = charliecloud_image
    container = charliecloud(image)
    # The task and result files' directory is outside the working directory here: bind it.
    container = attrs.evolve(container, binds=[*container.binds, str(tmp_path / "batch")])
    slurm = pl.SlurmProvider(partition="debug", walltime="00:05:00", job_dir=tmp_path / "jobs", container=container)
    executor = pl.BatchExecutor(provider=slurm, directory=tmp_path / "batch", poll_interval=0.2)
    with pl.Runtime([executor]) as rt:
        seen, job = rt.run(where())
    assert seen == token and job != "none"


def test_a_task_job_keeps_the_images_own_import_paths(tmp_path: Path, charliecloud_image: tuple[Path, str]) -> None:
    container = with_image_library(charliecloud_image[0])
    container = attrs.evolve(container, binds=[*container.binds, str(tmp_path / "batch")])
    slurm = pl.SlurmProvider(partition="debug", walltime="00:05:00", job_dir=tmp_path / "jobs", container=container)
    executor = pl.BatchExecutor(provider=slurm, directory=tmp_path / "batch", poll_interval=0.2)
    with pl.Runtime([executor]) as rt:
        assert rt.run(from_the_image()) == "image"


def test_a_task_job_runs_from_a_packed_environment_on_a_node_without_plait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, charliecloud_image: tuple[Path, str]
) -> None:
    image, token = charliecloud_image
    monkeypatch.chdir(tmp_path)  # plait's checkout is not bound: only the packed environment brings it
    slurm = pl.SlurmProvider(
        partition="debug", walltime="00:05:00", job_dir=tmp_path / "jobs", container=host_without_plait(image)
    )
    batch = {"directory": tmp_path / "batch", "poll_interval": 0.2}
    executor = pl.BatchExecutor(provider=slurm, environment=packed(tmp_path), **batch)  # type: ignore[arg-type]
    with pl.Runtime([executor]) as rt:
        plait_file, seen = rt.run(where_plait_is("/plait-image"))
    assert seen == token and plait_file.startswith(str(tmp_path / "cache"))
