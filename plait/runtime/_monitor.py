"""Monitors: a SQLite event log, and a fan-out to several monitors (the progress bar is ``_progress``).

The interpreter calls ``task_event`` on the loop thread for every state change of every
task, so each monitor does O(1) work there: the event log fills in the attempt's row and,
when the attempt ends, queues it; a thread hands the queued rows over in batches to the
run's writer process, which inserts them into SQLite (one commit per batch, never per
event); the progress bar bumps counters and redraws at most a few times a second.
"""

from __future__ import annotations

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
from typing import TYPE_CHECKING, Any

import attrs

from plait.backends import NodeSample, TaskSample, TaskSpec, TaskUsage
from plait.backends._wire import dumps_call, dumps_function
from plait.monitoring._writer import ATTEMPT_COLUMNS, open_run, write_run
from plait.monitoring._writer_process import WriterFailed, WriterProcess
from plait.runtime._hooks import Monitor

if TYPE_CHECKING:
    from plait.monitoring._writer import Batch, FailedCallRow, FunctionRow

__all__ = [
    "DEFAULT_DEBUG_PAYLOAD_BYTES",
    "EventLog",
    "Monitors",
    "combine",
    "describe",
]

_FLUSH_EVERY = 0.25  # seconds between batches: the db lags the run by about this much

# Where each state's time goes in an attempt's row: monitoring's layout after ``run``, which
# the writer adds.
_ATTEMPT, _STATE, _EXECUTOR, _WORKER, _DISPATCHED, _RUNNING, _ENDED, _ERROR, _CPU, _PEAK_RSS = (
    ATTEMPT_COLUMNS.index(column) - 1
    for column in (
        "attempt",
        "state",
        "executor",
        "worker",
        "dispatched",
        "running",
        "ended",
        "error",
        "cpu",
        "peak_rss",
    )
)
# dispatched, running, ended, error, cpu, peak_rss: filled in as they happen
_LATER = (None,) * (len(ATTEMPT_COLUMNS) - 1 - _DISPATCHED)
_now = time.time


DEFAULT_DEBUG_PAYLOAD_BYTES = 1 << 20


