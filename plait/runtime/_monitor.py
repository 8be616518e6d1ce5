"""Monitors: a SQLite event log, a progress bar, and a fan-out to several of them.

The interpreter calls ``task_event`` on the loop thread for every state change of every
task, so each monitor does O(1) work there: the event log fills in the attempt's row and,
when the attempt ends, queues it for one writer thread that inserts rows into SQLite in
batches (one commit per batch, never per event); the progress bar bumps counters and
redraws at most a few times a second.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import threading
import time
import traceback
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from plait.backends import NodeSample, TaskSample, TaskSpec, TaskUsage
from plait.backends._wire import dumps_call, dumps_function
from plait.monitoring._writer import ATTEMPT_COLUMNS, RunWriter
from plait.runtime._hooks import Monitor
from plait.runtime._notebook import NotebookScreen, in_kernel

__all__ = [
    "DEFAULT_DEBUG_PAYLOAD_BYTES",
    "EventLog",
    "Monitors",
    "ProgressMonitor",
    "clock",
    "Screen",
    "combine",
    "describe",
    "progress_monitor",
]

_FLUSH_EVERY = 0.25  # seconds between batches: the db lags the run by about this much

# Where each state's time goes in an attempt's row (monitoring's layout).
_ATTEMPT, _STATE, _EXECUTOR, _WORKER, _DISPATCHED, _RUNNING, _ENDED, _ERROR, _CPU, _PEAK_RSS = map(
    ATTEMPT_COLUMNS.index,
    ("attempt", "state", "executor", "worker", "dispatched", "running", "ended", "error", "cpu", "peak_rss"),
)
# dispatched, running, ended, error, cpu, peak_rss: filled in as they happen
_LATER = (None,) * (len(ATTEMPT_COLUMNS) - _DISPATCHED)
_now = time.time


DEFAULT_DEBUG_PAYLOAD_BYTES = 1 << 20


class EventLog:
    """Records every task event of a run into the SQLite file at ``path``.

    Several runs may share a file: each gets a row in ``runs`` and its attempts carry
    that run's number. An attempt is written at most a quarter second after it ends,
    so the file can be read while the run goes on; attempts still in flight are
    written when the runtime closes.

    The call of a task that fails for good (its pickled function and arguments, which
    ``plait debug`` re-runs) is kept when its arguments pickle to at most
    ``debug_payload_bytes`` (0: never); bigger ones are recorded with their size only.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, debug_payload_bytes: int = DEFAULT_DEBUG_PAYLOAD_BYTES
    ) -> None:
        if debug_payload_bytes < 0:
            raise ValueError(f"debug_payload_bytes={debug_payload_bytes}: must be >= 0")
        self.path = Path(path)
        self.debug_payload_bytes = debug_payload_bytes
        if self.path.is_dir():
            raise ValueError(f"monitor={str(path)!r} is a directory; give a file path such as run.db")
        try:
            self._db = RunWriter(path, sys.argv, sys.path)
        except sqlite3.DatabaseError as error:
            raise ValueError(f"monitor={str(path)!r}: cannot use it as a monitoring database: {error}") from error
        self.run: int = self._db.run
        self._open: dict[int, list[Any]] = {}
        self._ended: deque[list[Any]] = deque()
        self._samples: deque[NodeSample | TaskSample] = deque()
        self._failed_calls: deque[TaskSpec] = deque()
        self._functions_kept: set[bytes] = set()
        self._wake = threading.Event()
        self._closed = False
        self._broken = False
        self._writer = threading.Thread(target=self._write_loop, name="plait-monitor", daemon=True)
        self._writer.start()

    def task_event(
        self,
        state: str,
        task_id: int,
        name: str,
        key: bytes,
        *,
        executor: str = "",
        worker: str = "",
        attempt: int = 1,
        error: BaseException | None = None,
        at: float = 0.0,
        usage: TaskUsage | None = None,
    ) -> None:
        # Called for every change of every task on the loop thread: the usual
        # pending -> dispatched -> running -> done path takes as few steps as it can.
        if state == "pending":
            self._open[task_id] = [self.run, task_id, attempt, name, key, state, "", "", at or _now(), *_LATER]
            return
        row = self._open.get(task_id)
        if row is None:  # a cached task, or one cancelled before it was queued
            row = self._open[task_id] = [self.run, task_id, attempt, name, key, state, "", "", None, *_LATER]
        row[_STATE] = state
        if state == "dispatched":
            row[_DISPATCHED] = at or _now()
            row[_EXECUTOR] = executor
            return
        if state == "running":
            row[_RUNNING] = at or _now()
            row[_WORKER] = worker
            return
        row[_ENDED] = now = at or _now()
        if executor:
            row[_EXECUTOR] = executor
        if worker:
            row[_WORKER] = worker
        if error is not None:
            # Format it now (failures are rare): its traceback grows when the user re-raises it.
            row[_ERROR] = describe(error)
        if usage is not None:
            row[_CPU] = usage.cpu_seconds
            row[_PEAK_RSS] = usage.peak_rss
        del self._open[task_id]
        self._ended.append(row)
        if state == "retried":  # the next attempt waits in the queue from now on
            self._open[task_id] = [
                self.run,
                task_id,
                row[_ATTEMPT] + 1,
                name,
                key,
                "pending",
                executor,
                "",
                now,
                *_LATER,
            ]

    def samples(self, samples: Sequence[NodeSample | TaskSample]) -> None:
        """Record looks at nodes and running tasks; written with the next batch of attempts."""
        self._samples.extend(samples)

    def failed_call(self, spec: TaskSpec) -> None:
        """Keep the call of a task that failed for good; pickled and written by the writer thread."""
        self._failed_calls.append(spec)

    def close(self) -> None:
        """Write what is left, index the table, stamp the run's end, close the file."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._writer.join()
        self._ended.extend(self._open.values())
        self._open.clear()
        self._flush()
        self._db.close(finished=not self._broken)

    def _write_loop(self) -> None:
        while not self._closed:
            self._wake.wait(_FLUSH_EVERY)
            self._flush()

    def _flush(self) -> None:
        ended, taken, failed = self._ended, self._samples, self._failed_calls
        rows = [ended.popleft() for _ in range(len(ended))]
        samples = [taken.popleft() for _ in range(len(taken))]
        calls = [failed.popleft() for _ in range(len(failed))]
        if not (rows or samples or calls) or self._broken:
            return
        try:
            self._db.write(rows, samples)
            if calls:
                self._write_calls(calls)
        except sqlite3.Error as error:  # a full disk, a deleted file: the run goes on unrecorded
            self._broken = True
            warnings.warn(f"monitor {self.path}: cannot write ({error}); no more events are recorded", stacklevel=1)


    def _write_calls(self, specs: list[TaskSpec]) -> None:
        # Pickled here, not on the loop thread: the same bytes the executor sent its worker.
        functions = []
        for spec in specs:
            if spec.fn_key not in self._functions_kept:
                self._functions_kept.add(spec.fn_key)
                fn, _, problem = _pickled(dumps_function, spec, None)
                functions.append((spec.fn_key, fn, problem))
        calls = [(s.task_id, s.fn_key, *_pickled(dumps_call, s, self.debug_payload_bytes)) for s in specs]
        self._db.write_calls(functions, calls)


def _pickled(
    dump: Callable[[TaskSpec], bytes], spec: TaskSpec, cap: int | None
) -> tuple[bytes | None, int | None, str | None]:
    """(payload, its size, why it is not kept) for one part of a failed call."""
    try:
        payload = dump(spec)
    except Exception as error:
        return None, None, str(error)
    if cap is not None and len(payload) > cap:
        why = f"its arguments pickle to {len(payload)} bytes, over the cap of debug_payload_bytes={cap}"
        return None, len(payload), why
    return payload, len(payload), None


def describe(error: BaseException) -> str:
    """An error as the text a person wants to read: type, message, notes, traceback.

    >>> describe(ValueError("bad seed"))
    'ValueError: bad seed'
    """
    return "".join(traceback.format_exception(error)).strip()


class Monitors:
    """Sends every event to each of several monitors, in order."""

    def __init__(self, monitors: Sequence[Monitor]) -> None:
        self.monitors = tuple(monitors)

    def task_event(self, state: str, task_id: int, name: str, key: bytes, **info: Any) -> None:
        for monitor in self.monitors:
            monitor.task_event(state, task_id, name, key, **info)

    def samples(self, samples: Sequence[NodeSample | TaskSample]) -> None:
        self._each("samples", samples)

    def failed_call(self, spec: TaskSpec) -> None:
        self._each("failed_call", spec)

    def _each(self, method: str, argument: Any) -> None:
        """Call the optional ``method`` of each monitor that has it."""
        for monitor in self.monitors:
            call = getattr(monitor, method, None)
            if call is not None:
                call(argument)

    def settled(self) -> None:
        for monitor in self.monitors:
            settled = getattr(monitor, "settled", None)
            if settled is not None:
                settled()

    def close(self) -> None:
        errors = []
        for monitor in self.monitors:
            try:
                monitor.close()
            except Exception as error:  # close the others anyway, then report it
                errors.append(error)
        if errors:
            raise errors[0]


class Silenced:
    """A monitor that raised: told nothing more in this run, but still closed at its end."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor

    def task_event(self, state: str, task_id: int, name: str, key: bytes, **info: Any) -> None:
        pass

    def close(self) -> None:
        self.monitor.close()


