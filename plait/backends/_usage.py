"""What tasks and nodes use: each task's CPU time and peak memory, samples of each node.

A worker measures every task around the call (``TaskMeter``): the CPU time its process
and the children it waited for spent, and the process's peak resident memory, which
on Linux is reset before each task (``/proc/self/clear_refs``) so it is the task's own
peak, even for a task far shorter than any sampling interval. Elsewhere the peak is
the process's lifetime peak (``ru_maxrss``). ``PLAIT_TASK_USAGE=0`` in a worker's
environment turns the measurement off.

Whoever runs workers on a node samples the node (``NodeSampler``): CPU busy percent,
memory used and available, load average. Samples travel as plain rows (``SampleRow``)
so a zmq pool sends them inside its heartbeats; ``NodeSample.of`` checks a row that
came over the wire.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from typing import Any

import attrs

__all__ = [
    "NodeSample",
    "NodeSampler",
    "SampleRow",
    "TaskMeter",
    "TaskUsage",
    "busy_percent",
    "last_seen",
    "meter",
    "parse_hwm",
    "rss_of",
    "usage_of",
]

# at, cpu_percent, mem_used, mem_available, mem_total, load1, cpus
SampleRow = list[float | int]
_ROW_TYPES = ((int, float), (int, float), (int,), (int,), (int,), (int, float), (int,))


@attrs.frozen
class TaskUsage:
    """What one task used on its worker.

    ``cpu_seconds`` is user plus system time of the worker process (and of child
    processes it waited for, such as a shell app's command) during the call;
    ``peak_rss`` the process's peak resident memory in bytes during the call.
    """

    cpu_seconds: float
    peak_rss: int


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
        if not (
            isinstance(row, list)
            and len(row) == len(_ROW_TYPES)
            and all(isinstance(v, t) and not isinstance(v, bool) for v, t in zip(row, _ROW_TYPES, strict=True))
        ):
            raise ValueError(f"a node sample from {source} is not a row of 7 numbers: {row!r:.200}")
        at, cpu, used, available, total, load1, cpus = row
        return cls(node, source, float(at), float(cpu), used, available, total, float(load1), cpus)


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


def rss_of(pid: int) -> int | None:
    """The resident memory of process ``pid`` in bytes, or None if it is gone (or a zombie)."""
    import psutil  # as in NodeSampler: only whoever samples needs it

    try:
        return int(psutil.Process(pid).memory_info().rss) or None
    except psutil.Error:
        return None


def last_seen(sample: tuple[int, float, int] | None, task_id: int, now: float) -> str:
    """What a lost worker's last sample says, to end its WorkerLost message.

    ``sample`` is (task, when, RSS bytes), taken while the worker ran ``task``: "" when
    there is none for ``task_id``. A worker the OOM killer took shows how big it was.

    >>> last_seen((7, 10.0, 3 << 30), 7, now=12.5)
    '; its RSS was 3072 MiB at its last sample, 2.5 s before'
    >>> last_seen((6, 10.0, 3 << 30), 7, now=12.5), last_seen(None, 7, now=1.0)
    ('', '')
    """
    if sample is None or sample[0] != task_id:
        return ""
    _, at, rss = sample
    return f"; its RSS was {rss / (1 << 20):.0f} MiB at its last sample, {now - at:.1f} s before"


def parse_hwm(status: bytes) -> int:
    """The peak resident memory in bytes from the text of ``/proc/<pid>/status``.

    >>> parse_hwm(b"Name:\\tpython\\nVmHWM:\\t   11420 kB\\nVmRSS:\\t 11000 kB\\n")
    11694080
    """
    start = status.index(b"VmHWM:") + 6
    return int(status[start : status.index(b"kB", start)]) * 1024


# How far above the task's RSS at its start the kernel's kept peak may be and still let
# ru_maxrss stand for the task's peak: that peak is then at most this much too high. A
# ProcessExecutor worker keeps its driver's peak at spawn time, often within a MiB of its
# own RSS: reading /proc/self/status for each of its tasks instead would cost ~8 µs more.
_SLACK_KIB = 4096
_MAXRSS_BYTES = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is in KiB, but in bytes on macOS


class TaskMeter:
    """Measures tasks in this process: ``token = start()`` before the call, ``stop(token)`` after.

    On Linux ``start`` resets the process's peak RSS to its current RSS; the kernel's
    ``ru_maxrss`` is then the larger of the peak since and a value the process keeps
    from its exec (a worker spawned by a big driver keeps the driver's peak; some
    kernels also keep the peak when a thread ends). When that kept value is more than
    4 MiB above the RSS, a task whose ``ru_maxrss`` did not rise past it gets its exact
    peak from ``/proc/self/status`` instead (~8 µs more); so a peak is exact or at most
    4 MiB high. Whether the value is kept is looked up again (``/proc/self/statm``)
    only when ``ru_maxrss`` after the reset moves by more than that. About 5 µs a
    task; the files stay open. Elsewhere the peak is the process's lifetime peak.
    """

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._files: tuple[int, int, int] | None = None  # clear_refs, statm, status
        if sys.platform.startswith("linux"):
            try:
                self._files = (
                    os.open("/proc/self/clear_refs", os.O_WRONLY | os.O_CLOEXEC),
                    os.open("/proc/self/statm", os.O_RDONLY | os.O_CLOEXEC),
                    os.open("/proc/self/status", os.O_RDONLY | os.O_CLOEXEC),
                )
            except OSError:  # a hardened /proc: the lifetime peak it is
                self._files = None
        self._page_kib = os.sysconf("SC_PAGE_SIZE") // 1024 if hasattr(os, "sysconf") else 4
        self._checked_at = -(1 << 62)  # ru_maxrss after the reset (KiB) when we last looked at the RSS
        self._kept = False
        # What reaped children used so far; it changes only when this process reaps one, so
        # a task's start reuses the last task's reading: a system call less per task.
        self._children = _children_cpu()

    def start(self) -> tuple[float, int]:
        """The CPU time so far, and ``ru_maxrss`` right after the reset (KiB)."""
        files = self._files
        if files is not None:
            os.pwrite(files[0], b"5", 0)  # 5: the peak RSS is the current RSS from now on
        usage = _getrusage(_SELF)
        floor = usage.ru_maxrss  # max(kept value, RSS now)
        if files is not None and abs(floor - self._checked_at) > _SLACK_KIB:
            rss_kib = int(os.pread(files[1], 64, 0).split()[1]) * self._page_kib
            self._kept, self._checked_at = floor > rss_kib + _SLACK_KIB, floor
        return usage.ru_utime + usage.ru_stime + self._children, floor

    def stop(self, token: tuple[float, int]) -> tuple[float, int]:
        """CPU seconds and peak RSS bytes since ``start``: a plain pair, to travel as it is."""
        cpu_before, floor = token
        usage = _getrusage(_SELF)
        self._children = _children_cpu()
        if self._kept and usage.ru_maxrss <= floor and self._files is not None:
            peak = parse_hwm(os.pread(self._files[2], 4096, 0))  # the kept value hides the peak
        else:
            peak = usage.ru_maxrss * _MAXRSS_BYTES
        return round(usage.ru_utime + usage.ru_stime + self._children - cpu_before, 6), peak


_getrusage, _SELF, _CHILDREN = resource.getrusage, resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN


def _children_cpu() -> float:
    # Not os.times(): it counts in clock ticks (10 ms), longer than many tasks.
    children = _getrusage(_CHILDREN)
    return children.ru_utime + children.ru_stime


_meters: list[TaskMeter | None] = []
# A forked child makes its own meter: the files are /proc/self of the process that opened them.
os.register_at_fork(after_in_child=_meters.clear)


def meter() -> TaskMeter | None:
    """This process's meter, or None when ``PLAIT_TASK_USAGE=0``; made once per process."""
    if not _meters:
        _meters.append(TaskMeter() if os.environ.get("PLAIT_TASK_USAGE", "1") != "0" else None)
    return _meters[0]


def usage_of(row: Any) -> TaskUsage | None:
    """The usage in a result's ``(cpu_seconds, peak_rss)`` pair; None if there is none.

    >>> usage_of((0.5, 1024)), usage_of(None)
    (TaskUsage(cpu_seconds=0.5, peak_rss=1024), None)
    """
    return None if row is None else TaskUsage(*row)
