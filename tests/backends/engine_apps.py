"""Apps and helpers the Dask and Ray tests share; engine workers import this module by name."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

import plait as pl

PI_DARTS = [(0.1, 0.2), (0.9, 0.9), (0.5, 0.5), (0.7, 0.8), (0.3, 0.9), (0.99, 0.1)]


@pl.app
def inside(x: float, y: float) -> int:
    """The pi workflow's dart: 4 inside the quarter circle, else 0."""
    return 4 if x * x + y * y < 1 else 0


@pl.app
def avg(*xs: float) -> float:
    return sum(xs) / len(xs)


def pi_estimate() -> pl.Expr[float]:
    return avg(*[inside(x, y) for x, y in PI_DARTS])


# What pi_estimate gives: 4 of the 6 darts land inside.
PI_EXPECTED = 4 * 4 / 6


@pl.app
def napping(i: int, seconds: float, markers: str) -> tuple[int, int]:
    """Leaves a file named by its process id when it starts, then sleeps: a test knows whom to kill."""
    Path(markers, str(os.getpid())).touch()
    time.sleep(seconds)
    return i, os.getpid()


@pl.app
def in_ray_task(i: int, seconds: float = 0.0, fail: bool = False) -> tuple[int, str]:
    """Sleeps, then says which Ray task ran it: plait tasks packed together share one.

    With ``fail`` it raises instead, naming that Ray task.
    """
    import ray  # only ever runs on Ray's workers

    ray_task = ray.get_runtime_context().get_task_id()
    time.sleep(seconds)
    if fail:
        raise ValueError(f"no good: {i} in Ray task {ray_task}")
    return i, ray_task


@pl.app
def in_dask_task(i: int, seconds: float = 0.0, fail: bool = False, markers: str | None = None) -> tuple[int, str]:
    """Sleeps, then says which Dask task (its key) ran it: plait tasks packed together share one.

    With ``markers`` it first leaves a file there named by its process id; with ``fail`` it
    raises instead of returning, naming that Dask task.
    """
    import distributed  # only ever runs on Dask's workers

    dask_task = distributed.get_worker().get_current_task()
    if markers is not None:
        Path(markers, str(os.getpid())).touch()
    time.sleep(seconds)
    if fail:
        raise ValueError(f"no good: {i} in Dask task {dask_task}")
    return i, dask_task


@pl.app(resources={"licence": 1})
def licensed(i: int, seconds: float, markers: str) -> tuple[float, float]:
    """Needs the custom resource "licence": leaves a marker, sleeps, says when it ran."""
    started = time.time()
    Path(markers, f"licensed-{i}").touch()
    time.sleep(seconds)
    return started, time.time()


@pl.app
def touching(path: str) -> str:
    Path(path).touch()
    return path


@pl.app
def failing(x: int) -> int:
    raise ValueError(f"no good: {x}")


@pl.app
def unpicklable(x: int) -> Any:
    return threading.Lock()


class Events:
    """A Monitor that keeps (state, error) of every event."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, BaseException | None]] = []

    def task_event(self, state: str, task_id: int, name: str, key: bytes, **info: Any) -> None:
        self.seen.append((state, info.get("error")))

    def close(self) -> None:
        pass

    def retried_for(self, kind: type[BaseException]) -> list[BaseException]:
        return [e for s, e in self.seen if s == "retried" and isinstance(e, kind)]


def wait_for(condition: Callable[[], object], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.05)


def kill_a_worker_mid_run(
    executor: pl.Executor, markers: Path, *, known: bool = False, events: Events | None = None
) -> tuple[int, BaseException]:
    """SIGKILL the worker of a running task: the run must still complete, without it.

    With ``known``, the executor first runs naps of no time, enough to learn that napping
    is short (the first on a worker also imports this module), so one that packs short
    tasks packs the naps that follow. ``events`` sees the run's events. Returns the killed
    pid and the WorkerLost the lost task was retried for.
    """
    events = events or Events()
    with pl.Runtime(executors=[executor], monitor=events) as rt:
        if known:
            rt.run(pl.gather([napping(-i, 0.0, str(markers)) for i in range(1, 41)]), timeout=60)
            for marker in list(markers.iterdir()):  # their workers are no victims: they run nothing now
                marker.unlink()
        future = rt.submit(pl.gather([napping(i, 1.0, str(markers)) for i in range(4)]))
        wait_for(lambda: any(markers.iterdir()), "a task to start")
        victim = int(next(markers.iterdir()).name)
        psutil.Process(victim).send_signal(signal.SIGKILL)
        done = future.result(timeout=120)
    assert [i for i, _ in done] == [0, 1, 2, 3]
    assert victim not in {pid for _, pid in done}
    lost = events.retried_for(pl.WorkerLost)
    assert lost, f"no task was retried as lost: {events.seen}"
    return victim, lost[0]


def spec(task_id: int, app: pl.App[..., Any], *args: Any) -> pl.TaskSpec:
    """The task the runtime would submit for ``app(*args)``."""
    return pl.TaskSpec(task_id, app.name, app.identity, app.fn, args, {})


async def taught(executor: pl.Executor, app: pl.App[..., Any], *args: Any) -> None:
    """Start ``executor`` and run enough tasks of ``app`` for it to know they are short.

    The tasks run are ``app(-i, *args)``, with task ids -1 to -40.
    """
    await executor.start()
    await asyncio.wait_for(asyncio.gather(*(executor.submit(spec(-i, app, -i, *args)) for i in range(1, 41))), 60)
