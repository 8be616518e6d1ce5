"""What each task used: its CPU time and peak memory, measured on its worker.

A worker measures every task around the call (``TaskMeter``): the CPU time its process
and the children it waited for spent, and the process's peak resident memory, which
on Linux is reset before each task (``/proc/self/clear_refs``) so it is the task's own
peak, even for a task far shorter than any sampling interval. Elsewhere the peak is
the process's lifetime peak (``ru_maxrss``). ``PLAIT_TASK_USAGE=0`` in a worker's
environment turns the measurement off (``_measuring``): a runtime without a monitor,
which nothing would read it for, starts its executors' workers so. Looks at nodes and
running tasks while a run goes on are ``_sampling``'s.
"""

from __future__ import annotations

import os
import resource
import sys
import threading
import time

import msgspec

from plait.backends._measuring import measured

__all__ = ["TaskMeter", "TaskUsage", "Window", "meter", "parse_hwm"]


class TaskUsage(msgspec.Struct, frozen=True, gc=False):  # a Struct, as TaskResult (see _task.py)
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

Window = tuple[float, float, int, int]
"""A task's open measurement: wall time, CPU time and ru_maxrss (KiB) at its start, and
the thread it runs on."""


class TaskMeter:
    """Measures tasks in this process: ``window = start()`` before the call, ``stop(window)`` after.

    On Linux each task's peak RSS starts from the RSS at its start: ``start`` resets the
    kernel's peak through ``/proc/self/clear_refs``. ``stop``'s reading also opens a
    window for a task that follows straight on, on the same thread (``start(follows=True)``):
    one reading ends a task and starts the next, so a worker running tasks back to back
    makes two system calls a task (a ``getrusage`` as each ends, the reset as each
    starts), about 2 µs when hot, and the few microseconds it spends between two tasks
    count in the second one's wall and CPU time (not in its peak: the reset comes last).
    A task that does not follow straight on costs one ``getrusage`` more. The files stay open.

    The kernel's ``ru_maxrss`` is the larger of the peak since the reset and a value the
    process keeps from its exec (a worker spawned by a big process keeps that one's
    peak; some kernels also keep the peak when a thread ends). When that kept value is
    more than 4 MiB above the RSS, each task opens its own window, and one whose
    ``ru_maxrss`` did not rise past the kept value gets its exact peak from
    ``/proc/self/status`` instead (~8 µs more); so a peak is exact or at most 4 MiB high.
    Whether a value is kept is looked up again (``/proc/self/statm``) whenever
    ``ru_maxrss`` moves by more than that. Elsewhere the peak is the process's lifetime peak.
    """

    def __init__(self) -> None:
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
        self._next: Window | None = None  # opened by the last stop, for a task straight after

    def start(self, *, follows: bool = False) -> Window:
        """Open a task's window: the one the last ``stop`` on this thread opened if the task
        ``follows`` it straight on, else a new one (a ``getrusage``); either way the peak
        starts from here."""
        thread, opened = threading.get_ident(), self._next
        self._next = None
        self._reset()
        if follows and opened is not None and opened[3] == thread:
            return opened
        files, usage = self._files, _getrusage(_SELF)
        floor = usage.ru_maxrss  # max(kept value, RSS now)
        if files is not None and abs(floor - self._checked_at) > _SLACK_KIB:
            rss_kib = int(os.pread(files[1], 64, 0).split()[1]) * self._page_kib
            self._kept, self._checked_at = floor > rss_kib + _SLACK_KIB, floor
        return time.time(), usage.ru_utime + usage.ru_stime + self._children, floor, thread

    def stop(self, window: Window) -> tuple[float, tuple[float, int]]:
        """The wall time now, and the window's CPU seconds and peak RSS bytes: a plain
        pair, to travel as it is."""
        started, cpu_before, floor, thread = window
        ended = time.time()
        usage = _getrusage(_SELF)
        if ended - started >= _CHILD_WALL:
            self._children = _children_cpu()
        cpu = usage.ru_utime + usage.ru_stime + self._children
        maxrss, files = usage.ru_maxrss, self._files
        if self._kept and maxrss <= floor and files is not None:
            peak = parse_hwm(os.pread(files[2], 4096, 0))  # the kept value hides the peak
        else:
            peak = maxrss * _MAXRSS_BYTES
        if files is None or (not self._kept and abs(maxrss - self._checked_at) <= _SLACK_KIB):
            self._next = (ended, cpu, maxrss, thread)
        return ended, (cpu - cpu_before, peak)

    def _reset(self) -> None:
        if self._files is not None:
            os.pwrite(self._files[0], b"5", 0)  # 5: the peak RSS is the current RSS from now on


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
        _meters.append(TaskMeter() if measured(os.environ) else None)
    return _meters[0]
