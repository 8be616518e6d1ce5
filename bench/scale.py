"""Scale by simulation: 1 024 simulated pools x 64 workers on one ZMQExecutor, against 2.

A simulated pool is a DEALER socket that speaks the real protocol — CurveZMQ with the
run's keys (read from ``executor.key_file``), register, accept, heartbeats both ways,
tasks, results — and finishes every task at once (its result is ``None``; it never
unpickles a call). Many live in one process (``--per-process``), so 65 536 "workers" fit
on a laptop. Each configuration runs in a fresh driver process, the two alternating:

- **throughput**: ``--tasks`` no-ops as one gathered graph, tasks/s from the first
  dispatch to the last result (the build is timed apart); the goal is that 1 024 pools
  keep >= 0.8x the 2-pool figure;
- **heartbeats**: heartbeats every 0.5 s with a 3 s threshold, so a run spans several
  thresholds; every pool must still be registered at the end (no false losses), and
  each pool reports the longest it went without hearing from the executor;
- **loss** (the big configuration only): a tenth of the pools, in a process of their
  own, stop answering (they keep their heartbeats) and hold the tasks they are sent
  in a run of a task per worker; then that process is SIGKILLed and the run must complete: their tasks are retried;
  exactly those pools are reported lost;
- **memory**: the driver's RSS growth from before the pools connect to after all
  registered, per pool.

Run: ``python bench/scale.py [--pools 1024] [--workers 64] [--tasks 200000] [--rounds 1]``;
``--tree before=/tmp/old-checkout --tree after=.`` runs both configurations on each tree in
turn, a fresh process each, and prints the medians over rounds with every value.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
import resource
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import zmq
from _trees import alternate, child_figures, show, trees_of

import plait as pl
from plait._version import __version__
from plait.backends.zmq._curve import configure_client, read_keys
from plait.backends.zmq._protocol import (
    PROTOCOL_VERSION,
    Accept,
    Heartbeat,
    Register,
    ResultRow,
    Results,
    Tasks,
    decode,
    encode,
    python_version,
)

HERE = Path(__file__).resolve().parent
HEARTBEAT = {"heartbeat_period": 0.5, "heartbeat_threshold": 3.0}
NONE = pickle.dumps(None)


@pl.app(pure=False)
def noop(x: int) -> None:
    return None


# -- the simulated pools ---------------------------------------------------------------------


class Simulated:
    """One simulated pool: a keyed DEALER that registers and answers every task at once."""

    def __init__(
        self, context: zmq.Context[zmq.Socket[bytes]], url: str, keys: dict[str, bytes], pool_id: str, workers: int
    ) -> None:
        self.pool_id, self.workers = pool_id, workers
        self.socket = context.socket(zmq.DEALER)
        self.socket.linger = 0
        configure_client(self.socket, keys)
        self.socket.connect(url)
        self.period = 1.0
        self.accepted = False
        self.next_heartbeat = 0.0
        self.last_heard = time.monotonic()
        self.longest_silence = 0.0
        self.held = 0

    def register(self) -> None:
        self.socket.send_multipart(
            encode(
                Register(
                    protocol=PROTOCOL_VERSION,
                    plait=__version__,
                    python=python_version(),
                    capacity=self.workers,
                    host=socket.gethostname(),
                    pool=self.pool_id,
                    pid=os.getpid(),
                )
            )
        )

    def receive(self, hold: bool) -> None:
        while True:
            try:
                message, _ = decode(self.socket.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                return
            now = time.monotonic()
            if self.accepted:
                self.longest_silence = max(self.longest_silence, now - self.last_heard)
            self.last_heard = now
            if isinstance(message, Accept):
                self.accepted, self.period = True, message.heartbeat_period
            elif isinstance(message, Tasks) and hold:
                self.held += len(message.tasks)
            elif isinstance(message, Tasks):
                now, worker = time.time(), f"{self.pool_id}/0"
                rows = [ResultRow(row.task_id, True, now, now, None, None, len(NONE), worker) for row in message.tasks]
                self.socket.send_multipart(encode(Results(rows), [NONE] * len(rows)))

    def heartbeat(self, now: float, hold: bool) -> None:
        if self.accepted and now >= self.next_heartbeat:
            self.socket.send(encode(Heartbeat())[0])
            self.next_heartbeat = now + self.period
            self.receive(hold)  # a send may take the socket's wake-up for a message that came meanwhile


def simulate(url: str, key_file: Path, first: int, count: int, workers: int) -> None:
    """Run ``count`` simulated pools until SIGTERM; SIGUSR1 makes them hold their tasks from then on."""
    holding = []
    signal.signal(signal.SIGUSR1, lambda *_: holding.append(True))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    context.max_sockets = count + 64
    keys = read_keys(key_file)
    pools = [Simulated(context, url, keys, f"sim-{first + i}", workers) for i in range(count)]
    # A real pool waits on its one socket. Many in a process wait on their sockets' file
    # descriptors with epoll, which wakes for the ready ones only: a zmq.Poller looks at every
    # socket on each wake (~160 us for 256), a cost of the simulation that no real pool has.
    ready = select.epoll()
    by_fd = {}
    for pool in pools:
        fd = pool.socket.getsockopt(zmq.FD)
        ready.register(fd, select.EPOLLIN)
        by_fd[fd] = pool
        pool.register()
        pool.receive(False)  # a socket's descriptor wakes only after a receive has found nothing
    next_look = 0.0
    try:
        while True:
            for fd, _ in ready.poll(0.05):
                by_fd[fd].receive(bool(holding))
            # Heartbeats are looked at every 50 ms, not after every wake, for the same reason.
            now = time.monotonic()
            if now >= next_look:
                next_look = now + 0.05
                for pool in pools:
                    pool.heartbeat(now, bool(holding))
    finally:
        print(json.dumps({"longest_silence": max(p.longest_silence for p in pools)}), flush=True)


# -- the driver of one configuration ----------------------------------------------------------


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


class Losses(logging.Handler):
    """The pools the executor says it lost."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lost: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "lost pool " in message:  # "<label>: lost pool <id> on <host>: <why>"
            self.lost.append(message.split("lost pool ", 1)[1].split(" ", 1)[0])


