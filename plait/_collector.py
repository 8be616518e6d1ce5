"""The cyclic garbage collector while plait builds or runs a graph, or imports its modules:
young collections spaced out.

Building a graph makes objects that all live on; running one allocates a handful of
short-lived container objects per task (a node's future, its spec, its result) while the
graph's nodes live on. With CPython's first threshold (700 allocations) the collector
then runs every few dozen nodes, over objects that survive it: up to a third of the build
and 2-8 µs of the driver's ~11-18 µs a task (docs/performance.md). So while
``traverse`` builds, and while any runtime in this process has unfinished work, the
first threshold is raised (to 50 000 unless said otherwise); when the last holder lets
go it is put back. Calls submitted one at a time hold it only once dozens are unsettled
(the interpreter's ``HELD_FROM_UNSETTLED``): a round trip's one node is next to no work
for a young collection.

The process is the user's: the collector is never disabled, a threshold already at or
above ours is left alone, and one the user set while we held it is kept, not reset.
``Runtime(gc_threshold=None)`` leaves the collector alone for that runtime's runs, and
the environment variable ``PLAIT_GC_THRESHOLD`` sets the default (``off``: leave it alone
everywhere). ``gc.freeze()`` of the built graph was measured too and adds nothing once
the threshold is raised, while it would keep the user's own garbage cycles uncollected
for the whole run.

Importing is the same, more so: classes, functions and code objects that all live as
long as the process. While a name of ``plait`` is first loaded (``importing``, from
``_lazy``) no young collection runs, and what is young then goes straight to the oldest
generation (``gc.freeze()`` and at once ``gc.unfreeze()``): looked at by the next full
collection, as everything is, and not by ~55 young ones first (10-25 ms of a driver's
start). Nothing is kept from the collector; a young cycle of the user's made just before
waits for that full collection too. Not when ``PLAIT_GC_THRESHOLD`` is ``off``, nor when
the process has frozen objects of its own: unfreezing would hand them back. A helper
below every layer, so that ``_lazy`` can use it.
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["DEFAULT_THRESHOLD", "Collector", "collecting_less", "importing"]


def _default(setting: str | None) -> int | None:
    """The threshold ``PLAIT_GC_THRESHOLD`` asks for.

    >>> _default(None), _default("off"), _default("20000")
    (50000, None, 20000)
    """
    if setting is None:
        return 50_000
    if setting.strip().lower() == "off":
        return None
    if not setting.strip().isdigit() or int(setting) < 1:
        raise ValueError(f"PLAIT_GC_THRESHOLD must be a positive int or 'off', not {setting!r}")
    return int(setting)


DEFAULT_THRESHOLD = _default(os.environ.get("PLAIT_GC_THRESHOLD"))

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


@contextmanager
def collecting_less() -> Iterator[None]:
    """Within: the first threshold raised to the default, as while a runtime has work."""
    collector = Collector(DEFAULT_THRESHOLD)
    collector.busy()
    try:
        yield
    finally:
        collector.idle()


@contextmanager
def importing() -> Iterator[None]:
    """Within: plait imports modules, with no young collection; after, what is young is in
    the oldest generation (see the module's docstring)."""
    if DEFAULT_THRESHOLD is None or gc.get_freeze_count():
        yield
        return
    with collecting_less():
        yield
        gc.freeze()  # resets the first generation's count: the threshold put back finds nothing due
        gc.unfreeze()
