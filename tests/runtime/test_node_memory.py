"""What the driver holds per queued task: a million-task run must fit in well under 2 GB."""

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


def test_a_queued_call_costs_the_driver_under_170_bytes_beyond_its_expr_180_at_the_peak() -> None:
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
        # A Node, its index entry and its place in the queue (~151 B here; 185 B when each
        # also held its task id, an int of 32 B, before it was sent; 406 B when each also held
        # a TaskSpec, a task-id dict entry and a list of dependents).
        assert per_task < 170, f"{per_task:.0f} B per queued call"
        # At its peak, while the graph is admitted and its ready leaves started: no work item
        # (a tuple of 64 B) per ready leaf on top (~163 B here, ~223 B with one and the id).
        assert peak_per_task < 180, f"{peak_per_task:.0f} B per call at the peak"
        assert future.result(timeout=60) == list(range(TASKS))
