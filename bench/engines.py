"""plait on Dask and Ray against Dask and Ray used directly, side by side in one run.

No-op throughput (workload A of ../shared/notes/peers.md): --tasks no-op tasks submitted at
once, tasks/s from the first submit (for plait: from building the graph) to the last result.
Each engine is started once (Dask: LocalCluster of 2 single-threaded worker processes; Ray:
num_cpus=2) and warmed up; then plait and the engine alone take turns, --rounds times. The
ratio is the median of each round's plait/direct; plait's overhead is 1 - ratio: the goal
(issue 10) is <= 10 %. Also printed: the driver process's CPU time per task (all its
threads; for Dask that includes the LocalCluster's scheduler), which a busy machine
disturbs less than wall-clock time.

Run: ``python bench/engines.py [--tasks 2000] [--rounds 3] [--only dask|ray]``.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from collections.abc import Callable
from typing import Any

import plait as pl


def noop(x: int) -> int:
    return x


Measure = Callable[[int], tuple[float, float]]  # n tasks -> (tasks/s, driver CPU µs per task)


def timed(run: Callable[[], list[int]], n: int) -> tuple[float, float]:
    cpu, started = time.process_time(), time.perf_counter()
    result = run()
    elapsed, used = time.perf_counter() - started, time.process_time() - cpu
    assert result == list(range(n))
    return n / elapsed, used / n * 1e6


def plait_on(executor: pl.Executor) -> Measure:
    runtime = pl.Runtime(executors=[executor]).start()
    app = pl.app(noop)
    runtime.run(app(-1))  # the function shipped before the clock starts

    def measure(n: int) -> tuple[float, float]:
        return timed(lambda: runtime.run(pl.traverse(app, range(n))), n)

    measure.runtime = runtime  # type: ignore[attr-defined]
    return measure


def dask_direct(client: Any) -> Measure:
    client.submit(noop, -1, pure=False).result()

    def measure(n: int) -> tuple[float, float]:
        return timed(lambda: client.gather([client.submit(noop, i, pure=False) for i in range(n)]), n)

    return measure


def ray_direct() -> Measure:
    import ray

    remote = ray.remote(noop)
    ray.get(remote.remote(-1))

    def measure(n: int) -> tuple[float, float]:
        return timed(lambda: ray.get([remote.remote(i) for i in range(n)]), n)

    return measure


def side_by_side(name: str, plait: Measure, direct: Measure, n: int, rounds: int) -> None:
    ours, theirs = [], []
    for _ in range(rounds):
        ours.append(plait(n))
        theirs.append(direct(n))
    ratio = statistics.median(a[0] / b[0] for a, b in zip(ours, theirs, strict=True))
    speed_a, speed_b = (statistics.median(r[0] for r in runs) for runs in (ours, theirs))
    cpu_a, cpu_b = (statistics.median(r[1] for r in runs) for runs in (ours, theirs))
    print(f"{name:<5} direct {speed_b:6.0f} tasks/s {cpu_b:5.0f} µs CPU/task", end="")
    print(f"   plait on {name} {speed_a:6.0f} tasks/s {cpu_a:5.0f} µs CPU/task", end="")
    print(f"   ratio {ratio:4.2f}, overhead {100 * (1 - ratio):+5.1f} %")
    print(f"      rounds, tasks/s: direct {[round(r[0]) for r in theirs]}, plait {[round(r[0]) for r in ours]}")


def bench_dask(n: int, rounds: int) -> None:
    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.ERROR)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        plait = plait_on(pl.DaskExecutor(client))
        try:
            side_by_side("dask", plait, dask_direct(client), n, rounds)
        finally:
            plait.runtime.shutdown()  # type: ignore[attr-defined]


def bench_ray(n: int, rounds: int) -> None:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    try:
        plait = plait_on(pl.RayExecutor())
        try:
            side_by_side("ray", plait, ray_direct(), n, rounds)
        finally:
            plait.runtime.shutdown()  # type: ignore[attr-defined]
    finally:
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=["dask", "ray"])
    args = parser.parse_args()
    print(f"no-op throughput, {args.tasks} tasks, median of {args.rounds} rounds, 2 workers each")
    if args.only in (None, "dask"):
        bench_dask(args.tasks, args.rounds)
    if args.only in (None, "ray"):
        bench_ray(args.tasks, args.rounds)


if __name__ == "__main__":
    main()
