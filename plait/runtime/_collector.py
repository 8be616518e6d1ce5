"""The cyclic garbage collector while a runtime has work: young collections spaced out.

Running a graph allocates a handful of short-lived container objects per task (a node's
future, its spec, its result) while the graph's own nodes live on. With CPython's first
threshold (700 allocations) the collector then runs every few dozen tasks and cost the
driver 2-8 µs a task, a fifth to a half of its own CPU (docs/performance.md). While any
runtime in this process has unfinished work, the first threshold is raised (50 000
unless the runtime says otherwise); when the last one is idle again it is put back.

The process is the user's: the collector is never disabled, a threshold already at or
above ours is left alone, and one the user set while we held it is kept, not reset.
``Runtime(gc_threshold=None)`` leaves the collector alone altogether. ``gc.freeze()`` of the
built graph was measured too and adds nothing once the threshold is raised, while it
would keep the user's own garbage cycles uncollected for the whole run.
"""

from __future__ import annotations

import gc
import threading

__all__ = ["DEFAULT_THRESHOLD", "Collector"]

DEFAULT_THRESHOLD = 50_000

# Process-wide: runtimes on different threads share one collector.
_lock = threading.Lock()
_holders = 0
_saved: tuple[int, int, int] | None = None  # the thresholds to put back; None: we changed nothing
_ours: tuple[int, int, int] | None = None  # the thresholds we set


class Collector:
    """One runtime's hold on the collector's first threshold: ``busy`` raises it, ``idle`` lets go."""

    __slots__ = ("held", "threshold")

    def __init__(self, threshold: int | None) -> None:
        if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1):
            raise ValueError(f"gc_threshold must be a positive int or None, not {threshold!r}")
        self.threshold = threshold
        self.held = False

    def busy(self) -> None:
        if self.held or self.threshold is None:
            return
        global _holders, _saved, _ours
        with _lock:
            self.held = True
            _holders += 1
            current = gc.get_threshold()
            if _holders == 1 and current[0] < self.threshold:
                _saved, _ours = current, (self.threshold, current[1], current[2])
                gc.set_threshold(*_ours)

    def idle(self) -> None:
        if not self.held:
            return
        global _holders, _saved, _ours
        with _lock:
            self.held = False
            _holders -= 1
            if _holders == 0 and _saved is not None:
                if gc.get_threshold() == _ours:  # not changed by the user meanwhile
                    gc.set_threshold(*_saved)
                _saved = _ours = None
