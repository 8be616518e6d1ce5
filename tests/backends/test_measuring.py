"""Workers measure each task's CPU and peak memory only when a monitor will read it: a
runtime without one starts its executors' workers unmeasured (issue 19, goal 5)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import plait as pl
from tests.monitors import Events


@pl.app(pure=False)
def measuring() -> bool:
    """Whether the worker running this made a meter for its tasks."""
    from plait.backends._usage import meter

    return meter() is not None


EXECUTORS: dict[str, Callable[[], pl.Executor]] = {
    "processes": lambda: pl.ProcessExecutor(1),
    "zmq": lambda: pl.ZMQExecutor(provider=pl.LocalProvider(workers=1), heartbeat_period=0.5),
}


@pytest.mark.parametrize("kind", EXECUTORS)
def test_without_a_monitor_workers_do_not_measure_their_tasks(kind: str) -> None:
    with pl.Runtime([EXECUTORS[kind]()], progress=True) as rt:  # the progress bar reads no usage
        assert rt.run(measuring(), timeout=60) is False


@pytest.mark.parametrize("kind", EXECUTORS)
def test_with_a_monitor_workers_measure_and_each_task_comes_back_with_its_usage(kind: str) -> None:
    monitor = Events()
    with pl.Runtime([EXECUTORS[kind]()], monitor=monitor, progress=False) as rt:
        assert rt.run(measuring(), timeout=60) is True
    usages = monitor.kept("done", "usage")
    assert len(usages) == 1 and usages[0] is not None, usages
    assert usages[0].cpu_seconds >= 0


def test_an_executor_used_without_a_runtime_still_measures() -> None:
    assert pl.ProcessExecutor(1).task_usage is True
    assert pl.ZMQExecutor(provider=pl.LocalProvider(workers=1)).task_usage is True
