"""What resource monitoring costs: task throughput with it off vs on, side by side.

First one worker's own loop (``_worker.serve``, the loop of every ProcessExecutor and
zmq worker), fed by this process over its socket as fast as it takes tasks of
``--worker-work`` seconds of CPU (default 0.18 ms: about 5 000 tasks/s): what the
measurement costs a worker that has a core to itself, as on a compute node.

Then whole runs: tasks spin for ``--work`` seconds of CPU each (default 0.3 ms: about
5 000 tasks/s on 2 workers; 0 for no-ops, the worst case), and the driver, the workers
and, for zmq, the pool share the machine's cores. Both sides record events in a
monitoring db; "on" adds what issue #11 added: each task's CPU time and peak RSS,
measured on its worker and stored with its attempt, and node samples (every
``--interval`` seconds; the default is plait's, 5 s). "off" is ``PLAIT_TASK_USAGE=0``
in the workers and ``usage_interval=None``. Rounds alternate so drift in machine load
hits both alike. Also times the worker-side measurement alone.

Run: ``python bench/usage_overhead.py [--tasks N] [--rounds R] [--work S] [--worker-work S]
[--interval S] [--executor KIND]``

With ``--tree NAME=PATH`` (repeatable) it compares checkouts of plait instead, on
``--executor`` (zmq unless said): each round runs every tree off and on, a fresh process
each, and prints per tree the on/off ratio of tasks/s and what "on" adds to the CPU per
task of the driver, the pool and the workers (``bench/_trees.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cloudpickle
import psutil
from _trees import alternate, show, trees_of

import plait as pl
from plait.backends._records import HEADER, Result, Run, Start, Stop, Task, frame, read_results
from plait.backends._usage import TaskMeter
from plait.backends._worker import fork_worker


def spin(cpu_seconds: float) -> None:
    end = time.process_time() + cpu_seconds
    while time.process_time() < end:
        pass


@pl.app(pure=False)
def work(i: int, cpu_seconds: float) -> int:
    """Spin for ``cpu_seconds`` of CPU: 0 is a no-op, 0.0003 gives ~5 000 tasks/s on 2 workers."""
    spin(cpu_seconds)
    return i


def make(kind: str, interval: float | None) -> pl.Executor:
    if kind == "zmq":
        return pl.ZMQExecutor(provider=pl.LocalProvider(workers=2), usage_interval=interval)
    return pl.ProcessExecutor(2, usage_interval=interval)


def cpu_seconds(processes: list[psutil.Process]) -> float:
    times = [p.cpu_times() for p in processes]
    return sum(t.user + t.system for t in times)


def processes() -> dict[str, list[psutil.Process]]:
    """This process and its descendants: the driver, the zmq pools (a child with children:
    its launcher, which forks the workers) and the workers (the rest; launchers idle)."""
    driver = psutil.Process()
    children = driver.children(recursive=True)
    pools = [p for p in driver.children() if p.children()]
    return {"driver": [driver], "pool": pools, "workers": [p for p in children if p not in pools]}


def throughput(kind: str, args: argparse.Namespace, db: str, usage: bool) -> tuple[float, dict[str, float]]:
    """For one run of ``args.tasks`` tasks: tasks per second, and CPU microseconds per task of
    the driver, the pools, the workers and all of them: CPU is what a busy machine runs out of."""
    os.environ["PLAIT_TASK_USAGE"] = "1" if usage else "0"  # the workers started below inherit it
    try:
        executor = make(kind, args.interval if usage else None)
        with pl.Runtime([executor], monitor=db, progress=False) as rt:
            rt.run(work(-1, 0.0))  # workers up and the function shipped before the clock starts
            who = processes()
            before = {name: cpu_seconds(group) for name, group in who.items()}
            start = time.perf_counter()
            rt.run(pl.gather(*(work(i, args.work) for i in range(args.tasks))))
            monitor = rt._interpreter.monitor
            if monitor is not None:
                monitor.close()  # what is left to write is part of the cost
            rate = args.tasks / (time.perf_counter() - start)
            cpu = {name: (cpu_seconds(group) - before[name]) * 1e6 / args.tasks for name, group in who.items()}
            return rate, {**cpu, "all": sum(cpu.values())}
    finally:
        del os.environ["PLAIT_TASK_USAGE"]


def meter_cost(follows: bool, kept: bool = False, rounds: int = 20_000) -> float:
    """Microseconds a worker spends measuring one task (start and stop), for tasks that
    ``follow`` each other straight on or not; ``kept``: as a worker whose kernel-kept peak
    is above its RSS (one spawned by a bigger process)."""
    meter = TaskMeter()
    meter.stop(meter.start())  # the first start looks at the RSS
    meter._kept = kept  # as the meter finds it in such a worker
    start = time.perf_counter()
    for _ in range(rounds):
        meter.stop(meter.start(follows=follows))
    return (time.perf_counter() - start) / rounds * 1e6


def _results(sock: socket.socket) -> list[Result]:
    """The next batch of results a worker sends on ``sock`` (its records, behind a length)."""
    (size,) = HEADER.unpack(sock.recv(HEADER.size, socket.MSG_WAITALL))
    return read_results(sock.recv(size, socket.MSG_WAITALL))


def worker_loop(cpu_seconds: float, tasks: int, usage: bool) -> tuple[float, float]:
    """Tasks per second of one worker's loop, kept fed with batches as a driver keeps it,
    and its CPU microseconds per task (its result-sending thread included)."""
    os.environ["PLAIT_TASK_USAGE"] = "1" if usage else "0"  # the worker forked below inherits it
    ours, theirs = socket.socketpair()
    pid = fork_worker(theirs)
    theirs.close()
    try:
        ours.sendall(frame(Start(sys.path)))
        call = pickle.dumps(((cpu_seconds,), {}))
        _results(ours)  # ready
        ours.sendall(frame(Run([Task(0, "spin", b"spin", None, cloudpickle.dumps(spin), call)])))
        _results(ours)
        worker = psutil.Process(pid)
        before, start = sum(worker.cpu_times()[:2]), time.perf_counter()
        sent = done = 0
        while done < tasks:
            while sent < tasks and sent - done < 32:  # two batches of 16 ahead, as prefetch keeps it
                batch = min(16, tasks - sent)
                ours.sendall(frame(Run([Task(1 + sent + i, "spin", b"spin", None, None, call) for i in range(batch)])))
                sent += batch
            done += len(_results(ours))
        seconds, cpu = time.perf_counter() - start, sum(worker.cpu_times()[:2]) - before
        ours.sendall(frame(Stop()))
        os.waitpid(pid, 0)
        return tasks / seconds, cpu / tasks * 1e6
    finally:
        ours.close()
        del os.environ["PLAIT_TASK_USAGE"]


def compare_worker_loop(args: argparse.Namespace) -> None:
    runs: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for round_ in range(2 * args.rounds):
        for usage in (False, True) if round_ % 2 == 0 else (True, False):
            runs[usage].append(worker_loop(args.worker_work, args.tasks, usage))
    off, on = (statistics.median(r[0] for r in runs[usage]) for usage in (False, True))
    ratios = sorted(b[0] / a[0] for a, b in zip(runs[False], runs[True], strict=True))
    print(
        f"  off {off:,.0f} tasks/s, on {on:,.0f} tasks/s, on/off {on / off:.3f} (goal >= 0.98);"
        f" round by round {ratios[0]:.3f} to {ratios[-1]:.3f}"
    )
    cpu_off, cpu_on = (statistics.median(r[1] for r in runs[usage]) for usage in (False, True))
    print(f"  worker CPU per task (median): off {cpu_off:.1f} us, on {cpu_on:.1f} us, more {cpu_on - cpu_off:.1f} us")


def compare(kind: str, args: argparse.Namespace, tmp: str) -> None:
    runs: dict[bool, list[tuple[float, dict[str, float]]]] = {False: [], True: []}
    for round_ in range(args.rounds):
        for usage in (False, True) if round_ % 2 == 0 else (True, False):  # neither always goes first
            db = os.path.join(tmp, f"{kind}-{round_}-{usage}.db")
            runs[usage].append(throughput(kind, args, db, usage))
        print(f"  round {round_ + 1}: off {runs[False][-1][0]:,.0f} tasks/s, on {runs[True][-1][0]:,.0f} tasks/s")
    pick: Callable[[list[float]], float]
    for what, pick in (("median", statistics.median), ("best", max)):
        off, on = pick([r[0] for r in runs[False]]), pick([r[0] for r in runs[True]])
        print(f"  {what}: off {off:,.0f} tasks/s, on {on:,.0f} tasks/s, on/off {on / off:.3f} (goal >= 0.98)")
    for who in runs[False][0][1]:
        off = statistics.median(r[1][who] for r in runs[False])
        on = statistics.median(r[1][who] for r in runs[True])
        print(f"  {who} CPU per task (median): off {off:.1f} us, on {on:.1f} us, more {on - off:.1f} us")
    print("  (CPU per task of all processes is the steadier measure on a shared machine: its inverse is throughput")
    print("   when the machine is saturated)")


def run_child(tree: str, args: argparse.Namespace) -> dict[str, float]:
    """One round for one tree: a run with usage off and one with it on, each in a fresh
    process that imports plait from ``tree``; their ratio and differences."""
    figures = {}
    env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve())}
    common = ["--executor", args.executor, "--tasks", str(args.tasks), "--work", str(args.work)]
    for usage in ("off", "on"):
        command = [sys.executable, __file__, "--child", usage, "--interval", str(args.interval), *common]
        done = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=600)
        if done.returncode:
            raise RuntimeError(f"the run on {tree} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        figures[usage] = json.loads(done.stdout)
    off, on = figures["off"], figures["on"]
    more = {f"{who} CPU +us": on[who] - off[who] for who in off if who != "rate"}
    return {"on/off tasks/s": on["rate"] / off["rate"], **more}


def child(args: argparse.Namespace) -> None:
    """``--child off|on``: one run, its figures as JSON on stdout."""
    with tempfile.TemporaryDirectory() as tmp:
        rate, cpu = throughput(args.executor, args, os.path.join(tmp, "run.db"), args.child == "on")
    print(json.dumps({"rate": rate, **cpu}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--interval", type=float, default=5.0, help="node sampling interval with usage on (s)")
    parser.add_argument("--work", type=float, default=0.0003, help="CPU seconds per task (0: no-op)")
    parser.add_argument("--worker-work", type=float, default=0.00018, help="CPU seconds per task in the worker loop")
    parser.add_argument("--executor", choices=["processes", "zmq", "both"], default=None)
    parser.add_argument("--tree", action="append", default=[], help="NAME=PATH of a plait checkout (repeatable)")
    parser.add_argument("--child", choices=["off", "on"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child or args.tree:
        args.executor = args.executor or "zmq"
        if args.executor == "both":
            parser.error("--tree compares trees on one executor: processes or zmq")
        if args.child:
            child(args)
        else:
            print(f"{args.tasks} tasks of {args.work * 1e3:g} ms CPU on {args.executor}, usage on minus off, by tree:")
            show(alternate(trees_of(args.tree), args.rounds, lambda tree: run_child(tree, args)))
        return
    args.executor = args.executor or "both"
    chained, alone, kept = meter_cost(True), meter_cost(False), meter_cost(True, kept=True)
    print(
        f"worker-side measurement, hot: {chained:.1f} us per task back to back, {alone:.1f} us after a wait,"
        f" {kept:.1f} us when it reads a kept peak"
    )
    print(f"one worker's loop, on a core of its own, tasks of {args.worker_work * 1e3:g} ms CPU, usage off vs on:")
    compare_worker_loop(args)
    kinds = ["processes", "zmq"] if args.executor == "both" else [args.executor]
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            what = f"tasks of {args.work * 1e3:g} ms CPU" if args.work else "no-op tasks"
            print(f"{args.tasks} {what} on {kind} (2 workers), monitoring db on, usage off vs on:")
            compare(kind, args, tmp)


if __name__ == "__main__":
    main()
