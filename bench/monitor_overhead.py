"""Throughput of 20 000 no-op tasks with the monitoring db on vs off, side by side.

Also builds a 1 000 000-task monitoring db through the real writer and times the query
"which tasks failed and why". Run: ``python bench/monitor_overhead.py [--tasks N] [--rounds R]``.

With ``--tree NAME=PATH`` (repeatable) it compares checkouts of plait instead: each round
runs every tree off and on, a fresh process each, and prints per tree the on/off ratio of
tasks/s, what "on" adds to the driver's CPU per task, the CPU per task of the run's
writer process where there is one, and how long the monitor's close took (what the run
waits for at its end; ``bench/_trees.py``); and the same for the EventLog alone, told of
the tasks' events at 25 000 tasks/s with no executor (far less noisy).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sqlite3
import statistics
import tempfile
import time

from _trees import alternate, child_figures, show, trees_of

import plait as pl
from plait.backends import TaskUsage
from plait.runtime._monitor import EventLog


@pl.app
def noop(i: int) -> int:
    return i


def throughput(tasks: int, monitor: str | None) -> tuple[float, float, float, float, float, int]:
    """Tasks per second, driver CPU microseconds per task (all its threads), the CPU
    microseconds per task of the monitor's writer process in its whole life (0 without
    one), and the milliseconds the monitor's close took, for one run of ``tasks``
    independent no-op calls. The monitor's final flush at close counts. Last, the workers'
    CPU microseconds per task over their whole life (their start and the first call too,
    the same with the db on or off), reaped when the runtime closes; and the driver's young
    collections in the run (a count: it holds still where CPU times do not)."""
    reaped = _children_cpu()  # the writer is reaped when the monitor closes; the workers later
    young = [0]

    def count(phase: str, info: dict[str, int]) -> None:
        young[0] += phase == "start" and info["generation"] == 0

    with pl.Runtime([pl.ProcessExecutor(2)], monitor=monitor, progress=False) as rt:
        rt.run(noop(-1))  # workers up and the function shipped before the clock starts
        start, cpu = time.perf_counter(), time.process_time()
        gc.callbacks.append(count)
        rt.run(pl.gather(*(noop(i) for i in range(tasks))))
        gc.callbacks.remove(count)
        closing = time.perf_counter()
        if rt._interpreter.monitor is not None:
            rt._interpreter.monitor.close()  # idempotent: what is left to write is part of the cost
        end = time.perf_counter()
        rate, driver = tasks / (end - start), (time.process_time() - cpu) / tasks * 1e6
        writer = _children_cpu() - reaped
    workers = _children_cpu() - reaped - writer
    return rate, driver, writer / tasks * 1e6, (end - closing) * 1e3, workers / tasks * 1e6, young[0]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_child(script: str, tree: str, tasks: int) -> dict[str, float]:
    """One round for one tree: a run with the db off and one with it on, each a fresh process."""
    off = child_figures(script, tree, ["off", "--tasks", str(tasks)])
    on = child_figures(script, tree, ["on", "--tasks", str(tasks)])
    alone = child_figures(script, tree, ["alone", "--tasks", str(tasks)])
    added = {part: on[part] - off[part] for part in ("driver", "writer", "workers")}
    return {
        "on/off tasks/s": on["rate"] / off["rate"],
        "off tasks/s": off["rate"],
        "driver on-off us": added["driver"],
        "writer proc us": added["writer"],
        "workers on-off us": added["workers"],
        "all on-off us": sum(added.values()),
        "young gc on-off": on["young"] - off["young"],
        "close ms": on["close"],
        "alone driver us": alone["driver"],
        "alone loop us": alone["loop"],
        "alone writer us": alone["writer"],
        "alone close ms": alone["close"],
    }


def big_db(path: str, tasks: int, failing_every: int) -> float:
    """Write ``tasks`` tasks' events through an EventLog; returns seconds to close it."""
    log = EventLog(path)
    events(log, range(1, tasks + 1), failing_every)
    start = time.perf_counter()
    log.close()
    return time.perf_counter() - start


def events(log: EventLog, tasks: range, failing_every: int) -> None:
    """The four events of each of ``tasks``, as a run of no-ops on processes tells them."""
    error, key, usage = ValueError("seed rejected"), bytes(16), TaskUsage(0.0001, 12_000_000)
    for t in tasks:
        log.task_event("pending", t, "simulate", key)
        log.task_event("dispatched", t, "simulate", key, executor="processes")
        log.task_event("running", t, "simulate", key, executor="processes", worker="processes/0", at=time.time())
        if t % failing_every:
            log.task_event("done", t, "simulate", key, executor="processes", worker="processes/0", usage=usage)
        else:
            log.task_event("failed", t, "simulate", key, executor="processes", worker="processes/0", error=error)


