"""What each task used: its CPU time and peak memory, measured on its worker.

A worker measures every task around the call (``TaskMeter``): the CPU time its process
and the children it waited for spent, and the process's peak resident memory, which
on Linux is reset before each task (``/proc/self/clear_refs``) so it is the task's own
peak, even for a task far shorter than any sampling interval. Elsewhere the peak is
the process's lifetime peak (``ru_maxrss``). ``PLAIT_TASK_USAGE=0`` in a worker's
environment turns the measurement off. Looks at nodes and running tasks while a run
goes on are ``_sampling``'s.
"""

from __future__ import annotations

import os
import resource
import sys
from typing import Any

import attrs

__all__ = ["TaskMeter", "TaskUsage", "meter", "parse_hwm", "usage_of"]


@attrs.frozen
class TaskUsage:
    """What one task used on its worker.

    ``cpu_seconds`` is user plus system time of the worker process (and of child
    processes it waited for, such as a shell app's command) during the call;
    ``peak_rss`` the process's peak resident memory in bytes during the call.
    """

    cpu_seconds: float
    peak_rss: int


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

# A task shorter than this (s) cannot have started a child process and waited for it:
# its end skips looking up what reaped children used. Should it reap one started
# before, that child's CPU time counts in the next task that looks.
_CHILD_WALL = 0.001


class TaskMeter:
    """Measures tasks in this process: ``token = start()`` before the call, ``stop(token)`` after.

    On Linux ``start`` resets the process's peak RSS to its current RSS; the kernel's
    ``ru_maxrss`` is then the larger of the peak since and a value the process keeps
    from its exec (a worker spawned by a big driver keeps the driver's peak; some
    kernels also keep the peak when a thread ends). When that kept value is more than
    4 MiB above the RSS, a task whose ``ru_maxrss`` did not rise past it gets its exact
    peak from ``/proc/self/status`` instead (~8 µs more); so a peak is exact or at most
    4 MiB high. Whether the value is kept is looked up again (``/proc/self/statm``)
    only when ``ru_maxrss`` after the reset moves by more than that. Three or four
    system calls, 3 to 4 µs a task when hot; the files stay open. Elsewhere the peak
    is the process's lifetime peak.
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

    def stop(self, token: tuple[float, int], wall: float) -> tuple[float, int]:
        """CPU seconds and peak RSS bytes since ``start``, ``wall`` seconds ago: a plain pair,
        to travel as it is."""
        cpu_before, floor = token
        usage = _getrusage(_SELF)
        if wall >= _CHILD_WALL:
            self._children = _children_cpu()
        if self._kept and usage.ru_maxrss <= floor and self._files is not None:
            peak = parse_hwm(os.pread(self._files[2], 4096, 0))  # the kept value hides the peak
        else:
            peak = usage.ru_maxrss * _MAXRSS_BYTES
        return usage.ru_utime + usage.ru_stime + self._children - cpu_before, peak


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
