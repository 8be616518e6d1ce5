"""Throughput of 20 000 no-op tasks with the monitoring db on vs off, side by side.

Also builds a 1 000 000-task monitoring db through the real writer and times the query
"which tasks failed and why". Run: ``python bench/monitor_overhead.py [--tasks N] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time

import plait as pl
from plait.runtime._monitor import EventLog


@pl.app
def noop(i: int) -> int:
    return i


def throughput(tasks: int, monitor: str | None) -> float:
    """Tasks per second for one run of ``tasks`` independent no-op calls."""
    with pl.Runtime([pl.ProcessExecutor(2)], monitor=monitor, progress=False) as rt:
        rt.run(noop(-1))  # workers up and the function shipped before the clock starts
        start = time.perf_counter()
        rt.run(pl.gather(*(noop(i) for i in range(tasks))))
        return tasks / (time.perf_counter() - start)


def big_db(path: str, tasks: int, failing_every: int) -> float:
    """Write ``tasks`` tasks' events through an EventLog; returns seconds to close it."""
    log = EventLog(path)
    error = ValueError("seed rejected")
    key = bytes(16)
    for t in range(1, tasks + 1):
        log.task_event("pending", t, "simulate", key)
        log.task_event("dispatched", t, "simulate", key, executor="processes")
        log.task_event("running", t, "simulate", key, executor="processes", worker="processes/0")
        if t % failing_every:
            log.task_event("done", t, "simulate", key, executor="processes", worker="processes/0")
        else:
            log.task_event("failed", t, "simulate", key, executor="processes", worker="processes/0", error=error)
    start = time.perf_counter()
    log.close()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--big", type=int, default=1_000_000, help="tasks in the query benchmark's db (0: skip)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        off: list[float] = []
        on: list[float] = []
        for round_ in range(args.rounds):  # interleaved, so drift in machine load hits both alike
            off.append(throughput(args.tasks, None))
            on.append(throughput(args.tasks, os.path.join(tmp, f"run{round_}.db")))
            print(f"round {round_ + 1}: off {off[-1]:,.0f} tasks/s, on {on[-1]:,.0f} tasks/s")
        ratio = statistics.median(on) / statistics.median(off)
        print(f"{args.tasks} no-op tasks, ProcessExecutor(2), median of {args.rounds}:")
        print(f"  monitor off {statistics.median(off):,.0f} tasks/s, on {statistics.median(on):,.0f} tasks/s")
        print(f"  on/off throughput ratio {ratio:.3f} ({(1 - ratio) * 100:+.1f}% lower with it on; goal <= 10%)")
        if args.big:
            path = os.path.join(tmp, "big.db")
            start = time.perf_counter()
            tail = big_db(path, args.big, failing_every=1000)
            print(f"{args.big:,} tasks' events written in {time.perf_counter() - start:.1f}s (final flush {tail:.2f}s)")
            db = sqlite3.connect(path)
            start = time.perf_counter()
            rows = db.execute("SELECT task, name, worker, error FROM attempts WHERE state = 'failed'").fetchall()
            print(f"  'which tasks failed and why': {len(rows)} rows in {time.perf_counter() - start:.3f}s (goal < 1s)")
            db.close()


if __name__ == "__main__":
    main()
