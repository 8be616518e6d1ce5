"""plait in a real Jupyter kernel: await, run, interrupts, and the progress bar as a cell output."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.kernel import Kernel

SETUP = """
import asyncio, time
import plait as pl

@pl.app(cache=False)
def slow(x: int) -> int:
    time.sleep(0.4)
    return x

rt = pl.Runtime([pl.ProcessExecutor(2)], progress=False).start()
"""


@pytest.fixture(scope="module")
def kernel() -> Iterator[Kernel]:
    kernel = Kernel()
    cell = kernel.run(SETUP)
    assert cell.status == "ok", cell.result
    yield kernel
    kernel.run("rt.shutdown()")
    kernel.close()


def counts(kernel: Kernel) -> dict[str, int]:
    """The runtime's tasks by state, read from its repr in the kernel."""
    text = kernel.run("rt").result
    return {state: int(n) for n, state in re.findall(r"(\d+) (running|queued|done|failed|cancelled)", text)}


def test_await_an_expr_and_a_future_in_a_cell(kernel: Kernel) -> None:
    assert kernel.run("await slow(1)").result == "1"
    assert kernel.run("await rt.submit(pl.gather(slow(2), slow(3)))").result == "[2, 3]"


def test_pl_run_in_a_cell_uses_the_default_runtime_without_deadlock(kernel: Kernel) -> None:
    cell = kernel.run("pl.run(pl.gather(slow(4), slow(5)))", timeout=60)
    assert cell.result == "[4, 5]"


def test_interrupting_a_run_cancels_its_tasks_and_the_runtime_goes_on(kernel: Kernel) -> None:
    before = counts(kernel)
    cell = kernel.run("rt.run(pl.gather(*[slow(i) for i in range(100, 120)]))", interrupt_after=1.0)
    assert cell.error == "KeyboardInterrupt"
    assert cell.seconds < 3.5  # 20 tasks of 0.4 s on 2 workers would take 4 s
    after = counts(kernel)
    assert after["running"] == after.get("queued", 0) == 0
    assert after.get("cancelled", 0) - before.get("cancelled", 0) >= 10  # the rest of the 20 never ran
    assert kernel.run("rt.run(slow(6))").result == "6"


def test_interrupting_a_wait_cancels_what_that_cell_submitted_and_nothing_else(kernel: Kernel) -> None:
    assert kernel.run("earlier = rt.submit(slow(7))").status == "ok"
    cell = kernel.run("fs = [rt.submit(slow(i)) for i in range(200, 220)]; fs[-1].result()", interrupt_after=1.0)
    assert cell.error == "KeyboardInterrupt"
    states = kernel.run("time.sleep(0.2); sorted({repr(f).rpartition('state=')[2] for f in fs})").result
    assert "cancelled>" in states and "pending" not in states and "running" not in states
    assert kernel.run("earlier.result(10), repr(earlier)").result.endswith("state=finished returned int>')")
    assert kernel.run("rt.run(slow(8))").result == "8"


def test_an_interrupted_await_cancels_the_rest_of_what_its_cell_submitted(kernel: Kernel) -> None:
    # ipykernel delivers the interrupt to an awaiting cell only when the await ends, as
    # CancelledError (ipython/ipykernel#881): the other 19 futures are cancelled then.
    cell = kernel.run("fs = [rt.submit(slow(i)) for i in range(300, 320)]; await fs[0]", interrupt_after=0.2)
    assert cell.error == "CancelledError"
    states = kernel.run("time.sleep(0.2); [repr(f).rpartition('state=')[2] for f in fs]").result
    assert states.count("cancelled>") >= 15, states


def test_progress_is_one_output_updated_in_place_while_the_cell_runs(kernel: Kernel) -> None:
    cell = kernel.run(
        "@pl.app(cache=False)\n"
        "def nap(x: int) -> int:\n"
        "    time.sleep(0.3)\n"
        "    return x\n"
        "with pl.Runtime([pl.ThreadExecutor(2)]) as threads:\n"  # progress=None: on, as a notebook output
        "    total = sum(threads.run(pl.gather(*[nap(i) for i in range(10)])))\n"
        "total"
    )
    assert cell.result == "45"
    (shown,) = cell.of("display_data")
    updates = cell.of("update_display_data")
    display_id = shown["transient"]["display_id"]
    assert len(updates) >= 3 and all(u["transient"]["display_id"] == display_id for u in updates)
    texts = [shown["data"]["text/plain"]] + [u["data"]["text/plain"] for u in updates]
    finished = [int(re.match(r"\S+ (\d+)/10 ", t)[1]) for t in texts]  # type: ignore[index]
    assert finished == sorted(finished) and finished[0] < 10 and finished[-1] == 10
    assert "<pre" in shown["data"]["text/html"]
    assert not cell.of("stream")  # nothing printed to stdout or stderr