def start_simulators(
    executor: pl.ZMQExecutor, groups: list[tuple[int, int]], workers: int
) -> list[subprocess.Popen[str]]:
    assert executor.key_file is not None, "every ZMQExecutor link is CurveZMQ: it wrote a key file"
    return [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--simulate",
                executor.url,
                str(executor.key_file),
                str(first),
                str(count),
                str(workers),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for first, count in groups
    ]


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def held_by(rt: pl.Runtime, executor: pl.ZMQExecutor, prefix: set[str]) -> int:
    async def count() -> int:
        return sum(len(p.inflight) for p in list(executor._pools.values()) if p.pool_id in prefix)

    return rt._wait(count())


def drive(pools: int, workers: int, tasks: int, per_process: int, kill: float) -> dict[str, Any]:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # a connection per pool
    losses = Losses()
    logging.getLogger("plait.zmq").addHandler(losses)
    provider = pl.LocalProvider(workers=workers, init_blocks=0, min_blocks=0, max_blocks=0)  # no real pools
    executor = pl.ZMQExecutor(provider=provider, **HEARTBEAT)
    doomed = round(kill * pools)
    groups = [(0, doomed)] if doomed else []
    groups += [(first, min(per_process, pools - first)) for first in range(doomed, pools, per_process)]
    figures: dict[str, Any] = {"pools": pools, "workers": pools * workers}
    with pl.Runtime([executor], progress=False) as rt:
        before = rss_mb()
        started = time.perf_counter()
        simulators = start_simulators(executor, groups, workers)
        try:
            wait_until(lambda: len(executor._pools) == pools, 120, f"{pools} pools to register")
            figures["register_s"] = time.perf_counter() - started
            figures["driver_kb_per_pool"] = (rss_mb() - before) * 1024 / pools
            assert rt.run(noop(-1)) is None
            started = time.perf_counter()
            graph = pl.gather(*[noop(i) for i in range(tasks)])
            figures["build_s"] = time.perf_counter() - started
            started, cpu = time.perf_counter(), time.process_time()
            assert rt.run(graph) == [None] * tasks
            run = time.perf_counter() - started
            figures["tasks_per_s"] = tasks / run
            figures["driver_cpu_us_per_task"] = 1e6 * (time.process_time() - cpu) / tasks
            figures["false_losses"] = len(losses.lost)
            if doomed:
                figures.update(lose(rt, executor, simulators[0], doomed, pools * workers, losses=losses))
            figures["registered_at_end"] = len(executor._pools)
        finally:
            for process in simulators:
                process.send_signal(signal.SIGTERM)
            silences = [json.loads(out) for p in simulators if (out := p.communicate()[0].strip())]
            figures["longest_silence_s"] = max(s["longest_silence"] for s in silences)
    return figures


