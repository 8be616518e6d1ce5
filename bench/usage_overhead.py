"""What resource monitoring costs: task throughput with it off vs on, side by side.

The tasks spin for ``--work`` seconds of CPU each (default 0.3 ms: about 5 000 tasks/s
on 2 workers; 0 for no-ops, the worst case). Both sides record events in a monitoring
db; "on" adds what issue #11 added: each task's CPU time and peak RSS, measured on its
worker and stored with its attempt, and node samples (every ``--interval`` seconds; the
default is plait's, 5 s). "off" is ``PLAIT_TASK_USAGE=0`` in the workers and
``usage_interval=None``. Rounds alternate so drift in machine load hits both alike.
Also times the worker-side measurement alone.

Run: ``python bench/usage_overhead.py [--tasks N] [--rounds R] [--work S] [--interval S] [--executor KIND]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable

import psutil

import plait as pl
from plait.backends._usage import TaskMeter


@pl.app(cache=False)
def work(i: int, cpu_seconds: float) -> int:
    """Spin for ``cpu_seconds`` of CPU: 0 is a no-op, 0.0003 gives ~5 000 tasks/s on 2 workers."""
    if cpu_seconds:
        end = time.process_time() + cpu_seconds
        while time.process_time() < end:
            pass
    return i


def make(kind: str, interval: float | None) -> pl.Executor:
    if kind == "zmq":
        return pl.ZMQExecutor(provider=pl.LocalProvider(workers=2), usage_interval=interval)
    return pl.ProcessExecutor(2, usage_interval=interval)


def cpu_seconds(processes: list[psutil.Process]) -> float:
    times = [p.cpu_times() for p in processes]
    return sum(t.user + t.system for t in times)


def throughput(kind: str, args: argparse.Namespace, db: str, usage: bool) -> tuple[float, float, float]:
    """For one run of ``args.tasks`` tasks: tasks per second, and CPU microseconds per task of
    the driver and of everything (driver, pools, workers): CPU is what a busy machine runs out of."""
    os.environ["PLAIT_TASK_USAGE"] = "1" if usage else "0"  # the workers started below inherit it
    try:
        executor = make(kind, args.interval if usage else None)
        with pl.Runtime([executor], monitor=db, progress=False) as rt:
            rt.run(work(-1, 0.0))  # workers up and the function shipped before the clock starts
            everyone = [psutil.Process(), *psutil.Process().children(recursive=True)]
            start, cpu, total = time.perf_counter(), time.process_time(), cpu_seconds(everyone)
            rt.run(pl.gather(*(work(i, args.work) for i in range(args.tasks))))
            monitor = rt._interpreter.monitor
            if monitor is not None:
                monitor.close()  # what is left to write is part of the cost
            rate = args.tasks / (time.perf_counter() - start)
            per_task = 1e6 / args.tasks
            return rate, (time.process_time() - cpu) * per_task, (cpu_seconds(everyone) - total) * per_task
    finally:
        del os.environ["PLAIT_TASK_USAGE"]


def meter_cost(kept: bool, rounds: int = 20_000) -> float:
    """Microseconds a worker spends measuring one task (start and stop); ``kept``: as a worker
    whose kernel-kept peak is above its RSS (a ProcessExecutor worker of a bigger driver)."""
    meter = TaskMeter()
    meter._kept = kept  # as the meter finds it in such a worker
    start = time.perf_counter()
    for _ in range(rounds):
        meter.stop(meter.start(), 0.0)
    return (time.perf_counter() - start) / rounds * 1e6


def compare(kind: str, args: argparse.Namespace, tmp: str) -> None:
    runs: dict[bool, list[tuple[float, float, float]]] = {False: [], True: []}
    for round_ in range(args.rounds):
        for usage in (False, True) if round_ % 2 == 0 else (True, False):  # neither always goes first
            db = os.path.join(tmp, f"{kind}-{round_}-{usage}.db")
            runs[usage].append(throughput(kind, args, db, usage))
        print(f"  round {round_ + 1}: off {runs[False][-1][0]:,.0f} tasks/s, on {runs[True][-1][0]:,.0f} tasks/s")
    pick: Callable[[list[float]], float]
    for what, pick in (("median", statistics.median), ("best", max)):
        off, on = pick([r[0] for r in runs[False]]), pick([r[0] for r in runs[True]])
        print(f"  {what}: off {off:,.0f} tasks/s, on {on:,.0f} tasks/s, on/off {on / off:.3f} (goal >= 0.98)")
    for index, who in ((1, "driver"), (2, "all processes")):
        off = statistics.median(r[index] for r in runs[False])
        on = statistics.median(r[index] for r in runs[True])
        print(f"  {who} CPU per task (median): off {off:.1f} us, on {on:.1f} us, on/off {on / off:.3f}")
    print("  (CPU per task of all processes is the steadier measure on a shared machine: its inverse is throughput")
    print("   when the machine is saturated)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--interval", type=float, default=5.0, help="node sampling interval with usage on (s)")
    parser.add_argument("--work", type=float, default=0.0003, help="CPU seconds per task (0: no-op)")
    parser.add_argument("--executor", choices=["processes", "zmq", "both"], default="both")
    args = parser.parse_args()
    fast, kept = meter_cost(kept=False), meter_cost(kept=True)
    print(f"worker-side measurement: {fast:.1f} us per task ({kept:.1f} us when it reads the kept peak)")
    kinds = ["processes", "zmq"] if args.executor == "both" else [args.executor]
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            what = f"tasks of {args.work * 1e3:g} ms CPU" if args.work else "no-op tasks"
            print(f"{args.tasks} {what} on {kind} (2 workers), monitoring db on, usage off vs on:")
            compare(kind, args, tmp)


if __name__ == "__main__":
    main()
