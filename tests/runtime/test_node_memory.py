"""What the driver holds per queued task: a million-task run must fit in well under 2 GB."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc

import plait as pl
from tests.waiting import wait_for

TASKS = 20_000


class Holding:
    """An executor with no room: every call the runtime starts stays queued in the driver."""

    label = "holding"
    capacity = 0
    can_kill = False

    async def start(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    def cancel(self, task_id: int) -> None:
        pass

    def submit(self, spec: pl.TaskSpec) -> asyncio.Future[pl.TaskResult]:
        raise AssertionError("an executor without room is sent nothing")


@pl.app(pure=False)
def noop(x: int) -> int:
    return x


def test_a_queued_call_costs_the_driver_under_250_bytes_beyond_its_expr() -> None:
    graph = pl.traverse(noop, range(TASKS))
    with pl.Runtime([Holding()], progress=False) as rt:
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            future = rt.submit(graph)
            queue = rt._interpreter.queues[Holding.label]
            wait_for(lambda: len(queue) == TASKS, f"{TASKS} calls queued", timeout=30)
            per_task = (tracemalloc.get_traced_memory()[0] - before) / TASKS
        finally:
            tracemalloc.stop()
        # A Node, its index entry and its place in the queue (184 B here; 406 B when each also held
        # a TaskSpec, a task-id dict entry and a list of dependents).
        assert per_task < 250, f"{per_task:.0f} B per queued call"
    assert future.cancelled() or future.exception(timeout=10) is not None
