"""A task goes to a ProcessExecutor's worker in the turn of the loop that submits it, not a turn later."""

from __future__ import annotations

from typing import Any

import plait as pl
from tests.loop_turns import Turns


@pl.app(pure=False)
def noop(x: int) -> int:
    return x


def test_a_lone_task_goes_to_its_worker_in_the_turn_that_admits_it() -> None:
    executor = pl.ProcessExecutor(1)
    with pl.Runtime([executor], progress=False) as rt:
        assert rt.run(noop(-1)) == -1  # the worker is up
        turns = Turns(rt._loop)
        admitted: list[int] = []
        written: list[int] = []
        doorbell = rt._doorbell
        assert doorbell is not None
        admit = doorbell._answer
        doorbell._answer = lambda: (admitted.append(turns.count), admit())[1]
        (worker,) = executor._pool
        write = worker.writer.write

        def counted(data: Any) -> None:
            written.append(turns.count)
            write(data)

        worker.writer.write = counted  # type: ignore[method-assign]
        for x in range(20):
            assert rt.run(noop(x)) == x
        worker.writer.write = write  # type: ignore[method-assign]  # its stop at shutdown is no task
    # Main wrote each a turn after the one that admitted it.
    assert written == admitted
