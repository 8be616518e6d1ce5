"""What the driver holds per task, not started yet and finished: a million tasks within 400 MB (issue 19)."""

from __future__ import annotations

import gc
import threading
import tracemalloc
from collections.abc import Callable
from typing import Any

import plait as pl
from plait.runtime._interpreter import Interpreter
from tests.waiting import wait_for

TASKS = 20_000
GATE = threading.Event()


@pl.app(pure=False)
def held(x: int) -> int:
    GATE.wait(30)
    return x


@pl.app(pure=False)
def last_held(x: int) -> int:
    if x == TASKS - 1:
        GATE.wait(30)
    return x


def traced_per_task(
    app: pl.App[[int], int], workers: int, reached: Callable[[Interpreter], bool], what: str
) -> tuple[float, float]:
    """Bytes the runtime holds a call of ``traverse(app, range(TASKS))`` once ``reached``, and at its peak till then."""
    graph = pl.traverse(app, range(TASKS))
    GATE.clear()
    with pl.Runtime([pl.ThreadExecutor(workers)], progress=False) as rt:
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            future: Any = rt.submit(graph)
            wait_for(lambda: reached(rt._interpreter), what, timeout=30)
            now, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            GATE.set()
        assert future.result(timeout=60) == list(range(TASKS))
    return (now - before) / TASKS, (peak - before) / TASKS


def all_admitted(interpreter: Interpreter) -> bool:
    return len(interpreter.index) == TASKS + 1 and interpreter.inflight["threads"] > 0


def all_but_the_last_done(interpreter: Interpreter) -> bool:
    return interpreter.ended["done"] == TASKS - 1


def test_a_call_not_started_yet_costs_the_driver_under_45_bytes_beyond_its_expr_55_at_the_peak() -> None:
    # One worker, held by the first call: the runtime starts only the few calls that keep
    # its queue full, and the rest wait for room.
    per_task, peak_per_task = traced_per_task(held, 1, all_admitted, "all calls admitted")
    # Its entry in the index by key (its user's mark) and its place among the calls not
    # started yet: no Node (~38 B here; 119 B when each call was started, a Node queued,
    # as it was admitted; 127 B when the gather node also held its inputs' nodes in a
    # tuple of its own; 151 B when a leaf's Node had slots for inputs and a count of them;
    # 185 B when each also held its task id, an int of 32 B, before it was sent; 406 B
    # when each also held a TaskSpec, a task-id dict entry and a list of dependents).
    assert per_task < 45, f"{per_task:.0f} B per call not started yet"
    # At its peak, while the graph is admitted: the index's old table beside its new one
    # as it grows (~49 B here; ~119 B with a Node each; ~139 B with a list of the leaves
    # walked and a stack of them to walk; ~223 B with a work item and the id).
    assert peak_per_task < 55, f"{peak_per_task:.0f} B per call at the peak"


def test_a_finished_call_held_for_its_gather_costs_the_driver_under_45_bytes() -> None:
    # A gathered run's peak: every call but the last has finished, and each result waits
    # for the gather. The call returns its argument, so the results themselves cost nothing.
    per_task, _ = traced_per_task(last_held, 2, all_but_the_last_done, "all calls but the last done")
    # Its value as its entry in the index by key, no Node, and no place in a tuple of the
    # gather node's inputs (~31 B here; 119 B when each kept its Node of 80 B and its place
    # in the gather node's inputs; 171 B when a leaf's Node had slots for inputs and a
    # count of them and kept its task id, an int of 28 B, after the task ended).
    assert per_task < 45, f"{per_task:.0f} B per finished call"
