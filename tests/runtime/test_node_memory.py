"""What the driver holds per task, queued and finished: a million-task run must fit in well under 2 GB."""

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


def all_queued(interpreter: Interpreter) -> bool:
    return len(interpreter.queues["threads"]) + interpreter.inflight["threads"] == TASKS


def all_but_the_last_done(interpreter: Interpreter) -> bool:
    return interpreter.ended["done"] == TASKS - 1


def test_a_queued_call_costs_the_driver_under_125_bytes_beyond_its_expr_also_at_the_peak() -> None:
    # One worker, held by the first call: the runtime keeps all but the two it sends queued.
    per_task, peak_per_task = traced_per_task(held, 1, all_queued, "all calls queued")
    # A Node, its index entry and its place in the queue (~119 B here; 127 B when the
    # gather node also held its inputs' nodes in a tuple of its own; 151 B when a leaf's
    # Node had slots for inputs and a count of them; 185 B when each also held its task
    # id, an int of 32 B, before it was sent; 406 B when each also held a TaskSpec, a
    # task-id dict entry and a list of dependents).
    assert per_task < 125, f"{per_task:.0f} B per queued call"
    # At its peak, while the graph is admitted and its ready leaves started: no list of
    # the leaves walked nor a stack of them to walk, and no work item (a tuple of 64 B)
    # per ready leaf on top (~119 B here; ~139 B with the list and the stack, ~163 B with
    # a leaf's Node as large as a gather's, ~223 B with a work item and the id).
    assert peak_per_task < 125, f"{peak_per_task:.0f} B per call at the peak"


def test_a_finished_call_held_for_its_gather_costs_the_driver_under_45_bytes() -> None:
    # A gathered run's peak: every call but the last has finished, and each result waits
    # for the gather. The call returns its argument, so the results themselves cost nothing.
    per_task, _ = traced_per_task(last_held, 2, all_but_the_last_done, "all calls but the last done")
    # Its value as its entry in the index by key, no Node, and no place in a tuple of the
    # gather node's inputs (~31 B here; 119 B when each kept its Node of 80 B and its place
    # in the gather node's inputs; 171 B when a leaf's Node had slots for inputs and a
    # count of them and kept its task id, an int of 28 B, after the task ended).
    assert per_task < 45, f"{per_task:.0f} B per finished call"