def lose(
    rt: pl.Runtime,
    executor: pl.ZMQExecutor,
    process: subprocess.Popen[str],
    doomed: int,
    tasks: int,
    *,
    losses: Losses,
) -> dict[str, Any]:
    """Make the doomed pools hold what they are sent, SIGKILL them, and time the run to its end.

    A run of ``tasks`` (a task per worker) reaches every pool: each idle worker is sent one first.
    """
    ids = {f"sim-{i}" for i in range(doomed)}
    losses.lost.clear()
    process.send_signal(signal.SIGUSR1)
    time.sleep(0.2)
    future = rt.submit(pl.gather(*[noop(-i) for i in range(1, tasks + 1)]))
    wait_until(lambda: held_by(rt, executor, ids) > 0, 30, "the doomed pools to hold tasks")
    held = held_by(rt, executor, ids)
    process.kill()
    killed = time.perf_counter()
    assert future.result(120) == [None] * tasks
    return {
        "killed_pools": doomed,
        "tasks_they_held": held,
        "lost_pools_reported": len(set(losses.lost)),
        "lost_exactly_the_killed": set(losses.lost) == ids,
        "kill_to_done_s": time.perf_counter() - killed,
    }


# -- side by side ------------------------------------------------------------------------------


def run_child(args: argparse.Namespace, tree: str, pools: int, kill: float) -> dict[str, Any]:
    options = ["--workers", str(args.workers), "--tasks", str(args.tasks), "--per-process", str(args.per_process)]
    return child_figures(__file__, tree, [str(pools), *options, "--kill", str(kill)])


def side_by_side(args: argparse.Namespace, tree: str) -> dict[str, float]:
    """Both configurations on ``tree``, one after the other: the figures of the comparison."""
    small, big = args.baseline, args.pools
    base = run_child(args, tree, small, 0.0)
    print(f"{tree}, {small} pools: {json.dumps(base)}", flush=True)
    scaled = run_child(args, tree, big, args.kill)
    print(f"{tree}, {big} pools: {json.dumps(scaled)}", flush=True)
    figures = {
        f"k tasks/s, {small}": base["tasks_per_s"] / 1000,
        f"k tasks/s, {big}": scaled["tasks_per_s"] / 1000,
        f"{big} / {small} pools": scaled["tasks_per_s"] / base["tasks_per_s"],
        f"CPU us/task, {small}": base["driver_cpu_us_per_task"],
        f"CPU us/task, {big}": scaled["driver_cpu_us_per_task"],
        "false losses": scaled["false_losses"],
        "KB per pool": scaled["driver_kb_per_pool"],
        "longest silence": scaled["longest_silence_s"],
    }
    if "killed_pools" in scaled:
        figures["lost - killed"] = scaled["lost_pools_reported"] - scaled["killed_pools"]
        figures["exactly killed"] = float(scaled["lost_exactly_the_killed"])
        figures["tasks retried"] = scaled["tasks_they_held"]
        figures["kill to done s"] = scaled["kill_to_done_s"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pools", type=int, default=1024)
    parser.add_argument("--baseline", type=int, default=2, help="pools in the configuration compared against")
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--tasks", type=int, default=200_000)
    parser.add_argument("--per-process", type=int, default=256, help="simulated pools per process")
    parser.add_argument("--kill", type=float, default=0.1, help="fraction of the big configuration's pools killed")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--tree", action="append", default=[], help="NAME=PATH of a plait checkout (repeatable)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--simulate", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.simulate:
        url, key_file, first, count, workers = args.simulate
        simulate(url, Path(key_file), int(first), int(count), int(workers))
        return
    if args.child:
        print(json.dumps(drive(args.child, args.workers, args.tasks, args.per_process, args.kill)))
        return
    trees = trees_of(args.tree or [f"this={HERE.parent}"])
    show(alternate(trees, args.rounds, lambda tree: side_by_side(args, tree)))
    print(f"goal: {args.pools} / {args.baseline} pools >= 0.8")


if __name__ == "__main__":
    main()