class EventLog:
    """Records every task event of a run into the SQLite file at ``path``.

    Several runs may share a file: each gets a row in ``runs`` and its attempts carry
    that run's number. An attempt is written at most a quarter second after it ends
    (by a writer process, see ``plait.monitoring._writer_process``), so the file can be
    read while the run goes on; attempts still in flight are written when the runtime
    closes.

    The call of a task that fails for good (its pickled function and arguments, which
    ``plait debug`` re-runs) is kept when its arguments pickle to at most
    ``debug_payload_bytes`` (0: never); bigger ones are recorded with their size only.

    It takes a call's pending event when the call starts, dated (``at``) when it was
    admitted (``pending_at_start``): so a monitored gather's calls wait unstarted, with no
    node or task id each, as they do unmonitored, and ``dispatched - pending`` is still
    the whole wait.
    """

    pending_at_start = True

    def __init__(self, path: str | os.PathLike[str], *, debug_payload_bytes: int = DEFAULT_DEBUG_PAYLOAD_BYTES) -> None:
        if debug_payload_bytes < 0:
            raise ValueError(f"debug_payload_bytes={debug_payload_bytes}: must be >= 0")
        self.path = Path(path)
        self.debug_payload_bytes = debug_payload_bytes
        if self.path.is_dir():
            raise ValueError(f"monitor={str(path)!r} is a directory; give a file path such as run.db")
        from plait.runtime._memo_file import is_memo  # here: a run without a memo does not load the memo file module

        if is_memo(self.path):
            raise ValueError(
                f"monitor={str(path)!r} is a plait memo (the results cache= keeps across runs), not a monitoring db: "
                "give monitor= a file of its own, such as run.db; the memo is left as it was"
            )
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)  # as cache= makes its file's directory
        try:
            self.run: int = open_run(path, sys.argv, sys.path)
        except sqlite3.DatabaseError as error:
            raise ValueError(f"monitor={str(path)!r}: cannot use it as a monitoring database: {error}") from error
        self._target = str(path) if str(path) == ":memory:" else os.path.abspath(path)  # for the writer process
        self._writer: WriterProcess | None = None
        self._open: dict[int, list[Any]] = {}
        self._ended: deque[list[Any]] = deque()
        self._samples: deque[NodeSample | TaskSample] = deque()
        self._failed_calls: deque[TaskSpec] = deque()
        self._functions_kept: set[bytes] = set()
        self._wake = threading.Event()
        self._closed = False
        self._broken = False
        self._handing = threading.Thread(target=self._hand_over_loop, name="plait-monitor", daemon=True)
        self._handing.start()

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
            self._open[task_id] = [task_id, attempt, name, key, state, "", "", at or _now(), *_LATER]
            return
        row = self._open.get(task_id)
        if row is None:  # a cached task, or one cancelled before it was queued
            row = self._open[task_id] = [task_id, attempt, name, key, state, "", "", None, *_LATER]
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
            self._open[task_id] = [task_id, row[_ATTEMPT] + 1, name, key, "pending", executor, "", now, *_LATER]

    def samples(self, samples: Sequence[NodeSample | TaskSample]) -> None:
        """Record looks at nodes and running tasks; written with the next batch of attempts."""
        self._samples.extend(samples)

    def failed_call(self, spec: TaskSpec) -> None:
        """Keep the call of a task that failed for good; pickled by the thread that hands rows over."""
        self._failed_calls.append(spec)

    def close(self) -> None:
        """Write what is left, index the table, stamp the run's end, close the file."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._handing.join()
        self._ended.extend(self._open.values())
        self._open.clear()
        batch = self._take()
        if self._broken:
            return
        try:
            if self._writer is None:  # a run that ended before its first hand-over: no process to start
                write_run(self._target, self.run, [] if batch is None else [batch])
            else:
                if batch is not None:
                    self._writer.send(batch)
                self._writer.close()
        except (WriterFailed, sqlite3.Error) as error:
            self._warn(error)

    def _hand_over_loop(self) -> None:
        while True:
            self._wake.wait(_FLUSH_EVERY)
            if self._closed:
                return  # close hands over what is left
            batch = self._take()
            if batch is None or self._broken:
                continue
            try:
                if self._writer is None:  # started with the first batch: a short run never needs it
                    self._writer = WriterProcess(self._target, self.run)
                self._writer.send(batch)
            except WriterFailed as error:  # a full disk, a deleted file: the run goes on unrecorded
                self._broken = True
                self._warn(error)

    def _take(self) -> Batch | None:
        """What waits to be written, as one batch; None when nothing does."""
        ended, taken, failed = self._ended, self._samples, self._failed_calls
        rows = [ended.popleft() for _ in range(len(ended))]
        samples = [taken.popleft() for _ in range(len(taken))]
        calls = [failed.popleft() for _ in range(len(failed))]
        if not (rows or samples or calls):
            return None
        node_samples = [attrs.astuple(s) for s in samples if isinstance(s, NodeSample)]
        task_samples = [attrs.astuple(s) for s in samples if isinstance(s, TaskSample)]
        functions, call_rows = self._calls(calls)
        return rows, node_samples, task_samples, functions, call_rows

    def _warn(self, error: Exception) -> None:
        warnings.warn(f"monitor {self.path}: cannot write ({error}); no more events are recorded", stacklevel=1)

    def _calls(self, specs: list[TaskSpec]) -> tuple[list[FunctionRow], list[FailedCallRow]]:
        # Pickled here, not on the loop thread: the same bytes the executor sent its worker.
        functions: list[FunctionRow] = []
        for spec in specs:
            if spec.fn_key not in self._functions_kept:
                self._functions_kept.add(spec.fn_key)
                fn, _, problem = _pickled(dumps_function, spec, None)
                functions.append((spec.fn_key, fn, problem))
        calls: list[FailedCallRow] = [
            (s.task_id, s.fn_key, *_pickled(dumps_call, s, self.debug_payload_bytes)) for s in specs
        ]
        return functions, calls


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
        # Only if each takes it so: the others hear of a call as it is admitted.
        self.pending_at_start = all(getattr(m, "pending_at_start", False) is True for m in self.monitors)

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