def silence(monitor: Monitor, error: Exception, state: str) -> Monitor:
    """What the interpreter tells from now on, when ``monitor`` raised on a ``state`` event."""
    warnings.warn(
        f"plait: monitor {monitor!r} raised {type(error).__name__}: {error} on a {state!r} event; "
        "it is told nothing more in this run",
        RuntimeWarning,
        stacklevel=3,
    )
    return Silenced(monitor)


def combine(monitors: Sequence[Monitor | None]) -> Monitor | None:
    """One monitor for all of ``monitors`` (None when there are none).

    >>> combine([None]) is None
    True
    """
    present = [m for m in monitors if m is not None]
    if not present:
        return None
    return present[0] if len(present) == 1 else Monitors(present)


_TERMINAL = {"done", "failed", "cached", "cancelled"}
_REDRAW_EVERY = 0.2
_SHOW_AFTER = 0.5  # seconds of outstanding work before the bar appears


class Screen(Protocol):
    """Where the bar is drawn: rich's Live on a terminal, a cell's output in a notebook."""

    def start(self) -> None: ...

    def refresh(self) -> None: ...

    def stop(self) -> None: ...


class ProgressMonitor:
    """A progress bar on stderr: done, failed, cached and running counts, rate and ETA.

    It shows once work has been outstanding for half a second (a quick call draws
    nothing), redraws on the runtime's loop while tasks are outstanding (a long task
    still ticks the clock), and leaves its last line on the terminal when the work
    settles, so an idle runtime draws nothing. Written to a file or a pipe (a batch
    job's log) it prints only that last line: rich's Live redraws terminals only.
    ``screen`` draws it elsewhere (a notebook's output); ``console`` is for tests.
    """

    def __init__(
        self, console: Console | None = None, screen: Callable[[ProgressMonitor], Screen] | None = None
    ) -> None:
        self.console = console or Console(stderr=True)
        self.screen = screen or self._terminal
        self.total = self.done = self.failed = self.cached = self.cancelled = 0
        self.running: set[int] = set()
        self.started = 0.0
        self._busy = False
        self._live: Screen | None = None
        self._drawn = 0.0
        self._tick: asyncio.TimerHandle | None = None

    def task_event(self, state: str, task_id: int, name: str, key: bytes, **info: Any) -> None:
        if state in {"pending", "cached"}:
            self.total += 1
        if state == "dispatched":
            self.running.add(task_id)
        elif state in _TERMINAL or state == "retried":
            self.running.discard(task_id)
            if state != "retried":
                setattr(self, state, getattr(self, state) + 1)
        if not self._busy:
            self._busy = True
            self.started = time.monotonic()
            self._schedule(_SHOW_AFTER)
        elif self._live is not None:
            now = time.monotonic()
            if now - self._drawn >= _REDRAW_EVERY or self.finished >= self.total:  # the last count shows at once
                self._draw(now)

    def _terminal(self, renderable: ProgressMonitor) -> Screen:
        return Live(renderable, console=self.console, auto_refresh=False, transient=False)

    @property
    def finished(self) -> int:
        return self.done + self.failed + self.cached + self.cancelled

    def _schedule(self, delay: float) -> None:
        self._tick = asyncio.get_running_loop().call_later(delay, self._on_tick)

    def _on_tick(self) -> None:
        self._tick = None
        if self.finished >= self.total and not self.running:
            self._end()  # settled: leave the last line and stop drawing until more work comes
            return
        if self._live is None:
            self._live = self.screen(self)
            self._live.start()
        self._draw(time.monotonic())
        self._schedule(_REDRAW_EVERY * 2)

    def _draw(self, now: float) -> None:
        self._drawn = now
        if self._live is not None:
            self._live.refresh()

    def _end(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            live.stop()
        self._busy = False
        self.total = self.done = self.failed = self.cached = self.cancelled = 0
        self.running.clear()

    def settled(self) -> None:
        """A result is about to reach the program: if nothing else is outstanding, leave the
        last line now, before the program prints what it got."""
        if self.finished >= self.total and not self.running:
            self.close()

    def close(self) -> None:
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None
        self._end()

    def __rich__(self) -> RenderableType:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        finished = self.finished
        rate = finished / elapsed
        left = self.total - finished
        eta = clock(left / rate) if rate > 0 and left > 0 else "-:--:--"
        line = Text.assemble((f"{finished}/{self.total} ", "bold"), (f"done {self.done} ", "green"))
        # Counts that are zero stay out of the way, so the line fits 80 columns.
        for label, count, style in (("failed", self.failed, "red"), ("cached", self.cached, "cyan")):
            if count:
                line.append(f"{label} {count} ", style)
        line.append(f"running {len(self.running)} ", "yellow")
        line.append(f"· {rate:,.0f}/s · ETA {eta}")
        row = Table.grid(padding=(0, 1))
        row.add_column(width=20)
        row.add_column(no_wrap=True, overflow="ellipsis")
        # Named colours, not rich's default RGB ones: a 16-colour terminal shows those all grey.
        done = "red" if self.failed else "green"
        bar = ProgressBar(
            total=max(self.total, 1), completed=finished, width=20, complete_style="blue", finished_style=done
        )
        row.add_row(bar, line)
        return row


def clock(seconds: float) -> str:
    """``h:mm:ss``.

    >>> clock(3725.4)
    '1:02:05'
    """
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def progress_monitor(progress: bool | None) -> ProgressMonitor | None:
    """The progress bar ``Runtime(progress=...)`` asks for: None means on a terminal or in a notebook.

    In a Jupyter kernel the bar is a cell output, updated in place.
    """
    notebook = in_kernel()
    show = (sys.stderr.isatty() or notebook) if progress is None else progress
    if not show:
        return None
    return ProgressMonitor(screen=NotebookScreen if notebook else None)
