"""The driver's own code per no-op through a ZMQExecutor, without its sockets or a pool.

Through a real pool, the driver's CPU per task swings by ±20 % with the machine's load
(batch sizes follow the timing, and the pool shares the cores), so a change of 1 µs in
the driver's Python cannot be seen in a few runs. Here a fake pool answers in the
driver's own loop: each Tasks message the executor sends is answered, a turn later, by
Results messages of ``--batch`` rows (a local pool sends ~10-16), handed to the
executor as if read from its socket. No socket, no CurveZMQ, no second process: the CPU
of the runtime's loop thread per task is the interpreter, the executor's books and the
wire's encoding and decoding. The main thread's is the build and ``run``.

Run: ``python bench/driver_path.py --tree before=/tmp/old-checkout --tree after=. [--rounds 5]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from _trees import alternate, show, trees_of


def noop(x: int) -> int:
    return x


def _fake_pool(executor: Any, loop: Any, batch: int) -> None:
    """Answer every task the executor sends, ``batch`` results a message, on its loop."""
    import pickle

    from plait.backends.zmq._protocol import ResultRow, Results, Tasks, decode, encode

    value = pickle.dumps(0)
    backlog: list[ResultRow] = []

    read = getattr(executor, "_read", None)  # what the router calls after a burst, on trees that have it

    def answer() -> None:
        rows = backlog[:batch]
        del backlog[:batch]
        executor._handle(b"pool", encode(Results(rows), [value] * len(rows)))
        if read is not None:
            read()
        if backlog:
            loop.call_soon(answer)

    def send(identity: bytes, frames: list[bytes]) -> bool:
        message, _ = decode(frames)
        if type(message) is Tasks:
            if not backlog:
                loop.call_soon(answer)
            backlog.extend(ResultRow(row.task_id, True, 1.0, 1.0, 0.0, 1, len(value), "w") for row in message.tasks)
        return True

    executor._router.send = send
    executor._table.add(b"pool", "fake", "localhost", 2, time.monotonic())


def thread_time_on(loop: Any) -> float:
    """The loop thread's CPU time so far, read on that thread."""
    box: list[float] = []
    done = threading.Event()
    loop.call_soon_threadsafe(lambda: (box.append(time.thread_time()), done.set()))
    done.wait()
    return box[0]


def measure(n: int, batch: int) -> dict[str, float]:
    import plait as pl

    app = pl.app(noop)
    provider = pl.LocalProvider(workers=2, init_blocks=0, max_blocks=0)  # no pool is started
    executor = pl.ZMQExecutor(provider=provider, encrypted=False)
    with pl.Runtime([executor], progress=False) as rt:
        loop = rt._loop
        loop.call_soon_threadsafe(_fake_pool, executor, loop, batch)
        # Warm: the function pickled, the code paths hot, the heap grown to a run's size (the
        # first run of a process pays page faults that later ones do not).
        rt.run(pl.traverse(app, range(-n, 0)))
        on_loop, on_main = thread_time_on(loop), time.thread_time()
        rt.run(pl.traverse(app, range(n)))
        on_main = time.thread_time() - on_main
        on_loop = thread_time_on(loop) - on_loop
    return {"loop_us": on_loop / n * 1e6, "main_us": on_main / n * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tree", action="append", default=[], help="NAME=PATH of a plait checkout (repeatable)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=16, help="results per message from the fake pool")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.tasks, args.batch)))
        return
    trees = trees_of(args.tree) or {"this": str(Path(__file__).resolve().parent.parent)}
    command = [sys.executable, __file__, "--child", "--tasks", str(args.tasks), "--batch", str(args.batch)]

    def run(tree: str) -> dict[str, float]:
        env = {**os.environ, "PYTHONPATH": tree}
        done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, check=True, timeout=600)
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))

    show(alternate(trees, args.rounds, run), ".2f")


if __name__ == "__main__":
    main()
