"""Apps and helpers the Dask and Ray tests share; engine workers import this module by name."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

import plait as pl
from tests.waiting import wait_for

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


def _engine_task() -> tuple[str, str]:
    """Which engine task runs this code: ("Dask", its key) or ("Ray", its task id).

    Imports nothing new: a first import in a task (0.5 s of ``distributed`` on a busy
    machine) would make this short app look long to the engine's packer.
    """
    distributed = sys.modules.get("distributed")
    if distributed is not None:
        with contextlib.suppress(ValueError):  # not on a Dask worker
            return "Dask", distributed.get_worker().get_current_task()
    import ray  # on a Ray worker, imported already

    return "Ray", ray.get_runtime_context().get_task_id()


@pl.app
def in_engine_task(i: int, seconds: float = 0.0, fail: bool = False, markers: str | None = None) -> tuple[int, str]:
    """Sleeps, then says which Dask or Ray task ran it: plait tasks packed together share one.

    With ``markers`` it first leaves a file there named by its process id; with ``fail`` it
    raises instead of returning, naming that engine task.
    """
    engine, engine_task = _engine_task()
    if markers is not None:
        Path(markers, str(os.getpid())).touch()
    time.sleep(seconds)
    if fail:
        raise ValueError(f"no good: {i} in {engine} task {engine_task}")
    return i, engine_task


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


EngineApp = pl.App[..., tuple[int, str]]  # in_engine_task


def engine_tasks(done: list[tuple[int, str]]) -> set[str]:
    """The engine tasks (Ray task ids, Dask keys) that ran what ``in_engine_task`` returned."""
    return {engine_task for _, engine_task in done}


def unmeasured_then_packed(executor: pl.Executor, app: EngineApp) -> None:
    """An app never measured runs a task per engine task; once known to be short, its tasks share."""
    with pl.Runtime(executors=[executor]) as rt:
        first = rt.run(pl.gather([app(i) for i in range(40)]), timeout=60)
        then = rt.run(pl.gather([app(i) for i in range(40, 80)]), timeout=60)
    assert [i for i, _ in first + then] == list(range(80))
    assert len(engine_tasks(first)) == 40
    # Packed, and no pack holds more than its share of the 2 CPUs: each gets some.
    assert 2 <= len(engine_tasks(then)) < 40, then


def long_tasks_never_share(executor: pl.Executor, app: EngineApp) -> None:
    with pl.Runtime(executors=[executor]) as rt:
        for wave in range(2):  # the first never measured, the second known to be long
            done = rt.run(pl.gather([app(i, 0.1) for i in range(4 * wave, 4 * wave + 4)]), timeout=60)
            assert len(engine_tasks(done)) == 4, done


def a_failing_task_fails_alone(executor: pl.Executor, app: EngineApp, engine: str) -> None:
    """A task that raises in a pack fails alone, measured; its pack-mate succeeds in the same engine task."""

    async def scenario() -> list[pl.TaskResult]:
        await taught(executor, app)
        try:
            # Submitted in one turn of the loop: with 2 CPUs idle, two packs of two.
            futures = [executor.submit(spec(i, app, i, 0.0, i == 1)) for i in range(4)]
            return await asyncio.wait_for(asyncio.gather(*futures), 60)
        finally:
            await executor.shutdown()

    results = asyncio.run(scenario())
    assert [r.ok for r in results] == [True, False, True, True], results
    assert isinstance(results[1].error, ValueError)
    _, its_engine_task = results[0].value
    assert f"no good: 1 in {engine} task {its_engine_task}" in str(results[1].error)
    assert results[1].ended > results[1].started > 0  # measured on its own
    assert engine_tasks([r.value for r in results if r.ok]) == {its_engine_task, results[2].value[1]}


def cancelling_one_of_a_pack_spares_the_rest(executor: pl.Executor, app: EngineApp, markers: Path) -> None:
    """Cancelling one task of a pack cancels it alone: its pack-mates' results come, from one engine task."""

    async def scenario() -> list[pl.TaskResult | None]:
        await taught(executor, app)
        try:
            # Submitted in one turn of the loop: with 2 CPUs idle, two packs of three.
            futures = [executor.submit(spec(i, app, i, 0.3, False, str(markers))) for i in range(6)]
            await asyncio.to_thread(wait_for, lambda: any(markers.iterdir()), "a pack to start")
            executor.cancel(1)  # the second task of the first pack
            done = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), 60)
            return [None if isinstance(r, asyncio.CancelledError) else r for r in done]
        finally:
            await executor.shutdown()

    results = asyncio.run(scenario())
    assert results[1] is None
    values = [r.value for r in results if r is not None and r.ok]
    assert [i for i, _ in values] == [0, 2, 3, 4, 5], results
    assert values[0][1] == values[1][1], "the cancelled task's pack-mates ran as one engine task"