def log_alone(path: str, tasks: int, per_second: int = 25_000) -> tuple[float, float, float, float]:
    """The EventLog alone, told of ``tasks`` tasks at ``per_second`` (in steps of 500, the
    rest of each step asleep, as a loop thread waits): the driver's CPU microseconds per
    task (all its threads), the writer process's (0 without one), the loop thread's, and
    the milliseconds its close takes (what a runtime's close waits for)."""
    reaped = _children_cpu()
    log = EventLog(path)
    start, cpu, loop = time.perf_counter(), time.process_time(), 0.0
    for first in range(1, tasks + 1, 500):
        step = time.thread_time()
        events(log, range(first, min(first + 500, tasks + 1)), failing_every=1000)
        loop += time.thread_time() - step
        time.sleep(max(0.0, start + (first + 500) / per_second - time.perf_counter()))
    closing = time.perf_counter()
    log.close()
    closed = (time.perf_counter() - closing) * 1e3
    driver = (time.process_time() - cpu) / tasks * 1e6
    writer_cpu = (_children_cpu() - reaped) / tasks * 1e6
    return driver, writer_cpu, loop / tasks * 1e6, closed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--big", type=int, default=1_000_000, help="tasks in the query benchmark's db (0: skip)")
    parser.add_argument("--tree", action="append", default=[], help="NAME=PATH of a plait checkout (repeatable)")
    parser.add_argument("--child", choices=["off", "on", "alone"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "run.db")
            if args.child == "alone":
                driver, writer, loop, closed = log_alone(path, args.tasks)
                print(json.dumps({"driver": driver, "writer": writer, "loop": loop, "close": closed}))
                return
            rate, driver, writer, closed, workers, young = throughput(args.tasks, path if args.child == "on" else None)
        figures = {
            "rate": rate,
            "driver": driver,
            "writer": writer,
            "close": closed,
            "workers": workers,
            "young": young,
        }
        print(json.dumps(figures))
        return
    if args.tree:
        print(f"{args.tasks} no-op tasks, ProcessExecutor(2), monitoring db on against off, by tree:")
        show(alternate(trees_of(args.tree), args.rounds, lambda tree: run_child(__file__, tree, args.tasks)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        off: list[tuple[float, float]] = []
        on: list[tuple[float, float]] = []
        for round_ in range(args.rounds):  # interleaved, so drift in machine load hits both alike
            off.append(throughput(args.tasks, None)[:2])
            on.append(throughput(args.tasks, os.path.join(tmp, f"run{round_}.db"))[:2])
            print(f"round {round_ + 1}: off {off[-1][0]:,.0f} tasks/s, on {on[-1][0]:,.0f} tasks/s")
        print(f"{args.tasks} no-op tasks, ProcessExecutor(2), {args.rounds} rounds each:")
        for what, pick in (("median", statistics.median), ("best", max)):
            rate_off, rate_on = pick(r for r, _ in off), pick(r for r, _ in on)
            ratio = rate_on / rate_off
            print(
                f"  {what}: off {rate_off:,.0f} tasks/s, on {rate_on:,.0f} tasks/s, "
                f"on/off {ratio:.3f} ({(1 - ratio) * 100:.1f}% lower with it on; goal <= 10%)"
            )
        cpu_off, cpu_on = statistics.median(c for _, c in off), statistics.median(c for _, c in on)
        print(
            f"  driver CPU per task (median): off {cpu_off:.1f} us, on {cpu_on:.1f} us, "
            f"on/off {cpu_on / cpu_off:.3f} (less noisy than wall time on a shared machine)"
        )
        if args.big:
            path = os.path.join(tmp, "big.db")
            start = time.perf_counter()
            tail = big_db(path, args.big, failing_every=1000)
            print(f"{args.big:,} tasks' events written in {time.perf_counter() - start:.1f}s (final flush {tail:.2f}s)")
            db = sqlite3.connect(path)
            start = time.perf_counter()
            rows = db.execute("SELECT task, name, worker, error FROM attempts WHERE state = 'failed'").fetchall()
            print(f"  'which tasks failed and why': {len(rows)} rows in {time.perf_counter() - start:.3f}s (goal < 1s)")
            db.execute("DROP INDEX attempts_state")  # as in a killed run of a plait that indexed at close
            start = time.perf_counter()
            rows = db.execute("SELECT task, name, worker, error FROM attempts WHERE state = 'failed'").fetchall()
            print(f"  the same without the index: {time.perf_counter() - start:.3f}s")
            db.close()


if __name__ == "__main__":
    main()
