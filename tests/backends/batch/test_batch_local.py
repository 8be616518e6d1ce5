"""BatchExecutor on LocalProvider: the task and result files, without a cluster."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

import plait as pl
from plait.backends import WorkerLost
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(60)


@pl.app
def cube(x: int) -> tuple[int, int]:
    return x**3, os.getpid()


@pl.app
def hang(marker: str) -> None:
    Path(marker).write_text(str(os.getpid()))
    time.sleep(60)


@pl.app
def echo(value: object) -> object:
    return value


def executor(tmp_path: Path) -> pl.BatchExecutor:
    return pl.BatchExecutor(pl.LocalProvider(workers=1), max_jobs=3, directory=tmp_path, poll_interval=0.1)


def test_each_task_runs_in_its_own_job(tmp_path: Path) -> None:
    with pl.Runtime([executor(tmp_path)]) as rt:
        done = rt.run(pl.gather(*[cube(x) for x in range(5)]))
    assert [value for value, _ in done] == [x**3 for x in range(5)]
    assert len({pid for _, pid in done}) == 5 and os.getpid() not in {pid for _, pid in done}
    assert not any(tmp_path.iterdir()), "the run's task and result files are gone after shutdown"


def test_a_job_that_dies_without_a_result_is_a_lost_worker(tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    with pl.Runtime([executor(tmp_path / "batch")], lost_retries=0) as rt:
        future = rt.submit(hang(str(marker)))
        wait_for(lambda: marker.exists() and marker.read_text(), what="the task to start")
        os.kill(int(marker.read_text()), 9)
        with pytest.raises(WorkerLost, match=r"batch job \d+ \(local\) ended as CANCELLED without writing a result"):
            future.result(timeout=30)


def test_an_argument_that_cannot_be_pickled_is_named(tmp_path: Path) -> None:
    with pl.Runtime([executor(tmp_path)]) as rt, pytest.raises(TypeError, match="argument 'value'"):
        rt.run(echo(threading.Lock()))


def _refuse() -> None:
    raise RuntimeError("this value cannot be rebuilt here")


class Unreadable:
    """Pickles fine in the job; unpickling it (in the driver) raises."""

    def __reduce__(self) -> tuple[object, tuple[()]]:
        return _refuse, ()


@pl.app
def made_in_the_job() -> Unreadable:
    return Unreadable()


def test_a_result_the_driver_cannot_read_fails_its_task_not_the_executor(tmp_path: Path) -> None:
    with pl.Runtime([executor(tmp_path)]) as rt:
        with pytest.raises(TypeError, match=r"made_in_the_job: its result could not be unpickled in the driver"):
            rt.run(made_in_the_job())
        assert rt.run(cube(2))[0] == 8, "the executor still works"
