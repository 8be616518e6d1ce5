"""The seed's eager idiom, part by part, for trees side by side: what a submission costs the
caller, and what it costs the runtime's loop against a task of a gathered graph.

Per round and tree, a fresh process (``PYTHONPATH`` pointing at the tree) measures, in
thread CPU time per task (µs), which the machine's load moves less than wall time:

- ``build_us``, ``submit_us``, ``result_us``: the caller's ``noop(i)``, ``rt.submit`` and
  ``result()`` of a future that has ended, the runtime's loop held meanwhile (nothing
  contends for the GIL);
- ``loop_eager_us``, ``loop_gathered_us``: the loop thread's CPU for ``--n`` no-ops submitted
  one future at a time and as one gathered graph, on an executor that answers each task at
  once on the loop: the interpreter's own cost, without an executor's (median of 3 runs).

``bench/eager.py --tree …`` gives E / A itself, on a ZMQExecutor.

Run: ``python bench/eager_cost.py --tree before=/tmp/old-checkout --tree after=. [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _trees import alternate, child_figures, show, trees_of

HERE = Path(__file__).resolve().parent


def child(n: int) -> dict[str, float]:
    sys.path.insert(0, str(HERE))
    import _workloads as wl

    import plait as pl

    noop = pl.app(pure=False)(wl.noop)
    figures: dict[str, float] = {}
    with pl.Runtime([_answering_at_once(pl)], progress=False) as rt:
        assert rt.run(noop(-1)) == -1
        figures.update(_caller(rt, pl, noop, n))
        loop = {way: [_loop_cpu(rt, pl, noop, n, way) for _ in range(3)] for way in ("eager", "gathered")}
        figures.update((f"loop_{way}_us", statistics.median(runs)) for way, runs in loop.items())
    return figures


def _answering_at_once(pl: Any) -> Any:
    class AtOnce(pl.ThreadExecutor):  # type: ignore[misc,name-defined]
        """Answers each task on the loop as it is submitted: the interpreter's cost alone."""

        capacity = 64

        def submit(self, spec: Any) -> asyncio.Future[Any]:
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            future.set_result(pl.TaskResult(spec.task_id, spec.fn(*spec.args, **spec.kwargs)))
            return future

    return AtOnce(1)


def _holding_the_loop(rt: Any, pl: Any) -> tuple[threading.Event, Callable[[], float]]:
    """An event that frees the loop, held in a map till it is set, and the loop thread's CPU
    clock read as it was freed."""
    gate, freed = threading.Event(), []
    held = rt.submit(pl.pure(1).map(lambda _: (gate.wait(60), freed.append(time.thread_time()))))
    while held._root is None:  # admitted: its map runs next, on the loop
        time.sleep(0.001)
    return gate, lambda: (held.result(60), freed[0])[1]


def _caller(rt: Any, pl: Any, noop: Any, n: int) -> dict[str, float]:
    gate, _ = _holding_the_loop(rt, pl)
    started = time.thread_time()
    exprs = [noop(i) for i in range(n)]
    built = time.thread_time()
    futures = [rt.submit(e) for e in exprs]
    submitted = time.thread_time()
    gate.set()
    while not futures[-1].done():
        time.sleep(0.005)
    time.sleep(0.05)  # the loop is done with them: nothing contends
    read = time.thread_time()
    assert [f.result() for f in futures] == list(range(n))
    ended = time.thread_time()
    per = 1e6 / n
    return {
        "build_us": (built - started) * per,
        "submit_us": (submitted - built) * per,
        "result_us": (ended - read) * per,
    }


def _loop_cpu(rt: Any, pl: Any, noop: Any, n: int, way: str) -> float:
    """The loop thread's CPU per task for ``n`` no-ops run ``way``, submitted while it was held."""
    gate, freed_at = _holding_the_loop(rt, pl)
    exprs = [noop(i) for i in range(n)]
    futures = [rt.submit(e) for e in exprs] if way == "eager" else [rt.submit(pl.gather(exprs))]
    gate.set()
    started = freed_at()
    for future in futures:
        future.result(60)
    clock: list[float] = []
    asked = threading.Event()
    rt._loop.call_soon_threadsafe(lambda: (clock.append(time.thread_time()), asked.set()))
    asked.wait(60)
    return (clock[0] - started) * 1e6 / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", default=[], help="NAME=PATH of a plait checkout (repeatable)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.n)))
        return
    trees = trees_of(args.tree) or {"this": str(HERE.parent)}
    show(alternate(trees, args.rounds, lambda tree: child_figures(__file__, tree, ["--n", str(args.n)])))


if __name__ == "__main__":
    main()
