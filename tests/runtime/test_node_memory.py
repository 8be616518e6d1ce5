"""What the driver holds per task, queued and finished: a million-task run must fit in well under 2 GB."""

from __future__ import annotations

import gc
import threading
import tracemalloc

import plait as pl
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


def test_a_queued_call_costs_the_driver_under_130_bytes_beyond_its_expr_140_at_the_peak() -> None:
    graph = pl.traverse(held, range(TASKS))
    GATE.clear()
    # One worker, held by the first call: the runtime keeps all but the two it sends queued.
    with pl.Runtime([pl.ThreadExecutor(1)], progress=False) as rt:
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            future = rt.submit(graph)
            interpreter = rt._interpreter
            queued = interpreter.queues["threads"]
            wait_for(lambda: len(queued) + interpreter.inflight["threads"] == TASKS, "all calls queued", timeout=30)
            now, peak = tracemalloc.get_traced_memory()
            per_task, peak_per_task = (now - before) / TASKS, (peak - before) / TASKS
        finally:
            tracemalloc.stop()
            GATE.set()
        # A Node, its index entry and its place in the queue (~127 B here; 151 B when a leaf's
        # Node had slots for inputs and a count of them; 185 B when each also held its task id,
        # an int of 32 B, before it was sent; 406 B when each also held a TaskSpec, a task-id
        # dict entry and a list of dependents).
        assert per_task < 130, f"{per_task:.0f} B per queued call"
        # At its peak, while the graph is admitted and its ready leaves started: no work item
        # (a tuple of 64 B) per ready leaf on top (~139 B here, ~163 B with a leaf's Node as
        # large as a gather's, ~223 B with a work item and the id).
        assert peak_per_task < 140, f"{peak_per_task:.0f} B per call at the peak"
        assert future.result(timeout=60) == list(range(TASKS))


def test_a_finished_call_held_for_its_gather_costs_the_driver_under_125_bytes() -> None:
    # A gathered run's peak: every call but the last has finished, and each result waits
    # for the gather. The call returns its argument, so the results themselves cost nothing.
    graph = pl.traverse(last_held, range(TASKS))
    GATE.clear()
    with pl.Runtime([pl.ThreadExecutor(2)], progress=False) as rt:
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            future = rt.submit(graph)
            ended = rt._interpreter.ended
            wait_for(lambda: ended["done"] == TASKS - 1, "all calls but the last done", timeout=30)
            per_task = (tracemalloc.get_traced_memory()[0] - before) / TASKS
        finally:
            tracemalloc.stop()
            GATE.set()
        # A Node of 80 B, its index entry and its place in the gather's inputs (~119 B here;
        # 171 B when a leaf's Node had slots for inputs and a count of them and kept its task
        # id, an int of 28 B, after the task ended).
        assert per_task < 125, f"{per_task:.0f} B per finished call"
        assert future.result(timeout=60) == list(range(TASKS))
