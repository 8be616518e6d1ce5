"""What supervising workers costs in CPU: per no-op task, in the driver and in a zmq pool.

Throughput on a shared machine swings by tens of percent from run to run; CPU time spent
per task by the processes that supervise workers swings much less. For each round and
each tree, a fresh process runs ``--tasks`` no-op tasks on ``ProcessExecutor(2)`` and on
``ZMQExecutor`` with one local pool of 2 workers, and reports the driver's CPU time per
task (all its threads) and, for zmq, the pool's. Trees alternate round by round, so
drift in machine load hits them alike; it prints the median of each figure per tree.

Run: ``python bench/supervision_cpu.py [--tasks N] [--rounds R] [TREE ...]``; each TREE is
a checkout of plait (default: this one), e.g. ``main`` against a branch; it prints each
figure's median, then every round's value.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def noop(x: int) -> int:
    return x


def measure(kind: str, n: int) -> dict[str, float]:
    """CPU microseconds per task of the driver (and pool), and tasks/s, for one run."""
    import psutil

    import plait as pl

    app = pl.app(noop)
    executor: pl.Executor
    if kind == "processes":
        executor = pl.ProcessExecutor(2)
    else:
        executor = pl.ZMQExecutor(provider=pl.LocalProvider(workers=2), heartbeat_period=0.2, heartbeat_threshold=3.0)
    with pl.Runtime([executor], progress=False) as rt:
        rt.run(app(-1))  # workers up and the function shipped before the clock starts
        pool = None
        if isinstance(executor, pl.ZMQExecutor) and executor.blocks is not None:
            pool = psutil.Process(int(next(iter(executor.blocks.jobs.values()))))
        pool_before = sum(pool.cpu_times()[:2]) if pool else 0.0
        cpu, wall = time.process_time(), time.perf_counter()
        rt.run(pl.traverse(app, range(n)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        pool_cpu = sum(pool.cpu_times()[:2]) - pool_before if pool else 0.0
    figures = {"driver_us": cpu / n * 1e6, "tasks_per_s": n / wall}
    if pool is not None:
        figures["pool_us"] = pool_cpu / n * 1e6
    return figures


def in_fresh_process(tree: Path, kind: str, n: int) -> dict[str, float]:
    command = [sys.executable, str(Path(__file__).resolve()), "--one", kind, "--tasks", str(n)]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, check=True, timeout=600)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("trees", nargs="*", type=Path, default=[HERE.parent])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--one", choices=["processes", "zmq"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.tasks)))
        return
    runs: dict[tuple[str, Path], list[dict[str, float]]] = {}
    for _ in range(args.rounds):
        for kind in ("processes", "zmq"):
            for tree in args.trees:
                runs.setdefault((kind, tree), []).append(in_fresh_process(tree.resolve(), kind, args.tasks))
    for (kind, tree), figures in runs.items():
        for name in figures[0]:  # the median, then every round's value: the spread is the point
            values = [f[name] for f in figures]
            every = ", ".join(f"{value:,.1f}" for value in values)
            print(f"{kind:9s} {tree!s:30s} {name:12s} {statistics.median(values):>10,.1f}  ({every})")


if __name__ == "__main__":
    main()
