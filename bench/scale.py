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

Run: ``python bench/scale.py [--pools 1024] [--workers 64] [--tasks 200000] [--rounds 1]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import zmq

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

    def heartbeat(self, now: float) -> None:
        if self.accepted and now >= self.next_heartbeat:
            self.socket.send(encode(Heartbeat())[0])
            self.next_heartbeat = now + self.period


def simulate(url: str, key_file: Path, first: int, count: int, workers: int) -> None:
    """Run ``count`` simulated pools until SIGTERM; SIGUSR1 makes them hold their tasks from then on."""
    holding = []
    signal.signal(signal.SIGUSR1, lambda *_: holding.append(True))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    context.max_sockets = count + 64
    keys = read_keys(key_file)
    pools = [Simulated(context, url, keys, f"sim-{first + i}", workers) for i in range(count)]
    poller = zmq.Poller()
    by_socket = {}
    for pool in pools:
        poller.register(pool.socket, zmq.POLLIN)
        by_socket[pool.socket] = pool
        pool.register()
    try:
        while True:
            for sock, _ in poller.poll(50):
                by_socket[sock].receive(bool(holding))
            now = time.monotonic()
            for pool in pools:
                pool.heartbeat(now)
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


def run_child(args: argparse.Namespace, pools: int, kill: float) -> dict[str, Any]:
    argv = [
        sys.executable,
        __file__,
        "--child",
        str(pools),
        "--workers",
        str(args.workers),
        "--tasks",
        str(args.tasks),
        "--per-process",
        str(args.per_process),
        "--kill",
        str(kill),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{pools} pools: failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pools", type=int, default=1024)
    parser.add_argument("--baseline", type=int, default=2, help="pools in the configuration compared against")
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--tasks", type=int, default=200_000)
    parser.add_argument("--per-process", type=int, default=256, help="simulated pools per process")
    parser.add_argument("--kill", type=float, default=0.1, help="fraction of the big configuration's pools killed")
    parser.add_argument("--rounds", type=int, default=1)
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
    runs: dict[int, list[dict[str, Any]]] = {args.baseline: [], args.pools: []}
    for number in range(args.rounds):
        for pools, kill in ((args.baseline, 0.0), (args.pools, args.kill)):
            runs[pools].append(run_child(args, pools, kill))
            print(f"round {number + 1}, {pools} pools: {json.dumps(runs[pools][-1])}", flush=True)
    rate = {pools: statistics.median(r["tasks_per_s"] for r in rs) for pools, rs in runs.items()}
    print(f"load: {os.getloadavg()}")
    for pools, rs in runs.items():
        spread = ", ".join(f"{r['tasks_per_s']:,.0f}" for r in rs)
        print(f"{pools:5} pools x {args.workers}: median {rate[pools]:9,.0f} tasks/s ({spread})")
    print(f"{args.pools} / {args.baseline} pools: {rate[args.pools] / rate[args.baseline]:.2f} (goal >= 0.8)")


if __name__ == "__main__":
    main()
