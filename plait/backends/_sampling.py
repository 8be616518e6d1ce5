"""Looks at nodes and at running tasks while a run goes on, every ``usage_interval``.

Whoever runs workers on a node samples the node (``NodeSampler``: CPU busy percent,
memory used and available, load average) and the worker process of each running task
(``TaskSampler``: its CPU use since the last look, its memory now and its peak since the
task started). What a task used in all comes with its result (``_usage``); these looks
show a long task's course, and how big a worker was before it died. Samples travel as
plain rows (``SampleRow``, ``TaskSampleRow``), so a zmq pool sends them inside its
heartbeats; ``NodeSample.of`` and ``TaskSample.of`` check a row that came over the wire.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs

from plait.backends._measuring import measured
from plait.backends._usage import parse_hwm

__all__ = [
    "NodeSample",
    "NodeSampler",
    "Sample",
    "SampleRow",
    "SamplingExecutor",
    "TaskSample",
    "TaskSampleRow",
    "TaskSampler",
    "busy_percent",
    "last_seen",
]

# at, cpu_percent, mem_used, mem_available, mem_total, load1, cpus
SampleRow = list[float | int]
_ROW_TYPES = ((int, float), (int, float), (int,), (int,), (int,), (int, float), (int,))

# task, at, cpu_percent (None: a first look), rss, peak_rss (None: not known)
TaskSampleRow = list[float | int | None]
_TASK_ROW_TYPES = ((int,), (int, float), (int, float, type(None)), (int,), (int, type(None)))


@attrs.frozen
class NodeSample:
    """One look at a node: ``node`` is its host name, ``source`` who looked (``zmq/pool-0``)."""

    node: str
    source: str
    at: float
    cpu_percent: float  # busy share of all its cores since the previous sample, 0 to 100
    mem_used: int  # bytes
    mem_available: int
    mem_total: int
    load1: float
    cpus: int

    @classmethod
    def of(cls, node: str, source: str, row: Any) -> NodeSample:
        """The sample in a row from the wire, or ValueError saying what is wrong with it.

        >>> NodeSample.of("n1", "zmq/p", [1.0, 50.0, 10, 20, 30, 0.5, 2]).mem_total
        30
        >>> NodeSample.of("n1", "zmq/p", [1.0, "x"])
        Traceback (most recent call last):
        ...
        ValueError: a node sample from zmq/p is not a row of 7 numbers: [1.0, 'x']
        """
        if not _fits(row, _ROW_TYPES):
            raise ValueError(f"a node sample from {source} is not a row of 7 numbers: {row!r:.200}")
        at, cpu, used, available, total, load1, cpus = row
        return cls(node, source, float(at), float(cpu), used, available, total, float(load1), cpus)


def _fits(row: Any, types: tuple[tuple[type, ...], ...]) -> bool:
    """Whether ``row`` is a list with a value of each of ``types``, in order (a bool is no number).

    >>> _fits([1, 2.5], ((int,), (float,))), _fits([True, 2.5], ((int,), (float,))), _fits((1, 2.5), ((int,), (float,)))
    (True, False, False)
    """
    return (
        isinstance(row, list)
        and len(row) == len(types)
        and all(isinstance(v, t) and not isinstance(v, bool) for v, t in zip(row, types, strict=True))
    )


def busy_percent(before: tuple[float, float], after: tuple[float, float]) -> float:
    """The busy share, in percent, of a node's CPU time between two readings of
    (all CPU seconds, idle CPU seconds).

    >>> busy_percent((100.0, 90.0), (200.0, 160.0))
    30.0
    >>> busy_percent((1.0, 1.0), (1.0, 1.0))
    0.0
    """
    total, idle = after[0] - before[0], after[1] - before[1]
    if total <= 0:
        return 0.0
    return round(100.0 * max(0.0, min(1.0, 1.0 - idle / total)), 2)


class NodeSampler:
    """Samples this node; each sample's CPU percent covers the time since the previous one.

    Its own counters, not ``psutil.cpu_percent``'s global ones, so user code calling that
    in the same process does not shorten our intervals.
    """

    def __init__(self) -> None:
        import psutil  # here, not at the top: workers measure tasks without it, and start faster

        self._psutil = psutil
        self._before = self._cpu_seconds()
        self._cpus = psutil.cpu_count() or 1

    def _cpu_seconds(self) -> tuple[float, float]:
        times = self._psutil.cpu_times()._asdict()
        # Linux counts guest time in user and nice already.
        total = sum(times.values()) - times.get("guest", 0.0) - times.get("guest_nice", 0.0)
        return total, times["idle"] + times.get("iowait", 0.0)

    def row(self) -> SampleRow:
        after = self._cpu_seconds()
        cpu = busy_percent(self._before, after)
        self._before = after
        memory = self._psutil.virtual_memory()
        load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
        return [time.time(), cpu, memory.total - memory.available, memory.available, memory.total, load1, self._cpus]


@attrs.frozen
class TaskSample:
    """One look at the worker process of a running task (``task``: the runtime's task id).

    ``cpu_percent`` is the process's CPU use since the previous look during this task (100:
    one core busy), None at the first look; ``rss`` its resident memory now and
    ``peak_rss`` its peak since the task started (Linux, with per-task measurement on:
    None elsewhere), in bytes.
    """

    task: int
    at: float
    cpu_percent: float | None
    rss: int
    peak_rss: int | None

    @classmethod
    def of(cls, row: Any) -> TaskSample:
        """The sample in a row from the wire, or ValueError saying what is wrong with it.

        >>> TaskSample.of([7, 1.0, None, 1024, 2048]).rss
        1024
        >>> TaskSample.of([7, 1.0, 5.0])
        Traceback (most recent call last):
        ...
        ValueError: a task sample is not a row of task, at, cpu_percent, rss, peak_rss: [7, 1.0, 5.0]
        """
        if not _fits(row, _TASK_ROW_TYPES):
            raise ValueError(f"a task sample is not a row of task, at, cpu_percent, rss, peak_rss: {row!r:.200}")
        task, at, cpu, rss, peak = row
        return cls(task, float(at), None if cpu is None else float(cpu), rss, peak)

    def row(self) -> TaskSampleRow:
        """The sample as a row for the wire.

        >>> TaskSample.of(TaskSample(7, 1.0, 50.0, 1024, None).row())
        TaskSample(task=7, at=1.0, cpu_percent=50.0, rss=1024, peak_rss=None)
        """
        return [self.task, self.at, self.cpu_percent, self.rss, self.peak_rss]


Sample = NodeSample | TaskSample


@runtime_checkable
class SamplingExecutor(Protocol):
    """An executor that looks at its nodes and running tasks as it goes (CPU, memory).

    A runtime with a monitoring db sets ``on_samples`` before ``start``; the executor
    calls it on the runtime's loop with each batch of samples it takes. An executor
    without this attribute is not sampled.
    """

    on_samples: Callable[[Sequence[Sample]], None] | None


class Watched(Protocol):
    """A worker as a TaskSampler sees it."""

    pid: int
    last_look: TaskSample | None


class TaskSampler:
    """Looks at the worker processes of running tasks: ``look([(task, pid), ...])``."""

    def __init__(self) -> None:
        import psutil  # as in NodeSampler

        self._psutil = psutil
        self._before: dict[tuple[int, int], tuple[float, float]] = {}  # (task, pid): (when, CPU s) last look
        # The worker resets its peak as each task starts (_usage.TaskMeter): the kernel's
        # peak is then the task's so far.
        self._peaks = sys.platform.startswith("linux") and measured(os.environ)

    def look(self, running: Mapping[int, Watched]) -> list[TaskSample]:
        """A sample for each running task (by task id: its worker) whose process is still
        there; each worker keeps its own as ``last_look``, to say how big it was should it
        die (the OOM killer's SIGKILL leaves no result to carry it)."""
        before, self._before = self._before, {}
        samples = []
        for task, worker in running.items():
            try:
                look = self._look(task, worker.pid, before.get((task, worker.pid)))
            except (self._psutil.Error, OSError, ValueError):  # it ended meanwhile
                continue
            worker.last_look = look
            samples.append(look)
        return samples

    def _look(self, task: int, pid: int, before: tuple[float, float] | None) -> TaskSample:
        process = self._psutil.Process(pid)
        with process.oneshot():
            times, rss = process.cpu_times(), int(process.memory_info().rss)
        peak = _peak_of(pid) if self._peaks else None
        now = time.time()
        cpu = times.user + times.system + times.children_user + times.children_system
        self._before[(task, pid)] = (now, cpu)
        percent = None if before is None or now <= before[0] else round(100 * (cpu - before[1]) / (now - before[0]), 1)
        return TaskSample(task, now, percent, rss, peak)


def _peak_of(pid: int) -> int:
    with open(f"/proc/{pid}/status", "rb") as status:
        return parse_hwm(status.read())


def last_seen(sample: TaskSample | None, task: int, now: float) -> str:
    """What a lost worker's last sample says, to end its WorkerLost message.

    ``sample`` is the last look at the worker while it ran a task: "" when there is none
    for ``task``. A worker the OOM killer took shows how big it was.

    >>> last_seen(TaskSample(7, 10.0, None, 3 << 30, None), 7, now=12.5)
    '; its RSS was 3072 MiB at its last sample, 2.5 s before'
    >>> last_seen(TaskSample(6, 10.0, None, 3 << 30, None), 7, now=12.5), last_seen(None, 7, now=1.0)
    ('', '')
    """
    if sample is None or sample.task != task:
        return ""
    return f"; its RSS was {sample.rss / (1 << 20):.0f} MiB at its last sample, {now - sample.at:.1f} s before"
